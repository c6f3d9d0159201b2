//! The schema as the domain's [`QueryRunner`]: saved queries run by services (artifact
//! generation) and documents they validate go through the very schema clients use — the
//! built-in one, or the branch's schema of loaded kinds when a document reads them.

use crate::data::Route;
use crate::{InfraSchema, QueryHub, UrlBranch};
use async_graphql::parser::types::OperationType;
use async_trait::async_trait;
use infrastream_services::{Caller, OperationKind, QueryOutcome, QueryRunner};
use serde_json::Value;
use std::sync::Arc;

/// Runs documents against the server's schemas (the query hub routes them).
pub(crate) struct SchemaRunner(pub(crate) InfraSchema, pub(crate) Arc<QueryHub>);

#[async_trait]
impl QueryRunner for SchemaRunner {
    async fn run(
        &self,
        document: &str,
        variables: Value,
        caller: &Caller,
        branch: &str,
    ) -> QueryOutcome {
        let request = async_graphql::Request::new(document)
            .variables(async_graphql::Variables::from_json(variables))
            .data(caller.clone())
            .data(UrlBranch(branch.to_owned()));
        let response = self.1.execute(&self.0, document, branch, request).await;
        if response.errors.is_empty() {
            QueryOutcome::Data(serde_json::to_value(&response.data).unwrap_or(Value::Null))
        } else {
            QueryOutcome::Errors(response.errors.into_iter().map(|e| e.message).collect())
        }
    }

    /// Against the default branch's schemas: a saved query is shared by every branch.
    async fn validate(&self, document: &str) -> Result<(), String> {
        let main = infrastream_core::branch::DEFAULT_BRANCH;
        match self.1.route(document, main).await {
            Some(Route::Data(d)) => d.validate(document).await,
            Some(Route::Mixed(message)) => Err(message),
            _ => crate::validate_document(&self.0, document).await,
        }
    }

    fn operation_kind(&self, document: &str) -> Option<OperationKind> {
        Some(match crate::operation_type(document, None)? {
            OperationType::Query => OperationKind::Query,
            OperationType::Mutation => OperationKind::Mutation,
            OperationType::Subscription => OperationKind::Subscription,
        })
    }
}
