//! Accounts (`CoreAccount`) and their API tokens: the rules of creating, changing and
//! deleting accounts (a password of 8 characters or more, a known role, no account deleting
//! itself) and of creating and revoking tokens (an expiry in the future; only admins revoke
//! other accounts' tokens). Every change clears the cache of verified credentials, so it
//! applies to the very next request. Accounts are a [`NodeKind`]: listed, created, changed and
//! removed by the operations of [`crate::nodes`].

use crate::Services;
use crate::nodes::{Attribute, NodeError, NodeKind, Scope};
use crate::passwords::PasswordPool;
use async_trait::async_trait;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_core::{Account, ApiToken, Role, now, parse_timestamp};
use infrastream_store::{Change, Commit, StoreError};

/// Node kind of accounts.
pub const KIND: &str = "CoreAccount";

/// What went wrong with an account or a token.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The name of a new account is blank.
    #[error("name.value must not be empty")]
    EmptyName,
    /// Not one of the three roles.
    #[error("Invalid role '{0}': expected admin, read-write or read-only")]
    InvalidRole(String),
    /// The password is too short.
    #[error("The password must be at least 8 characters long")]
    ShortPassword,
    /// Hashing the password failed.
    #[error("password hashing failed")]
    Hashing(#[source] infrastream_auth::AuthError),
    /// The caller tried to delete its own account.
    #[error("An account cannot delete itself")]
    DeleteSelf,
    /// The expiration of a new token does not parse.
    #[error("Invalid expiration '{0}': expected an RFC 3339 timestamp")]
    InvalidExpiration(String),
    /// The expiration of a new token is not in the future.
    #[error("The expiration must be in the future")]
    PastExpiration,
    /// No token id was given.
    #[error("The id of the token to delete is required")]
    TokenIdRequired,
    /// No such token (or not the caller's).
    #[error("Token not found")]
    TokenNotFound,
    /// A failure every kind shares.
    #[error(transparent)]
    Node(#[from] NodeError),
}

crate::nodes::store_errors_via_node!(AccountError);

impl DomainError for AccountError {
    fn code(&self) -> &'static Code {
        use AccountError::*;
        match self {
            EmptyName | InvalidRole(_) | ShortPassword | DeleteSelf | InvalidExpiration(_)
            | PastExpiration | TokenIdRequired => &codes::BAD_USER_INPUT,
            Hashing(_) => &codes::INTERNAL_SERVER_ERROR,
            TokenNotFound => &codes::NOT_FOUND,
            Node(e) => e.code(),
        }
    }
}

/// The attribute values of an account mutation.
#[derive(Debug, Default)]
pub struct Values {
    /// `name`.
    pub name: Option<String>,
    /// `password`, in clear; only its hash is kept.
    pub password: Option<String>,
    /// `role`: `admin`, `read-write` or `read-only`.
    pub role: Option<String>,
}

fn role(value: &str) -> Result<Role, AccountError> {
    Role::parse(value).ok_or_else(|| AccountError::InvalidRole(value.to_owned()))
}

/// Hashes a new password (8 characters or more) on the password-hashing pool, waiting for
/// room there if logins fill it.
async fn hash(pool: &PasswordPool, password: String) -> Result<String, AccountError> {
    if password.len() < 8 {
        return Err(AccountError::ShortPassword);
    }
    pool.hash(password).await.map_err(AccountError::Hashing)
}

/// Commits an account or token change; verified credentials are forgotten, so the change
/// applies to the very next request.
async fn commit(s: &Services, change: Change) -> Result<(), StoreError> {
    let result = s.store.commit(Commit::change(change)).await;
    s.credentials.clear();
    result.map(|_| ())
}

/// The checked parts of a new account from create values: name, role and the password in
/// clear (its length checked, not hashed yet).
fn new_account_parts(v: Values) -> Result<(String, Role, String), AccountError> {
    let name = v.name.ok_or(NodeError::Required("name"))?;
    if name.trim().is_empty() {
        return Err(AccountError::EmptyName);
    }
    let password = v.password.ok_or(NodeError::Required("password"))?;
    let role = role(&v.role.unwrap_or_else(|| "read-only".into()))?;
    if password.len() < 8 {
        return Err(AccountError::ShortPassword);
    }
    Ok((name, role, password))
}

/// A new account from create values (hashing its password on `pool`).
async fn new_account(
    pool: &PasswordPool,
    id: Option<String>,
    v: Values,
) -> Result<Account, AccountError> {
    let (name, role, password) = new_account_parts(v)?;
    Ok(Account {
        id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name,
        role,
        password_hash: hash(pool, password).await?,
    })
}

#[async_trait]
impl NodeKind for Account {
    const KIND: &'static str = KIND;
    const LABEL: &'static str = "Account";
    const ATTRIBUTES: &'static [Attribute] = &[
        Attribute::text("name", true),
        Attribute::text("password", true).secret(),
        Attribute::text("role", false),
    ];
    type Values = Values;
    type Error = AccountError;

    crate::nodes::named_by_fields!();

    async fn build(
        s: &Services,
        _: Scope<'_>,
        id: Option<String>,
        v: Values,
    ) -> Result<Self, AccountError> {
        new_account(&s.passwords, id, v).await
    }

    async fn merge(mut self, s: &Services, v: Values) -> Result<Self, AccountError> {
        if let Some(name) = v.name {
            self.name = name;
        }
        if let Some(r) = v.role {
            self.role = role(&r)?;
        }
        if let Some(p) = v.password {
            self.password_hash = hash(&s.passwords, p).await?;
        }
        Ok(self)
    }

    async fn all(s: &Services) -> Result<Vec<Self>, AccountError> {
        Ok(s.store.accounts().await?)
    }

    async fn insert(s: &Services, _: Scope<'_>, account: Self) -> Result<Self, AccountError> {
        commit(s, Change::InsertAccount(account.clone())).await?;
        Ok(account)
    }

    async fn replace(s: &Services, _: Scope<'_>, account: Self) -> Result<Self, AccountError> {
        commit(s, Change::UpdateAccount(account.clone())).await?;
        Ok(account)
    }

    /// Deletes an account and revokes its tokens; not the caller's own.
    async fn remove(s: &Services, at: Scope<'_>, id: String) -> Result<Option<Self>, AccountError> {
        if at.caller.account_id().as_deref() == Some(id.as_str()) {
            return Err(AccountError::DeleteSelf);
        }
        commit(s, Change::DeleteAccount { id }).await?;
        Ok(None)
    }
}

/// A token just created: its id and its secret (shown once).
#[derive(Debug)]
pub struct NewToken {
    /// The token's id.
    pub id: String,
    /// The secret; only its hash is stored.
    pub secret: String,
}

/// Creates an API token for `account`, optionally named and expiring at `expiration`
/// (RFC 3339, in the future; empty means never).
pub async fn create_token(
    s: &Services,
    account: &Account,
    name: Option<String>,
    expiration: Option<&str>,
) -> Result<NewToken, AccountError> {
    let expires_at = match expiration {
        None | Some("") => None,
        Some(e) => {
            let t = parse_timestamp(e).ok_or_else(|| AccountError::InvalidExpiration(e.into()))?;
            if t <= now() {
                return Err(AccountError::PastExpiration);
            }
            Some(t)
        }
    };
    let secret = infrastream_auth::generate_api_token();
    let token = ApiToken {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: account.id.clone(),
        name,
        token_hash: infrastream_auth::hash_api_token(&secret),
        expires_at,
        revoked: false,
    };
    commit(s, Change::InsertToken(token.clone())).await?;
    Ok(NewToken {
        id: token.id,
        secret,
    })
}

/// The tokens of `account` that are not revoked, oldest first (expired ones included: they
/// show their expiration).
pub async fn tokens(s: &Services, account: &Account) -> Result<Vec<ApiToken>, AccountError> {
    Ok(s.store.tokens_of(&account.id).await?)
}

/// Revokes the token `id` of `account` (an admin may revoke any token).
pub async fn revoke_token(
    s: &Services,
    account: &Account,
    id: Option<String>,
) -> Result<(), AccountError> {
    let id = id.ok_or(AccountError::TokenIdRequired)?;
    let owner = (account.role != Role::Admin).then(|| account.id.clone());
    match commit(
        s,
        Change::RevokeToken {
            id,
            account_id: owner,
        },
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(StoreError::Rejected(e)) if e.message.contains("not found") => {
            Err(AccountError::TokenNotFound)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(name: &str, password: &str, role: Option<&str>) -> Values {
        Values {
            name: Some(name.into()),
            password: Some(password.into()),
            role: role.map(Into::into),
        }
    }

    #[tokio::test]
    async fn creation_rules_keep_their_messages_and_codes() {
        let fails = |v: Values| new_account_parts(v).unwrap_err().user_error();
        let e = fails(values("a", "short", None));
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "BAD_USER_INPUT",
                "The password must be at least 8 characters long"
            )
        );
        let e = fails(values("a", "long enough", Some("root")));
        assert_eq!(
            e.message,
            "Invalid role 'root': expected admin, read-write or read-only"
        );
        assert_eq!(
            fails(values(" ", "long enough", None)).message,
            "name.value must not be empty"
        );
        assert_eq!(fails(Values::default()).message, "name.value is required");
        let pool = PasswordPool::new(1, 1);
        let a = new_account(&pool, None, values("a", "long enough", None))
            .await
            .unwrap();
        assert_eq!(a.role, Role::ReadOnly);
        assert!(infrastream_auth::verify_password(
            "long enough",
            &a.password_hash
        ));
        let short = hash(&pool, "short".into()).await.unwrap_err();
        assert!(matches!(short, AccountError::ShortPassword));
    }

    #[test]
    fn a_missing_account_is_named_by_its_key() {
        let e = AccountError::from(NodeError::not_found::<Account>(
            crate::nodes::NodeKey::Name("bob".into()),
        ))
        .user_error();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("NOT_FOUND", "Account [\"bob\"] not found")
        );
    }
}
