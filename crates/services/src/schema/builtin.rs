//! The kinds every schema has, as in Infrahub: `CoreNode`, the generic every node kind
//! implements (a relationship to it takes any node); `CoreGroup`, the generic of groups
//! (`name`, `label`, `description`, `group_type`; `members` and `subscribers`: any nodes);
//! and `CoreStandardGroup`, a node kind inheriting from it. A user's schema may declare kinds
//! that inherit from `CoreGroup` (groups of its own) and relationships to either generic.
//!
//! They are part of every branch's schema as read ([`with_builtins`]), with fixed ids so that
//! hashes do not change from one read to the next; a load never has to name them.

use super::registry::BranchSchema;
use serde_json::{Map, Value, json};

/// The generic every node kind implements.
pub const NODE: &str = "CoreNode";
/// The generic of groups.
pub const GROUP: &str = "CoreGroup";
/// The relationship of a group that holds its members.
pub const MEMBERS: &str = "members";

fn element(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => unreachable!("a built-in element is an object"),
    }
}

fn core_node() -> Map<String, Value> {
    element(json!({
        "id": "00000000-0000-7000-8000-000000000001",
        "name": "Node", "namespace": "Core",
        "description": "Base Node in Infrahub.", "label": "Node",
        "attributes": [], "relationships": [],
    }))
}

fn core_group() -> Map<String, Value> {
    element(json!({
        "id": "00000000-0000-7000-8000-000000000002",
        "name": "Group", "namespace": "Core",
        "description": "Generic Group Object.", "label": "Group",
        "default_filter": "name__value", "human_friendly_id": ["name__value"],
        "display_label": "{{ label__value }}", "branch": "aware",
        "attributes": [
            {"id": "00000000-0000-7000-8000-000000000011", "name": "name", "kind": "Text",
             "unique": true, "order_weight": 1000},
            {"id": "00000000-0000-7000-8000-000000000012", "name": "label", "kind": "Text",
             "optional": true, "order_weight": 2000},
            {"id": "00000000-0000-7000-8000-000000000013", "name": "description", "kind": "Text",
             "optional": true, "order_weight": 3000},
            {"id": "00000000-0000-7000-8000-000000000014", "name": "group_type", "kind": "Text",
             "optional": true, "default_value": "default", "order_weight": 4000},
        ],
        "relationships": [
            {"id": "00000000-0000-7000-8000-000000000021", "name": MEMBERS, "peer": NODE,
             "cardinality": "many", "optional": true, "identifier": "group_member",
             "kind": "Generic"},
            {"id": "00000000-0000-7000-8000-000000000022", "name": "subscribers", "peer": NODE,
             "cardinality": "many", "optional": true, "identifier": "group_subscriber",
             "kind": "Generic"},
        ],
    }))
}

fn core_standard_group() -> Map<String, Value> {
    element(json!({
        "id": "00000000-0000-7000-8000-000000000003",
        "name": "StandardGroup", "namespace": "Core",
        "description": "Group of nodes of any kind.", "label": "Standard Group",
        "default_filter": "name__value", "human_friendly_id": ["name__value"],
        "branch": "aware", "inherit_from": [GROUP],
        "attributes": [], "relationships": [],
    }))
}

/// `schema` with the built-in kinds it lacks.
pub fn with_builtins(mut schema: BranchSchema) -> BranchSchema {
    for (kind, e) in [(NODE, core_node()), (GROUP, core_group())] {
        schema.generics.entry(kind.to_owned()).or_insert(e);
    }
    schema
        .nodes
        .entry("CoreStandardGroup".to_owned())
        .or_insert_with(core_standard_group);
    schema
}

/// Whether `kind` is a group kind: one that inherits from `CoreGroup`.
pub fn is_group(schema: &BranchSchema, kind: &str) -> bool {
    schema
        .nodes
        .get(kind)
        .and_then(|n| n.get("inherit_from"))
        .and_then(Value::as_array)
        .is_some_and(|g| g.iter().any(|g| g.as_str() == Some(GROUP)))
}
