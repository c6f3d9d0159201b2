//! What every resolver needs: the services, the caller, the URL's branch, and the mapping of
//! domain errors to GraphQL errors with `extensions.code` and `extensions.http_status`.

use async_graphql::{Context, ErrorExtensions};
use infrastream_core::{Account, Error, ErrorKind, Role};
use infrastream_store::StoreError;
use std::sync::Arc;

/// What the API layer holds, one per server: the domain services and what only the API uses.
#[derive(Clone)]
pub struct Services {
    /// The domain layer.
    pub domain: infrastream_services::Services,
    /// Counters shown by `/metrics`.
    pub metrics: Arc<crate::Metrics>,
    /// Shared executions of identical `query` subscriptions.
    pub query_hub: Arc<crate::QueryHub>,
    /// Shared rendering of events for `events` subscribers of the same document.
    pub renderers: Arc<crate::Renderers>,
}

pub use infrastream_services::Caller;

/// The branch named by the request URL (`/graphql/{branch}`), `main` by default.
#[derive(Debug, Clone)]
pub struct UrlBranch(pub String);

/// Turns a domain error into a GraphQL error with stable extensions.
pub(crate) fn gql(e: Error) -> async_graphql::Error {
    let status = e.http_status();
    async_graphql::Error::new(e.message).extend_with(|_, ext| {
        ext.set("code", e.code);
        ext.set("http_status", status);
    })
}

/// A domain error as a GraphQL error (internal failures are logged with a correlation id).
pub(crate) fn domain<E: infrastream_core::DomainError>(e: E) -> async_graphql::Error {
    gql(e.user_error())
}

/// Store failures: rejections as they are; backend failures logged once and hidden.
pub(crate) fn store_err(e: StoreError) -> async_graphql::Error {
    domain(e)
}

pub(crate) type Res<T> = async_graphql::Result<T>;

/// The domain services.
pub(crate) fn services<'a>(ctx: &Context<'a>) -> &'a infrastream_services::Services {
    &ctx.data_unchecked::<Services>().domain
}

/// The API layer's own state (metrics, query hub, renderers).
pub(crate) fn api<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

pub(crate) fn caller<'a>(ctx: &Context<'a>) -> &'a Caller {
    static ANON: std::sync::LazyLock<Caller> = std::sync::LazyLock::new(Caller::anonymous);
    ctx.data_opt::<Caller>().unwrap_or(&ANON)
}

pub(crate) fn url_branch(ctx: &Context<'_>) -> String {
    ctx.data_opt::<UrlBranch>()
        .map(|b| b.0.clone())
        .unwrap_or_else(|| "main".into())
}

/// The caller, if it may change state.
pub(crate) fn require_write<'a>(ctx: &Context<'a>) -> Res<&'a Caller> {
    let c = caller(ctx);
    if c.role.can_write() {
        Ok(c)
    } else {
        Err(gql(Error::new(
            ErrorKind::Forbidden,
            "You do not have permission to perform this mutation (read-only access)",
        )))
    }
}

/// The caller, if it is an admin.
pub(crate) fn require_admin<'a>(ctx: &Context<'a>) -> Res<&'a Caller> {
    let c = caller(ctx);
    if c.role == Role::Admin {
        Ok(c)
    } else {
        Err(gql(Error::new(
            ErrorKind::Forbidden,
            "This operation requires the admin role",
        )))
    }
}

/// The calling account; anonymous callers are refused.
pub(crate) fn require_account<'a>(ctx: &Context<'a>) -> Res<&'a Account> {
    caller(ctx).account.as_ref().ok_or_else(|| {
        gql(Error::new(
            ErrorKind::Unauthenticated,
            "Authentication is required",
        ))
    })
}

/// JSON context stored with every event a caller causes.
pub(crate) fn event_context(ctx: &Context<'_>) -> serde_json::Value {
    serde_json::json!({
        "account_id": caller(ctx).account_id(),
        "branch": url_branch(ctx),
    })
}
