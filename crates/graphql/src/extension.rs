//! An async-graphql extension that (1) tags parse and validation errors with a code so that
//! the HTTP layer can answer them with 400, and (2) stops after validation when the request
//! carries [`ValidateOnly`] (used to validate saved queries without running them).

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ValidationResult, Value, Variables};
use std::sync::Arc;

/// Request data marking a validate-only request.
pub struct ValidateOnly;

/// Message of the error that ends a validate-only request that passed validation.
pub(crate) const VALID_MARKER: &str = "__infrastream_document_is_valid__";

/// Codes of errors that are about the request itself, not its execution.
pub const REQUEST_ERROR_CODES: [&str; 2] = [
    infrastream_core::codes::GRAPHQL_PARSE_FAILED.name,
    infrastream_core::codes::GRAPHQL_VALIDATION_FAILED.name,
];

/// Whether a response's errors mean the request never executed (parse, validation or
/// variable errors): no data and no error with a path.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    !response.errors.is_empty()
        && matches!(response.data, Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

pub(crate) struct TagRequestErrors;

impl ExtensionFactory for TagRequestErrors {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Tagger)
    }
}

struct Tagger;

fn tag(mut errors: Vec<ServerError>, code: &str) -> Vec<ServerError> {
    for e in &mut errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", code);
            ext.set("http_status", 400);
        }
    }
    errors
}

#[async_trait::async_trait]
impl Extension for Tagger {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| {
            tag(vec![e], REQUEST_ERROR_CODES[0])
                .pop()
                .expect("one error")
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next
            .run(ctx)
            .await
            .map_err(|e| tag(e, REQUEST_ERROR_CODES[1]))?;
        if ctx.data_opt::<ValidateOnly>().is_some() {
            return Err(vec![ServerError::new(VALID_MARKER, None)]);
        }
        Ok(result)
    }
}
