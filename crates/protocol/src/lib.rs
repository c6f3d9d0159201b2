//! The GraphQL-over-WebSocket protocols, sans IO: negotiating the subprotocol, reading client
//! frames of `graphql-transport-ws` and of the legacy Apollo `graphql-ws`, deciding replies
//! and close codes, and writing outgoing frames as exact JSON text.
//!
//! It depends on nothing of the workspace and runs no timers or sockets: `server` owns the
//! WebSocket task (socket, init timer, keep-alive ticks, shutdown) and drives a [`Connection`]
//! with each frame; `graphql` executes the operations whose results it frames.
//!
//! ```
//! use infrastream_protocol::{Connection, Incoming, negotiate};
//!
//! let negotiated = negotiate(Some("graphql-transport-ws")).unwrap();
//! let mut conn = Connection::new(negotiated.subprotocol);
//! let mut sent = Vec::new();
//! for text in [
//!     r#"{"type":"connection_init","payload":{"authToken":"t"}}"#,
//!     r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { x }"}}"#,
//! ] {
//!     match conn.on_text(text) {
//!         Incoming::Init { payload: _ } => sent.extend(conn.accept_init(None)),
//!         Incoming::Subscribe { id, .. } => {
//!             let prefix = conn.frame_prefix(&id);
//!             sent.push(prefix.frame(r#"{"data":{"x":1}}"#));
//!             sent.extend(conn.complete_operation(&id));
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! assert_eq!(sent[0], r#"{"type":"connection_ack"}"#);
//! assert_eq!(sent[1], r#"{"type":"next","id":"1","payload":{"data":{"x":1}}}"#);
//! assert_eq!(sent[2], r#"{"type":"complete","id":"1"}"#);
//! ```

mod close;
mod connection;
mod frames;
mod incoming;
mod legacy;
mod negotiate;
mod parse;
mod transport_ws;
mod wire;

#[cfg(test)]
mod test_util;

pub use close::{Close, MAX_REASON_BYTES, truncate_reason};
pub use connection::{Connection, KeepAlive};
pub use frames::{
    CONNECTION_ACK, FramePrefix, KA, PING, PONG, complete_frame, connection_ack, connection_error,
    error_frame, graphql_error, next_frame, pong,
};
pub use incoming::{Closing, Incoming, InitState, SubscribePayload};
pub use negotiate::{Negotiated, Subprotocol, negotiate};
pub use wire::{
    Decoder, FrameHeader, WireMessage, client_frame, close_frame, ping_frame, pong_frame,
    text_frame,
};
