//! One socket's protocol state: initialisation, active operation ids, and the frames and
//! closes that follow from the server's decisions.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::close::Close;
use crate::frames::{self, FramePrefix};
use crate::incoming::{Closing, Incoming, InitState};
use crate::negotiate::Subprotocol;
use crate::{legacy, transport_ws};

/// The sans-IO state machine of one WebSocket, for either subprotocol.
#[derive(Debug, Clone)]
pub struct Connection {
    pub(crate) protocol: Subprotocol,
    pub(crate) state: InitState,
    pub(crate) active: HashSet<String>,
}

impl Connection {
    /// A fresh connection speaking `protocol`, waiting for initialisation.
    pub fn new(protocol: Subprotocol) -> Self {
        Connection {
            protocol,
            state: InitState::Waiting,
            active: HashSet::new(),
        }
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Subprotocol {
        self.protocol
    }

    /// The initialisation state.
    pub fn state(&self) -> InitState {
        self.state
    }

    /// True until a session is established: no init yet, or the server is still deciding.
    pub fn init_pending(&self) -> bool {
        matches!(self.state, InitState::Waiting | InitState::Deciding)
    }

    /// True once operations are allowed (acknowledged, or a legacy implicit session).
    pub fn is_acknowledged(&self) -> bool {
        matches!(self.state, InitState::Acknowledged | InitState::Implicit)
    }

    /// True once a close has been decided.
    pub fn is_closed(&self) -> bool {
        self.state == InitState::Closed
    }

    /// Decides what to do about one text frame from the client.
    pub fn on_text(&mut self, text: &str) -> Incoming {
        if self.is_closed() {
            return Incoming::Ignore;
        }
        let incoming = match self.protocol {
            Subprotocol::GraphqlTransportWs => transport_ws::on_text(self, text),
            Subprotocol::GraphqlWs => legacy::on_text(self, text),
        };
        if matches!(incoming, Incoming::Close(_)) {
            self.close();
        }
        incoming
    }

    /// Decides what to do about a binary frame (both protocols are text-only).
    pub fn on_binary(&mut self) -> Incoming {
        const REASON: &str = "Invalid message received: binary frames are not supported";
        if self.is_closed() {
            return Incoming::Ignore;
        }
        match self.protocol {
            Subprotocol::GraphqlTransportWs => {
                self.close();
                Incoming::Close(Close::bad_request(REASON))
            }
            Subprotocol::GraphqlWs => Incoming::Reply(frames::connection_error(REASON)),
        }
    }

    /// The server accepted the `connection_init`: the frames to send, in order
    /// (`connection_ack`, plus the first `ka` for legacy). Empty unless an init was pending.
    pub fn accept_init(&mut self, ack_payload: Option<&Map<String, Value>>) -> Vec<String> {
        if self.state != InitState::Deciding {
            return Vec::new();
        }
        self.state = InitState::Acknowledged;
        match self.protocol {
            Subprotocol::GraphqlTransportWs => vec![frames::connection_ack(ack_payload)],
            // The legacy ack has no payload; clients expect `ka` right after it.
            Subprotocol::GraphqlWs => {
                vec![frames::CONNECTION_ACK.to_owned(), frames::KA.to_owned()]
            }
        }
    }

    /// The server refused the credentials (of an init, or the anonymous policy for a legacy
    /// implicit session): 4403 `Forbidden`, after a `connection_error` for legacy.
    pub fn reject_init(&mut self) -> Closing {
        self.end_session(Close::forbidden())
    }

    /// The credentials of this session expired or were revoked: 4403
    /// `Forbidden: credentials expired`, after a `connection_error` for legacy.
    pub fn credentials_expired(&mut self) -> Closing {
        self.end_session(Close::credentials_expired())
    }

    /// The init timer fired: 4408 if nothing initialised the session yet, else `None`.
    pub fn init_timeout(&mut self) -> Option<Close> {
        if self.state != InitState::Waiting {
            return None;
        }
        self.close();
        Some(Close::init_timeout())
    }

    /// What to send on a keep-alive tick, only once the session is established (nothing may
    /// precede `connection_ack`). Legacy clients expect `ka`; graphql-transport-ws has no
    /// server keep-alive message of its own (its `ping` is optional), so its sessions are kept
    /// alive with WebSocket ping frames, which every WebSocket library answers by itself —
    /// one control frame each way instead of two JSON messages to parse.
    pub fn keep_alive(&self) -> KeepAlive {
        match (self.protocol, self.state) {
            (Subprotocol::GraphqlWs, InitState::Acknowledged | InitState::Implicit) => {
                KeepAlive::Text(frames::KA)
            }
            (Subprotocol::GraphqlTransportWs, InitState::Acknowledged) => KeepAlive::PingFrame,
            _ => KeepAlive::Nothing,
        }
    }

    /// The text frame of a keep-alive tick, if the protocol has one (legacy `ka`).
    pub fn keep_alive_frame(&self) -> Option<&'static str> {
        match self.keep_alive() {
            KeepAlive::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The server is shutting down: 1001; later frames are ignored.
    pub fn shutdown(&mut self) -> Close {
        self.close();
        Close::going_away()
    }

    /// Whether `id` is an active operation (check before sending a late single result).
    pub fn is_active(&self, id: &str) -> bool {
        self.active.contains(id)
    }

    /// How many operations are active.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// Forgets `id` so it may be reused; true if it was active.
    pub fn operation_finished(&mut self, id: &str) -> bool {
        self.active.remove(id)
    }

    /// The server's stream for `id` ended: the `complete` frame to send, unless the client
    /// already stopped it (then nothing is sent).
    pub fn complete_operation(&mut self, id: &str) -> Option<String> {
        self.operation_finished(id)
            .then(|| frames::complete_frame(id))
    }

    /// The operation `id` failed before or during execution: the `error` frame to send
    /// (no `complete` follows), unless the client already stopped it.
    pub fn fail_operation<E: Serialize>(&mut self, id: &str, errors: &[E]) -> Option<String> {
        self.operation_finished(id)
            .then(|| frames::error_frame(self.protocol, id, errors))
    }

    /// The reusable head of `id`'s `next`/`data` frames.
    pub fn frame_prefix(&self, id: &str) -> FramePrefix {
        FramePrefix::new(self.protocol, id)
    }

    fn end_session(&mut self, close: Close) -> Closing {
        self.close();
        let frame = match self.protocol {
            Subprotocol::GraphqlTransportWs => None,
            Subprotocol::GraphqlWs => Some(frames::connection_error(close.reason())),
        };
        Closing { frame, close }
    }

    fn close(&mut self) {
        self.state = InitState::Closed;
        self.active.clear();
    }
}

/// What a keep-alive tick sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Nothing (the session is not established, or is closed).
    Nothing,
    /// This protocol message (legacy `ka`).
    Text(&'static str),
    /// A WebSocket ping frame (graphql-transport-ws).
    PingFrame,
}
