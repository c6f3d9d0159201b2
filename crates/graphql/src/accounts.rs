//! Accounts (`CoreAccount`, admin-managed), the caller's profile and its API tokens.

use crate::context::{Res, gql, require_account, require_admin, services, store_err};
use crate::node::{
    DeleteInput, NodeKey, TextAttribute, TextAttributeCreate, TextAttributeUpdate, TextValue,
    object_result, ok_result,
};
use async_graphql::{Context, ID, InputObject, Interface, Object, SimpleObject};
use infrastream_core::{Account, ApiToken, Error, ErrorKind, Role, parse_timestamp};
use infrastream_store::{Change, Commit};

/// Node kind of accounts.
const KIND: &str = "CoreAccount";

/// An account, without its password hash.
pub(crate) struct CoreAccount(pub(crate) Account);

#[Object(rename_fields = "snake_case")]
impl CoreAccount {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.name)
    }
    /// `admin`, `read-write` or `read-only`.
    async fn role(&self) -> Option<TextAttribute> {
        TextAttribute::of(self.0.role.as_str())
    }
}

/// Any account (Infrahub's generic of user and service accounts); here only `CoreAccount`.
// The derive's `field(...)` lists repeat `ty` by design.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    name = "CoreGenericAccount",
    rename_fields = "snake_case",
    field(name = "id", ty = "Option<&str>"),
    field(name = "display_label", ty = "Option<&str>"),
    field(name = "name", ty = "Option<TextAttribute>")
)]
pub(crate) enum GenericAccount {
    CoreAccount(CoreAccount),
}

crate::node::paginated!(PaginatedCoreAccount, EdgedCoreAccount, CoreAccount);

#[derive(Default)]
pub(crate) struct AccountQuery;

#[Object(rename_args = "snake_case")]
impl AccountQuery {
    /// The calling account; anonymous callers are refused.
    #[graphql(name = "AccountProfile")]
    async fn account_profile(&self, ctx: &Context<'_>) -> Res<Option<GenericAccount>> {
        Ok(Some(GenericAccount::CoreAccount(CoreAccount(
            require_account(ctx)?.clone(),
        ))))
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

/// Data of `CoreAccountCreate`; `role` (`admin`, `read-write` or `read-only`, default
/// `read-only`) is an infrastream extension: Infrahub grants rights through groups and roles.
#[derive(InputObject)]
#[graphql(name = "CoreAccountCreateInput", rename_fields = "snake_case")]
pub(crate) struct CreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    password: Option<TextAttributeCreate>,
    role: Option<TextAttributeCreate>,
}

/// Data of `CoreAccountUpdate`: the account is found by `id` or `hfid` (`[name]`).
#[derive(InputObject)]
#[graphql(name = "CoreAccountUpdateInput", rename_fields = "snake_case")]
pub(crate) struct UpdateInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    password: Option<TextAttributeUpdate>,
    role: Option<TextAttributeUpdate>,
}

/// Data of `CoreAccountUpsert`: updates the account found by `id`, `hfid` or name, or
/// creates it.
#[derive(InputObject)]
#[graphql(name = "CoreAccountUpsertInput", rename_fields = "snake_case")]
pub(crate) struct UpsertInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    password: Option<TextAttributeUpdate>,
    role: Option<TextAttributeUpdate>,
}

/// The attribute values of any of the three inputs.
struct Values {
    name: Option<String>,
    password: Option<String>,
    role: Option<String>,
}

object_result!(CoreAccountCreate, CoreAccount);
object_result!(CoreAccountUpdate, CoreAccount);
object_result!(CoreAccountUpsert, CoreAccount);
ok_result!(CoreAccountDelete);

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
    id: Option<String>,
}

/// `{value}` of a newly created token.
#[derive(SimpleObject)]
#[graphql(name = "ValueType", rename_fields = "snake_case")]
pub(crate) struct ValueType {
    value: String,
}

/// A newly created token; the secret is shown here once.
#[derive(SimpleObject)]
#[graphql(name = "InfrahubAccountTokenType", rename_fields = "snake_case")]
pub(crate) struct TokenObject {
    id: String,
    token: Option<ValueType>,
}

/// Result of `InfrahubAccountTokenCreate`.
#[derive(SimpleObject)]
#[graphql(name = "InfrahubAccountTokenCreate", rename_fields = "snake_case")]
pub(crate) struct TokenResult {
    object: Option<TokenObject>,
    ok: Option<bool>,
}

ok_result!(InfrahubAccountTokenDelete);

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

async fn find(ctx: &Context<'_>, key: &NodeKey) -> Res<Option<Account>> {
    let all = services(ctx).store.accounts().await.map_err(store_err)?;
    Ok(all.into_iter().find(|a| key.matches(&a.id, &a.name)))
}

async fn existing(ctx: &Context<'_>, key: &NodeKey) -> Res<Account> {
    find(ctx, key)
        .await?
        .ok_or_else(|| gql(Error::not_found(format!("Account {key} not found"))))
}

/// Creates an account from the given values (name and password required).
async fn create(ctx: &Context<'_>, id: Option<String>, v: Values) -> Res<Account> {
    let name = v
        .name
        .ok_or_else(|| gql(Error::invalid("name.value is required")))?;
    if name.trim().is_empty() {
        return Err(gql(Error::invalid("name.value must not be empty")));
    }
    let password = v
        .password
        .ok_or_else(|| gql(Error::invalid("password.value is required")))?;
    let account = Account {
        id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name,
        role: role(&v.role.unwrap_or_else(|| "read-only".into()))?,
        password_hash: hash(&password)?,
    };
    commit(ctx, Change::InsertAccount(account.clone())).await?;
    Ok(account)
}

/// Applies the given values to an existing account.
async fn update(ctx: &Context<'_>, mut account: Account, v: Values) -> Res<Account> {
    if let Some(name) = v.name {
        account.name = name;
    }
    if let Some(r) = v.role {
        account.role = role(&r)?;
    }
    if let Some(p) = v.password {
        account.password_hash = hash(&p)?;
    }
    commit(ctx, Change::UpdateAccount(account.clone())).await?;
    Ok(account)
}

#[derive(Default)]
pub(crate) struct AccountMutation;

#[Object(rename_args = "snake_case")]
impl AccountMutation {
    /// Creates an account (admin only).
    #[graphql(name = "CoreAccountCreate")]
    async fn account_create(
        &self,
        ctx: &Context<'_>,
        data: CreateInput,
    ) -> Res<Option<CoreAccountCreate>> {
        require_admin(ctx)?;
        let values = Values {
            name: data.name.text(),
            password: data.password.text(),
            role: data.role.text(),
        };
        let account = create(ctx, data.id, values).await?;
        Ok(CoreAccountCreate::done(CoreAccount(account)))
    }

    /// Changes an account's name, password or role (admin only); found by `id` or `hfid`.
    #[graphql(name = "CoreAccountUpdate")]
    async fn account_update(
        &self,
        ctx: &Context<'_>,
        data: UpdateInput,
    ) -> Res<Option<CoreAccountUpdate>> {
        require_admin(ctx)?;
        let key = NodeKey::required(data.id, data.hfid, KIND)?;
        let values = Values {
            name: data.name.text(),
            password: data.password.text(),
            role: data.role.text(),
        };
        let account = update(ctx, existing(ctx, &key).await?, values).await?;
        Ok(CoreAccountUpdate::done(CoreAccount(account)))
    }

    /// Changes the account found by `id`, `hfid` or else by name, or creates it (admin only).
    #[graphql(name = "CoreAccountUpsert")]
    async fn account_upsert(
        &self,
        ctx: &Context<'_>,
        data: UpsertInput,
    ) -> Res<Option<CoreAccountUpsert>> {
        require_admin(ctx)?;
        let values = Values {
            name: data.name.text(),
            password: data.password.text(),
            role: data.role.text(),
        };
        let key = match NodeKey::from_input(data.id.clone(), data.hfid, KIND)? {
            Some(k) => Some(k),
            None => values.name.clone().map(NodeKey::Name),
        };
        let found = match &key {
            Some(k) => find(ctx, k).await?,
            None => None,
        };
        let account = match found {
            Some(a) => update(ctx, a, values).await?,
            None => create(ctx, data.id, values).await?,
        };
        Ok(CoreAccountUpsert::done(CoreAccount(account)))
    }

    /// Deletes an account and revokes its tokens (admin only; not one's own account).
    #[graphql(name = "CoreAccountDelete")]
    async fn account_delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreAccountDelete>> {
        let me = require_admin(ctx)?;
        let id = match data.key(KIND)? {
            NodeKey::Id(id) => id,
            key => existing(ctx, &key).await?.id,
        };
        if me.account_id().as_deref() == Some(id.as_str()) {
            return Err(gql(Error::invalid("An account cannot delete itself")));
        }
        commit(ctx, Change::DeleteAccount { id }).await?;
        Ok(CoreAccountDelete::done())
    }

    /// Creates an API token for the calling account; the secret is returned once.
    #[graphql(name = "InfrahubAccountTokenCreate")]
    async fn token_create(
        &self,
        ctx: &Context<'_>,
        data: TokenCreateInput,
    ) -> Res<Option<TokenResult>> {
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
        Ok(Some(TokenResult {
            ok: Some(true),
            object: Some(TokenObject {
                id: token.id,
                token: Some(ValueType { value: secret }),
            }),
        }))
    }

    /// Revokes a token of the calling account (admins may revoke any token).
    #[graphql(name = "InfrahubAccountTokenDelete")]
    async fn token_delete(
        &self,
        ctx: &Context<'_>,
        data: TokenDeleteInput,
    ) -> Res<Option<InfrahubAccountTokenDelete>> {
        let account = require_account(ctx)?;
        let id = data
            .id
            .ok_or_else(|| gql(Error::invalid("The id of the token to delete is required")))?;
        let owner = (account.role != Role::Admin).then(|| account.id.clone());
        commit(
            ctx,
            Change::RevokeToken {
                id,
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
        Ok(InfrahubAccountTokenDelete::done())
    }
}
