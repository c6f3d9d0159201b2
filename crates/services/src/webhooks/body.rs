//! The JSON body of a webhook request. (Stub: filled in by the signing work.)

use infrastream_core::Event;

/// The body sent for `event` (Infrahub's fields plus infrastream's), as bytes: exactly what
/// is signed and sent.
pub fn body(event: &Event) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"id": event.id.to_string(), "event": event.name}))
        .unwrap_or_default()
}
