//! Which events a webhook receives: its event types, its node kinds and its branch scope,
//! decided for every event deterministically.
//!
//! * Event types: `event_types` ∪ {`event_type`}. Infrahub's `event_type` value `all` means
//!   every type, and so does an empty union.
//! * Node kinds: `node_kinds` ∪ {`node_kind`}, against the kind of the event's primary node;
//!   an empty union matches every event, a non-empty one only events whose primary node is of
//!   one of those kinds.
//! * Branch scope: an event's branch is the branch it occurred on; a global event (no branch)
//!   counts as on the default branch (`main`). `all_branches` matches every event,
//!   `default_branch` the events of `main` and the global ones, `other_branches` the events
//!   of any other branch. (Infrahub's own matching never matches a global event for
//!   `default_branch`; here every event has exactly one answer.)

use super::config::{WebhookData, scope};
use infrastream_core::Event;

/// The default branch.
pub const DEFAULT_BRANCH: &str = "main";

/// Whether `event` is delivered to a webhook configured as `w` (its `active` flag aside).
pub fn matches(w: &WebhookData, event: &Event) -> bool {
    event_type_matches(w, &event.name)
        && node_kind_matches(w, event.primary_node.as_ref().map(|n| n.kind.as_str()))
        && branch_matches(&w.branch_scope, event.branch.as_deref())
}

/// Whether the event type `name` is one the webhook wants.
pub fn event_type_matches(w: &WebhookData, name: &str) -> bool {
    let single = w.event_type.as_deref().map(str::trim).unwrap_or("");
    if single == "all" {
        return true;
    }
    let wanted: Vec<&str> = w
        .event_types
        .iter()
        .map(String::as_str)
        .chain((!single.is_empty()).then_some(single))
        .collect();
    wanted.is_empty() || wanted.contains(&name)
}

/// Whether an event whose primary node is of `kind` (none: no primary node) is wanted.
pub fn node_kind_matches(w: &WebhookData, kind: Option<&str>) -> bool {
    let single = w.node_kind.as_deref().map(str::trim).unwrap_or("");
    let wanted: Vec<&str> = w
        .node_kinds
        .iter()
        .map(String::as_str)
        .chain((!single.is_empty()).then_some(single))
        .collect();
    wanted.is_empty() || kind.is_some_and(|k| wanted.contains(&k))
}

/// Whether an event on `branch` (`None`: global) is in `branch_scope`.
pub fn branch_matches(branch_scope: &str, branch: Option<&str>) -> bool {
    let on_default = branch.is_none_or(|b| b == DEFAULT_BRANCH);
    match branch_scope {
        scope::ALL => true,
        scope::DEFAULT => on_default,
        scope::OTHER => !on_default,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infrastream_core::{Position, RelatedNode};
    use serde_json::json;

    fn hook(v: serde_json::Value) -> WebhookData {
        let mut base = json!({"url": "http://x", "branch_scope": "all_branches"});
        for (k, x) in v.as_object().unwrap() {
            base[k] = x.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn event(name: &str, branch: Option<&str>, kind: Option<&str>) -> Event {
        Event {
            position: Position(1),
            id: uuid::Uuid::now_v7(),
            name: name.into(),
            branch: branch.map(str::to_owned),
            account_id: None,
            occurred_at: infrastream_core::now(),
            level: 0,
            parent_id: None,
            has_children: false,
            primary_node: kind.map(|k| RelatedNode {
                id: "n".into(),
                kind: k.into(),
            }),
            related_nodes: Vec::new(),
            data: json!({}),
            context: json!({}),
        }
    }

    #[test]
    fn event_types_join_the_single_one_and_all_means_every_type() {
        let e = event("infrahub.node.created", None, None);
        assert!(matches(&hook(json!({})), &e));
        assert!(matches(&hook(json!({"event_type": "all"})), &e));
        assert!(matches(&hook(json!({"event_type": ""})), &e));
        assert!(matches(
            &hook(json!({"event_type": "infrahub.node.created"})),
            &e
        ));
        assert!(!matches(
            &hook(json!({"event_type": "infrahub.node.deleted"})),
            &e
        ));
        let both = hook(json!({"event_type": "a.b", "event_types": ["infrahub.node.created"]}));
        assert!(matches(&both, &e));
        assert!(matches(&both, &event("a.b", None, None)));
        assert!(!matches(&both, &event("c.d", None, None)));
        let all = hook(json!({"event_type": "all", "event_types": ["x"]}));
        assert!(matches(&all, &event("c.d", None, None)));
    }

    #[test]
    fn node_kinds_filter_on_the_primary_node() {
        let h = hook(json!({"node_kind": "A", "node_kinds": ["B"]}));
        assert!(matches(&h, &event("x", None, Some("A"))));
        assert!(matches(&h, &event("x", None, Some("B"))));
        assert!(!matches(&h, &event("x", None, Some("C"))));
        assert!(!matches(&h, &event("x", None, None)), "no primary node");
        assert!(matches(&hook(json!({})), &event("x", None, None)));
        assert!(matches(
            &hook(json!({"node_kind": ""})),
            &event("x", None, None)
        ));
    }

    #[test]
    fn every_event_has_one_branch_scope_answer() {
        for (scope, global, main, other) in [
            ("all_branches", true, true, true),
            ("default_branch", true, true, false),
            ("other_branches", false, false, true),
            ("nonsense", false, false, false),
        ] {
            let h = hook(json!({ "branch_scope": scope }));
            assert_eq!(
                matches(&h, &event("x", None, None)),
                global,
                "{scope} global"
            );
            assert_eq!(
                matches(&h, &event("x", Some("main"), None)),
                main,
                "{scope} main"
            );
            assert_eq!(
                matches(&h, &event("x", Some("feature"), None)),
                other,
                "{scope} other"
            );
        }
    }

    #[test]
    fn infrahubs_default_scope_is_the_default_branch() {
        let h: WebhookData = serde_json::from_value(json!({"url": "http://x"})).unwrap();
        assert_eq!(h.branch_scope, "default_branch");
        assert!(h.active && h.validate_certificates);
        assert_eq!(h.signature_scheme, "standard");
    }
}
