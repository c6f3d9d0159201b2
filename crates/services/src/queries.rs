//! Running saved GraphQL queries from the domain (artifact generation runs a definition's
//! query for each target) without depending on the GraphQL layer: the layer implements
//! [`QueryRunner`] and installs it into the [`QueryRunnerSlot`] of the services once its
//! schema is built.

use crate::Caller;
use async_trait::async_trait;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// What running a query produced.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutcome {
    /// The `data` of a successful execution.
    Data(Value),
    /// The messages of the errors of a failed one.
    Errors(Vec<String>),
}

/// The kind of operation a document holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// A query.
    Query,
    /// A mutation.
    Mutation,
    /// A subscription.
    Subscription,
}

/// Executes and validates GraphQL documents against the server's schema.
#[async_trait]
pub trait QueryRunner: Send + Sync {
    /// Executes `document` with `variables` as `caller` on `branch`.
    async fn run(
        &self,
        document: &str,
        variables: Value,
        caller: &Caller,
        branch: &str,
    ) -> QueryOutcome;

    /// Checks `document` against the schema without executing it; `Err` is the reason.
    async fn validate(&self, document: &str) -> Result<(), String>;

    /// The kind of the document's only (or named) operation, if it parses and names one.
    fn operation_kind(&self, document: &str) -> Option<OperationKind>;
}

/// Where the services find the query runner, which is built after them.
#[derive(Clone, Default)]
pub struct QueryRunnerSlot(Arc<OnceLock<Arc<dyn QueryRunner>>>);

impl QueryRunnerSlot {
    /// Installs the runner; later calls are ignored.
    pub fn install(&self, runner: Arc<dyn QueryRunner>) {
        let _ = self.0.set(runner);
    }

    /// The installed runner.
    ///
    /// # Panics
    /// If no runner was installed: the server installs it while building its schema, before
    /// it serves anything.
    pub fn get(&self) -> &dyn QueryRunner {
        self.0
            .get()
            .expect("the query runner is installed when the schema is built")
            .as_ref()
    }
}
