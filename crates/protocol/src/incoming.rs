//! The typed decisions a [`Connection`](crate::Connection) hands to the server task.

use serde_json::{Map, Value};

use crate::close::Close;

/// What the server task must do about one client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// `connection_init`: decide on the credentials, then call
    /// [`accept_init`](crate::Connection::accept_init) or
    /// [`reject_init`](crate::Connection::reject_init) before reading the next frame.
    Init {
        /// The init payload (credentials live here), when it was an object.
        payload: Option<Map<String, Value>>,
    },
    /// `subscribe` / legacy `start`: run the operation; its id is now active.
    Subscribe {
        /// The operation id, unique among active operations.
        id: String,
        /// The GraphQL request.
        payload: SubscribePayload,
        /// Legacy only: no `connection_init` came first, so this opened an anonymous session;
        /// apply the anonymous policy (and [`reject_init`](crate::Connection::reject_init)
        /// when it is off) before running the operation.
        implicit_init: bool,
    },
    /// `complete` / legacy `stop` for an active operation: drop its stream, then send `reply`.
    Stop {
        /// The operation to stop; it is already inactive in the state machine.
        id: String,
        /// Legacy: the `complete` frame owed after a `stop`. graphql-transport-ws: none.
        reply: Option<String>,
    },
    /// Send this frame; nothing else changes (a `pong`, a legacy error reply).
    Reply(String),
    /// Nothing to do (a `pong`, a `complete` for an unknown id).
    Ignore,
    /// Close the socket with this code; later frames are ignored.
    Close(Close),
}

/// The GraphQL request of a `subscribe` / `start` message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SubscribePayload {
    /// The GraphQL document.
    pub query: String,
    /// The variables, when given as an object.
    pub variables: Option<Map<String, Value>>,
    /// The `operationName`, when given.
    pub operation_name: Option<String>,
    /// The `extensions`, when given as an object.
    pub extensions: Option<Map<String, Value>>,
}

/// Ending a session: an optional last frame, then the close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// A frame to send before closing (legacy `connection_error`).
    pub frame: Option<String>,
    /// The close to send after it.
    pub close: Close,
}

/// Where the connection stands in its initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitState {
    /// Nothing received yet; the init timer runs.
    Waiting,
    /// `connection_init` received; the server is deciding on the credentials.
    Deciding,
    /// `connection_ack` sent; operations are allowed.
    Acknowledged,
    /// Legacy session opened by a `start` without `connection_init` (anonymous).
    Implicit,
    /// A close was decided; every later frame is ignored.
    Closed,
}
