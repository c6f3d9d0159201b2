//! One task per WebSocket connection, owning all of its state: the protocol state machine,
//! the caller, and the running operations, whose result streams are merged fairly
//! (`SelectAll`). A `select!` watches the socket, the operations, the init timer, keep-alive
//! ticks, credential expiry and server shutdown.

use super::credentials;
use crate::AppState;
use crate::auth::{Authenticated, Credential, authenticate};
use async_graphql::parser::types::OperationType;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{self, AbortHandle, Abortable, BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use infrastream_core::{Timestamp, now};
use infrastream_graphql::{
    Caller, CaptureEventsPlan, UrlBranch, is_events_subscription, operation_type,
};
use infrastream_protocol::{
    Close, Closing, Connection, FramePrefix, Incoming, Subprotocol, SubscribePayload, graphql_error,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// An item of the merged operation streams: a response, or `None` when the operation ended.
type OpItem = (String, Option<Output>);

/// One result of an operation.
enum Output {
    /// A response executed for this subscriber alone.
    Response(Box<async_graphql::Response>),
    /// A payload rendered once and shared by every subscriber of the same document.
    Shared(Arc<str>),
}

struct Operation {
    /// `{"type":"next","id":…,"payload":` for this operation, computed once.
    prefix: FramePrefix,
    abort: AbortHandle,
    subscription: bool,
    first: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

/// What the loop does after handling an input.
enum Flow {
    Continue,
    Close(Close),
}

pub(crate) struct Session {
    state: AppState,
    conn: Connection,
    header_credential: Option<Credential>,
    branch: String,
    peer: SocketAddr,
    caller: Option<Caller>,
    expires_at: Option<Timestamp>,
    api_token_hash: Option<String>,
    /// Held while authenticated: counts against `max_connections_per_account`.
    account_permit: Option<OwnedSemaphorePermit>,
    ops: HashMap<String, Operation>,
    streams: SelectAll<BoxStream<'static, OpItem>>,
}

impl Session {
    pub(crate) fn new(
        state: AppState,
        protocol: Subprotocol,
        header_credential: Option<Credential>,
        branch: String,
        peer: SocketAddr,
    ) -> Self {
        Self {
            state,
            conn: Connection::new(protocol),
            header_credential,
            branch,
            peer,
            caller: None,
            expires_at: None,
            api_token_hash: None,
            account_permit: None,
            ops: HashMap::new(),
            streams: SelectAll::new(),
        }
    }

    fn gauge(&self) -> &std::sync::atomic::AtomicI64 {
        let m = &self.state.services.metrics;
        match self.conn.protocol() {
            Subprotocol::GraphqlTransportWs => &m.ws_connections_transport,
            Subprotocol::GraphqlWs => &m.ws_connections_legacy,
        }
    }

    pub(crate) async fn run(mut self, socket: WebSocket, _permit: OwnedSemaphorePermit) {
        self.gauge().fetch_add(1, Ordering::Relaxed);
        let (mut tx, mut rx) = socket.split();
        let s = self.state.settings().clone();
        let init_deadline = tokio::time::sleep(Duration::from_millis(s.ws_init_timeout_ms));
        tokio::pin!(init_deadline);
        let mut keepalive =
            tokio::time::interval(Duration::from_millis(s.ws_keepalive_interval_ms));
        keepalive.tick().await;
        let mut auth_check =
            tokio::time::interval(Duration::from_millis(s.token_check_interval_ms));
        let shutdown = self.state.shutdown.clone();
        tracing::debug!(peer = %self.peer, protocol = self.conn.protocol().as_str(), "websocket opened");
        let close = loop {
            let flow = tokio::select! {
                _ = shutdown.cancelled() => Flow::Close(self.conn.shutdown()),
                msg = rx.next() => match msg {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), &mut tx).await,
                    Some(Ok(Message::Binary(_))) => {
                        let incoming = self.conn.on_binary();
                        self.on_incoming(incoming, &mut tx).await
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_))) | None => break None,
                    Some(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "websocket read failed");
                        break None;
                    }
                },
                Some((id, item)) = self.streams.next(), if !self.streams.is_empty() => {
                    self.on_result(id, item, &mut tx).await
                }
                _ = &mut init_deadline, if self.conn.init_pending() => match self.conn.init_timeout() {
                    Some(c) => Flow::Close(c),
                    None => Flow::Continue,
                },
                _ = keepalive.tick() => {
                    if let Some(frame) = self.conn.keep_alive_frame()
                        && send(&mut tx, frame.to_string()).await.is_err()
                    {
                        break None;
                    }
                    if tx.send(Message::Ping(Default::default())).await.is_err() {
                        break None;
                    }
                    Flow::Continue
                }
                _ = auth_check.tick(), if self.caller.is_some() => {
                    let check = self.credentials_invalid();
                    if check.await {
                        let closing = self.conn.credentials_expired();
                        self.closing(closing, &mut tx).await
                    } else {
                        Flow::Continue
                    }
                }
            };
            if let Flow::Close(c) = flow {
                break Some(c);
            }
        };
        for op in self.ops.values() {
            op.abort.abort();
        }
        let code = close.as_ref().map(|c| c.code());
        if let Some(c) = close {
            let (code, reason) = c.into_parts();
            let _ = tx
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
        }
        self.gauge().fetch_sub(1, Ordering::Relaxed);
        tracing::info!(peer = %self.peer, protocol = self.conn.protocol().as_str(), close_code = ?code, "websocket closed");
    }

    async fn on_text(&mut self, text: &str, tx: &mut Sink) -> Flow {
        let incoming = self.conn.on_text(text);
        self.on_incoming(incoming, tx).await
    }

    async fn on_incoming(&mut self, incoming: Incoming, tx: &mut Sink) -> Flow {
        match incoming {
            Incoming::Init { payload } => {
                let credential = credentials::from_init_payload(payload.as_ref())
                    .or(self.header_credential.take());
                match self.authenticate(credential).await {
                    Ok(()) => {
                        for frame in self.conn.accept_init(None) {
                            if send(tx, frame).await.is_err() {
                                return Flow::Close(Close::normal());
                            }
                        }
                        Flow::Continue
                    }
                    Err(()) => {
                        let closing = self.conn.reject_init();
                        self.closing(closing, tx).await
                    }
                }
            }
            Incoming::Subscribe {
                id,
                payload,
                implicit_init,
            } => {
                if implicit_init {
                    let credential = self.header_credential.take();
                    if self.authenticate(credential).await.is_err() {
                        let closing = self.conn.reject_init();
                        return self.closing(closing, tx).await;
                    }
                }
                self.start(id, payload, tx).await
            }
            Incoming::Stop { id, reply } => {
                if let Some(op) = self.ops.remove(&id) {
                    op.abort.abort();
                }
                match reply {
                    Some(frame) => self.write(tx, frame).await,
                    None => Flow::Continue,
                }
            }
            Incoming::Reply(frame) => self.write(tx, frame).await,
            Incoming::Ignore => Flow::Continue,
            Incoming::Close(c) => Flow::Close(c),
        }
    }

    async fn authenticate(&mut self, credential: Option<Credential>) -> Result<(), ()> {
        let token_hash = match &credential {
            Some(Credential::ApiToken(t)) => Some(infrastream_auth::hash_api_token(t)),
            _ => None,
        };
        match authenticate(&self.state, credential).await {
            Ok(Authenticated { caller, expires_at }) => {
                let permit = self
                    .state
                    .limits
                    .account_connection_permit(caller.account_id().as_deref());
                if permit.is_none() {
                    tracing::debug!(peer = %self.peer, "too many connections for this account");
                    return Err(());
                }
                self.account_permit = permit;
                self.caller = Some(caller);
                self.expires_at = expires_at;
                self.api_token_hash = token_hash;
                Ok(())
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, reason = %e.message, "websocket credentials refused");
                Err(())
            }
        }
    }

    /// Whether the credentials that opened the connection expired or were revoked.
    fn credentials_invalid(&self) -> impl std::future::Future<Output = bool> + Send + 'static {
        let expired = self.expires_at.is_some_and(|t| t <= now());
        let hash = self.api_token_hash.clone();
        let store = self.state.store().clone();
        let cache = self.state.services.credentials.clone();
        async move {
            if expired {
                return true;
            }
            let Some(hash) = hash else { return false };
            // The cache is cleared on every token change made through this server, so a hit
            // means "still valid"; only misses (one per token per TTL) read the store.
            let key = format!("token:{hash}");
            if cache.get(&key).is_some() {
                return false;
            }
            match store.token_by_hash(&hash).await {
                Ok(Some(t)) => t.revoked,
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "could not re-check a websocket token");
                    false
                }
            }
        }
    }

    async fn closing(&mut self, closing: Closing, tx: &mut Sink) -> Flow {
        if let Some(frame) = closing.frame {
            let _ = send(tx, frame).await;
        }
        Flow::Close(closing.close)
    }

    fn refuse(&mut self, id: &str, message: &str, code: &str) -> Option<String> {
        self.conn
            .fail_operation(id, &[graphql_error(message, Some(code))])
    }

    async fn start(&mut self, id: String, payload: SubscribePayload, tx: &mut Sink) -> Flow {
        let caller = self.caller.clone().unwrap_or_else(Caller::anonymous);
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
                return match self.refuse(&id, &message, "TOO_MANY_SUBSCRIPTIONS") {
                    Some(frame) => self.write(tx, frame).await,
                    None => Flow::Continue,
                };
            }
        }
        let query_text = query.clone();
        let variables = serde_json::Value::Object(payload.variables.clone().unwrap_or_default());
        let operation_name = payload.operation_name.clone();
        let caller_for_render = caller.clone();
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
        let responses =
            if subscription && is_events_subscription(&query_text, operation_name.as_deref()) {
                let prepared = self.shared_events(
                    request,
                    &query_text,
                    &variables,
                    operation_name.as_deref(),
                    caller_for_render,
                );
                match prepared.await {
                    Ok(s) => s,
                    Err(errors) => {
                        return match self.conn.fail_operation(&id, &errors) {
                            Some(frame) => self.write(tx, frame).await,
                            None => Flow::Continue,
                        };
                    }
                }
            } else {
                self.state
                    .schema
                    .execute_stream(request)
                    .map(|r| Output::Response(Box::new(r)))
                    .boxed()
            };
        let (abort, registration) = AbortHandle::new_pair();
        let tagged = {
            let id = id.clone();
            let end = id.clone();
            Abortable::new(responses, registration)
                .map(move |r| (id.clone(), Some(r)))
                .chain(stream::once(async move { (end, None) }))
        };
        self.streams.push(tagged.boxed());
        let prefix = self.conn.frame_prefix(&id);
        self.ops.insert(
            id,
            Operation {
                prefix,
                abort,
                subscription,
                first: true,
                _permit: permit,
            },
        );
        Flow::Continue
    }

    /// Serves an `events` subscription with shared rendering: async-graphql validates the
    /// document and resolves the arguments once (capturing the cursor), then each event is
    /// rendered once per distinct document for all its subscribers.
    fn shared_events(
        &self,
        request: async_graphql::Request,
        query: &str,
        variables: &serde_json::Value,
        operation_name: Option<&str>,
        caller: Caller,
    ) -> impl std::future::Future<
        Output = Result<BoxStream<'static, Output>, Vec<async_graphql::ServerError>>,
    > + Send
    + 'static {
        let schema = self.state.schema.clone();
        let renderer = self
            .state
            .services
            .renderers
            .get(&schema, query, variables, operation_name);
        async move {
            let capture = CaptureEventsPlan::default();
            let mut probe = schema.execute_stream(request.data(capture.clone()));
            if let Some(response) = probe.next().await {
                return Err(response.errors);
            }
            drop(probe);
            let cursor = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            let Some(cursor) = cursor else {
                return Err(vec![async_graphql::ServerError::new(
                    "Internal server error",
                    None,
                )]);
            };
            let state = (cursor, renderer, caller);
            Ok(
                stream::unfold(state, |(mut cursor, renderer, caller)| async move {
                    let output = match cursor.next().await? {
                        Ok(event) => Output::Shared(renderer.render(&event, &caller).await),
                        Err(e) => {
                            Output::Response(Box::new(async_graphql::Response::from_errors(vec![
                                e.into_server_error(Default::default()),
                            ])))
                        }
                    };
                    Some((output, (cursor, renderer, caller)))
                })
                .boxed(),
            )
        }
    }

    async fn on_result(&mut self, id: String, item: Option<Output>, tx: &mut Sink) -> Flow {
        let response = match item {
            Some(Output::Response(r)) => *r,
            Some(Output::Shared(payload)) => return self.deliver(tx, &id, &payload).await,
            None => return self.finished(tx, &id).await,
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
            if let Some(op) = self.ops.remove(&id) {
                op.abort.abort();
            }
            return match self.conn.fail_operation(&id, &response.errors) {
                Some(frame) => self.write(tx, frame).await,
                None => Flow::Continue,
            };
        }
        match serde_json::to_string(&response) {
            Ok(payload) => self.deliver(tx, &id, &payload).await,
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a response");
                Flow::Continue
            }
        }
    }

    /// The operation's stream ended (or was aborted by a client stop, which removed it).
    async fn finished(&mut self, tx: &mut Sink, id: &str) -> Flow {
        if self.ops.remove(id).is_some()
            && let Some(frame) = self.conn.complete_operation(id)
        {
            return self.write(tx, frame).await;
        }
        Flow::Continue
    }

    /// Writes one result frame, unless the credentials expired in the meantime.
    async fn deliver(&mut self, tx: &mut Sink, id: &str, payload: &str) -> Flow {
        let Some(op) = self.ops.get_mut(id) else {
            return Flow::Continue;
        };
        op.first = false;
        if self.expires_at.is_some_and(|t| t <= now()) {
            let closing = self.conn.credentials_expired();
            return self.closing(closing, tx).await;
        }
        let frame = op.prefix.frame(payload);
        self.state
            .services
            .metrics
            .deliveries
            .fetch_add(1, Ordering::Relaxed);
        self.write(tx, frame).await
    }

    async fn write(&mut self, tx: &mut Sink, frame: String) -> Flow {
        match send(tx, frame).await {
            Ok(()) => Flow::Continue,
            Err(()) => Flow::Close(Close::normal()),
        }
    }
}

async fn send(tx: &mut Sink, frame: String) -> Result<(), ()> {
    tx.send(Message::Text(frame.into())).await.map_err(|_| ())
}
