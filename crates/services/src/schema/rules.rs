//! The rules a merged schema must follow beyond the shape of its elements, with Infrahub's
//! messages where it has one: restricted namespaces, reserved and duplicate names, dropdown
//! choices, generics that exist, peers that exist, and the attribute paths of
//! `human_friendly_id`, `default_filter` and `uniqueness_constraints`.

use super::contract::SchemaFile;
use super::registry::{BranchSchema, items, name, strings};
use serde_json::{Map, Value};

/// Namespaces a loaded schema may not use.
const RESTRICTED_NAMESPACES: &[&str] = &[
    "Account",
    "Branch",
    "Builtin",
    "Core",
    "Deprecated",
    "Diff",
    "Infrahub",
    "Internal",
    "Lineage",
    "Schema",
    "Profile",
    "Template",
];

/// Names no attribute or relationship may have.
const RESERVED_NAMES: &[&str] = &[
    "any",
    "attribute",
    "attributes",
    "attr",
    "attrs",
    "relationship",
    "relationships",
    "rel",
    "rels",
    "save",
    "hfid",
    "process_pools",
    "node_metadata",
];

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Every broken rule of `schema`, in kind order; `loaded` are the kinds the load named (only
/// they are held to the namespace rule: built-in kinds live in restricted namespaces) and
/// `builtin` the kinds a relationship may point to besides the schema's own.
pub(super) fn check(schema: &BranchSchema, loaded: &[String], builtin: &[&str]) -> Vec<String> {
    let mut errors = Vec::new();
    for (kind, e) in schema.nodes.iter().chain(&schema.generics) {
        let ns = e
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let element_name = e.get("name").and_then(Value::as_str).unwrap_or_default();
        if loaded.contains(kind) && RESTRICTED_NAMESPACES.contains(&ns) {
            errors.push(format!(
                "Restricted namespace '{ns}' used on '{element_name}'"
            ));
        }
        if PYTHON_KEYWORDS.contains(&element_name) {
            errors.push(format!(
                "Name can not be set to a reserved keyword '{element_name}' is not allowed."
            ));
        }
        if schema.nodes.contains_key(kind) && schema.generics.contains_key(kind) {
            errors.push(format!("{kind} is defined both as a node and as a generic"));
        }
        fields(kind, e, &mut errors);
        for g in strings(e.get("inherit_from")) {
            if !schema.generics.contains_key(&g) {
                errors.push(format!("{kind} Unable to find the generic {g}"));
            }
        }
        for r in items(e, "relationships") {
            let peer = r.get("peer").and_then(Value::as_str).unwrap_or_default();
            if schema.element(peer).is_none() && !builtin.contains(&peer) {
                errors.push(format!(
                    "Unable to find the schema '{peer}' in the registry"
                ));
            }
        }
        paths(kind, e, schema, &mut errors);
    }
    errors
}

/// Names and choices of the attributes and relationships of one element.
fn fields(kind: &str, e: &Map<String, Value>, errors: &mut Vec<String>) {
    for (list, attribute) in [("attributes", true), ("relationships", false)] {
        for f in items(e, list) {
            let n = name(&f);
            if RESERVED_NAMES.contains(&n.as_str()) {
                errors.push(format!(
                    "{kind}: '{n}' is a reserved name (attribute: '{n}'). Rename this attribute or relationship."
                ));
            }
            if n.contains("__") {
                errors.push(format!(
                    "{kind}: '{n}' cannot be used as an attribute name because it contains '__', which is reserved as the schema path separator."
                ));
            }
            if attribute {
                if PYTHON_KEYWORDS.contains(&n.as_str()) {
                    errors.push(format!(
                        "Python keyword '{n}' cannot be used as an attribute name on '{kind}'"
                    ));
                }
                let attr_kind = f.get("kind").and_then(Value::as_str).unwrap_or_default();
                let choices = f.get("choices").is_some_and(|c| !c.is_null());
                if attr_kind == "Dropdown" && !choices {
                    errors.push(format!(
                        "{kind}.{n}: The property 'choices' is required for kind=Dropdown"
                    ));
                }
                if attr_kind != "Dropdown" && choices {
                    errors.push(format!(
                        "{kind}.{n}: Can only specify 'choices' for kind=Dropdown: {attr_kind}"
                    ));
                }
            }
        }
    }
}

/// Attribute and relationship names given twice in one element of a load (merging would
/// keep only the last).
pub(super) fn duplicates(files: &[SchemaFile]) -> Vec<String> {
    let mut errors = Vec::new();
    for e in files.iter().flat_map(|f| f.generics.iter().chain(&f.nodes)) {
        let mut names: Vec<String> = Vec::new();
        let mut twice: Vec<String> = Vec::new();
        for f in items(e, "attributes")
            .iter()
            .chain(&items(e, "relationships"))
        {
            let n = name(f);
            if names.contains(&n) && !twice.contains(&n) {
                twice.push(n.clone());
            }
            names.push(n);
        }
        if !twice.is_empty() {
            let quoted: Vec<String> = twice.iter().map(|d| format!("'{d}'")).collect();
            errors.push(format!(
                "{}: Names of attributes and relationships must be unique : [{}]",
                super::registry::kind_of(e),
                quoted.join(", ")
            ));
        }
    }
    errors
}

/// The attribute names of `e`, its own and those of its generics; and its relationships of
/// cardinality one.
fn attribute_names(e: &Map<String, Value>, schema: &BranchSchema) -> (Vec<String>, Vec<String>) {
    let mut sources = vec![e.clone()];
    for g in strings(e.get("inherit_from")) {
        if let Some(g) = schema.generics.get(&g) {
            sources.push(g.clone());
        }
    }
    let attributes = sources
        .iter()
        .flat_map(|s| items(s, "attributes"))
        .map(|a| name(&a))
        .collect();
    let one = sources
        .iter()
        .flat_map(|s| items(s, "relationships"))
        .filter(|r| r.get("cardinality").and_then(Value::as_str) == Some("one"))
        .map(|r| name(&r))
        .collect();
    (attributes, one)
}

/// `human_friendly_id` and `uniqueness_constraints` entries are `<attribute>__value` or
/// `<relationship of cardinality one>__…`; `default_filter` is `<attribute>__value`.
fn paths(kind: &str, e: &Map<String, Value>, schema: &BranchSchema, errors: &mut Vec<String>) {
    let (attributes, one) = attribute_names(e, schema);
    let valid = |path: &str, allow_relationship: bool| {
        let mut parts = path.splitn(2, "__");
        let first = parts.next().unwrap_or_default();
        let rest = parts.next();
        (attributes.iter().any(|a| a == first) && rest == Some("value"))
            || (allow_relationship && one.iter().any(|r| r == first))
    };
    for path in strings(e.get("human_friendly_id")) {
        if !valid(&path, true) {
            errors.push(format!(
                "{kind}: human_friendly_id '{path}' is invalid: it must be '<attribute>__value' or start with a relationship of cardinality one"
            ));
        }
    }
    if let Some(filter) = e.get("default_filter").and_then(Value::as_str)
        && !filter.is_empty()
        && !valid(filter, false)
    {
        errors.push(format!(
            "{kind}: default_filter '{filter}' is invalid: it must be '<attribute>__value'"
        ));
    }
    if let Some(Value::Array(constraints)) = e.get("uniqueness_constraints") {
        for c in constraints {
            for path in strings(Some(c)) {
                let relationship = one.contains(&path);
                if !relationship && !valid(&path, true) {
                    errors.push(format!(
                        "{kind}: uniqueness constraint '{path}' is invalid: it must be '<attribute>__value' or a relationship of cardinality one"
                    ));
                }
            }
        }
    }
}
