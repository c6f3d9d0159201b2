//! Accounts (`CoreAccount`, admin-managed), the caller's profile and its API tokens.

use crate::context::{Res, gql, require_account, require_admin, services, store_err};
use crate::node::{DeleteInput, OkResult, TextAttribute, TextAttributeInput};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::{Account, ApiToken, Error, ErrorKind, Role, parse_timestamp};
use infrastream_store::{Change, Commit};

/// An account, without its password hash.
pub(crate) struct CoreAccount(pub(crate) Account);

#[Object(rename_fields = "snake_case")]
impl CoreAccount {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> &str {
        &self.0.name
    }
    async fn name(&self) -> TextAttribute {
        TextAttribute::of(&self.0.name)
    }
    /// `admin`, `read-write` or `read-only`.
    async fn role(&self) -> TextAttribute {
        TextAttribute::of(self.0.role.as_str())
    }
}

crate::node::paginated!(PaginatedCoreAccount, EdgedCoreAccount, CoreAccount);

#[derive(Default)]
pub(crate) struct AccountQuery;

#[Object(rename_args = "snake_case")]
impl AccountQuery {
    /// The calling account.
    #[graphql(name = "AccountProfile")]
    async fn account_profile(&self, ctx: &Context<'_>) -> Res<CoreAccount> {
        Ok(CoreAccount(require_account(ctx)?.clone()))
    }

    /// Accounts, optionally by name or ids.
    #[graphql(name = "CoreAccount")]
    async fn core_account(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreAccount> {
        require_account(ctx)?;
        let all = services(ctx).store.accounts().await.map_err(store_err)?;
        let ids: Option<Vec<String>> = ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect());
        Ok(PaginatedCoreAccount::of(
            all.into_iter()
                .filter(|a| name_value.as_ref().is_none_or(|n| *n == a.name))
                .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.id)))
                .map(CoreAccount)
                .collect(),
        ))
    }
}

/// Data of account create and update.
#[derive(InputObject)]
#[graphql(name = "CoreAccountInput", rename_fields = "snake_case")]
pub(crate) struct AccountInput {
    id: Option<String>,
    name: Option<TextAttributeInput>,
    password: Option<TextAttributeInput>,
    role: Option<TextAttributeInput>,
}

/// Result of an account mutation.
#[derive(SimpleObject)]
#[graphql(name = "CoreAccountMutationResult", rename_fields = "snake_case")]
pub(crate) struct AccountResult {
    ok: bool,
    object: Option<CoreAccount>,
}

/// Data of `InfrahubAccountTokenCreate`.
#[derive(InputObject)]
#[graphql(name = "InfrahubAccountTokenCreateInput", rename_fields = "snake_case")]
pub(crate) struct TokenCreateInput {
    name: Option<String>,
    /// RFC 3339 timestamp after which the token is refused.
    expiration: Option<String>,
}

/// Data of `InfrahubAccountTokenDelete`.
#[derive(InputObject)]
#[graphql(name = "InfrahubAccountTokenDeleteInput", rename_fields = "snake_case")]
pub(crate) struct TokenDeleteInput {
    id: String,
}

/// A newly created token; the secret is shown here once.
#[derive(SimpleObject)]
#[graphql(name = "InfrahubAccountToken", rename_fields = "snake_case")]
pub(crate) struct TokenObject {
    id: String,
    token: TextAttribute,
}

/// Result of `InfrahubAccountTokenCreate`.
#[derive(SimpleObject)]
#[graphql(
    name = "InfrahubAccountTokenCreateResult",
    rename_fields = "snake_case"
)]
pub(crate) struct TokenResult {
    ok: bool,
    object: Option<TokenObject>,
}

fn value(attr: Option<TextAttributeInput>) -> Option<String> {
    attr.and_then(TextAttributeInput::into_value)
}

fn role(value: &str) -> Res<Role> {
    Role::parse(value).ok_or_else(|| {
        gql(Error::invalid(format!(
            "Invalid role '{value}': expected admin, read-write or read-only"
        )))
    })
}

fn hash(password: &str) -> Res<String> {
    if password.len() < 8 {
        return Err(gql(Error::invalid(
            "The password must be at least 8 characters long",
        )));
    }
    infrastream_auth::hash_password(password).map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        gql(Error::internal())
    })
}

/// Commits an account or token change; verified credentials are forgotten, so the change
/// applies to the very next request.
async fn commit(ctx: &Context<'_>, change: Change) -> Res<()> {
    let s = services(ctx);
    let result = s
        .store
        .commit(Commit {
            changes: vec![change],
            events: vec![],
        })
        .await;
    s.credentials.clear();
    result.map_err(store_err)?;
    Ok(())
}

#[derive(Default)]
pub(crate) struct AccountMutation;

#[Object(rename_args = "snake_case")]
impl AccountMutation {
    /// Creates an account (admin only).
    #[graphql(name = "CoreAccountCreate")]
    async fn account_create(&self, ctx: &Context<'_>, data: AccountInput) -> Res<AccountResult> {
        require_admin(ctx)?;
        let name = value(data.name).ok_or_else(|| gql(Error::invalid("name.value is required")))?;
        if name.trim().is_empty() {
            return Err(gql(Error::invalid("name.value must not be empty")));
        }
        let password = value(data.password)
            .ok_or_else(|| gql(Error::invalid("password.value is required")))?;
        let account = Account {
            id: data.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            name,
            role: role(&value(data.role).unwrap_or_else(|| "read-only".into()))?,
            password_hash: hash(&password)?,
        };
        commit(ctx, Change::InsertAccount(account.clone())).await?;
        Ok(AccountResult {
            ok: true,
            object: Some(CoreAccount(account)),
        })
    }

    /// Changes an account's name, password or role (admin only).
    #[graphql(name = "CoreAccountUpdate")]
    async fn account_update(&self, ctx: &Context<'_>, data: AccountInput) -> Res<AccountResult> {
        require_admin(ctx)?;
        let id = data
            .id
            .ok_or_else(|| gql(Error::invalid("id is required")))?;
        let mut account = services(ctx)
            .store
            .account(&id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| gql(Error::not_found(format!("Account {id} not found"))))?;
        if let Some(name) = value(data.name) {
            account.name = name;
        }
        if let Some(r) = value(data.role) {
            account.role = role(&r)?;
        }
        if let Some(p) = value(data.password) {
            account.password_hash = hash(&p)?;
        }
        commit(ctx, Change::UpdateAccount(account.clone())).await?;
        Ok(AccountResult {
            ok: true,
            object: Some(CoreAccount(account)),
        })
    }

    /// Deletes an account and revokes its tokens (admin only; not one's own account).
    #[graphql(name = "CoreAccountDelete")]
    async fn account_delete(&self, ctx: &Context<'_>, data: DeleteInput) -> Res<OkResult> {
        let me = require_admin(ctx)?;
        if me.account_id().as_deref() == Some(data.id.as_str()) {
            return Err(gql(Error::invalid("An account cannot delete itself")));
        }
        commit(ctx, Change::DeleteAccount { id: data.id }).await?;
        Ok(OkResult { ok: true })
    }

    /// Creates an API token for the calling account; the secret is returned once.
    #[graphql(name = "InfrahubAccountTokenCreate")]
    async fn token_create(&self, ctx: &Context<'_>, data: TokenCreateInput) -> Res<TokenResult> {
        let account = require_account(ctx)?;
        let expires_at = match data.expiration.as_deref() {
            None | Some("") => None,
            Some(s) => {
                let t = parse_timestamp(s).ok_or_else(|| {
                    gql(Error::invalid(format!(
                        "Invalid expiration '{s}': expected an RFC 3339 timestamp"
                    )))
                })?;
                if t <= infrastream_core::now() {
                    return Err(gql(Error::invalid("The expiration must be in the future")));
                }
                Some(t)
            }
        };
        let secret = infrastream_auth::generate_api_token();
        let token = ApiToken {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: account.id.clone(),
            name: data.name,
            token_hash: infrastream_auth::hash_api_token(&secret),
            expires_at,
            revoked: false,
        };
        commit(ctx, Change::InsertToken(token.clone())).await?;
        Ok(TokenResult {
            ok: true,
            object: Some(TokenObject {
                id: token.id,
                token: TextAttribute::of(secret),
            }),
        })
    }

    /// Revokes a token of the calling account (admins may revoke any token).
    #[graphql(name = "InfrahubAccountTokenDelete")]
    async fn token_delete(&self, ctx: &Context<'_>, data: TokenDeleteInput) -> Res<OkResult> {
        let account = require_account(ctx)?;
        let owner = (account.role != Role::Admin).then(|| account.id.clone());
        commit(
            ctx,
            Change::RevokeToken {
                id: data.id,
                account_id: owner,
            },
        )
        .await
        .map_err(|e| {
            if e.message.contains("not found") {
                gql(Error::new(ErrorKind::NotFound, "Token not found"))
            } else {
                e
            }
        })?;
        Ok(OkResult { ok: true })
    }
}
