//! The GraphQL schema of infrastream (Infrahub's names and shapes): queries, mutations and,
//! later, subscriptions, resolved over `core` types and the `store`. The HTTP and WebSocket
//! layers in `server` decide who the caller is and hand a [`Caller`] to every request; this
//! crate decides what that caller may do.

mod accounts;
mod artifacts;
mod branches;
mod context;
mod cursor_pruned;
pub mod data;
mod diff;
mod events;
mod extension;
mod fanout;
mod info;
mod metrics;
mod node;
mod node_kind;
mod query_hub;
mod repositories;
mod runner;
mod saved_queries;
mod scalars;
mod subscriptions;
mod surrogates;
mod webhooks;

pub use context::{Caller, Services, UrlBranch};
pub use extension::{REQUEST_ERROR_CODES, ValidateOnly, is_request_error};
pub use fanout::{EventRenderer, Renderers, is_events_subscription, is_query_subscription};
pub use infrastream_services::CredentialCache;
pub use metrics::{LATENCY_BUCKETS, Metrics};
pub use query_hub::{Latest, QueryHub, TickResult};
pub use subscriptions::{
    CaptureEventsPlan, CaptureQueryPlan, CursorStep, EventCursor, QueryFeed, SingleEvent,
    SingleTick, Subscription, SubscriptionGauge,
};
pub use surrogates::decode_surrogate_pairs;

use async_graphql::{MergedObject, Schema, SchemaBuilder};
use std::sync::Arc;

/// Root query type.
#[derive(MergedObject, Default)]
pub struct Query(
    branches::BranchQuery,
    events::EventQuery,
    saved_queries::SavedQueryQuery,
    accounts::AccountProfileQuery,
    accounts::AccountQuery,
    info::InfoQuery,
    artifacts::DefinitionQuery,
    artifacts::ArtifactQuery,
    repositories::RepositoryQuery,
    webhooks::WebhookQuery,
    diff::DiffQuery,
);

/// Root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    branches::BranchMutation,
    events::EventMutation,
    saved_queries::SavedQueryMutation,
    accounts::AccountMutation,
    artifacts::DefinitionMutation,
    artifacts::ArtifactMutation,
    repositories::RepositoryMutation,
    webhooks::WebhookMutation,
    diff::DiffMutation,
);

/// The executable schema.
pub type InfraSchema = Schema<Query, Mutation, Subscription>;

/// The root types: the one place that decides which types the schema has, so that
/// [`build_schema`] and [`schema_sdl`] cannot disagree.
fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query::default(), Mutation::default(), Subscription)
}

/// The schema's declarations as SDL, exactly as [`build_schema`] serves them (services only
/// feed resolvers; they add no type). Used to compare the schema with Infrahub's.
pub fn schema_sdl() -> String {
    builder().finish().sdl()
}

/// Builds the schema with the limits of `services.settings`.
pub fn build_schema(services: Services) -> InfraSchema {
    let s = services.domain.settings.clone();
    let hub = services.query_hub.clone();
    let schema = builder()
        .data(services.clone())
        .extension(extension::TagRequestErrors)
        .limit_depth(s.max_query_depth)
        .limit_complexity(s.max_query_complexity)
        .limit_recursive_depth(s.max_query_recursion)
        .finish();
    hub.set_schema(schema.clone());
    services
        .domain
        .queries
        .install(Arc::new(runner::SchemaRunner(schema.clone(), hub.clone())));
    schema
}

/// Checks a GraphQL document against `schema` without executing it.
pub async fn validate_document(schema: &InfraSchema, document: &str) -> Result<(), String> {
    let request = async_graphql::Request::new(document).data(ValidateOnly);
    validated(schema.execute(request).await)
}

/// What a request carrying [`ValidateOnly`] answered: valid, or the reasons.
pub(crate) fn validated(response: async_graphql::Response) -> Result<(), String> {
    match response.errors.first() {
        Some(e) if e.message == extension::VALID_MARKER => Ok(()),
        Some(_) => Err(response
            .errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")),
        None => Err("the document was executed instead of validated".into()),
    }
}

/// The type of the operation a request would run, if the document parses and names one.
pub fn operation_type(
    query: &str,
    operation_name: Option<&str>,
) -> Option<async_graphql::parser::types::OperationType> {
    selected_operation(query, operation_name).map(|op| op.node.ty)
}

/// The operation of `query` a request runs: the one named `operation_name`, or the only one
/// when no name is given (GraphQL's rule; a document with one *named* operation counts too).
pub(crate) fn selected_operation(
    query: &str,
    operation_name: Option<&str>,
) -> Option<async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>> {
    use async_graphql::parser::types::DocumentOperations;
    let doc = async_graphql::parser::parse_query(query).ok()?;
    match (operation_name, doc.operations) {
        (_, DocumentOperations::Single(op)) => Some(op),
        (Some(n), DocumentOperations::Multiple(map)) => map
            .into_iter()
            .find(|(k, _)| k.as_str() == n)
            .map(|(_, op)| op),
        (None, DocumentOperations::Multiple(map)) if map.len() == 1 => {
            map.into_iter().next().map(|(_, op)| op)
        }
        (None, DocumentOperations::Multiple(_)) => None,
    }
}
