//! Outgoing frames as exact JSON text. Result payloads arrive already serialized and are
//! spliced in without re-parsing, so one serialization can fan out to many subscribers.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::negotiate::Subprotocol;

/// `connection_ack` without a payload.
pub const CONNECTION_ACK: &str = r#"{"type":"connection_ack"}"#;
/// Legacy keep-alive.
pub const KA: &str = r#"{"type":"ka"}"#;
/// graphql-transport-ws `ping` without a payload.
pub const PING: &str = r#"{"type":"ping"}"#;
/// graphql-transport-ws `pong` without a payload.
pub const PONG: &str = r#"{"type":"pong"}"#;

/// `connection_ack`, with the payload when there is one.
pub fn connection_ack(payload: Option<&Map<String, Value>>) -> String {
    match payload {
        None => CONNECTION_ACK.to_owned(),
        Some(payload) => format!(
            r#"{{"type":"connection_ack","payload":{}}}"#,
            to_json(payload)
        ),
    }
}

/// `pong` echoing `payload_json`, the raw JSON object of the `ping` (none → no payload).
pub fn pong(payload_json: Option<&str>) -> String {
    match payload_json {
        None => PONG.to_owned(),
        Some(payload) => format!(r#"{{"type":"pong","payload":{payload}}}"#),
    }
}

/// Legacy `connection_error` with payload `{"message": message}`.
pub fn connection_error(message: &str) -> String {
    format!(
        r#"{{"type":"connection_error","payload":{{"message":{}}}}}"#,
        json_str(message)
    )
}

/// `next` (graphql-transport-ws) or `data` (legacy) carrying a serialized execution result.
pub fn next_frame(protocol: Subprotocol, id: &str, payload_json: &str) -> String {
    FramePrefix::new(protocol, id).frame(payload_json)
}

/// `complete` for `id` (the same text in both protocols).
pub fn complete_frame(id: &str) -> String {
    format!(r#"{{"type":"complete","id":{}}}"#, json_str(id))
}

/// `error` for `id`: an array of GraphQL errors (graphql-transport-ws) or the first error as
/// a single object (legacy). Neither protocol sends `complete` after it.
pub fn error_frame<E: Serialize>(protocol: Subprotocol, id: &str, errors: &[E]) -> String {
    let payload = match protocol {
        Subprotocol::GraphqlTransportWs => serde_json::to_string(errors).ok(),
        Subprotocol::GraphqlWs => match errors.first() {
            Some(first) => serde_json::to_string(first).ok(),
            None => Some(r#"{"message":"Unknown error"}"#.to_owned()),
        },
    };
    // A Serialize impl that fails (a map with non-string keys) must not leak into the frame.
    let payload = payload.unwrap_or_else(|| match protocol {
        Subprotocol::GraphqlTransportWs => r#"[{"message":"Internal server error"}]"#.to_owned(),
        Subprotocol::GraphqlWs => r#"{"message":"Internal server error"}"#.to_owned(),
    });
    format!(
        r#"{{"type":"error","id":{},"payload":{payload}}}"#,
        json_str(id)
    )
}

/// A GraphQL error object `{"message": …, "extensions": {"code": …}}` for [`error_frame`].
pub fn graphql_error(message: &str, code: Option<&str>) -> Value {
    let mut error = Map::new();
    error.insert("message".to_owned(), Value::from(message));
    if let Some(code) = code {
        let mut extensions = Map::new();
        extensions.insert("code".to_owned(), Value::from(code));
        error.insert("extensions".to_owned(), Value::Object(extensions));
    }
    Value::Object(error)
}

/// The constant head of one operation's `next`/`data` frames, computed once per operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePrefix {
    prefix: String,
}

impl FramePrefix {
    /// The head `{"type":"next","id":<id>,"payload":` (or `data` for legacy).
    pub fn new(protocol: Subprotocol, id: &str) -> Self {
        let kind = match protocol {
            Subprotocol::GraphqlTransportWs => "next",
            Subprotocol::GraphqlWs => "data",
        };
        FramePrefix {
            prefix: format!(r#"{{"type":"{kind}","id":{},"payload":"#, json_str(id)),
        }
    }

    /// The head text; a frame is this, the payload JSON, then `}`.
    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// The whole frame for one serialized execution result.
    pub fn frame(&self, payload_json: &str) -> String {
        let mut out = String::with_capacity(self.prefix.len() + payload_json.len() + 1);
        self.write_frame(&mut out, payload_json);
        out
    }

    /// Appends the whole frame to `out` (for batching several frames into one write).
    pub fn write_frame(&self, out: &mut String, payload_json: &str) {
        out.push_str(&self.prefix);
        out.push_str(payload_json);
        out.push('}');
    }
}

fn json_str(s: &str) -> String {
    to_json(s)
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Strings and `Map<String, Value>` always serialize; the fallback is unreachable in practice.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subprotocol::{GraphqlTransportWs as Modern, GraphqlWs as Legacy};
    use serde_json::json;

    #[test]
    fn exact_frame_texts() {
        let ack_payload = json!({"server": "infrastream"});
        let cases: [(String, &str); 12] = [
            (connection_ack(None), r#"{"type":"connection_ack"}"#),
            (
                connection_ack(ack_payload.as_object()),
                r#"{"type":"connection_ack","payload":{"server":"infrastream"}}"#,
            ),
            (pong(None), r#"{"type":"pong"}"#),
            (
                pong(Some(r#"{"b":1,"a":2}"#)),
                r#"{"type":"pong","payload":{"b":1,"a":2}}"#,
            ),
            (
                connection_error("Forbidden"),
                r#"{"type":"connection_error","payload":{"message":"Forbidden"}}"#,
            ),
            (
                next_frame(Modern, "1", r#"{"data":{"x":1}}"#),
                r#"{"type":"next","id":"1","payload":{"data":{"x":1}}}"#,
            ),
            (
                next_frame(Legacy, "1", r#"{"data":{"x":1}}"#),
                r#"{"type":"data","id":"1","payload":{"data":{"x":1}}}"#,
            ),
            (complete_frame("a\"b"), r#"{"type":"complete","id":"a\"b"}"#),
            (
                error_frame(Modern, "1", &[graphql_error("boom", None)]),
                r#"{"type":"error","id":"1","payload":[{"message":"boom"}]}"#,
            ),
            (
                error_frame(
                    Legacy,
                    "1",
                    &[graphql_error("boom", None), graphql_error("2", None)],
                ),
                r#"{"type":"error","id":"1","payload":{"message":"boom"}}"#,
            ),
            (
                error_frame::<Value>(Legacy, "1", &[]),
                r#"{"type":"error","id":"1","payload":{"message":"Unknown error"}}"#,
            ),
            (KA.to_owned(), r#"{"type":"ka"}"#),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
            serde_json::from_str::<Value>(&got).expect("every frame is valid JSON");
        }
    }

    #[test]
    fn ids_are_json_escaped() {
        let id = "weird \"id\"\n\\ ✓ \u{1}";
        let frames = [
            next_frame(Modern, id, "{}"),
            next_frame(Legacy, id, "{}"),
            complete_frame(id),
            error_frame(Modern, id, &[graphql_error("e", None)]),
        ];
        for frame in frames {
            let value: Value = serde_json::from_str(&frame).expect("valid JSON");
            assert_eq!(value["id"], id, "{frame}");
        }
    }

    #[test]
    fn error_payload_is_an_array_for_transport_ws_and_an_object_for_legacy() {
        let errors = [graphql_error("too many", Some("TOO_MANY_SUBSCRIPTIONS"))];
        let modern: Value = serde_json::from_str(&error_frame(Modern, "7", &errors)).unwrap();
        let legacy: Value = serde_json::from_str(&error_frame(Legacy, "7", &errors)).unwrap();
        assert_eq!(modern["payload"], json!([errors[0]]));
        assert_eq!(legacy["payload"], errors[0]);
        assert_eq!(
            legacy["payload"]["extensions"]["code"],
            "TOO_MANY_SUBSCRIPTIONS"
        );
    }

    #[test]
    fn failing_error_serialization_falls_back_to_a_generic_error() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let frame = error_frame(Modern, "1", &[bad]);
        assert_eq!(
            frame,
            r#"{"type":"error","id":"1","payload":[{"message":"Internal server error"}]}"#
        );
    }

    #[test]
    fn frame_prefix_writes_batched_frames() {
        let prefix = FramePrefix::new(Modern, "sub-9");
        assert_eq!(prefix.as_str(), r#"{"type":"next","id":"sub-9","payload":"#);
        let mut batch = String::new();
        prefix.write_frame(&mut batch, r#"{"data":1}"#);
        prefix.write_frame(&mut batch, r#"{"data":2}"#);
        assert_eq!(
            batch,
            r#"{"type":"next","id":"sub-9","payload":{"data":1}}{"type":"next","id":"sub-9","payload":{"data":2}}"#
        );
        assert_eq!(prefix.frame("{}"), next_frame(Modern, "sub-9", "{}"));
    }
}
