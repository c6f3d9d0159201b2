//! GraphQL over WebSocket on `/graphql` and `/graphql/{branch}`: the upgrade (handshake,
//! subprotocol choice and echo, connection limits, rate per client address), then one task per
//! connection ([`session`]) that drives the sans-IO protocol state machine of
//! `infrastream-protocol` over the raw TCP stream ([`socket`]) and executes operations with
//! async-graphql; live `events` frames are written by the fan-out shards ([`fanout`]);
//! credentials of live sockets are re-checked by one watcher ([`watch`]).

mod credentials;
mod fanout;
mod keepalive;
mod limits;
mod session;
mod socket;
mod ticks;
mod transport;
mod watch;

pub(crate) use fanout::Fanout;
pub(crate) use keepalive::KeepAlives;
pub(crate) use limits::Limits;
pub(crate) use ticks::TickFanout;
pub(crate) use watch::CredentialWatch;

use crate::{AppState, reply};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use infrastream_protocol::{close_frame, negotiate};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use transport::Transport;

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
fn accept_key(key: &[u8]) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut sha1 = sha1::Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha1.finalize())
}

fn bad_upgrade(status: StatusCode, message: &str) -> Response {
    match status {
        StatusCode::UPGRADE_REQUIRED => {
            reply::error_with_status(status, "UPGRADE_REQUIRED", message)
        }
        _ => reply::error(&infrastream_core::Error::invalid(message)),
    }
}

/// Answers the upgrade request with 101 and spawns the connection's session on the raw TCP
/// stream, or the TLS connection over it (the session does its own framing, see [`socket`]
/// and [`transport`]).
pub(crate) async fn upgrade(
    state: AppState,
    mut parts: Parts,
    peer: SocketAddr,
    branch: String,
) -> Response {
    let headers = &parts.headers;
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if parts.method != axum::http::Method::GET || !has_token(header::CONNECTION, "upgrade") {
        return bad_upgrade(
            StatusCode::BAD_REQUEST,
            "A WebSocket upgrade needs GET with `Connection: upgrade`",
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
        let mut r = bad_upgrade(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version (13 is supported)",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return bad_upgrade(StatusCode::BAD_REQUEST, "Missing Sec-WebSocket-Key");
    };
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return bad_upgrade(
            StatusCode::BAD_REQUEST,
            "This connection cannot be upgraded",
        );
    };
    let accept = accept_key(key.as_bytes());
    if !state.limits.allow_new_connection(peer.ip()) {
        return reply::error_with_status(
            StatusCode::TOO_MANY_REQUESTS,
            "LIMIT_EXCEEDED",
            "Too many new connections from this address (setting connection_rate_per_address)",
        );
    }
    let Some(permit) = state.limits.connection_permit() else {
        return reply::error_with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "LIMIT_EXCEEDED",
            "Too many open connections (setting max_connections)",
        );
    };
    if let Some(refusal) = state.refuse_unknown_branch(&branch).await {
        return refusal;
    }
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let offered = (!offered.is_empty()).then(|| offered.join(","));
    let negotiated = negotiate(offered.as_deref());
    let header_credential = crate::auth::credential_from_headers(headers);
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    // The request's extensions carry hyper's record of how the client spelled its header
    // names; on the response, hyper writes the same names the same way, so
    // `Sec-WebSocket-Protocol` comes back exactly as the client sent it (Python `gql` looks it
    // up case-sensitively; title case would give `Sec-Websocket-Protocol`).
    *response.extensions_mut() = parts.extensions.clone();
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Ok(Some(p)) = negotiated.as_ref().map(|n| n.echo) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    let tracker = state.sessions.clone();
    let max_frames = state.settings().subscriptions.lag_close_threshold as usize;
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "websocket upgrade failed");
                return;
            }
        };
        // Bytes the client sent right behind its upgrade request (usually none; decrypted
        // over TLS). They are copied out: `read_buf` is a view of hyper's 8 KiB read buffer
        // and would keep all of it alive for the life of the connection.
        let (io, early) = match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => (
                Transport::Plain(parts.io.into_inner()),
                parts.read_buf.to_vec(),
            ),
            Err(upgraded) => match upgraded.downcast::<TokioIo<TlsStream<TcpStream>>>() {
                Ok(parts) => {
                    let (tcp, tls) = parts.io.into_inner().into_inner();
                    (Transport::tls(tcp, tls), parts.read_buf.to_vec())
                }
                Err(_) => {
                    tracing::error!("websocket upgrade on an unexpected transport");
                    return;
                }
            },
        };
        let socket = Arc::new(socket::Socket::new(io, max_frames));
        match negotiated {
            Err(close) => {
                socket.send_raw(&close_frame(&close), true);
                let wait = state.settings().ws_refusal_close_timeout_ms;
                let _ =
                    tokio::time::timeout(std::time::Duration::from_millis(wait), socket.drain())
                        .await;
                drop(permit);
            }
            Ok(n) => {
                session::Session::new(
                    state,
                    socket,
                    n.subprotocol,
                    header_credential,
                    branch,
                    peer,
                )
                .run(&early, permit)
                .await;
            }
        }
    });
    response
}
