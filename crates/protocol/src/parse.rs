//! Reading one client text frame: the envelope (`type`, `id`, `payload`) and the payload
//! shapes both protocols share. Errors are short client-facing descriptions.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::incoming::SubscribePayload;

/// Prefix of every invalid-message description.
const INVALID: &str = "Invalid message received";

// Unknown top-level fields are ignored (as graphql-ws does), so client extensions do not break.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

/// A frame whose envelope is valid; fields are checked per message type on demand.
pub(crate) struct Message<'a> {
    /// The `type` field.
    pub(crate) kind: String,
    id: Option<&'a RawValue>,
    payload: Option<&'a RawValue>,
}

/// Parses the envelope: a JSON object with a string `type`.
pub(crate) fn parse(text: &str) -> Result<Message<'_>, String> {
    let envelope: Envelope<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            format!("{INVALID}: expected a JSON object")
        } else {
            format!("{INVALID}: malformed JSON")
        }
    })?;
    // Serde would also accept an array as a positional struct.
    if !text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        return Err(format!("{INVALID}: expected a JSON object"));
    }
    let kind = envelope
        .kind
        .ok_or_else(|| format!("{INVALID}: missing 'type'"))?;
    let kind = serde_json::from_str::<String>(kind.get())
        .map_err(|_| format!("{INVALID}: 'type' must be a string"))?;
    Ok(Message {
        kind,
        id: envelope.id,
        payload: envelope.payload,
    })
}

impl<'a> Message<'a> {
    /// The description for a `type` this protocol does not accept from clients.
    pub(crate) fn unknown_type(&self) -> String {
        // The type is echoed back, so a huge one must not make a huge reply.
        let shown = &self.kind[..self.kind.floor_char_boundary(32)];
        format!("{INVALID}: unknown type \"{shown}\"")
    }

    /// The `id`, which must be a non-empty string.
    pub(crate) fn id(&self) -> Result<String, String> {
        self.id
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                format!(
                    "{INVALID}: \"{}\" message requires a non-empty string 'id'",
                    self.kind
                )
            })
    }

    /// The raw `payload` text when it is an object; `None` when missing or null.
    pub(crate) fn optional_object_payload(&self) -> Result<Option<&'a str>, String> {
        match self.payload.map(RawValue::get) {
            None => Ok(None),
            Some(raw) if raw.starts_with('{') => Ok(Some(raw)),
            Some(_) => Err(format!(
                "{INVALID}: \"{}\" message expects 'payload' to be an object or null",
                self.kind
            )),
        }
    }

    /// The `payload` as a map when it is an object; `None` when missing or null.
    pub(crate) fn optional_map_payload(&self) -> Result<Option<Map<String, Value>>, String> {
        let Some(raw) = self.optional_object_payload()? else {
            return Ok(None);
        };
        serde_json::from_str(raw).map(Some).map_err(|_| {
            format!(
                "{INVALID}: \"{}\" message has an invalid 'payload'",
                self.kind
            )
        })
    }

    /// The payload of `subscribe` / `start`: `query` plus optional variables, name, extensions.
    pub(crate) fn subscribe_payload(&self) -> Result<SubscribePayload, String> {
        let mut payload = self
            .payload
            .and_then(|raw| serde_json::from_str::<Map<String, Value>>(raw.get()).ok())
            .ok_or_else(|| {
                format!(
                    "{INVALID}: \"{}\" message expects 'payload' to be an object",
                    self.kind
                )
            })?;
        let query = match payload.remove("query") {
            Some(Value::String(query)) => query,
            _ => return Err(format!("{INVALID}: 'payload.query' must be a string")),
        };
        let variables = optional_object(payload.remove("variables"), "variables")?;
        let operation_name = match payload.remove("operationName") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name),
            Some(_) => {
                return Err(format!(
                    "{INVALID}: 'payload.operationName' must be a string or null"
                ));
            }
        };
        let extensions = optional_object(payload.remove("extensions"), "extensions")?;
        Ok(SubscribePayload {
            query,
            variables,
            operation_name,
            extensions,
        })
    }
}

fn optional_object(
    value: Option<Value>,
    field: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(format!(
            "{INVALID}: 'payload.{field}' must be an object or null"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors() {
        let cases = [
            ("", "Invalid message received: malformed JSON"),
            ("{", "Invalid message received: malformed JSON"),
            ("not json", "Invalid message received: malformed JSON"),
            ("[1]", "Invalid message received: expected a JSON object"),
            (
                "\"connection_init\"",
                "Invalid message received: expected a JSON object",
            ),
            ("null", "Invalid message received: expected a JSON object"),
            ("{}", "Invalid message received: missing 'type'"),
            (
                r#"{"type":null}"#,
                "Invalid message received: missing 'type'",
            ),
            (
                r#"{"type":1}"#,
                "Invalid message received: 'type' must be a string",
            ),
            (
                r#"{"type":{}}"#,
                "Invalid message received: 'type' must be a string",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).err().as_deref(), Some(want), "frame {text:?}");
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_whitespace_is_tolerated() {
        let msg = parse(r#" { "type" : "ping" , "extra": [1], "payload" : { "a" : 1 } } "#)
            .expect("valid");
        assert_eq!(msg.kind, "ping");
        assert_eq!(msg.optional_object_payload(), Ok(Some(r#"{ "a" : 1 }"#)));
    }

    #[test]
    fn subscribe_payload_field_types() {
        let ok = parse(
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":{"x":1},
               "operationName":"Q","extensions":{"e":true},"unknown":0}}"#,
        )
        .unwrap()
        .subscribe_payload()
        .unwrap();
        assert_eq!(ok.query, "{a}");
        assert_eq!(ok.variables.unwrap()["x"], 1);
        assert_eq!(ok.operation_name.as_deref(), Some("Q"));
        assert_eq!(ok.extensions.unwrap()["e"], true);

        let nulls = parse(
            r#"{"type":"subscribe","id":"1","payload":{"query":"{a}","variables":null,
               "operationName":null,"extensions":null}}"#,
        )
        .unwrap()
        .subscribe_payload()
        .unwrap();
        assert_eq!(
            (nulls.variables, nulls.operation_name, nulls.extensions),
            (None, None, None)
        );

        let bad = [
            (r#"{}"#, "'payload.query' must be a string"),
            (r#"{"query":1}"#, "'payload.query' must be a string"),
            (
                r#"{"query":"q","variables":[]}"#,
                "'payload.variables' must be an object or null",
            ),
            (
                r#"{"query":"q","operationName":1}"#,
                "'payload.operationName' must be a string or null",
            ),
            (
                r#"{"query":"q","extensions":"x"}"#,
                "'payload.extensions' must be an object or null",
            ),
            (
                r#"[]"#,
                "\"subscribe\" message expects 'payload' to be an object",
            ),
            (
                r#"null"#,
                "\"subscribe\" message expects 'payload' to be an object",
            ),
        ];
        for (payload, want) in bad {
            let text = format!(r#"{{"type":"subscribe","id":"1","payload":{payload}}}"#);
            let err = parse(&text).unwrap().subscribe_payload().unwrap_err();
            assert_eq!(
                err,
                format!("Invalid message received: {want}"),
                "payload {payload}"
            );
        }
    }

    #[test]
    fn ids_must_be_non_empty_strings() {
        let cases = [
            (r#"{"type":"complete","id":"a"}"#, Ok("a".to_owned())),
            (
                r#"{"type":"complete","id":"\u00e9\n"}"#,
                Ok("é\n".to_owned()),
            ),
            (r#"{"type":"complete"}"#, Err(())),
            (r#"{"type":"complete","id":null}"#, Err(())),
            (r#"{"type":"complete","id":""}"#, Err(())),
            (r#"{"type":"complete","id":1}"#, Err(())),
            (r#"{"type":"complete","id":["a"]}"#, Err(())),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap().id().map_err(|reason| {
                assert_eq!(
                    reason,
                    "Invalid message received: \"complete\" message requires a non-empty string 'id'"
                );
            });
            assert_eq!(got, want, "frame {text}");
        }
    }

    #[test]
    fn unknown_type_is_shown_short() {
        let text = format!(r#"{{"type":"{}"}}"#, "t".repeat(1000));
        let reason = parse(&text).unwrap().unknown_type();
        assert!(reason.len() < 100, "{reason}");
    }
}
