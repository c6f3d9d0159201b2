//! The `infrahub.node.created|updated|deleted` event of a change: Infrahub's changelog
//! (attributes with `value`, `value_previous` and the action; relationships with their peer
//! and the action), the display label and human friendly id, the peers as related nodes.

use super::{DataNode, text};
use crate::Actor;
use crate::schema::registry::BranchSchema;
use infrastream_core::{EventName, NewEvent, RelatedNode};
use serde_json::{Value, json};

/// The event of a change from `before` to `after` (one of them may be missing), or `None`
/// when nothing changed.
pub(super) fn node_event(
    actor: &Actor,
    schema: &BranchSchema,
    branch: &str,
    before: Option<&DataNode>,
    after: Option<&DataNode>,
) -> Option<NewEvent> {
    let node = after.or(before)?;
    schema.nodes.get(&node.kind)?;
    let (name, action) = match (before, after) {
        (None, Some(_)) => (EventName::NODE_CREATED, "created"),
        (Some(_), None) => (EventName::NODE_DELETED, "deleted"),
        _ => (EventName::NODE_UPDATED, "updated"),
    };
    let mut attributes = Vec::new();
    let mut changed = false;
    for attr in schema.fields(&node.kind, "attributes") {
        let n = attr.get("name").and_then(Value::as_str).unwrap_or_default();
        let (old, new) = (before.map(|b| b.value(n)), after.map(|a| a.value(n)));
        let diff = match (&old, &new) {
            (None, Some(v)) if !v.is_null() => "added",
            (Some(v), None) if !v.is_null() => "removed",
            (Some(o), Some(v)) if o != v => "updated",
            _ => "unchanged",
        };
        changed |= diff != "unchanged";
        let masked = |v: &Option<Value>| -> Value {
            match v {
                Some(Value::Null) | None => Value::Null,
                Some(_) if attr.get("kind").and_then(Value::as_str) == Some("HashedPassword") => {
                    json!("***")
                }
                Some(v) => json!(text(v)),
            }
        };
        attributes.push(json!({
            "name": n,
            "kind": attr.get("kind").cloned().unwrap_or(Value::Null),
            "action": diff,
            "value": masked(&new),
            "value_previous": masked(&old),
        }));
    }
    let mut relationships = Vec::new();
    let mut related = Vec::new();
    for rel in schema.fields(&node.kind, "relationships") {
        let n = rel.get("name").and_then(Value::as_str).unwrap_or_default();
        let peer_kind = rel.get("peer").and_then(Value::as_str).unwrap_or_default();
        let old = before.map(|b| b.peers(n)).unwrap_or_default();
        let new = after.map(|a| a.peers(n)).unwrap_or_default();
        for id in new.iter().filter(|id| !old.contains(id)) {
            relationships
                .push(json!({"name": n, "action": "added", "peer": {"id": id, "kind": peer_kind}}));
        }
        for id in old.iter().filter(|id| !new.contains(id)) {
            relationships.push(
                json!({"name": n, "action": "removed", "peer": {"id": id, "kind": peer_kind}}),
            );
        }
        for id in old.iter().chain(&new) {
            let r = RelatedNode {
                id: id.clone(),
                kind: peer_kind.to_owned(),
            };
            if !related.contains(&r) {
                related.push(r);
            }
        }
    }
    if action == "updated" && !changed && relationships.is_empty() {
        return None;
    }
    let mut event = NewEvent::new(name);
    event.branch = Some(branch.to_owned());
    event.account_id = actor.account_id.clone();
    event.context = actor.context.clone();
    event.primary_node = Some(RelatedNode {
        id: node.id.clone(),
        kind: node.kind.clone(),
    });
    event.related_nodes = related;
    event.data = json!({
        "node_id": node.id,
        "kind": node.kind,
        "action": action,
        "display_label": node.display_label(schema),
        "human_friendly_id": node.hfid(schema),
        "attributes": attributes,
        "relationships": relationships,
    });
    Some(event)
}
