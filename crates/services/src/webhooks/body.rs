//! The JSON body of a webhook request.
//!
//! Infrahub's body (opsmill/infrahub, `backend/infrahub/webhook/models.py`:
//! `Webhook._prepare_payload` is `{"data": data, **EventContext.model_dump()}`, with `data`
//! = the event's `payload["data"]` in `webhook/tasks/process.py`, `webhook_process`) has, in
//! this order:
//!
//! | field | value |
//! |---|---|
//! | `data` | the event's data, as Infrahub's event model dumps it (below) |
//! | `id` | the event's UUID |
//! | `branch` | the branch it occurred on; `null` for global events |
//! | `account_id` | the account that caused it, or `null` |
//! | `occured_at` | (Infrahub's spelling) when it occurred, as Python's `str(datetime)`: `2025-03-13 16:44:32.321142+00:00` (no fraction when it is zero) |
//! | `event` | the event name, e.g. `infrahub.node.created` |
//!
//! and infrastream adds:
//!
//! | field | value |
//! |---|---|
//! | `occurred_at` | the same instant, RFC 3339 UTC with six fractional digits, as everywhere in infrastream |
//! | `parent_id` | the parent event's UUID, or `null` |
//! | `origin` | `"infrastream"` for events infrastream committed; for events ingested from an Infrahub, the event's `context.origin` object (`{"source": "infrahub", …}`) |
//!
//! `data` is the event's data (`event.data`, the GraphQL `payload.data`) with the fields
//! Infrahub's event models (`backend/infrahub/events/*_action.py`) put there added where
//! infrastream names them differently, first, keeping infrastream's own fields after them:
//!
//! - branch events: `branch_name` (infrastream's `created_branch`, `deleted_branch`,
//!   `source_branch`, `rebased_branch`) and `branch_id`;
//! - node events (`infrahub.node.*`): `kind`, `node_id`, `action`, `fields` (the names of the
//!   changed attributes and relationships) and `changelog` (`node_id`, `node_kind`,
//!   `display_label`, `attributes` by name with `name`, `kind`, `value`, `value_previous`,
//!   `value_update_status`, `properties`, and `relationships` by name with `name` and
//!   `peers`: `peer_id`, `peer_kind`, `peer_status`);
//! - artifact and group events: `node_id` and `kind` from the primary node when missing.
//!
//! Events ingested from an Infrahub are stored in infrastream's shape (`crate::ingest`), so their
//! data is converted the same way; only `origin` tells them apart.
//!
//! The body is compact JSON in which every non-ASCII character is escaped (`\u00fc`,
//! surrogate pairs above U+FFFF) — the same bytes as Python's
//! `json.dumps(body, separators=(",", ":"))`, which is what Infrahub signs (see
//! [`super::signing`]) — so the one serialization is what is sent and what is signed under
//! both schemes, and any receiver that parses JSON reads the same strings.

use infrastream_core::{Event, EventName, Timestamp, format_timestamp};
use serde_json::{Map, Value, json};

/// `"infrastream"`: the `origin` of events committed by infrastream itself.
pub const NATIVE_ORIGIN: &str = "infrastream";

/// The body sent for `event` (Infrahub's fields plus infrastream's), as bytes: exactly what
/// is signed and sent.
pub fn body(event: &Event) -> Vec<u8> {
    let value = body_value(event);
    ascii_json(&value).into_bytes()
}

/// The body as a JSON value (for display, e.g. in a delivery history); [`body`] gives the
/// bytes that are sent.
pub fn body_value(event: &Event) -> Value {
    let origin = event
        .context
        .get("origin")
        .filter(|o| o.is_object())
        .cloned();
    // Ingested events are stored in infrastream's shape (see `crate::ingest`), so their data
    // is converted the same way as native events'; only `origin` tells them apart.
    json!({
        "data": infrahub_data(event),
        "id": event.id.to_string(),
        "branch": event.branch,
        "account_id": event.account_id,
        "occured_at": python_datetime(&event.occurred_at),
        "event": event.name,
        "occurred_at": format_timestamp(&event.occurred_at),
        "parent_id": event.parent_id.map(|p| p.to_string()),
        "origin": origin.unwrap_or_else(|| json!(NATIVE_ORIGIN)),
    })
}

/// `value` as compact JSON with every non-ASCII character (and DEL) escaped as `\uXXXX`.
pub fn ascii_json(value: &Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    // Outside strings compact JSON is ASCII, so every such character is inside a string,
    // where an escape means the same character.
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if ch.is_ascii() && ch != '\u{7f}' {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for u in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Python's `str(datetime)` of a UTC instant: `2025-03-13 16:44:32.321142+00:00`, without
/// the fraction when it is zero.
fn python_datetime(t: &Timestamp) -> String {
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        t.format("%Y-%m-%d %H:%M:%S+00:00").to_string()
    } else {
        format!("{}.{micros:06}+00:00", t.format("%Y-%m-%d %H:%M:%S"))
    }
}

/// `event.data` with Infrahub's field names added (see the module docs).
fn infrahub_data(event: &Event) -> Value {
    let Value::Object(own) = &event.data else {
        return event.data.clone();
    };
    let mut out = Map::new();
    let primary = event.primary_node.as_ref();
    match event.name.as_str() {
        EventName::BRANCH_CREATED
        | EventName::BRANCH_DELETED
        | EventName::BRANCH_MERGED
        | EventName::BRANCH_REBASED => {
            if let Some(name) = event.subject_branch() {
                out.insert("branch_name".into(), json!(name));
            }
        }
        EventName::NODE_CREATED | EventName::NODE_UPDATED | EventName::NODE_DELETED => {
            node_fields(event, own, &mut out);
        }
        EventName::ARTIFACT_CREATED
        | EventName::ARTIFACT_UPDATED
        | EventName::GROUP_MEMBER_ADDED
        | EventName::GROUP_MEMBER_REMOVED => {
            if let Some(p) = primary {
                out.insert("node_id".into(), json!(p.id));
                out.insert("kind".into(), json!(p.kind));
            }
        }
        _ => {}
    }
    for (k, v) in own {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        } else if !v.is_null() {
            // infrastream's own value wins when it has one.
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Infrahub's `NodeMutatedEvent` fields from infrastream's node event data.
fn node_fields(event: &Event, own: &Map<String, Value>, out: &mut Map<String, Value>) {
    let primary = event.primary_node.as_ref();
    let node_id = own
        .get("node_id")
        .cloned()
        .or_else(|| primary.map(|p| json!(p.id)))
        .unwrap_or(Value::Null);
    let kind = own
        .get("kind")
        .cloned()
        .or_else(|| primary.map(|p| json!(p.kind)))
        .unwrap_or(Value::Null);
    let action = own
        .get("action")
        .cloned()
        .unwrap_or_else(|| json!(event.name.rsplit('.').next().unwrap_or_default()));
    let empty = Vec::new();
    let list = |k: &str| own.get(k).and_then(Value::as_array).unwrap_or(&empty);
    let mut fields = Vec::new();
    let mut attributes = Map::new();
    for a in list("attributes") {
        let Some(name) = a.get("name").and_then(Value::as_str) else {
            continue;
        };
        let status = a.get("action").and_then(Value::as_str).unwrap_or_default();
        if status == "unchanged" {
            continue;
        }
        fields.push(json!(name));
        attributes.insert(
            name.to_owned(),
            json!({
                "kind": a.get("kind").cloned().unwrap_or(Value::Null),
                "name": name,
                "value": a.get("value").cloned().unwrap_or(Value::Null),
                "properties": {},
                "value_previous": a.get("value_previous").cloned().unwrap_or(Value::Null),
                "value_update_status": status,
            }),
        );
    }
    let mut relationships = Map::new();
    for r in list("relationships") {
        let Some(name) = r.get("name").and_then(Value::as_str) else {
            continue;
        };
        let peer = r.get("peer");
        let entry = relationships
            .entry(name.to_owned())
            .or_insert_with(|| json!({"name": name, "peers": []}));
        if let Some(peers) = entry.get_mut("peers").and_then(Value::as_array_mut) {
            peers.push(json!({
                "peer_id": peer.and_then(|p| p.get("id")).cloned().unwrap_or(Value::Null),
                "peer_kind": peer.and_then(|p| p.get("kind")).cloned().unwrap_or(Value::Null),
                "peer_status": r.get("action").cloned().unwrap_or(Value::Null),
            }));
        }
        if !fields.contains(&json!(name)) {
            fields.push(json!(name));
        }
    }
    out.insert("kind".into(), kind.clone());
    out.insert("node_id".into(), node_id.clone());
    out.insert("action".into(), action);
    out.insert(
        "changelog".into(),
        json!({
            "node_id": node_id,
            "node_kind": kind,
            "display_label": own.get("display_label").cloned().unwrap_or(Value::Null),
            "attributes": attributes,
            "relationships": relationships,
        }),
    );
    out.insert("fields".into(), Value::Array(fields));
}

#[cfg(test)]
mod tests {
    use super::*;
    use infrastream_core::{Position, RelatedNode, parse_timestamp};
    use uuid::Uuid;

    fn event(name: &str, data: Value) -> Event {
        Event {
            position: Position(7),
            id: Uuid::parse_str("0191e0b6-7a9e-7c00-8000-000000000001").unwrap(),
            name: name.into(),
            branch: Some("feature/x".into()),
            account_id: Some("acc-1".into()),
            occurred_at: parse_timestamp("2025-03-13T16:44:32.321142Z").unwrap(),
            level: 0,
            parent_id: None,
            has_children: false,
            primary_node: None,
            related_nodes: vec![],
            data,
            context: json!({}),
        }
    }

    fn parsed(e: &Event) -> Value {
        serde_json::from_slice(&body(e)).unwrap()
    }

    #[test]
    fn fields_in_infrahub_order_then_ours() {
        let e = event("acme.deploy.started", json!({"build": 42}));
        let text = String::from_utf8(body(&e)).unwrap();
        assert_eq!(
            text,
            r#"{"data":{"build":42},"id":"0191e0b6-7a9e-7c00-8000-000000000001","branch":"feature/x","account_id":"acc-1","occured_at":"2025-03-13 16:44:32.321142+00:00","event":"acme.deploy.started","occurred_at":"2025-03-13T16:44:32.321142Z","parent_id":null,"origin":"infrastream"}"#
        );
    }

    #[test]
    fn whole_seconds_have_no_fraction_like_python() {
        let mut e = event("x.y", json!({}));
        e.occurred_at = parse_timestamp("2025-03-13T16:44:32Z").unwrap();
        let b = parsed(&e);
        assert_eq!(b["occured_at"], "2025-03-13 16:44:32+00:00");
        assert_eq!(b["occurred_at"], "2025-03-13T16:44:32.000000Z");
    }

    #[test]
    fn non_ascii_is_escaped_and_round_trips() {
        let e = event("x.y", json!({"name": "Zürich — 東京 ✓ 😀\u{7f}"}));
        let bytes = body(&e);
        assert!(bytes.is_ascii());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains(r#""name":"Z\u00fcrich \u2014 \u6771\u4eac \u2713 \ud83d\ude00\u007f""#)
        );
        assert_eq!(parsed(&e)["data"]["name"], "Zürich — 東京 ✓ 😀\u{7f}");
    }

    #[test]
    fn branch_events_get_branch_name() {
        let e = event(
            EventName::BRANCH_CREATED,
            json!({"created_branch": "b1", "branch_id": "id1", "sync_with_git": false}),
        );
        let b = parsed(&e);
        assert_eq!(
            b["data"],
            json!({"branch_name": "b1", "created_branch": "b1", "branch_id": "id1", "sync_with_git": false})
        );
        let keys: Vec<&String> = b["data"].as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "branch_name");
    }

    #[test]
    fn node_events_get_changelog_and_fields() {
        let mut e = event(
            EventName::NODE_UPDATED,
            json!({
                "node_id": "n1", "kind": "InfraDevice", "action": "updated",
                "display_label": "dev1", "human_friendly_id": ["dev1"],
                "attributes": [
                    {"name": "name", "kind": "Text", "action": "unchanged", "value": "dev1", "value_previous": "dev1"},
                    {"name": "description", "kind": "Text", "action": "updated", "value": "new", "value_previous": "old"}
                ],
                "relationships": [
                    {"name": "site", "action": "added", "peer": {"id": "s2", "kind": "LocationSite"}},
                    {"name": "site", "action": "removed", "peer": {"id": "s1", "kind": "LocationSite"}}
                ]
            }),
        );
        e.primary_node = Some(RelatedNode {
            id: "n1".into(),
            kind: "InfraDevice".into(),
        });
        let d = &parsed(&e)["data"];
        assert_eq!(d["kind"], "InfraDevice");
        assert_eq!(d["node_id"], "n1");
        assert_eq!(d["action"], "updated");
        assert_eq!(d["fields"], json!(["description", "site"]));
        let cl = &d["changelog"];
        assert_eq!(cl["node_kind"], "InfraDevice");
        assert_eq!(cl["display_label"], "dev1");
        assert_eq!(
            cl["attributes"]["description"]["value_update_status"],
            "updated"
        );
        assert_eq!(cl["attributes"]["description"]["value_previous"], "old");
        assert!(cl["attributes"].get("name").is_none());
        assert_eq!(
            cl["relationships"]["site"]["peers"],
            json!([
                {"peer_id": "s2", "peer_kind": "LocationSite", "peer_status": "added"},
                {"peer_id": "s1", "peer_kind": "LocationSite", "peer_status": "removed"}
            ])
        );
        // infrastream's own fields are kept.
        assert_eq!(d["human_friendly_id"], json!(["dev1"]));
        assert!(d["attributes"].is_array());
    }

    #[test]
    fn artifact_events_get_node_id_and_kind() {
        let mut e = event(EventName::ARTIFACT_CREATED, json!({"checksum": "abc"}));
        e.primary_node = Some(RelatedNode {
            id: "a1".into(),
            kind: "CoreArtifact".into(),
        });
        let d = &parsed(&e)["data"];
        assert_eq!(d["node_id"], "a1");
        assert_eq!(d["kind"], "CoreArtifact");
        assert_eq!(d["checksum"], "abc");
    }

    #[test]
    fn ingested_events_have_native_data_and_their_origin() {
        let mut e = event(
            EventName::BRANCH_CREATED,
            json!({"branch_name": "b1", "branch_id": "x", "sync_with_git": false}),
        );
        e.context = json!({"origin": {"source": "infrahub", "url": "https://infrahub.example"}});
        e.parent_id = Some(Uuid::nil());
        let b = parsed(&e);
        let mut native = e.clone();
        native.context = json!({});
        assert_eq!(
            b["data"],
            parsed(&native)["data"],
            "the same data as a native event"
        );
        assert_eq!(b["data"]["branch_name"], "b1");
        assert_eq!(
            b["origin"],
            json!({"source": "infrahub", "url": "https://infrahub.example"})
        );
        assert_eq!(b["parent_id"], Uuid::nil().to_string());
    }

    #[test]
    fn global_events_have_null_branch() {
        let mut e = event("x.y", json!({}));
        e.branch = None;
        e.account_id = None;
        let b = parsed(&e);
        assert!(b["branch"].is_null());
        assert!(b["account_id"].is_null());
    }
}
