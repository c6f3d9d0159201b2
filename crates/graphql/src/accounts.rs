//! Accounts (`CoreAccount`, admin-managed) in Infrahub's node shape, produced by
//! [`node_kind!`](crate::node_kind::node_kind) from the domain's description
//! ([`infrastream_services::accounts`]), the caller's profile and its API tokens.

use crate::context::{Res, domain, require_account, require_admin, services};
use crate::node::{TextAttribute, ok_result};
use crate::node_kind::node_kind;
use async_graphql::{Context, InputObject, Interface, Object, SimpleObject};
use infrastream_core::Account;
use infrastream_services::accounts::{self, Values};

/// An account, without its password hash.
pub(crate) struct CoreAccount(pub(crate) Account);

crate::node::node_object!(CoreAccount, {
    /// `admin`, `read-write` or `read-only`.
    async fn role(&self) -> Option<TextAttribute> {
        TextAttribute::of(self.0.role.as_str())
    }
});

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

#[derive(Default)]
pub(crate) struct AccountProfileQuery;

/// One API token of the calling account, without its secret.
#[derive(SimpleObject)]
#[graphql(name = "AccountTokenNode", rename_fields = "snake_case")]
pub(crate) struct AccountTokenNode {
    /// When the token stops working (RFC 3339); absent: never.
    expiration: Option<String>,
    id: String,
    name: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "AccountTokenEdge", rename_fields = "snake_case")]
pub(crate) struct AccountTokenEdge {
    node: AccountTokenNode,
}

/// A page of the calling account's tokens; `count` is the total.
#[derive(SimpleObject)]
#[graphql(name = "AccountTokenEdges", rename_fields = "snake_case")]
pub(crate) struct AccountTokenEdges {
    count: i32,
    edges: Vec<AccountTokenEdge>,
}

#[Object(rename_args = "snake_case")]
impl AccountProfileQuery {
    /// The calling account; anonymous callers are refused.
    #[graphql(name = "AccountProfile")]
    async fn account_profile(&self, ctx: &Context<'_>) -> Res<Option<GenericAccount>> {
        Ok(Some(GenericAccount::CoreAccount(CoreAccount(
            require_account(ctx)?.clone(),
        ))))
    }

    /// The calling account's API tokens that are not revoked (expired ones included), oldest
    /// first; `offset` and `limit` page through them (no `limit`: all).
    #[graphql(name = "InfrahubAccountToken")]
    async fn account_tokens(
        &self,
        ctx: &Context<'_>,
        limit: Option<i32>,
        offset: Option<i32>,
    ) -> Res<AccountTokenEdges> {
        let account = require_account(ctx)?;
        let tokens = accounts::tokens(services(ctx), account)
            .await
            .map_err(domain)?;
        let count = i32::try_from(tokens.len()).unwrap_or(i32::MAX);
        let offset = usize::try_from(offset.unwrap_or(0).max(0)).unwrap_or(0);
        let limit = limit.map_or(usize::MAX, |l| usize::try_from(l.max(0)).unwrap_or(0));
        let edges = tokens
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|t| AccountTokenEdge {
                node: AccountTokenNode {
                    expiration: t
                        .expires_at
                        .as_ref()
                        .map(infrastream_core::format_timestamp),
                    id: t.id,
                    name: t.name,
                },
            })
            .collect();
        Ok(AccountTokenEdges { count, edges })
    }
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
ok_result!(CoreAccountDelete);

node_kind! {
    kind: Account,
    values: Values,
    object: CoreAccount,
    query: AccountQuery,
    list: "CoreAccount" => (PaginatedCoreAccount, EdgedCoreAccount),
    list_guard: require_account,
    mutation: AccountMutation,
    guard: require_admin,
    attributes: [name, password, role],
    create: "CoreAccountCreate" => (CoreAccountCreate, "CoreAccountCreateInput"),
    update: "CoreAccountUpdate" => (CoreAccountUpdate, "CoreAccountUpdateInput"),
    upsert: "CoreAccountUpsert" => (CoreAccountUpsert, "CoreAccountUpsertInput"),
    delete: "CoreAccountDelete" => (CoreAccountDelete, |_| CoreAccountDelete::done()),
    docs: {
        list: "Accounts, optionally by name or ids.",
        create_input: "Data of `CoreAccountCreate`; `role` (`admin`, `read-write` or `read-only`, default\n`read-only`) is an infrastream extension: Infrahub grants rights through groups and roles.",
        update_input: "Data of `CoreAccountUpdate`: the account is found by `id` or `hfid` (`[name]`).",
        upsert_input: "Data of `CoreAccountUpsert`: updates the account found by `id`, `hfid` or name, or\ncreates it.",
        create: "Creates an account (admin only).",
        update: "Changes an account's name, password or role (admin only); found by `id` or `hfid`.",
        upsert: "Changes the account found by `id`, `hfid` or else by name, or creates it (admin only).",
        delete: "Deletes an account and revokes its tokens (admin only; not one's own account).",
    },
    extra_mutations: {
        /// Creates an API token for the calling account; the secret is returned once.
        #[graphql(name = "InfrahubAccountTokenCreate")]
        async fn token_create(
            &self,
            ctx: &Context<'_>,
            data: TokenCreateInput,
        ) -> Res<Option<TokenResult>> {
            let account = require_account(ctx)?;
            let token =
                accounts::create_token(services(ctx), account, data.name, data.expiration.as_deref())
                    .await
                    .map_err(domain)?;
            Ok(Some(TokenResult {
                ok: Some(true),
                object: Some(TokenObject {
                    id: token.id,
                    token: Some(ValueType {
                        value: token.secret,
                    }),
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
            let account: &Account = require_account(ctx)?;
            accounts::revoke_token(services(ctx), account, data.id)
                .await
                .map_err(domain)?;
            Ok(InfrahubAccountTokenDelete::done())
        }
    },
}
