//! The schema as the domain's [`QueryRunner`]: saved queries run by services (artifact
//! generation) and documents they validate go through the very schema clients use.

use crate::{InfraSchema, UrlBranch};
use async_graphql::parser::types::OperationType;
use async_trait::async_trait;
use infrastream_services::{Caller, OperationKind, QueryOutcome, QueryRunner};
use serde_json::Value;

/// Runs documents against the server's schema.
pub(crate) struct SchemaRunner(pub(crate) InfraSchema);

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
        let response = self.0.execute(request).await;
        if response.errors.is_empty() {
            QueryOutcome::Data(serde_json::to_value(&response.data).unwrap_or(Value::Null))
        } else {
            QueryOutcome::Errors(response.errors.into_iter().map(|e| e.message).collect())
        }
    }

    async fn validate(&self, document: &str) -> Result<(), String> {
        crate::validate_document(&self.0, document).await
    }

    fn operation_kind(&self, document: &str) -> Option<OperationKind> {
        Some(match crate::operation_type(document, None)? {
            OperationType::Query => OperationKind::Query,
            OperationType::Mutation => OperationKind::Mutation,
            OperationType::Subscription => OperationKind::Subscription,
        })
    }
}
