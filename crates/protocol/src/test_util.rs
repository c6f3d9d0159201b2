//! Shared helpers for the conversation tests of both protocols.

use serde_json::{Map, Value};

use crate::{Close, Connection, Incoming, InitState, Subprotocol, SubscribePayload};

/// A connection that went through `connection_init` and was accepted.
pub(crate) fn acked(protocol: Subprotocol) -> Connection {
    let mut conn = Connection::new(protocol);
    let init = conn.on_text(r#"{"type":"connection_init"}"#);
    assert_eq!(init, Incoming::Init { payload: None });
    assert!(!conn.accept_init(None).is_empty());
    assert_eq!(conn.state(), InitState::Acknowledged);
    conn
}

/// The frame `{"type":<kind>,"id":<id>,"payload":{"query":<query>}}`.
pub(crate) fn start_frame(kind: &str, id: &str, query: &str) -> String {
    format!(r#"{{"type":"{kind}","id":"{id}","payload":{{"query":"{query}"}}}}"#)
}

/// The decision for a subscribe of `query` under `id`.
pub(crate) fn subscribe(id: &str, query: &str, implicit_init: bool) -> Incoming {
    Incoming::Subscribe {
        id: id.to_owned(),
        payload: SubscribePayload {
            query: query.to_owned(),
            ..SubscribePayload::default()
        },
        implicit_init,
    }
}

/// The decision to close with `code` and `reason`.
pub(crate) fn close(code: u16, reason: &str) -> Incoming {
    Incoming::Close(Close::new(code, reason))
}

/// `value` as a JSON object map.
pub(crate) fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Feeds `steps` in order, asserting each decision; returns the connection for more checks.
pub(crate) fn run(mut conn: Connection, steps: &[(&str, Incoming)]) -> Connection {
    for (i, (frame, want)) in steps.iter().enumerate() {
        assert_eq!(&conn.on_text(frame), want, "step {i}: {frame}");
    }
    conn
}
