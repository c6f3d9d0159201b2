//! Operations of a connection: starting one (validation, limits, `events` and `query`
//! subscriptions, plain queries and mutations), merging their result streams, and writing
//! their results, errors and completions.

use super::live::{Document, catch_up_stream};
use super::{Flow, Operation, Output, Session};
use crate::ws::socket::Sent;
use async_graphql::parser::types::OperationType;
use futures::StreamExt;
use futures::stream::{self, AbortHandle, Abortable, BoxStream};
use infrastream_core::codes;
use infrastream_graphql::data::Route;
use infrastream_graphql::{
    Caller, UrlBranch, is_events_subscription, is_query_subscription, operation_type,
};
use infrastream_protocol::{SubscribePayload, graphql_error};
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Session {
    fn refuse(&mut self, id: &str, message: &str, code: &str) -> Option<String> {
        self.conn
            .fail_operation(id, &[graphql_error(message, Some(code))])
    }

    pub(super) async fn start(&mut self, id: String, payload: SubscribePayload) -> Flow {
        let caller_for_render = self
            .caller
            .clone()
            .unwrap_or_else(|| Arc::new(Caller::anonymous()));
        let caller = Caller::clone(&caller_for_render);
        let query = infrastream_graphql::decode_surrogate_pairs(&payload.query).into_owned();
        let subscription = operation_type(&query, payload.operation_name.as_deref())
            == Some(OperationType::Subscription);
        let mut permit = None;
        if subscription {
            let s = self.state.settings();
            let active = self.ops.values().filter(|o| o.subscription).count();
            let refusal = if active >= s.max_subscriptions_per_connection {
                Some(format!(
                    "Too many subscriptions on this connection (limit {}, setting max_subscriptions_per_connection)",
                    s.max_subscriptions_per_connection
                ))
            } else {
                permit = self
                    .state
                    .limits
                    .subscription_permit(caller.account_id().as_deref());
                permit.is_none().then(|| {
                    format!(
                        "Too many subscriptions for this account (limit {}, setting max_subscriptions_per_account)",
                        s.max_subscriptions_per_account
                    )
                })
            };
            if let Some(message) = refusal {
                return match self.refuse(&id, &message, codes::TOO_MANY_SUBSCRIPTIONS.name) {
                    Some(frame) => self.write(&frame),
                    None => Flow::Continue,
                };
            }
        }
        let query_text = query.clone();
        let variables = serde_json::Value::Object(payload.variables.clone().unwrap_or_default());
        let operation_name = payload.operation_name.clone();
        let mut request = async_graphql::Request::new(query)
            .data(caller)
            .data(UrlBranch(self.branch.clone()));
        if let Some(v) = payload.variables {
            request = request.variables(async_graphql::Variables::from_json(
                serde_json::Value::Object(v),
            ));
        }
        if let Some(name) = payload.operation_name {
            request = request.operation_name(name);
        }
        let doc = Document {
            query: &query_text,
            variables: &variables,
            operation_name: operation_name.as_deref(),
        };
        let prepared = if subscription && is_events_subscription(doc.query, doc.operation_name) {
            let catch_up = self.events_catch_up(request, doc, caller_for_render);
            catch_up.await.map(catch_up_stream)
        } else if subscription && is_query_subscription(doc.query, doc.operation_name) {
            self.query_ticks(request, doc, caller_for_render).await
        } else {
            let (schemas, services) = (
                self.state.data_schemas.clone(),
                self.state.services.domain.clone(),
            );
            let schema = self.state.schema.clone();
            let (query, operation) = (doc.query.to_owned(), doc.operation_name.map(str::to_owned));
            let branch = self.branch.clone();
            Ok(single(schema, schemas, services, branch, query, operation, request).await)
        };
        let responses = match prepared {
            Ok(r) => r,
            Err(errors) => {
                return match self.conn.fail_operation(&id, &errors) {
                    Some(frame) => self.write(&frame),
                    None => Flow::Continue,
                };
            }
        };
        let prefix = self.conn.frame_prefix(&id);
        let abort = self.push_stream(&id, responses);
        self.ops.insert(
            id,
            Operation {
                prefix,
                aborts: vec![abort],
                streams: 1,
                subscription,
                first: true,
                live: None,
                _permit: permit,
            },
        );
        Flow::Continue
    }

    pub(super) fn push_stream(
        &mut self,
        id: &str,
        responses: BoxStream<'static, Output>,
    ) -> AbortHandle {
        let (abort, registration) = AbortHandle::new_pair();
        let tagged = {
            let id = id.to_owned();
            let end = id.clone();
            Abortable::new(responses, registration)
                .map(move |r| (id.clone(), Some(r)))
                .chain(stream::once(async move { (end, None) }))
        };
        self.streams.push(tagged.boxed());
        abort
    }

    pub(super) async fn on_result(&mut self, id: String, item: Option<Output>) -> Flow {
        let response = match item {
            Some(Output::Response(r)) => *r,
            Some(Output::Shared(payload)) => return self.deliver(&id, &payload),
            Some(Output::CaughtUp(c)) => return self.go_live(&id, *c),
            Some(Output::QueryStarted(q)) => return self.go_live_query(&id, *q),
            Some(Output::Failed(errors)) => return self.fail(&id, &errors),
            None => return self.finished(&id),
        };
        let Some(op) = self.ops.get_mut(&id) else {
            return Flow::Continue;
        };

        let first = std::mem::replace(&mut op.first, false);
        let failed_before_start = first
            && !response.errors.is_empty()
            && matches!(response.data, async_graphql::Value::Null)
            && (op.subscription || response.errors.iter().all(|e| e.path.is_empty()));
        if failed_before_start {
            self.ops.remove(&id);
            return match self.conn.fail_operation(&id, &response.errors) {
                Some(frame) => self.write(&frame),
                None => Flow::Continue,
            };
        }
        match serde_json::to_string(&response) {
            Ok(payload) => self.deliver(&id, &payload),
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a response");
                Flow::Continue
            }
        }
    }

    /// Ends operation `id` with an `error` message carrying `errors`.
    fn fail(&mut self, id: &str, errors: &[async_graphql::ServerError]) -> Flow {
        if self.ops.remove(id).is_none() {
            return Flow::Continue;
        }
        match self.conn.fail_operation(id, errors) {
            Some(frame) => self.write(&frame),
            None => Flow::Continue,
        }
    }

    /// One of the operation's streams ended (or was aborted by a client stop, which removed
    /// the operation). The operation is complete when its last stream ended and it is not
    /// served live.
    fn finished(&mut self, id: &str) -> Flow {
        let Some(op) = self.ops.get_mut(id) else {
            return Flow::Continue;
        };
        op.streams = op.streams.saturating_sub(1);
        if op.streams > 0 || op.live.is_some() {
            return Flow::Continue;
        }
        self.ops.remove(id);
        match self.conn.complete_operation(id) {
            Some(frame) => self.write(&frame),
            None => Flow::Continue,
        }
    }

    /// Writes one result frame, unless the credentials expired in the meantime.
    fn deliver(&mut self, id: &str, payload: &str) -> Flow {
        let Some(op) = self.ops.get_mut(id) else {
            return Flow::Continue;
        };
        op.first = false;
        if !self
            .socket
            .may_deliver(infrastream_core::now().timestamp_micros())
        {
            let closing = self.conn.credentials_expired();
            return self.closing(closing);
        }
        let sent =
            self.socket
                .send_text(&[op.prefix.as_str().as_bytes(), payload.as_bytes(), b"}"]);
        if sent == Sent::Accepted {
            self.state
                .services
                .metrics
                .deliveries
                .fetch_add(1, Ordering::Relaxed);
        }
        self.after_send(sent)
    }
}

/// The responses of an operation that is not one of ours to drive (a query, a mutation,
/// another subscription): from the built-in schema, or the branch's schema of loaded kinds
/// when it names them, as over HTTP.
async fn single(
    schema: infrastream_graphql::InfraSchema,
    schemas: Arc<infrastream_graphql::data::DataSchemas>,
    services: infrastream_services::Services,
    branch: String,
    query: String,
    operation: Option<String>,
    request: async_graphql::Request,
) -> BoxStream<'static, Output> {
    let route = match async_graphql::parser::parse_query(&query) {
        Ok(document) => {
            schemas
                .route(&services, &branch, &document, operation.as_deref())
                .await
        }
        Err(_) => Route::Builtin,
    };
    let one = |r: async_graphql::Response| Output::Response(Box::new(r));
    match route {
        Route::Builtin => schema.execute_stream(request).map(one).boxed(),
        Route::Data(data) => stream::once(async move { data.schema.execute(request).await })
            .map(one)
            .boxed(),
        Route::Mixed(message) => {
            stream::once(std::future::ready(async_graphql::Response::from_errors(
                vec![async_graphql::ServerError::new(message, None)],
            )))
            .map(one)
            .boxed()
        }
    }
}
