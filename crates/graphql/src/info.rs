//! `InfrahubInfo` (type `Info`): version and deployment id.

use crate::context::services;
use async_graphql::{Context, Object, SimpleObject};

/// Server information.
#[derive(SimpleObject)]
#[graphql(name = "Info", rename_fields = "snake_case")]
pub(crate) struct Info {
    version: String,
    deployment_id: String,
}

#[derive(Default)]
pub(crate) struct InfoQuery;

#[Object(rename_args = "snake_case")]
impl InfoQuery {
    /// Version and deployment id of this server.
    #[graphql(name = "InfrahubInfo")]
    async fn infrahub_info(&self, ctx: &Context<'_>) -> Info {
        Info {
            version: env!("CARGO_PKG_VERSION").into(),
            deployment_id: services(ctx).deployment_id.clone(),
        }
    }
}
