//! Legacy graphql-ws (apollographql/subscriptions-transport-ws PROTOCOL.md): bad input gets
//! a `connection_error` or an operation `error` reply and the socket stays open.

use crate::close::Close;
use crate::connection::Connection;
use crate::frames;
use crate::incoming::{Incoming, InitState};
use crate::negotiate::Subprotocol;
use crate::parse::parse;

/// Handles one text frame on a legacy connection that is not closed.
pub(crate) fn on_text(conn: &mut Connection, text: &str) -> Incoming {
    let msg = match parse(text) {
        Ok(msg) => msg,
        Err(reason) => return connection_error(&reason),
    };
    match msg.kind.as_str() {
        "connection_init" => {
            let payload = match msg.optional_map_payload() {
                Ok(payload) => payload,
                Err(reason) => return connection_error(&reason),
            };
            if conn.state != InitState::Waiting {
                return connection_error(Close::too_many_init().reason());
            }
            conn.state = InitState::Deciding;
            Incoming::Init { payload }
        }
        "start" => {
            let id = match msg.id() {
                Ok(id) => id,
                Err(reason) => return connection_error(&reason),
            };
            let payload = match msg.subscribe_payload() {
                Ok(payload) => payload,
                Err(reason) => return operation_error(&id, &reason),
            };
            // The running operation keeps its id; the new one is refused.
            if conn.active.contains(&id) {
                return operation_error(&id, Close::subscriber_exists(&id).reason());
            }
            let implicit_init = match conn.state {
                // Infrahub's frontend starts without `connection_init`: an anonymous session.
                InitState::Waiting => {
                    conn.state = InitState::Implicit;
                    true
                }
                InitState::Deciding => {
                    return operation_error(&id, "Connection initialisation in progress");
                }
                InitState::Acknowledged | InitState::Implicit => false,
                InitState::Closed => return Incoming::Ignore,
            };
            conn.active.insert(id.clone());
            Incoming::Subscribe {
                id,
                payload,
                implicit_init,
            }
        }
        "stop" => {
            let id = match msg.id() {
                Ok(id) => id,
                Err(reason) => return connection_error(&reason),
            };
            // A `complete` follows every `stop`, even for an operation that already ended.
            let reply = frames::complete_frame(&id);
            if conn.active.remove(&id) {
                Incoming::Stop {
                    id,
                    reply: Some(reply),
                }
            } else {
                Incoming::Reply(reply)
            }
        }
        "connection_terminate" => Incoming::Close(Close::normal()),
        _ => match msg.id() {
            Ok(id) => operation_error(&id, &msg.unknown_type()),
            Err(_) => connection_error(&msg.unknown_type()),
        },
    }
}

fn connection_error(message: &str) -> Incoming {
    Incoming::Reply(frames::connection_error(message))
}

fn operation_error(id: &str, message: &str) -> Incoming {
    let error = frames::graphql_error(message, None);
    Incoming::Reply(frames::error_frame(Subprotocol::GraphqlWs, id, &[error]))
}

#[cfg(test)]
mod tests;
