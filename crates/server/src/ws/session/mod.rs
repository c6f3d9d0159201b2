//! One task per WebSocket connection, owning all of its state: the protocol state machine,
//! the caller, and the running operations, whose result streams are merged fairly
//! (`SelectAll`). A `select!` watches the socket (reads, and draining its outbox when the
//! kernel did not take every frame at once), the operations, the init timer, credential expiry
//! and revocation, and server shutdown. Keep-alives are written by one task for all
//! connections ([`super::keepalive`]).
//!
//! `events` subscriptions start as a catch-up stream in this task (replay after `after`, at
//! the client's pace: the next event is read only when the socket took the previous frames)
//! and, once caught up, are handed to the fan-out shards ([`super::fanout`]), which write
//! their frames without waking this task.

mod live;
mod operations;

use super::keepalive;
use super::limits::AccountPermit;
use super::socket::{Sent, Socket};
use super::watch::Watching;
use crate::AppState;
use crate::auth::{Authenticated, Credential, authenticate};
use futures::StreamExt;
use futures::stream::{AbortHandle, BoxStream, SelectAll};
use infrastream_core::Timestamp;
use infrastream_graphql::Caller;
use infrastream_protocol::{
    Close, Closing, Connection, Decoder, FramePrefix, Incoming, KeepAlive, Subprotocol,
    WireMessage, close_frame, pong_frame,
};
use live::{CatchUp, Live, QueryStart};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// An item of the merged operation streams: a result, or `None` when that stream ended.
type OpItem = (String, Option<Output>);

/// One result of an operation.
enum Output {
    /// A response executed for this subscriber alone.
    Response(Box<async_graphql::Response>),
    /// A payload rendered once and shared by every subscriber of the same document.
    Shared(Arc<str>),
    /// An `events` subscription replayed everything up to the head: make it live.
    CaughtUp(Box<CatchUp>),
    /// A `query` subscription delivered its first result: make it live.
    QueryStarted(Box<QueryStart>),
    /// The operation cannot go on (e.g. its replay reached pruned events): it ends with an
    /// `error` message.
    Failed(Vec<async_graphql::ServerError>),
}

struct Operation {
    /// `{"type":"next","id":…,"payload":` for this operation, computed once.
    prefix: FramePrefix,
    aborts: Vec<AbortHandle>,
    /// Streams of this operation still running (an `events` catch-up may restart once).
    streams: u32,
    subscription: bool,
    first: bool,
    /// Served by a fan-out shard.
    live: Option<Live>,
    _permit: Option<AccountPermit>,
}

impl Drop for Operation {
    fn drop(&mut self) {
        for a in &self.aborts {
            a.abort();
        }
    }
}

/// What the loop does after handling an input.
enum Flow {
    Continue,
    Close(Close),
}

/// Bytes read from the socket per system call.
const READ_CHUNK: usize = 4096;

pub(crate) struct Session {
    state: AppState,
    socket: Arc<Socket>,
    conn: Connection,
    decoder: Decoder,
    header_credential: Option<Credential>,
    branch: String,
    peer: SocketAddr,
    /// Shared with the connection's live subscriptions.
    caller: Option<Arc<Caller>>,
    expires_at: Option<Timestamp>,
    _watching: Option<Watching>,
    /// Registered with the keep-alive task once the session is established.
    kept_alive: Option<keepalive::KeptAlive>,
    /// Held while authenticated: counts against `max_connections_per_account`.
    account_permit: Option<AccountPermit>,
    ops: HashMap<String, Operation>,
    streams: SelectAll<BoxStream<'static, OpItem>>,
}

impl Session {
    pub(crate) fn new(
        state: AppState,
        socket: Arc<Socket>,
        protocol: Subprotocol,
        header_credential: Option<Credential>,
        branch: String,
        peer: SocketAddr,
    ) -> Self {
        let max = state.settings().ws_max_message_bytes;
        Self {
            state,
            socket,
            conn: Connection::new(protocol),
            decoder: Decoder::new(max),
            header_credential,
            branch,
            peer,
            caller: None,
            expires_at: None,
            _watching: None,
            kept_alive: None,
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

    /// Serves the connection until it closes; `early` holds bytes the client sent right
    /// after the upgrade request.
    pub(crate) async fn run(mut self, early: &[u8], _permit: OwnedSemaphorePermit) {
        self.gauge().fetch_add(1, Ordering::Relaxed);
        let socket = self.socket.clone();
        let s = self.state.settings();
        let write_timeout = Duration::from_millis(s.ws_write_timeout_ms);
        let init_deadline = tokio::time::sleep(Duration::from_millis(s.ws_init_timeout_ms));
        tokio::pin!(init_deadline);
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let expiry = tokio::time::sleep_until(far);
        tokio::pin!(expiry);
        let drain_deadline = tokio::time::sleep_until(far);
        tokio::pin!(drain_deadline);
        let shutdown = self.state.shutdown.clone();
        // Long-lived futures are created once, not on every turn of the loop: each one
        // registers a waiter under a lock when it is first polled.
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        let pending = socket.pending();
        tokio::pin!(pending);
        let mut draining = false;
        tracing::debug!(peer = %self.peer, protocol = self.conn.protocol().as_str(), "websocket opened");
        let mut flow = if early.is_empty() {
            Flow::Continue
        } else {
            self.decoder.extend(early);
            self.on_bytes().await
        };
        let close = loop {
            if let Flow::Close(c) = flow {
                break Some(c);
            }
            let expires = self.expires_at;
            flow = tokio::select! {
                _ = &mut stopping => Flow::Close(self.conn.shutdown()),
                ready = socket.readable() => match ready {
                    Ok(()) => match self.read() {
                        Ok(true) => self.on_bytes().await,
                        Ok(false) => Flow::Continue,
                        Err(()) => break None,
                    },
                    Err(_) => break None,
                },
                _ = &mut pending => {
                    pending.set(socket.pending());
                    if socket.is_revoked() {
                        let closing = self.conn.credentials_expired();
                        self.closing(closing)
                    } else if socket.overflowed() {
                        Flow::Close(Close::slow_consumer())
                    } else {
                        if !draining && socket.has_backlog() {
                            draining = true;
                            drain_deadline.as_mut().reset(tokio::time::Instant::now() + write_timeout);
                        }
                        Flow::Continue
                    }
                }
                ready = socket.writable(), if draining => match ready.and_then(|()| socket.drain_some()) {
                    Ok(true) => {
                        draining = false;
                        Flow::Continue
                    }
                    Ok(false) => {
                        // Progress: the deadline counts from the last write that moved bytes.
                        drain_deadline.as_mut().reset(tokio::time::Instant::now() + write_timeout);
                        // Yield so a socket that takes a few bytes at a time cannot spin.
                        tokio::task::yield_now().await;
                        Flow::Continue
                    }
                    Err(_) => break None,
                },
                _ = &mut drain_deadline, if draining => {
                    tracing::debug!(peer = %self.peer, "websocket write timed out: closing a consumer that stopped reading");
                    break None;
                }
                Some((id, item)) = self.streams.next(), if !self.streams.is_empty() && !draining => {
                    self.on_result(id, item).await
                }
                _ = &mut init_deadline, if self.conn.init_pending() => match self.conn.init_timeout() {
                    Some(c) => Flow::Close(c),
                    None => Flow::Continue,
                },
                _ = &mut expiry, if expires.is_some() => {
                    let closing = self.conn.credentials_expired();
                    self.closing(closing)
                }
            };
            if self.expires_at != expires {
                expiry
                    .as_mut()
                    .reset(deadline_of(self.expires_at).unwrap_or(far));
            }
        };
        self.ops.clear();
        let code = close.as_ref().map(|c| c.code());
        if let Some(c) = close {
            socket.send_raw(&close_frame(&c), true);
        }
        socket.close();
        // The close frame leaves after everything queued before it, so a consumer that
        // resumes reading within the write timeout still sees every frame and then the code
        // (1013 for a slow consumer). Shutdown waits `shutdown_ws_linger_ms` at most.
        let s = self.state.settings();
        let shutdown_linger = Duration::from_millis(s.shutdown_ws_linger_ms);
        let linger = if shutdown.is_cancelled() {
            write_timeout.min(shutdown_linger)
        } else {
            write_timeout
        };
        let drained = tokio::select! {
            d = tokio::time::timeout(linger, socket.drain()) => matches!(d, Ok(Ok(()))),
            _ = shutdown.cancelled(), if !shutdown.is_cancelled() => {
                let d = tokio::time::timeout(shutdown_linger, socket.drain()).await;
                matches!(d, Ok(Ok(())))
            }
        };
        if drained {
            // The client's close reply usually comes at once; at shutdown wait less.
            let wait = Duration::from_millis(if shutdown.is_cancelled() {
                s.shutdown_ws_close_reply_wait_ms
            } else {
                s.ws_close_reply_wait_ms
            });
            socket.finish(wait).await;
        }
        self.gauge().fetch_sub(1, Ordering::Relaxed);
        tracing::info!(peer = %self.peer, protocol = self.conn.protocol().as_str(), close_code = ?code, "websocket closed");
    }

    /// Reads what the socket has into the decoder. `Ok(false)`: nothing was there.
    fn read(&mut self) -> Result<bool, ()> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut any = false;
        // At most 16 chunks per wake-up: what was read is decoded (and size-checked) before
        // more is read, so a client that floods cannot make the buffer grow unchecked.
        for _ in 0..16 {
            match self.socket.try_read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => {
                    any = true;
                    self.decoder.extend(&chunk[..n]);
                    if n < READ_CHUNK {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(any),
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "websocket read failed");
                    return Err(());
                }
            }
        }
        Ok(any)
    }

    /// Handles every whole message the decoder holds.
    async fn on_bytes(&mut self) -> Flow {
        loop {
            let message = match self.decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => {
                    self.decoder.shrink();
                    return Flow::Continue;
                }
                Err(close) => {
                    tracing::debug!(peer = %self.peer, reason = close.reason(), "invalid websocket frame");
                    return Flow::Close(close);
                }
            };
            let flow = match message {
                WireMessage::Text(text) => {
                    let incoming = self.conn.on_text(&text);
                    let flow = self.on_incoming(incoming).await;
                    self.ensure_keep_alive();
                    flow
                }
                WireMessage::Binary => {
                    let incoming = self.conn.on_binary();
                    self.on_incoming(incoming).await
                }
                WireMessage::Ping(payload) => self.write_raw(&pong_frame(&payload)),
                WireMessage::Pong => Flow::Continue,
                WireMessage::Close(_) => Flow::Close(Close::normal()),
            };
            if let Flow::Close(c) = flow {
                return Flow::Close(c);
            }
        }
    }

    /// Hands the connection to the keep-alive task once the protocol wants keep-alives.
    fn ensure_keep_alive(&mut self) {
        if self.kept_alive.is_some() {
            return;
        }
        let kind = match self.conn.keep_alive() {
            KeepAlive::Nothing => return,
            KeepAlive::Text(t) => keepalive::Kind::Text(t),
            KeepAlive::PingFrame => keepalive::Kind::PingFrame,
        };
        self.kept_alive = Some(self.state.keepalives.register(&self.socket, kind));
    }

    async fn on_incoming(&mut self, incoming: Incoming) -> Flow {
        match incoming {
            Incoming::Init { payload } => {
                let credential = super::credentials::from_init_payload(payload.as_ref())
                    .or(self.header_credential.take());
                match self.authenticate(credential).await {
                    Ok(()) => {
                        for frame in self.conn.accept_init(None) {
                            if let Flow::Close(c) = self.write(&frame) {
                                return Flow::Close(c);
                            }
                        }
                        Flow::Continue
                    }
                    Err(()) => {
                        let closing = self.conn.reject_init();
                        self.closing(closing)
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
                        return self.closing(closing);
                    }
                }
                self.start(id, payload).await
            }
            Incoming::Stop { id, reply } => {
                self.ops.remove(&id);
                match reply {
                    Some(frame) => self.write(&frame),
                    None => Flow::Continue,
                }
            }
            Incoming::Reply(frame) => self.write(&frame),
            Incoming::Ignore => Flow::Continue,
            Incoming::Close(c) => Flow::Close(c),
        }
    }

    async fn authenticate(&mut self, credential: Option<Credential>) -> Result<(), ()> {
        match authenticate(&self.state, credential.clone()).await {
            Ok(Authenticated {
                caller, expires_at, ..
            }) => {
                let permit = self
                    .state
                    .limits
                    .account_connection_permit(caller.account_id().as_deref());
                if permit.is_none() {
                    tracing::debug!(peer = %self.peer, "too many connections for this account");
                    return Err(());
                }
                self.account_permit = permit;
                self._watching = credential.map(|c| {
                    self.state
                        .watch
                        .register(c, caller.role, caller.account_id(), &self.socket)
                });
                self.socket.set_expiry(expires_at);
                self.caller = Some(Arc::new(caller));
                self.expires_at = expires_at;
                Ok(())
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, reason = %e.message, "websocket credentials refused");
                Err(())
            }
        }
    }

    fn closing(&mut self, closing: Closing) -> Flow {
        if let Some(frame) = closing.frame {
            self.write(&frame);
        }
        Flow::Close(closing.close)
    }

    fn write(&mut self, frame: &str) -> Flow {
        let sent = self.socket.send_text(&[frame.as_bytes()]);
        self.after_send(sent)
    }

    fn write_raw(&mut self, frame: &[u8]) -> Flow {
        let sent = self.socket.send_raw(frame, false);
        self.after_send(sent)
    }

    fn after_send(&self, sent: Sent) -> Flow {
        match sent {
            Sent::Accepted => Flow::Continue,
            Sent::Dropped if self.socket.overflowed() => Flow::Close(Close::slow_consumer()),
            Sent::Dropped => Flow::Close(Close::normal()),
        }
    }
}

fn deadline_of(t: Option<Timestamp>) -> Option<tokio::time::Instant> {
    let left = (t? - infrastream_core::now()).to_std().unwrap_or_default();
    Some(tokio::time::Instant::now() + left)
}
