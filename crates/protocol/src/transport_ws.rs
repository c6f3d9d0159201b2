//! graphql-transport-ws (enisdenjo/graphql-ws PROTOCOL.md): every protocol violation closes
//! the socket with a 44xx code.

use crate::close::Close;
use crate::connection::Connection;
use crate::frames;
use crate::incoming::{Incoming, InitState};
use crate::parse::{Message, parse};

/// Handles one text frame on a graphql-transport-ws connection that is not closed.
pub(crate) fn on_text(conn: &mut Connection, text: &str) -> Incoming {
    parse(text)
        .and_then(|msg| handle(conn, &msg))
        .unwrap_or_else(|reason| Incoming::Close(Close::bad_request(reason)))
}

// Err is a 4400 reason. The message is validated before any state check, as graphql-ws does.
fn handle(conn: &mut Connection, msg: &Message<'_>) -> Result<Incoming, String> {
    Ok(match msg.kind.as_str() {
        "connection_init" => {
            let payload = msg.optional_map_payload()?;
            if conn.state != InitState::Waiting {
                return Ok(Incoming::Close(Close::too_many_init()));
            }
            conn.state = InitState::Deciding;
            Incoming::Init { payload }
        }
        // Allowed at any time, even before the ack.
        "ping" => Incoming::Reply(frames::pong(msg.optional_object_payload()?)),
        "pong" => {
            msg.optional_object_payload()?;
            Incoming::Ignore
        }
        "subscribe" => {
            let id = msg.id()?;
            let payload = msg.subscribe_payload()?;
            if conn.state != InitState::Acknowledged {
                return Ok(Incoming::Close(Close::unauthorized()));
            }
            if !conn.active.insert(id.clone()) {
                return Ok(Incoming::Close(Close::subscriber_exists(&id)));
            }
            Incoming::Subscribe {
                id,
                payload,
                implicit_init: false,
            }
        }
        "complete" => {
            let id = msg.id()?;
            // Unknown or already completed ids are ignored, never echoed.
            if conn.active.remove(&id) {
                Incoming::Stop { id, reply: None }
            } else {
                Incoming::Ignore
            }
        }
        // Includes server-to-client types (`next`, `error`, `connection_ack`) sent by a client.
        _ => return Err(msg.unknown_type()),
    })
}

#[cfg(test)]
mod tests;
