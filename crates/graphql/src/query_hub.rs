//! Multiplexed `query` subscriptions: every subscription with the same (saved query, params,
//! branch, interval, account) shares one group whose task runs the saved query once per tick
//! and publishes the result; subscribers read the latest result. N identical subscribers cost
//! one execution per tick, not N. A group's task ends when its last subscriber leaves.
//!
//! A saved query that reads nodes of loaded kinds runs against the branch's schema of those
//! kinds ([`crate::data::DataSchemas`]), as it would over HTTP.

use crate::data::{DataSchemas, Route};
use crate::{Caller, InfraSchema, Metrics, UrlBranch};
use async_graphql::Request;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// What one tick produced: the query's `data`, or its errors.
#[derive(Debug, Clone, PartialEq)]
pub enum TickResult {
    /// `data` of the saved query.
    Data(serde_json::Value),
    /// Error messages of the saved query (or of its lookup).
    Errors(Vec<String>),
}

/// Identity of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub(crate) name: String,
    pub(crate) params: String,
    pub(crate) branch: String,
    pub(crate) interval_ms: u64,
    pub(crate) account: Option<String>,
}

/// Latest result of a group and the number of its tick.
pub type Latest = Option<(u64, Arc<TickResult>)>;

/// The registry of groups.
#[derive(Default)]
pub struct QueryHub {
    /// Each group's id (unique for the life of the hub) and its channel of results.
    groups: Mutex<HashMap<GroupKey, (u64, watch::Sender<Latest>)>>,
    next_id: std::sync::atomic::AtomicU64,
    schema: OnceLock<InfraSchema>,
    data: OnceLock<(Arc<DataSchemas>, infrastream_services::Services)>,
}

impl QueryHub {
    pub(crate) fn set_schema(&self, schema: InfraSchema) {
        let _ = self.schema.set(schema);
    }

    /// The schemas of loaded kinds that saved queries naming them run against.
    pub fn set_data(&self, data: Arc<DataSchemas>, services: infrastream_services::Services) {
        let _ = self.data.set((data, services));
    }

    /// Which schema runs `query` on `branch`: the schema of loaded kinds when it reads them
    /// (`None`: the built-in one, also when the document does not parse).
    pub(crate) async fn route(&self, query: &str, branch: &str) -> Option<Route> {
        let (data, services) = self.data.get()?;
        let document = async_graphql::parser::parse_query(query).ok()?;
        match data.route(services, branch, &document, None).await {
            Route::Builtin => None,
            other => Some(other),
        }
    }

    /// Runs `request` (the text `query`) on `branch`: against the schema of loaded kinds when
    /// it reads them, else the built-in schema.
    pub(crate) async fn execute(
        &self,
        schema: &InfraSchema,
        query: &str,
        branch: &str,
        request: Request,
    ) -> async_graphql::Response {
        match self.route(query, branch).await {
            Some(Route::Data(d)) => d.schema.execute(request).await,
            Some(Route::Mixed(message)) => {
                async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
                    message, None,
                )])
            }
            _ => schema.execute(request).await,
        }
    }

    /// Joins (or starts) the group for `key`: its id and its channel of results.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: GroupKey,
        params: serde_json::Value,
        caller: Caller,
        metrics: Arc<Metrics>,
        store: Arc<dyn infrastream_store::Store>,
    ) -> (u64, watch::Receiver<Latest>) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, tx)) = groups.get(&key) {
            return (*id, tx.subscribe());
        }
        let (tx, rx) = watch::channel(None);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        groups.insert(key.clone(), (id, tx.clone()));
        drop(groups);
        let hub = self.clone();
        tokio::spawn(async move { hub.run_group(key, params, caller, metrics, store, tx).await });
        (id, rx)
    }

    async fn run_group(
        self: Arc<Self>,
        key: GroupKey,
        params: serde_json::Value,
        caller: Caller,
        metrics: Arc<Metrics>,
        store: Arc<dyn infrastream_store::Store>,
        tx: watch::Sender<Latest>,
    ) {
        let Some(schema) = self.schema.get().cloned() else {
            return;
        };
        let mut ticker = tokio::time::interval(Duration::from_millis(key.interval_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = 0u64;
        loop {
            ticker.tick().await;
            {
                // Leave (and unregister) under the lock, so a concurrent join cannot attach to
                // a group that is about to stop.
                let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
                if tx.receiver_count() == 0 {
                    groups.remove(&key);
                    return;
                }
            }
            let result = match store.saved_queries().await {
                Err(e) => {
                    TickResult::Errors(vec![infrastream_core::DomainError::user_error(&e).message])
                }
                Ok(all) => match all.into_iter().find(|q| q.name == key.name) {
                    None => {
                        TickResult::Errors(vec![format!("Saved query '{}' not found", key.name)])
                    }
                    Some(q) => {
                        metrics
                            .stored_query_executions
                            .fetch_add(1, Ordering::Relaxed);
                        let request = Request::new(q.query.clone())
                            .variables(async_graphql::Variables::from_json(params.clone()))
                            .data(caller.clone())
                            .data(UrlBranch(key.branch.clone()));
                        let response = self.execute(&schema, &q.query, &key.branch, request).await;
                        if response.errors.is_empty() {
                            TickResult::Data(
                                serde_json::to_value(&response.data).unwrap_or_default(),
                            )
                        } else {
                            TickResult::Errors(
                                response.errors.into_iter().map(|e| e.message).collect(),
                            )
                        }
                    }
                },
            };
            tick += 1;
            // An unchanged result keeps its `Arc`, so subscribers with `only_changes` skip it
            // with a pointer comparison.
            let result = match &*tx.borrow() {
                Some((_, previous)) if **previous == result => previous.clone(),
                _ => Arc::new(result),
            };
            tx.send_replace(Some((tick, result)));
        }
    }
}
