//! The shape of a schema load body, checked before anything is looked up: which keys each
//! element may have, their types, the naming rules and the enumerations — Infrahub's write
//! contract. A failure names where it is, as Infrahub's request validation does:
//! `loc` = `["body", "schemas", 0, "nodes", 1, "attributes", 0, "<kind>", "name"]` (an
//! attribute's kind is part of the path), `msg` = the rule, `input` = the value.
//!
//! Keys that only a schema read back carries (`kind`, `hash`, `inherited`, …) are accepted and
//! dropped with a warning, so what `GET /api/schema` returns can be loaded again.

use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// One rule broken at one place of the body.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractError {
    /// Where: `"body"`, `"schemas"`, indexes and keys.
    pub loc: Vec<Value>,
    /// The rule.
    pub msg: String,
    /// The value that broke it.
    pub input: Value,
}

impl ContractError {
    /// As Infrahub answers it: `{"type", "loc", "msg", "input", "ctx": {"reason"}}`.
    pub fn to_json(&self) -> Value {
        json!({
            "type": "value_error",
            "loc": self.loc,
            "msg": self.msg,
            "input": self.input,
            "ctx": {"reason": self.msg},
        })
    }
}

/// The attribute kinds a schema may use.
pub const ATTRIBUTE_KINDS: &[&str] = &[
    "ID",
    "Dropdown",
    "Text",
    "TextArea",
    "DateTime",
    "Email",
    "Password",
    "HashedPassword",
    "URL",
    "File",
    "MacAddress",
    "Color",
    "Number",
    "NumberPool",
    "Bandwidth",
    "IPHost",
    "IPNetwork",
    "IPAddress",
    "Boolean",
    "Checkbox",
    "List",
    "JSON",
    "Any",
];

/// How a value is checked.
#[derive(Clone, Copy)]
enum Rule {
    /// Any JSON value.
    Any,
    Str,
    Bool,
    Int,
    /// A string matching a pattern, with a length range.
    Name(Pattern, usize, usize),
    /// A string of at most this many characters.
    MaxLen(usize),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A list of strings.
    Strings,
    /// A list of lists of strings.
    StringLists,
    /// A JSON object (free form).
    Object,
    /// A list of JSON objects (free form).
    Objects,
}

/// The naming patterns of Infrahub's schema.
#[derive(Clone, Copy)]
enum Pattern {
    /// `^[A-Z][a-zA-Z0-9]+$`: node names, kinds.
    Node,
    /// `^[A-Z][a-z0-9]+$`: namespaces.
    Namespace,
    /// `^[a-z0-9\_]+$`: attribute and relationship names, identifiers.
    Field,
    /// `^[a-z0-9\_]*$`: `default_filter`.
    FieldOrEmpty,
}

impl Pattern {
    fn text(self) -> &'static str {
        match self {
            Pattern::Node => "^[A-Z][a-zA-Z0-9]+$",
            Pattern::Namespace => "^[A-Z][a-z0-9]+$",
            Pattern::Field => "^[a-z0-9\\_]+$",
            Pattern::FieldOrEmpty => "^[a-z0-9\\_]*$",
        }
    }

    fn matches(self, s: &str) -> bool {
        let field = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        let mut chars = s.chars();
        match self {
            Pattern::Node => {
                chars.next().is_some_and(|c| c.is_ascii_uppercase())
                    && s.len() > 1
                    && chars.all(|c| c.is_ascii_alphanumeric())
            }
            Pattern::Namespace => {
                chars.next().is_some_and(|c| c.is_ascii_uppercase())
                    && s.len() > 1
                    && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            }
            Pattern::Field => !s.is_empty() && s.chars().all(field),
            Pattern::FieldOrEmpty => s.chars().all(field),
        }
    }
}

const BRANCH: &[&str] = &["aware", "agnostic", "local"];
const STATE: &[&str] = &["present", "absent"];
const CARDINALITY: &[&str] = &["one", "many"];
const DIRECTION: &[&str] = &["bidirectional", "outbound", "inbound"];
const REL_KIND: &[&str] = &[
    "Generic",
    "Attribute",
    "Component",
    "Parent",
    "Group",
    "Hierarchy",
    "Profile",
    "Template",
];
const ON_DELETE: &[&str] = &["no-action", "cascade"];
const ALLOW_OVERRIDE: &[&str] = &["none", "any"];
const DISPLAY: &[&str] = &["default", "extra"];

const NODE_NAME: Rule = Rule::Name(Pattern::Node, 2, 32);
const NAMESPACE: Rule = Rule::Name(Pattern::Namespace, 3, 64);
const FIELD_NAME: Rule = Rule::Name(Pattern::Field, 3, 64);

/// Keys of a node or a generic, with their rules; `true` when required.
const ELEMENT_KEYS: &[(&str, Rule, bool)] = &[
    ("id", Rule::Str, false),
    ("name", NODE_NAME, true),
    ("namespace", NAMESPACE, true),
    ("description", Rule::MaxLen(128), false),
    ("label", Rule::MaxLen(64), false),
    ("branch", Rule::OneOf(BRANCH), false),
    (
        "default_filter",
        Rule::Name(Pattern::FieldOrEmpty, 0, 64),
        false,
    ),
    ("human_friendly_id", Rule::Strings, false),
    ("display_label", Rule::Str, false),
    ("display_labels", Rule::Strings, false),
    ("include_in_menu", Rule::Bool, false),
    ("menu_placement", Rule::Str, false),
    ("icon", Rule::Str, false),
    ("order_by", Rule::Strings, false),
    ("uniqueness_constraints", Rule::StringLists, false),
    ("documentation", Rule::Str, false),
    ("state", Rule::OneOf(STATE), false),
    ("attributes", Rule::Objects, false),
    ("relationships", Rule::Objects, false),
    ("generate_profile", Rule::Bool, false),
];

/// Keys only nodes have.
const NODE_ONLY_KEYS: &[(&str, Rule, bool)] = &[
    ("inherit_from", Rule::Strings, false),
    ("generate_template", Rule::Bool, false),
    ("parent", Rule::Str, false),
    ("children", Rule::Str, false),
];

/// Keys only generics have.
const GENERIC_ONLY_KEYS: &[(&str, Rule, bool)] = &[
    ("hierarchical", Rule::Bool, false),
    ("restricted_namespaces", Rule::Strings, false),
];

const ATTRIBUTE_KEYS: &[(&str, Rule, bool)] = &[
    ("id", Rule::Str, false),
    ("name", FIELD_NAME, true),
    ("kind", Rule::Any, true),
    ("enum", Rule::Any, false),
    ("computed_attribute", Rule::Object, false),
    ("choices", Rule::Objects, false),
    ("regex", Rule::Str, false),
    ("max_length", Rule::Int, false),
    ("min_length", Rule::Int, false),
    ("label", Rule::MaxLen(64), false),
    ("description", Rule::MaxLen(128), false),
    ("read_only", Rule::Bool, false),
    ("unique", Rule::Bool, false),
    ("optional", Rule::Bool, false),
    ("branch", Rule::OneOf(BRANCH), false),
    ("order_weight", Rule::Int, false),
    ("ordered", Rule::Bool, false),
    ("default_value", Rule::Any, false),
    ("state", Rule::OneOf(STATE), false),
    ("allow_override", Rule::OneOf(ALLOW_OVERRIDE), false),
    ("deprecation", Rule::MaxLen(128), false),
    ("display", Rule::OneOf(DISPLAY), false),
    ("parameters", Rule::Object, false),
];

const RELATIONSHIP_KEYS: &[(&str, Rule, bool)] = &[
    ("id", Rule::Str, false),
    ("name", FIELD_NAME, true),
    ("peer", Rule::Name(Pattern::Node, 1, 128), true),
    ("kind", Rule::OneOf(REL_KIND), false),
    ("label", Rule::MaxLen(64), false),
    ("description", Rule::MaxLen(128), false),
    ("identifier", Rule::Name(Pattern::Field, 1, 128), false),
    ("cardinality", Rule::OneOf(CARDINALITY), false),
    ("min_count", Rule::Int, false),
    ("max_count", Rule::Int, false),
    ("common_parent", Rule::Str, false),
    ("common_relatives", Rule::Strings, false),
    ("order_weight", Rule::Int, false),
    ("optional", Rule::Bool, false),
    ("branch", Rule::OneOf(BRANCH), false),
    ("direction", Rule::OneOf(DIRECTION), false),
    ("on_delete", Rule::OneOf(ON_DELETE), false),
    ("allow_override", Rule::OneOf(ALLOW_OVERRIDE), false),
    ("read_only", Rule::Bool, false),
    ("deprecation", Rule::MaxLen(128), false),
    ("display", Rule::OneOf(DISPLAY), false),
    ("state", Rule::OneOf(STATE), false),
];

/// Read-only keys accepted (and dropped) per element.
const READ_ONLY_ROOT: &[&str] = &["main", "namespaces", "profiles", "templates"];
const READ_ONLY_NODE: &[&str] = &["hash", "kind", "hierarchy"];
const READ_ONLY_GENERIC: &[&str] = &["hash", "kind", "used_by"];
const READ_ONLY_ATTRIBUTE: &[&str] = &["inherited"];
const READ_ONLY_RELATIONSHIP: &[&str] = &["hierarchical", "inherited"];

/// One schema file of a load, its elements as checked JSON objects (read-only keys dropped).
#[derive(Debug, Clone, Default)]
pub struct SchemaFile {
    /// Nodes.
    pub nodes: Vec<Map<String, Value>>,
    /// Generics.
    pub generics: Vec<Map<String, Value>>,
}

/// What passed the contract: the files, and the read-only keys that were dropped.
#[derive(Debug, Default)]
pub struct Checked {
    /// The files, in order.
    pub files: Vec<SchemaFile>,
    /// Names of read-only keys given (and ignored).
    pub ignored: BTreeSet<String>,
}

/// Checks a load body `{"schemas": [ … ]}`.
pub fn check(body: &Value) -> Result<Checked, Vec<ContractError>> {
    let mut c = Checker::default();
    let mut out = Checked::default();
    let loc = vec![json!("body")];
    let Some(root) = c.object(body, &loc) else {
        return Err(c.errors);
    };
    for key in root.keys().filter(|k| *k != "schemas") {
        c.unknown(&loc, key, &root[key]);
    }
    let loc = at(&loc, "schemas");
    match root.get("schemas") {
        None => c.fail(&loc, "Field required", body.clone()),
        Some(Value::Array(files)) => {
            for (i, file) in files.iter().enumerate() {
                if let Some(f) = c.file(file, &at(&loc, i)) {
                    out.files.push(f);
                }
            }
        }
        Some(other) => c.fail(&loc, "Input should be a valid list", other.clone()),
    }
    out.ignored = c.ignored;
    if c.errors.is_empty() {
        Ok(out)
    } else {
        Err(c.errors)
    }
}

fn at(loc: &[Value], key: impl Into<Value>) -> Vec<Value> {
    let mut l = loc.to_vec();
    l.push(key.into());
    l
}

#[derive(Default)]
struct Checker {
    errors: Vec<ContractError>,
    ignored: BTreeSet<String>,
}

impl Checker {
    fn fail(&mut self, loc: &[Value], msg: impl Into<String>, input: Value) {
        self.errors.push(ContractError {
            loc: loc.to_vec(),
            msg: msg.into(),
            input,
        });
    }

    fn unknown(&mut self, loc: &[Value], key: &str, input: &Value) {
        self.fail(
            &at(loc, key),
            "Unknown field, it is not part of the schema",
            input.clone(),
        );
    }

    fn object<'v>(&mut self, v: &'v Value, loc: &[Value]) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.fail(loc, "Input should be a valid dictionary", other.clone());
                None
            }
        }
    }

    fn file(&mut self, v: &Value, loc: &[Value]) -> Option<SchemaFile> {
        let m = self.object(v, loc)?;
        let before = self.errors.len();
        let mut file = SchemaFile::default();
        match m.get("version") {
            None => self.fail(&at(loc, "version"), "Field required", v.clone()),
            Some(Value::String(_)) => {}
            Some(other) => self.fail(
                &at(loc, "version"),
                "Input should be a valid string",
                other.clone(),
            ),
        }
        for (key, value) in m {
            match key.as_str() {
                "version" => {}
                "nodes" | "generics" => {
                    let node = key == "nodes";
                    let Some(list) = self.list(value, &at(loc, key.as_str())) else {
                        continue;
                    };
                    for (i, e) in list.iter().enumerate() {
                        if let Some(e) = self.element(e, &at(&at(loc, key.as_str()), i), node) {
                            if node {
                                file.nodes.push(e);
                            } else {
                                file.generics.push(e);
                            }
                        }
                    }
                }
                // Extensions of existing kinds are not supported yet: refused by name
                // rather than ignored.
                "extensions" if value.is_null() => {}
                k if READ_ONLY_ROOT.contains(&k) => {
                    self.ignored.insert(k.to_owned());
                }
                _ => self.unknown(loc, key, value),
            }
        }
        (self.errors.len() == before).then_some(file)
    }

    fn list<'v>(&mut self, v: &'v Value, loc: &[Value]) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            other => {
                self.fail(loc, "Input should be a valid list", other.clone());
                None
            }
        }
    }

    fn element(&mut self, v: &Value, loc: &[Value], node: bool) -> Option<Map<String, Value>> {
        let m = self.object(v, loc)?;
        let before = self.errors.len();
        let (only, read_only) = if node {
            (NODE_ONLY_KEYS, READ_ONLY_NODE)
        } else {
            (GENERIC_ONLY_KEYS, READ_ONLY_GENERIC)
        };
        let keys: Vec<_> = ELEMENT_KEYS.iter().chain(only).copied().collect();
        let mut out = self.keys(m, loc, &keys, read_only);
        for (list, item_keys, item_read_only) in [
            ("attributes", ATTRIBUTE_KEYS, READ_ONLY_ATTRIBUTE),
            ("relationships", RELATIONSHIP_KEYS, READ_ONLY_RELATIONSHIP),
        ] {
            let Some(Value::Array(items)) = m.get(list) else {
                continue;
            };
            let mut checked = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let item_loc = at(&at(loc, list), i);
                let Some(im) = self.object(item, &item_loc) else {
                    continue;
                };
                let item_loc = if list == "attributes" {
                    match im.get("kind") {
                        Some(Value::String(k)) if ATTRIBUTE_KINDS.contains(&k.as_str()) => {
                            at(&item_loc, k.as_str())
                        }
                        Some(Value::String(k)) => {
                            let expected: Vec<String> =
                                ATTRIBUTE_KINDS.iter().map(|k| format!("'{k}'")).collect();
                            self.fail(
                                &item_loc,
                                format!(
                                    "Input tag '{k}' found using 'kind' does not match any of the expected tags: {}",
                                    expected.join(", ")
                                ),
                                item.clone(),
                            );
                            continue;
                        }
                        _ => {
                            self.fail(
                                &item_loc,
                                "Unable to extract tag using discriminator 'kind'",
                                item.clone(),
                            );
                            continue;
                        }
                    }
                } else {
                    item_loc
                };
                checked.push(Value::Object(self.keys(
                    im,
                    &item_loc,
                    item_keys,
                    item_read_only,
                )));
            }
            out.insert(list.to_owned(), Value::Array(checked));
        }
        (self.errors.len() == before).then_some(out)
    }

    /// Checks the keys of `m` against `keys`; the known keys, read-only ones dropped.
    fn keys(
        &mut self,
        m: &Map<String, Value>,
        loc: &[Value],
        keys: &[(&str, Rule, bool)],
        read_only: &[&str],
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, rule, required) in keys {
            match m.get(*key) {
                None if *required => self.fail(&at(loc, *key), "Field required", json!(m)),
                None => {}
                Some(v) => {
                    self.value(v, &at(loc, *key), *rule);
                    out.insert((*key).to_owned(), v.clone());
                }
            }
        }
        for (key, v) in m {
            if keys.iter().any(|(k, _, _)| k == key) {
                continue;
            }
            if read_only.contains(&key.as_str()) {
                self.ignored.insert(key.clone());
            } else {
                self.unknown(loc, key, v);
            }
        }
        out
    }

    fn value(&mut self, v: &Value, loc: &[Value], rule: Rule) {
        // `null` is "not given" for every optional key.
        if v.is_null() {
            return;
        }
        let string = |c: &mut Self| -> Option<String> {
            match v {
                Value::String(s) => Some(s.clone()),
                _ => {
                    c.fail(loc, "Input should be a valid string", v.clone());
                    None
                }
            }
        };
        match rule {
            Rule::Any => {}
            Rule::Str => {
                string(self);
            }
            Rule::Bool if !v.is_boolean() => {
                self.fail(loc, "Input should be a valid boolean", v.clone())
            }
            Rule::Int if !(v.is_i64() || v.is_u64()) => {
                self.fail(loc, "Input should be a valid integer", v.clone())
            }
            Rule::Bool | Rule::Int => {}
            Rule::Name(p, min, max) => {
                let Some(s) = string(self) else { return };
                let n = s.chars().count();
                if n < min {
                    let unit = if min == 1 { "character" } else { "characters" };
                    self.fail(
                        loc,
                        format!("String should have at least {min} {unit}"),
                        v.clone(),
                    );
                } else if n > max {
                    self.fail(
                        loc,
                        format!("String should have at most {max} characters"),
                        v.clone(),
                    );
                } else if !p.matches(&s) {
                    self.fail(
                        loc,
                        format!("String should match pattern '{}'", p.text()),
                        v.clone(),
                    );
                }
            }
            Rule::MaxLen(max) => {
                if let Some(s) = string(self)
                    && s.chars().count() > max
                {
                    self.fail(
                        loc,
                        format!("String should have at most {max} characters"),
                        v.clone(),
                    );
                }
            }
            Rule::OneOf(values) => {
                if let Some(s) = string(self)
                    && !values.contains(&s.as_str())
                {
                    self.fail(
                        loc,
                        format!("Input should be {}", one_of(values)),
                        v.clone(),
                    );
                }
            }
            Rule::Strings => self.strings(v, loc),
            Rule::StringLists => match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.strings(item, &at(loc, i));
                    }
                }
                _ => self.fail(loc, "Input should be a valid list", v.clone()),
            },
            Rule::Object if !v.is_object() => {
                self.fail(loc, "Input should be a valid dictionary", v.clone())
            }
            Rule::Object => {}
            Rule::Objects => match v {
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if !item.is_object() {
                            self.fail(
                                &at(loc, i),
                                "Input should be a valid dictionary",
                                item.clone(),
                            );
                        }
                    }
                }
                _ => self.fail(loc, "Input should be a valid list", v.clone()),
            },
        }
    }

    fn strings(&mut self, v: &Value, loc: &[Value]) {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        self.fail(&at(loc, i), "Input should be a valid string", item.clone());
                    }
                }
            }
            _ => self.fail(loc, "Input should be a valid list", v.clone()),
        }
    }
}

/// `'a', 'b' or 'c'`, as pydantic lists the values of an enumeration.
fn one_of(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(body: Value) -> Vec<(Vec<Value>, String)> {
        check(&body)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.loc, e.msg))
            .collect()
    }

    #[test]
    fn names_kinds_and_unknown_keys_are_refused_where_they_are() {
        let got = errors(json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "widget", "namespace": "Test"},
            {"name": "Widget", "namespace": "TEst", "attributes": [
                {"name": "ab", "kind": "Text"},
                {"name": "size", "kind": "NotAKind"}
            ], "not_a_field": 1}
        ]}]}));
        assert_eq!(
            got,
            vec![
                (
                    vec![
                        json!("body"),
                        json!("schemas"),
                        json!(0),
                        json!("nodes"),
                        json!(0),
                        json!("name")
                    ],
                    "String should match pattern '^[A-Z][a-zA-Z0-9]+$'".to_owned()
                ),
                (
                    vec![
                        json!("body"),
                        json!("schemas"),
                        json!(0),
                        json!("nodes"),
                        json!(1),
                        json!("namespace")
                    ],
                    "String should match pattern '^[A-Z][a-z0-9]+$'".to_owned()
                ),
                (
                    vec![
                        json!("body"),
                        json!("schemas"),
                        json!(0),
                        json!("nodes"),
                        json!(1),
                        json!("not_a_field")
                    ],
                    "Unknown field, it is not part of the schema".to_owned()
                ),
                (
                    vec![
                        json!("body"),
                        json!("schemas"),
                        json!(0),
                        json!("nodes"),
                        json!(1),
                        json!("attributes"),
                        json!(0),
                        json!("Text"),
                        json!("name")
                    ],
                    "String should have at least 3 characters".to_owned()
                ),
                (
                    vec![
                        json!("body"),
                        json!("schemas"),
                        json!(0),
                        json!("nodes"),
                        json!(1),
                        json!("attributes"),
                        json!(1)
                    ],
                    format!(
                        "Input tag 'NotAKind' found using 'kind' does not match any of the expected tags: {}",
                        ATTRIBUTE_KINDS
                            .iter()
                            .map(|k| format!("'{k}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                ),
            ]
        );
    }

    #[test]
    fn a_missing_version_and_enumerations_are_refused() {
        let got = errors(json!({"schemas": [{"nodes": [
            {"name": "Widget", "namespace": "Test", "branch": "everywhere",
             "relationships": [{"name": "site", "peer": "TestSite", "cardinality": "several"}]}
        ]}]}));
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].1, "Field required");
        assert_eq!(got[1].1, "Input should be 'aware', 'agnostic' or 'local'");
        assert_eq!(got[2].1, "Input should be 'one' or 'many'");
    }

    #[test]
    fn read_only_keys_are_dropped_with_a_note() {
        let checked = check(
            &json!({"schemas": [{"version": "1.0", "main": "x", "nodes": [
                {"name": "Widget", "namespace": "Test", "kind": "TestWidget", "hash": "h",
                 "attributes": [{"name": "size", "kind": "Number", "inherited": false}]}
            ]}]}),
        )
        .unwrap();
        assert_eq!(
            checked.ignored.into_iter().collect::<Vec<_>>(),
            ["hash", "inherited", "kind", "main"]
        );
        let node = &checked.files[0].nodes[0];
        assert!(!node.contains_key("kind") && !node.contains_key("hash"));
        assert_eq!(
            node["attributes"][0],
            json!({"name": "size", "kind": "Number"})
        );
    }
}
