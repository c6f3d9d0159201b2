//! The GraphQL schema of infrastream (Infrahub's names and shapes): queries, mutations and,
//! later, subscriptions, resolved over `core` types and the `store`. The HTTP and WebSocket
//! layers in `server` decide who the caller is and hand a [`Caller`] to every request; this
//! crate decides what that caller may do.

mod accounts;
mod branches;
mod context;
mod events;
mod extension;
mod info;
mod node;
mod saved_queries;
mod scalars;
mod surrogates;

pub use context::{Caller, Services, UrlBranch};
pub use extension::{REQUEST_ERROR_CODES, ValidateOnly, is_request_error};
pub use surrogates::decode_surrogate_pairs;

use async_graphql::{EmptySubscription, MergedObject, Schema};
use std::sync::{Arc, OnceLock};

/// Root query type.
#[derive(MergedObject, Default)]
pub struct Query(
    branches::BranchQuery,
    events::EventQuery,
    saved_queries::SavedQueryQuery,
    accounts::AccountQuery,
    info::InfoQuery,
);

/// Root mutation type.
#[derive(MergedObject, Default)]
pub struct Mutation(
    branches::BranchMutation,
    events::EventMutation,
    saved_queries::SavedQueryMutation,
    accounts::AccountMutation,
);

/// The executable schema.
pub type InfraSchema = Schema<Query, Mutation, EmptySubscription>;

/// Lets resolvers reach the schema they run in (to validate saved queries).
#[derive(Clone, Default)]
pub(crate) struct SchemaHandle(Arc<OnceLock<InfraSchema>>);

impl SchemaHandle {
    pub(crate) fn get(&self) -> InfraSchema {
        self.0
            .get()
            .expect("schema handle is set by build_schema")
            .clone()
    }
}

/// Builds the schema with the limits of `services.settings`.
pub fn build_schema(services: Services) -> InfraSchema {
    let s = services.settings.clone();
    let handle = SchemaHandle::default();
    let schema = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .data(services)
        .data(handle.clone())
        .extension(extension::TagRequestErrors)
        .limit_depth(s.max_query_depth)
        .limit_complexity(s.max_query_complexity)
        .limit_recursive_depth(s.max_query_recursion)
        .finish();
    let _ = handle.0.set(schema.clone());
    schema
}

/// Checks a GraphQL document against `schema` without executing it.
pub async fn validate_document(schema: &InfraSchema, document: &str) -> Result<(), String> {
    let request = async_graphql::Request::new(document).data(ValidateOnly);
    let response = schema.execute(request).await;
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
