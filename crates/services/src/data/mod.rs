//! Nodes of the kinds a loaded schema declares ([`crate::schema`]): create, update, delete and
//! list, checked against the schema, each change committed with its
//! `infrahub.node.created|updated|deleted` event (Infrahub's changelog: attributes with
//! `value`, `value_previous` and the action, relationships with their peer) in one
//! transaction. A save that changes nothing commits nothing.
//!
//! Data lives on branches ([`view`]): a branch sees the default branch as of its
//! `branched_from` plus its own changes; [`merge`] carries a branch's changes to the default
//! branch, [`diff`] tells what they are and where both sides changed the same property.
//! Nodes are stored as the store's generic nodes (on the default branch: `kind`, `name` = the
//! value of the kind's one unique attribute or the id, `data` = `{attributes,
//! relationships}`); lists are filtered in memory. A change takes the locks `data/<kind>` of
//! its kind and of the kinds its relationships point to, which keeps `unique` attributes
//! unique and the two sides of a relationship consistent.

pub mod diff;
mod event;
mod groups;
pub mod merge;
mod view;

pub use view::{get, list};

use crate::schema::builtin;
use crate::schema::registry::BranchSchema;
use crate::{Caller, Services};
use event::node_event;
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::{Error, ErrorKind, Node, RelatedNode, format_timestamp, now};
use infrastream_store::Commit;
use serde_json::{Map, Value, json};

/// Where a data change runs: the services, who asks, on which branch, against which schema.
#[derive(Clone, Copy)]
pub struct At<'a> {
    /// The services.
    pub services: &'a Services,
    /// Who asks.
    pub caller: &'a Caller,
    /// The request's branch.
    pub branch: &'a str,
    /// The branch's schema.
    pub schema: &'a BranchSchema,
}

/// A node of a schema-defined kind.
#[derive(Debug, Clone, PartialEq)]
pub struct DataNode {
    /// Its id (UUID).
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Attribute name → `{"value", "updated_at", "is_default"}`.
    pub attributes: Map<String, Value>,
    /// Relationship name → peer id (cardinality one) or list of peer ids.
    pub relationships: Map<String, Value>,
}

impl DataNode {
    pub(crate) fn from_node(n: Node) -> Self {
        let part = |k: &str| {
            n.data
                .get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        Self {
            attributes: part("attributes"),
            relationships: part("relationships"),
            id: n.id,
            kind: n.kind,
        }
    }

    /// As stored. Its `name` (unique per kind in the store) is `unique:<value>` of the kind's
    /// one `unique` attribute when it has exactly one and a value, else `id:<id>`: the store
    /// then keeps that attribute unique within the commit's transaction.
    fn to_node(&self, schema: &BranchSchema) -> Node {
        Node {
            id: self.id.clone(),
            kind: self.kind.clone(),
            name: self.store_name(schema),
            data: json!({"attributes": self.attributes, "relationships": self.relationships}),
        }
    }

    /// Its name in the store on the default branch (see [`DataNode::to_node`]).
    fn store_name(&self, schema: &BranchSchema) -> String {
        match store_unique(schema, &self.kind).map(|a| self.value(&a)) {
            Some(v) if !v.is_null() => format!("unique:{}", text(&v)),
            _ => format!("id:{}", self.id),
        }
    }

    /// The value of attribute `name` (null when unset).
    pub fn value(&self, name: &str) -> Value {
        self.attributes
            .get(name)
            .and_then(|a| a.get("value"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Peer ids of relationship `name`.
    pub fn peers(&self, name: &str) -> Vec<String> {
        match self.relationships.get(name) {
            Some(Value::String(id)) => vec![id.clone()],
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Its human friendly id, from the kind's `human_friendly_id` (`<attribute>__value` paths).
    pub fn hfid(&self, schema: &BranchSchema) -> Option<Vec<String>> {
        let e = schema.nodes.get(&self.kind)?;
        let paths = e.get("human_friendly_id")?.as_array()?;
        Some(
            paths
                .iter()
                .filter_map(Value::as_str)
                .map(|p| text(&self.value(p.split("__").next().unwrap_or_default())))
                .collect(),
        )
    }

    /// Its display label: the kind's `display_label` with each `{{ <attribute>__value }}`
    /// replaced, else its hfid joined by spaces, else `<Kind> <id>`.
    pub fn display_label(&self, schema: &BranchSchema) -> String {
        if let Some(template) = schema
            .nodes
            .get(&self.kind)
            .and_then(|e| e.get("display_label"))
            .and_then(Value::as_str)
        {
            let mut out = String::new();
            let mut rest = template;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let Some(end) = rest[start..].find("}}") else {
                    break;
                };
                let expr = rest[start + 2..start + end].trim();
                out.push_str(&text(
                    &self.value(expr.split("__").next().unwrap_or_default()),
                ));
                rest = &rest[start + end + 2..];
            }
            out.push_str(rest);
            return out;
        }
        match self.hfid(schema) {
            Some(h) if !h.is_empty() => h.join(" "),
            _ => format!("{} {}", self.kind, self.id),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Why a data request failed (the message is what the client sees).
pub type DataError = Error;

fn invalid(message: impl Into<String>) -> DataError {
    Error::new(ErrorKind::InvalidInput, message)
}

/// The node designated by `data` (`id`, or `hfid`) among the nodes of `kind`.
async fn designated(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<DataNode, DataError> {
    let schema = at.schema;
    // A node kind, or a generic: the nodes of every kind inheriting from it.
    let kinds = if schema.nodes.contains_key(kind) {
        vec![kind.to_owned()]
    } else {
        schema.used_by(kind)
    };
    if let Some(id) = data.get("id").and_then(Value::as_str) {
        return get(at.services, schema, at.branch, id)
            .await?
            .filter(|n| kinds.contains(&n.kind))
            .ok_or_else(|| Error::not_found(format!("{kind} {id} not found")));
    }
    if let Some(Value::Array(hfid)) = data.get("hfid") {
        let wanted: Vec<String> = hfid.iter().map(text).collect();
        for k in &kinds {
            if let Some(n) = list(at.services, schema, at.branch, k)
                .await?
                .into_iter()
                .find(|n| n.hfid(schema).as_ref() == Some(&wanted))
            {
                return Ok(n);
            }
        }
        return Err(Error::not_found(format!(
            "{kind} {} not found",
            wanted.join(" ")
        )));
    }
    Err(invalid(format!("id or hfid is required for {kind}")))
}

/// The value given for an attribute of `attr_kind`, checked.
fn attribute_value(
    kind: &str,
    attr: &Map<String, Value>,
    given: &Value,
) -> Result<Value, DataError> {
    let name = attr.get("name").and_then(Value::as_str).unwrap_or_default();
    let attr_kind = attr.get("kind").and_then(Value::as_str).unwrap_or("Text");
    let bad = |what: &str| invalid(format!("{kind}.{name}: {given} is not a valid {what}"));
    match (attr_kind, given) {
        (_, Value::Null) => Ok(Value::Null),
        ("Number" | "NumberPool" | "Bandwidth", Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(given.clone())
        }
        ("Number" | "NumberPool" | "Bandwidth", _) => Err(bad("number")),
        ("Boolean" | "Checkbox", Value::Bool(_)) => Ok(given.clone()),
        ("Boolean" | "Checkbox", _) => Err(bad("boolean")),
        ("JSON" | "Any" | "List", _) => Ok(given.clone()),
        ("Dropdown", Value::String(v)) => {
            let choices = crate::schema::registry::items(attr, "choices");
            if choices
                .iter()
                .any(|c| c.get("name").and_then(Value::as_str) == Some(v))
            {
                Ok(given.clone())
            } else {
                Err(invalid(format!(
                    "{kind}.{name}: {v} must be one of the choices of the dropdown"
                )))
            }
        }
        (_, Value::String(_)) => Ok(given.clone()),
        _ => Err(bad("string")),
    }
}

/// What a mutation asks for: checked attribute values and relationship peers.
struct Requested {
    attributes: Vec<(String, Value)>,
    relationships: Vec<(String, Value)>,
}

async fn requested(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<Requested, DataError> {
    let schema = at.schema;
    if !schema.nodes.contains_key(kind) {
        return Err(invalid(format!("Unknown kind {kind}")));
    }
    let mut out = Requested {
        attributes: Vec::new(),
        relationships: Vec::new(),
    };
    for attr in schema.fields(kind, "attributes") {
        let name = attr
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(given) = data.get(&name) {
            let value = given.get("value").unwrap_or(&Value::Null);
            out.attributes
                .push((name, attribute_value(kind, &attr, value)?));
        }
    }
    for rel in schema.fields(kind, "relationships") {
        let name = rel
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(given) = data.get(&name) else {
            continue;
        };
        let peer_kind = rel.get("peer").and_then(Value::as_str).unwrap_or_default();
        let many = rel.get("cardinality").and_then(Value::as_str) != Some("one");
        let refs: Vec<&Value> = match given {
            Value::Null => Vec::new(),
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        let mut ids = Vec::new();
        for r in refs {
            let r = r.as_object().cloned().unwrap_or_default();
            let peer = designated(at, peer_kind, &r).await?;
            ids.push(json!(peer.id));
        }
        let value = if many {
            Value::Array(ids)
        } else {
            ids.into_iter().next().unwrap_or(Value::Null)
        };
        out.relationships.push((name, value));
    }
    Ok(out)
}

/// Checks what must hold after a change: required attributes and relationships are set,
/// `unique` attributes are unique among the kind's nodes the branch sees.
async fn check_node(at: &At<'_>, node: &DataNode) -> Result<(), DataError> {
    let schema = at.schema;
    // On the default branch the store keeps a kind's only unique attribute unique; with
    // several, and on other branches, they are checked here, against the kind's nodes (under
    // the kind's lock).
    let others = if unique_attributes(schema, &node.kind).len() > 1 || !on_main(at, &node.kind) {
        list(at.services, schema, at.branch, &node.kind).await?
    } else {
        Vec::new()
    };
    for attr in schema.fields(&node.kind, "attributes") {
        let name = attr.get("name").and_then(Value::as_str).unwrap_or_default();
        let flag = |k: &str| attr.get(k).and_then(Value::as_bool).unwrap_or(false);
        let value = node.value(name);
        if value.is_null() && !flag("optional") && !flag("read_only") {
            return Err(invalid(format!("{name}.value is required")));
        }
        if flag("unique")
            && !value.is_null()
            && others
                .iter()
                .any(|o| o.id != node.id && o.value(name) == value)
        {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("An object already exists with {name}: {}", text(&value)),
            ));
        }
    }
    for rel in schema.fields(&node.kind, "relationships") {
        let name = rel.get("name").and_then(Value::as_str).unwrap_or_default();
        let optional = rel.get("optional").and_then(Value::as_bool).unwrap_or(true);
        if !optional && node.peers(name).is_empty() {
            return Err(invalid(format!("{name} is required")));
        }
    }
    Ok(())
}

/// Creates a node of `kind` from `data` (`<Kind>CreateInput`) on `branch`.
pub async fn create(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<DataNode, DataError> {
    // A create on the default branch reads nothing it writes back unless the kind has
    // relationships (its peers are updated) or several unique attributes (checked here):
    // otherwise it takes no lock and joins the store's group commit.
    let needs_lock = !at.schema.fields(kind, "relationships").is_empty()
        || unique_attributes(at.schema, kind).len() > 1
        || !on_main(at, kind);
    let _guard = if needs_lock {
        lock_kinds(at.services, at.schema, kind).await
    } else {
        Vec::new()
    };
    create_locked(at, kind, data).await
}

/// Whether changes to nodes of `kind` from `at`'s branch are kept on the default branch.
fn on_main(at: &At<'_>, kind: &str) -> bool {
    at.branch == DEFAULT_BRANCH || view::agnostic(at.schema, kind)
}

/// The attributes of `kind` declared `unique`.
fn unique_attributes(schema: &BranchSchema, kind: &str) -> Vec<String> {
    schema
        .fields(kind, "attributes")
        .into_iter()
        .filter(|a| a.get("unique").and_then(Value::as_bool) == Some(true))
        .filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The one unique attribute the store keeps unique (see [`DataNode::to_node`]).
fn store_unique(schema: &BranchSchema, kind: &str) -> Option<String> {
    let mut unique = unique_attributes(schema, kind);
    (unique.len() == 1).then(|| unique.remove(0))
}

async fn create_locked(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<DataNode, DataError> {
    let schema = at.schema;
    let asked = requested(at, kind, data).await?;
    let t = format_timestamp(&now());
    let id = match data.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => uuid::Uuid::now_v7().to_string(),
    };
    let mut node = DataNode {
        id,
        kind: kind.to_owned(),
        attributes: Map::new(),
        relationships: Map::new(),
    };
    // Defaults first, then what was given.
    for attr in schema.fields(kind, "attributes") {
        if let (Some(name), Some(default)) = (
            attr.get("name").and_then(Value::as_str),
            attr.get("default_value"),
        ) && !default.is_null()
        {
            node.attributes.insert(
                name.to_owned(),
                json!({"value": default, "is_default": true, "updated_at": t}),
            );
        }
    }
    for (name, value) in asked.attributes {
        node.attributes.insert(
            name,
            json!({"value": value, "is_default": false, "updated_at": t}),
        );
    }
    for (name, peers) in asked.relationships {
        node.relationships.insert(name, peers);
    }
    check_node(at, &node).await?;
    save(at, None, Some(&node)).await?;
    Ok(node)
}

/// Updates the node `data` designates (`id` or `hfid`) with what else `data` gives.
pub async fn update(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<DataNode, DataError> {
    let _guard = lock_kinds(at.services, at.schema, kind).await;
    let before = designated(at, kind, data).await?;
    update_locked(at, before, data).await
}

async fn update_locked(
    at: &At<'_>,
    before: DataNode,
    data: &Map<String, Value>,
) -> Result<DataNode, DataError> {
    let kind = before.kind.clone();
    let asked = requested(at, &kind, data).await?;
    let t = format_timestamp(&now());
    let mut node = before.clone();
    for (name, value) in asked.attributes {
        if node.value(&name) != value
            || node.attributes.get(&name).and_then(|a| a.get("is_default")) == Some(&json!(true))
        {
            node.attributes.insert(
                name,
                json!({"value": value, "is_default": false, "updated_at": t}),
            );
        }
    }
    for (name, peers) in asked.relationships {
        node.relationships.insert(name, peers);
    }
    check_node(at, &node).await?;
    save(at, Some(&before), Some(&node)).await?;
    Ok(node)
}

/// Updates the node `data` designates — by `id`, `hfid`, or the human friendly id its
/// attribute values give — or creates it when there is none; tells which.
pub async fn upsert(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<(bool, DataNode), DataError> {
    let _guard = lock_kinds(at.services, at.schema, kind).await;
    let mut key = data.clone();
    if !key.contains_key("id") && !key.contains_key("hfid") {
        // The hfid the given values make, when the kind has one made of attributes.
        let paths = at
            .schema
            .nodes
            .get(kind)
            .and_then(|e| e.get("human_friendly_id"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let values: Option<Vec<Value>> = paths
            .iter()
            .filter_map(Value::as_str)
            .map(|p| {
                let attr = p.split("__").next().unwrap_or_default();
                data.get(attr)
                    .and_then(|a| a.get("value"))
                    .map(|v| json!(text(v)))
            })
            .collect();
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            key.insert("hfid".into(), Value::Array(values));
        }
    }
    let existing = if key.contains_key("id") || key.contains_key("hfid") {
        match designated(at, kind, &key).await {
            Ok(n) => Some(n),
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    match existing {
        Some(before) => Ok((false, update_locked(at, before, data).await?)),
        None => Ok((true, create_locked(at, kind, data).await?)),
    }
}

/// Adds (`add`) or removes peers of the many relationship `name` of the node `id`
/// (`RelationshipAdd` / `RelationshipRemove`); `nodes` designate the peers (`id` or `hfid`).
pub async fn change_relationship(
    at: &At<'_>,
    data: &Map<String, Value>,
    add: bool,
) -> Result<DataNode, DataError> {
    let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
    let name = data.get("name").and_then(Value::as_str).unwrap_or_default();
    let found = |n: Option<DataNode>| {
        n.filter(|n| at.schema.nodes.contains_key(&n.kind))
            .ok_or_else(|| Error::not_found(format!("Node {id} not found")))
    };
    let kind = found(get(at.services, at.schema, at.branch, id).await?)?.kind;
    let _guard = lock_kinds(at.services, at.schema, &kind).await;
    // Read again under the locks: the node may have changed (or gone) meanwhile.
    let before = found(get(at.services, at.schema, at.branch, id).await?)?;
    let rel = at
        .schema
        .fields(&before.kind, "relationships")
        .into_iter()
        .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| invalid(format!("{} has no relationship {name}", before.kind)))?;
    if rel.get("cardinality").and_then(Value::as_str) == Some("one") {
        return Err(invalid(format!(
            "{name} of {} has cardinality one: set it with {}Update",
            before.kind, before.kind
        )));
    }
    let peer_kind = rel.get("peer").and_then(Value::as_str).unwrap_or_default();
    let mut peers = before.peers(name);
    let mut moved = Vec::new();
    for r in data
        .get("nodes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let r = r.as_object().cloned().unwrap_or_default();
        let peer = designated(at, peer_kind, &r).await?;
        let changed = if add {
            !peers.contains(&peer.id)
        } else {
            peers.contains(&peer.id)
        };
        if !changed {
            continue;
        }
        if add {
            peers.push(peer.id.clone());
        } else {
            peers.retain(|p| *p != peer.id);
        }
        moved.push(RelatedNode {
            id: peer.id,
            kind: peer.kind,
        });
    }
    let mut node = before.clone();
    node.relationships.insert(name.to_owned(), json!(peers));
    if builtin::is_group(at.schema, &before.kind) && name == builtin::MEMBERS {
        groups::save_members(at, &before, &node, moved, add).await?;
    } else {
        save(at, Some(&before), Some(&node)).await?;
    }
    Ok(node)
}

/// Deletes the node `data` designates (`id` or `hfid`).
pub async fn delete(
    at: &At<'_>,
    kind: &str,
    data: &Map<String, Value>,
) -> Result<DataNode, DataError> {
    let _guard = lock_kinds(at.services, at.schema, kind).await;
    let node = designated(at, kind, data).await?;
    save(at, Some(&node), None).await?;
    Ok(node)
}

/// Takes the locks `data/<kind>` of `kind` and of every kind its relationships point to (whose
/// nodes a change may update), in name order so that two changes never wait for each other.
async fn lock_kinds(
    s: &Services,
    schema: &BranchSchema,
    kind: &str,
) -> Vec<crate::locks::LockGuard> {
    let mut kinds = vec![kind.to_owned()];
    for r in schema.fields(kind, "relationships") {
        if let Some(peer) = r.get("peer").and_then(Value::as_str) {
            kinds.push(peer.to_owned());
        }
    }
    kinds.sort();
    kinds.dedup();
    let mut guards = Vec::with_capacity(kinds.len());
    for k in kinds {
        guards.push(s.locks.lock(&format!("data/{k}")).await);
    }
    guards
}

/// The identifier of a relationship of `kind`: its own, else Infrahub's default (the two
/// kinds, lower case, sorted, joined by `__`).
fn identifier(kind: &str, rel: &Map<String, Value>) -> String {
    if let Some(id) = rel.get("identifier").and_then(Value::as_str) {
        return id.to_owned();
    }
    let peer = rel.get("peer").and_then(Value::as_str).unwrap_or_default();
    let mut pair = [kind.to_lowercase(), peer.to_lowercase()];
    pair.sort();
    pair.join("__")
}

/// Commits the change from `before` to `after` (a create, an update or a delete) with its
/// event, in one transaction with what it does to its peers: a peer whose kind declares the
/// same relationship the other way (same identifier) gets it updated, with its own
/// `infrahub.node.updated` event as a child; deleting a node deletes the peers of its
/// relationships declared `on_delete: cascade`, each with an `infrahub.node.deleted` child
/// event (one level: a cascaded node's own relationships are not followed). Nothing is
/// committed when nothing changed.
async fn save(
    at: &At<'_>,
    before: Option<&DataNode>,
    after: Option<&DataNode>,
) -> Result<(), DataError> {
    let (s, caller, schema) = (at.services, at.caller, at.schema);
    let node = after.or(before).expect("one side exists");
    let branch = if on_main(at, &node.kind) {
        DEFAULT_BRANCH
    } else {
        at.branch
    };
    let actor = caller.actor(branch);
    let Some(event) = node_event(&actor, schema, branch, before, after) else {
        return Ok(());
    };
    let mut changes = view::changes(s, schema, at.branch, before, after).await?;
    let mut events = vec![event];
    let mut cascaded: Vec<String> = Vec::new();
    for rel in schema.fields(&node.kind, "relationships") {
        let name = rel.get("name").and_then(Value::as_str).unwrap_or_default();
        let old = before.map(|b| b.peers(name)).unwrap_or_default();
        let new = after.map(|a| a.peers(name)).unwrap_or_default();
        let cascade =
            after.is_none() && rel.get("on_delete").and_then(Value::as_str) == Some("cascade");
        let id = identifier(&node.kind, &rel);
        for (peer_id, added) in new
            .iter()
            .filter(|p| !old.contains(p))
            .map(|p| (p, true))
            .chain(old.iter().filter(|p| !new.contains(p)).map(|p| (p, false)))
        {
            if cascaded.contains(peer_id) {
                continue;
            }
            let Some(peer) = get(s, schema, at.branch, peer_id).await? else {
                continue;
            };
            if cascade {
                // A peer of a kind the schema no longer has is deleted without an event
                // (the schema's rules keep a relationship's peer kind, so this is a guard).
                if let Some(mut e) = node_event(&actor, schema, branch, Some(&peer), None) {
                    e.parent = Some(infrastream_core::ParentRef::InBatch(0));
                    events.push(e);
                }
                changes.extend(view::changes(s, schema, at.branch, Some(&peer), None).await?);
                cascaded.push(peer.id);
                continue;
            }
            // The relationship the other way: of the peer's kind, pointing at this kind, with
            // the same identifier — another one than this when the kind points at itself
            // (`parent` and `children`), this one only when it is symmetric (`peers`).
            let candidates: Vec<_> = schema
                .fields(&peer.kind, "relationships")
                .into_iter()
                .filter(|r| {
                    r.get("peer").and_then(Value::as_str) == Some(node.kind.as_str())
                        && identifier(&peer.kind, r) == id
                })
                .collect();
            let Some(reverse) = candidates
                .iter()
                .find(|r| peer.kind != node.kind || r.get("name") != rel.get("name"))
                .or(candidates.first())
                .cloned()
            else {
                continue;
            };
            let reverse_name = reverse
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut updated = peer.clone();
            let one = reverse.get("cardinality").and_then(Value::as_str) == Some("one");
            let mut ids = peer.peers(reverse_name);
            if added && !ids.contains(&node.id) {
                ids.push(node.id.clone());
            }
            if !added {
                ids.retain(|i| *i != node.id);
            }
            let value = if one {
                ids.last().map_or(Value::Null, |i| json!(i))
            } else {
                json!(ids)
            };
            updated.relationships.insert(reverse_name.to_owned(), value);
            if let Some(mut e) = node_event(&actor, schema, branch, Some(&peer), Some(&updated)) {
                e.parent = Some(infrastream_core::ParentRef::InBatch(0));
                changes.extend(
                    view::changes(s, schema, at.branch, Some(&peer), Some(&updated)).await?,
                );
                events.push(e);
            }
        }
    }
    use infrastream_core::error::DomainError;
    let result = s.store.commit(Commit { changes, events }).await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = e.user_error();
            // The store refused the name of the node: its unique attribute's value is taken.
            match (e.kind, store_unique(schema, &node.kind), after) {
                (ErrorKind::AlreadyExists, Some(attr), Some(a))
                    if e.message.contains("named unique:") =>
                {
                    Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "An object already exists with {attr}: {}",
                            text(&a.value(&attr))
                        ),
                    ))
                }
                _ => Err(e),
            }
        }
    }
}
