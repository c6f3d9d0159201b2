//! A branch's schema: its nodes and generics by kind, as loaded (checked JSON objects, each
//! with an `id`). Loading merges into it; reading renders Infrahub's read shape with every
//! default filled in and inherited fields copied from the generics; hashes and diffs compare
//! two of them.

use super::contract::SchemaFile;
use crate::object_store::md5_hex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The nodes and generics of one branch's schema, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BranchSchema {
    /// Node kind → its definition.
    #[serde(default)]
    pub nodes: BTreeMap<String, Map<String, Value>>,
    /// Generic kind → its definition.
    #[serde(default)]
    pub generics: BTreeMap<String, Map<String, Value>>,
}

/// `namespace` + `name`.
pub fn kind_of(e: &Map<String, Value>) -> String {
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
    format!("{}{}", s("namespace"), s("name"))
}

fn absent(e: &Map<String, Value>) -> bool {
    e.get("state").and_then(Value::as_str) == Some("absent")
}

fn new_id() -> Value {
    json!(uuid::Uuid::now_v7().to_string())
}

impl BranchSchema {
    /// Merges loaded files: an element of a new kind is added; one of a known kind has the
    /// keys it gives replaced, and its attributes and relationships merged by name (those it
    /// does not name are kept); `state: absent` removes an element, an attribute or a
    /// relationship. Returns the kinds the files named.
    pub fn merge(&mut self, files: &[SchemaFile]) -> Vec<String> {
        let mut named = Vec::new();
        for file in files {
            for (list, elements) in [
                (&mut self.generics, &file.generics),
                (&mut self.nodes, &file.nodes),
            ] {
                for e in elements {
                    let kind = kind_of(e);
                    named.push(kind.clone());
                    if absent(e) {
                        list.remove(&kind);
                        continue;
                    }
                    let target = list.entry(kind).or_insert_with(|| {
                        let mut m = Map::new();
                        m.insert("id".into(), new_id());
                        m
                    });
                    merge_element(target, e);
                }
            }
        }
        named
    }

    /// The attributes or relationships (`list`) of node `kind`: its own, then those of its
    /// generics (`inherit_from`, in order) that it does not declare itself. For a generic
    /// kind, its own.
    pub fn fields(&self, kind: &str, list: &str) -> Vec<Map<String, Value>> {
        let Some(node) = self.nodes.get(kind) else {
            // A generic has its own.
            return self
                .generics
                .get(kind)
                .map(|g| items(g, list))
                .unwrap_or_default();
        };
        let mut out = items(node, list);
        for g in strings(node.get("inherit_from")) {
            for f in self
                .generics
                .get(&g)
                .map(|g| items(g, list))
                .unwrap_or_default()
            {
                if !out.iter().any(|o| name(o) == name(&f)) {
                    out.push(f);
                }
            }
        }
        out
    }

    /// The node kinds that inherit from generic `kind` (every one for `CoreNode`).
    pub fn used_by(&self, kind: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| {
                kind == super::builtin::NODE
                    || strings(n.get("inherit_from")).iter().any(|g| g == kind)
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The definition of `kind`, node or generic.
    pub fn element(&self, kind: &str) -> Option<&Map<String, Value>> {
        self.nodes.get(kind).or_else(|| self.generics.get(kind))
    }

    /// Hash of each element, by kind (nodes and generics).
    pub fn hashes(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let h = |m: &BTreeMap<String, Map<String, Value>>| {
            m.iter()
                .map(|(k, e)| {
                    (
                        k.clone(),
                        md5_hex(canonical(&Value::Object(e.clone())).as_bytes()),
                    )
                })
                .collect()
        };
        (h(&self.nodes), h(&self.generics))
    }

    /// The hash of the whole schema: MD5 over every (kind, hash) pair in kind order.
    pub fn hash(&self) -> String {
        let (nodes, generics) = self.hashes();
        let mut pairs: Vec<(String, String)> = nodes.into_iter().chain(generics).collect();
        pairs.sort();
        let text: String = pairs.iter().map(|(k, h)| format!("{k}{h}")).collect();
        md5_hex(text.as_bytes())
    }

    /// `{main, nodes: {kind: hash}, generics: {kind: hash}}`.
    pub fn summary(&self) -> Value {
        let (nodes, generics) = self.hashes();
        json!({"main": self.hash(), "nodes": nodes, "generics": generics})
    }

    /// Infrahub's read shape: `{main, nodes, generics, profiles, templates, namespaces}`.
    pub fn render(&self) -> Value {
        let (node_hashes, generic_hashes) = self.hashes();
        let mut used_by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (kind, n) in &self.nodes {
            for g in strings(n.get("inherit_from")) {
                if let Some((g, _)) = self.generics.get_key_value(g.as_str()) {
                    used_by.entry(g.as_str()).or_default().push(kind.clone());
                }
            }
        }
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|(kind, n)| {
                let mut out = render_element(kind, n, &node_hashes[kind]);
                let mut inherited = (Vec::new(), Vec::new());
                for g in strings(n.get("inherit_from")) {
                    if let Some(g) = self.generics.get(&g) {
                        inherited.0.extend(items(g, "attributes"));
                        inherited.1.extend(items(g, "relationships"));
                    }
                }
                for (list, extra, render) in [
                    (
                        "attributes",
                        inherited.0,
                        render_attribute as fn(&Map<String, Value>, &str, bool, usize) -> Value,
                    ),
                    ("relationships", inherited.1, render_relationship),
                ] {
                    let mut rendered: Vec<Value> = items(n, list)
                        .iter()
                        .enumerate()
                        .map(|(i, a)| render(a, kind, false, i))
                        .collect();
                    let own: Vec<String> = items(n, list).iter().map(name).collect();
                    let mut seen = own.clone();
                    for a in &extra {
                        if !seen.contains(&name(a)) {
                            seen.push(name(a));
                            rendered.push(render(a, kind, true, rendered.len()));
                        }
                    }
                    out.insert(list.into(), Value::Array(rendered));
                }
                out.insert("inherit_from".into(), json!(strings(n.get("inherit_from"))));
                for (k, d) in [
                    ("generate_template", json!(false)),
                    ("parent", Value::Null),
                    ("children", Value::Null),
                    ("hierarchy", Value::Null),
                ] {
                    out.entry(k).or_insert(d);
                }
                Value::Object(out)
            })
            .collect();
        let generics: Vec<Value> = self
            .generics
            .iter()
            .map(|(kind, g)| {
                let mut out = render_element(kind, g, &generic_hashes[kind]);
                for (list, render) in [
                    (
                        "attributes",
                        render_attribute as fn(&Map<String, Value>, &str, bool, usize) -> Value,
                    ),
                    ("relationships", render_relationship),
                ] {
                    let rendered: Vec<Value> = items(g, list)
                        .iter()
                        .enumerate()
                        .map(|(i, a)| render(a, kind, false, i))
                        .collect();
                    out.insert(list.into(), Value::Array(rendered));
                }
                out.insert(
                    "used_by".into(),
                    json!(used_by.get(kind.as_str()).cloned().unwrap_or_default()),
                );
                out.entry("hierarchical").or_insert(json!(false));
                out.entry("restricted_namespaces").or_insert(Value::Null);
                Value::Object(out)
            })
            .collect();
        let mut namespaces: Vec<&str> = self
            .nodes
            .values()
            .chain(self.generics.values())
            .filter_map(|e| e.get("namespace").and_then(Value::as_str))
            .collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        json!({
            "main": self.hash(),
            "nodes": nodes,
            "generics": generics,
            "profiles": [],
            "templates": [],
            "namespaces": namespaces.iter().map(|n| json!({"name": n, "user_editable": true})).collect::<Vec<_>>(),
        })
    }
}

/// Replaces the keys `new` gives; merges its attributes and relationships by name.
fn merge_element(target: &mut Map<String, Value>, new: &Map<String, Value>) {
    for (key, value) in new {
        if key == "attributes" || key == "relationships" {
            let mut list: Vec<Map<String, Value>> = items(target, key);
            for item in items(new, key) {
                let n = name(&item);
                let at = list.iter().position(|i| name(i) == n);
                match (at, absent(&item)) {
                    (Some(i), true) => {
                        list.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        for (k, v) in item {
                            list[i].insert(k, v);
                        }
                    }
                    (None, false) => {
                        let mut m = Map::new();
                        m.insert("id".into(), new_id());
                        m.extend(item);
                        list.push(m);
                    }
                }
            }
            target.insert(
                key.clone(),
                Value::Array(list.into_iter().map(Value::Object).collect()),
            );
        } else if key != "id" || !target.contains_key("id") {
            target.insert(key.clone(), value.clone());
        }
    }
}

/// The objects of list `key` of `e`.
pub fn items(e: &Map<String, Value>, key: &str) -> Vec<Map<String, Value>> {
    match e.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_object().cloned()).collect(),
        _ => Vec::new(),
    }
}

/// `name` of an attribute or relationship.
pub(super) fn name(e: &Map<String, Value>) -> String {
    e.get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A list of strings (or empty).
pub(super) fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// With every key a reader expects; given values win over defaults.
fn with_defaults(given: &Map<String, Value>, defaults: &[(&str, Value)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, d) in defaults {
        let v = match given.get(*k) {
            Some(v) if !v.is_null() => v.clone(),
            _ => d.clone(),
        };
        out.insert((*k).to_owned(), v);
    }
    for (k, v) in given {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}

fn render_element(kind: &str, e: &Map<String, Value>, hash: &str) -> Map<String, Value> {
    let label = e.get("name").cloned().unwrap_or(Value::Null);
    let mut out = with_defaults(
        e,
        &[
            ("id", Value::Null),
            ("name", Value::Null),
            ("namespace", Value::Null),
            ("description", Value::Null),
            ("label", label),
            ("branch", json!("aware")),
            ("default_filter", Value::Null),
            ("human_friendly_id", Value::Null),
            ("display_label", Value::Null),
            ("display_labels", Value::Null),
            ("include_in_menu", Value::Null),
            ("menu_placement", Value::Null),
            ("icon", Value::Null),
            ("order_by", Value::Null),
            ("uniqueness_constraints", Value::Null),
            ("documentation", Value::Null),
            ("state", json!("present")),
            ("generate_profile", json!(true)),
        ],
    );
    out.insert("hash".into(), json!(hash));
    out.insert("kind".into(), json!(kind));
    out
}

fn render_attribute(a: &Map<String, Value>, _kind: &str, inherited: bool, i: usize) -> Value {
    let mut out = with_defaults(
        a,
        &[
            ("id", Value::Null),
            ("name", Value::Null),
            ("kind", Value::Null),
            ("enum", Value::Null),
            ("computed_attribute", Value::Null),
            ("choices", Value::Null),
            ("regex", Value::Null),
            ("max_length", Value::Null),
            ("min_length", Value::Null),
            ("label", Value::Null),
            ("description", Value::Null),
            ("read_only", json!(false)),
            ("unique", json!(false)),
            ("optional", json!(false)),
            ("branch", Value::Null),
            ("order_weight", json!((i as u64 + 1) * 1000)),
            ("ordered", json!(true)),
            ("default_value", Value::Null),
            ("state", json!("present")),
            ("allow_override", json!("any")),
            ("deprecation", Value::Null),
            ("display", json!("default")),
            ("parameters", Value::Null),
        ],
    );
    out.insert("inherited".into(), json!(inherited));
    Value::Object(out)
}

fn render_relationship(r: &Map<String, Value>, kind: &str, inherited: bool, i: usize) -> Value {
    let peer = r.get("peer").and_then(Value::as_str).unwrap_or_default();
    let mut pair = [kind.to_lowercase(), peer.to_lowercase()];
    pair.sort();
    let mut out = with_defaults(
        r,
        &[
            ("id", Value::Null),
            ("name", Value::Null),
            ("peer", Value::Null),
            ("kind", json!("Generic")),
            ("label", Value::Null),
            ("description", Value::Null),
            ("identifier", json!(pair.join("__"))),
            ("cardinality", json!("many")),
            ("min_count", json!(0)),
            ("max_count", json!(0)),
            ("common_parent", Value::Null),
            ("common_relatives", Value::Null),
            ("order_weight", json!((i as u64 + 1) * 1000)),
            ("optional", json!(true)),
            ("branch", Value::Null),
            ("direction", json!("bidirectional")),
            ("hierarchical", Value::Null),
            ("state", json!("present")),
            ("on_delete", Value::Null),
            ("allow_override", json!("any")),
            ("read_only", json!(false)),
            ("deprecation", Value::Null),
            ("display", json!("default")),
        ],
    );
    out.insert("inherited".into(), json!(inherited));
    Value::Object(out)
}

/// JSON with every object's keys sorted: the same text for the same value, whatever order
/// its keys were given in.
pub(super) fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// What changed from `old` to `new`: Infrahub's `SchemaDiff`
/// (`{added, changed, removed}` by kind, each `{added, changed, removed}` by field, with
/// attributes and relationships by name) and the `changed_elements` of its event.
pub fn diff(old: &BranchSchema, new: &BranchSchema) -> (Value, Value) {
    let empty = || json!({"added": {}, "changed": {}, "removed": {}});
    let (mut added, mut changed, mut removed) = (Map::new(), Map::new(), Map::new());
    let mut changed_fields = Map::new();
    let kinds = |s: &BranchSchema| -> BTreeMap<String, Map<String, Value>> {
        s.nodes
            .iter()
            .chain(&s.generics)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    };
    let (old_kinds, new_kinds) = (kinds(old), kinds(new));
    for (kind, e) in &new_kinds {
        match old_kinds.get(kind) {
            None => {
                added.insert(kind.clone(), empty());
            }
            Some(before) if before != e => {
                let (d, fields) = element_diff(before, e);
                changed.insert(kind.clone(), d);
                changed_fields.insert(kind.clone(), json!(fields));
            }
            Some(_) => {}
        }
    }
    for kind in old_kinds.keys().filter(|k| !new_kinds.contains_key(*k)) {
        removed.insert(kind.clone(), empty());
    }
    let elements = json!({
        "added_kinds": added.keys().collect::<Vec<_>>(),
        "removed_kinds": removed.keys().collect::<Vec<_>>(),
        "changed_fields": changed_fields,
    });
    (
        json!({"added": added, "changed": changed, "removed": removed}),
        elements,
    )
}

/// One kind's changes, and the names of the fields, attributes and relationships changed.
fn element_diff(old: &Map<String, Value>, new: &Map<String, Value>) -> (Value, Vec<String>) {
    let (mut added, mut changed, mut removed) = (Map::new(), Map::new(), Map::new());
    let mut names = Vec::new();
    for (key, v) in new {
        if key == "attributes" || key == "relationships" {
            continue;
        }
        match old.get(key) {
            None => {
                added.insert(key.clone(), Value::Null);
            }
            Some(o) if o != v => {
                changed.insert(key.clone(), Value::Null);
            }
            Some(_) => continue,
        }
        names.push(key.clone());
    }
    for key in old
        .keys()
        .filter(|k| !new.contains_key(*k) && *k != "attributes" && *k != "relationships")
    {
        removed.insert(key.clone(), Value::Null);
        names.push(key.clone());
    }
    for list in ["attributes", "relationships"] {
        let before: BTreeMap<String, Map<String, Value>> = items(old, list)
            .into_iter()
            .map(|i| (name(&i), i))
            .collect();
        let after: BTreeMap<String, Map<String, Value>> = items(new, list)
            .into_iter()
            .map(|i| (name(&i), i))
            .collect();
        let (mut a, mut c, mut r) = (Map::new(), Map::new(), Map::new());
        for (n, i) in &after {
            match before.get(n) {
                None => {
                    a.insert(n.clone(), Value::Null);
                }
                Some(b) if b != i => {
                    c.insert(n.clone(), Value::Null);
                }
                Some(_) => continue,
            }
            names.push(n.clone());
        }
        for n in before.keys().filter(|n| !after.contains_key(*n)) {
            r.insert(n.clone(), Value::Null);
            names.push(n.clone());
        }
        if !(a.is_empty() && c.is_empty() && r.is_empty()) {
            changed.insert(list.into(), json!({"added": a, "changed": c, "removed": r}));
        }
    }
    names.sort();
    names.dedup();
    (
        json!({"added": added, "changed": changed, "removed": removed}),
        names,
    )
}

/// `theirs` applied on `ours`: each kind (node or generic) that `theirs` changed since `base`
/// — added, changed or removed — takes its value from `theirs`; every other kind keeps its
/// value in `ours`.
pub fn three_way(base: &BranchSchema, theirs: &BranchSchema, ours: &BranchSchema) -> BranchSchema {
    type Kinds = BTreeMap<String, Map<String, Value>>;
    let pick = |base: &Kinds, theirs: &Kinds, ours: &Kinds| -> Kinds {
        let mut out = ours.clone();
        for kind in base.keys().chain(theirs.keys()) {
            if base.get(kind) != theirs.get(kind) {
                match theirs.get(kind) {
                    Some(e) => out.insert(kind.clone(), e.clone()),
                    None => out.remove(kind),
                };
            }
        }
        out
    };
    BranchSchema {
        nodes: pick(&base.nodes, &theirs.nodes, &ours.nodes),
        generics: pick(&base.generics, &theirs.generics, &ours.generics),
    }
}
