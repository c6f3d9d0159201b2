//! GraphQL over WebSocket on `/graphql` and `/graphql/{branch}`: the upgrade (subprotocol
//! choice and echo, connection limits, rate per client address, small buffers) and one task
//! per connection ([`session`]) that drives the sans-IO protocol state machine of
//! `infrastream-protocol`, executes operations with async-graphql and writes frames.

mod credentials;
mod limits;
mod session;

pub(crate) use limits::Limits;

use crate::{AppState, reply};
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use infrastream_protocol::negotiate;
use std::net::SocketAddr;

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Upgrades the connection and spawns its session.
pub(crate) async fn upgrade(
    state: AppState,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    peer: SocketAddr,
    branch: String,
) -> Response {
    let s = state.settings();
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
    let header_credential = crate::auth::credential_from_headers(&headers);
    let ws = ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(s.ws_max_message_bytes)
        .max_frame_size(s.ws_max_message_bytes);
    match negotiated {
        Err(close) => ws.on_upgrade(move |mut socket| async move {
            let (code, reason) = close.into_parts();
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
            drop(permit);
        }),
        Ok(n) => {
            let ws = match n.echo {
                Some(p) => ws.protocols([p]),
                None => ws,
            };
            ws.on_upgrade(move |socket| {
                let task = session::Session::new(
                    state.clone(),
                    n.subprotocol,
                    header_credential,
                    branch,
                    peer,
                )
                .run(socket, permit);
                let tracker = state.sessions.clone();
                async move {
                    tracker.track_future(task).await;
                }
            })
        }
    }
}
