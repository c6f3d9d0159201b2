//! What a branch changed in its data ([`branch_diff`]), property by property, against the
//! default branch as of `branched_from` (the base); and its conflicts: a property both the
//! branch and the default branch changed since then, to different values, or a node one side
//! deleted while the other changed it.
//!
//! A conflict's id is derived from the branch, the property's path and the three values, so a
//! choice made with `ResolveDiffConflict` (kept under `data-conflict/<branch id>/<id>`) applies
//! to exactly that conflict: when either side changes the property again, it is a new conflict
//! to resolve.

use super::view::{self, Version};
use super::{DataError, DataNode};
use crate::Services;
use crate::schema::registry::BranchSchema;
use infrastream_core::{Branch, Error, ErrorKind};
use infrastream_store::Change;
use serde_json::{Value, json};

/// Infrahub's `DiffAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Created.
    Added,
    /// Deleted.
    Removed,
    /// Changed.
    Updated,
    /// Not changed.
    Unchanged,
}

impl Action {
    /// Infrahub's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "ADDED",
            Action::Removed => "REMOVED",
            Action::Updated => "UPDATED",
            Action::Unchanged => "UNCHANGED",
        }
    }

    fn of(previous: &Value, new: &Value) -> Self {
        match (previous.is_null(), new.is_null()) {
            _ if previous == new => Action::Unchanged,
            (true, false) => Action::Added,
            (false, true) => Action::Removed,
            _ => Action::Updated,
        }
    }

    fn of_node(previous: Option<&DataNode>, new: Option<&DataNode>) -> Self {
        match (previous, new) {
            (None, Some(_)) => Action::Added,
            (Some(_), None) => Action::Removed,
            (Some(p), Some(n)) if p != n => Action::Updated,
            _ => Action::Unchanged,
        }
    }
}

/// Which side a conflict is resolved in favour of (Infrahub's `ConflictSelection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The default branch's value.
    Base,
    /// The branch's value.
    Diff,
}

impl Selection {
    /// Infrahub's name of it.
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::Base => "BASE_BRANCH",
            Selection::Diff => "DIFF_BRANCH",
        }
    }

    /// From Infrahub's name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "BASE_BRANCH" => Some(Selection::Base),
            "DIFF_BRANCH" => Some(Selection::Diff),
            _ => None,
        }
    }
}

/// What a property is: an attribute's value, a cardinality-one relationship's peer, or a
/// many relationship's peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    /// An attribute.
    Attribute,
    /// A relationship of cardinality one.
    One,
    /// A relationship of cardinality many.
    Many,
}

/// One property the branch changed: its value at the base and on the branch.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyDiff {
    /// The attribute's or relationship's name.
    pub name: String,
    /// What it is.
    pub kind: PropertyKind,
    /// At the base (a many relationship: the sorted peer ids).
    pub previous: Value,
    /// On the branch.
    pub new: Value,
    /// The branch's change.
    pub action: Action,
    /// The conflict on it, if the default branch changed it too.
    pub conflict: Option<Conflict>,
}

/// A property (or a whole node, `name` = None) both sides changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// Its id (what `ResolveDiffConflict` names).
    pub id: String,
    /// Infrahub's conflict path: `data/<node id>` or `data/<node id>/<name>/value|peer`.
    pub path: String,
    /// The value at the base.
    pub base_value: Value,
    /// The branch's value (`DIFF_BRANCH`).
    pub branch_value: Value,
    /// The default branch's value (`BASE_BRANCH`).
    pub main_value: Value,
    /// What the branch did.
    pub branch_action: Action,
    /// What the default branch did.
    pub main_action: Action,
    /// How it was resolved, if it was.
    pub selected: Option<Selection>,
}

/// A node the branch changed.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDiff {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// As the branch found it (the default branch at `branched_from`).
    pub base: Option<DataNode>,
    /// As the branch has it.
    pub branch: Option<DataNode>,
    /// As the default branch has it now.
    pub main: Option<DataNode>,
    /// Its display label (the branch's version, else the other sides').
    pub label: String,
    /// What the branch did to it.
    pub action: Action,
    /// The properties it changed (for an update; every set property for an add or remove).
    pub properties: Vec<PropertyDiff>,
    /// The conflict on the node itself: one side deleted it, the other changed it.
    pub conflict: Option<Conflict>,
    /// Whether its kind is `branch: local` (it never leaves the branch).
    pub local: bool,
}

impl NodeDiff {
    /// Every conflict on it.
    pub fn conflicts(&self) -> impl Iterator<Item = &Conflict> {
        self.conflict
            .iter()
            .chain(self.properties.iter().filter_map(|p| p.conflict.as_ref()))
    }
}

/// The meta key of a conflict's resolution.
fn resolution_key(branch: &Branch, conflict_id: &str) -> String {
    format!("data-conflict/{}/{conflict_id}", branch.id)
}

/// The change that records `selection` for conflict `conflict_id` of `branch`.
pub fn resolve(branch: &Branch, conflict_id: &str, selection: Selection) -> Change {
    Change::SetMeta {
        key: resolution_key(branch, conflict_id),
        value: selection.as_str().to_owned(),
        only_if_absent: false,
    }
}

/// A property's value on `node` (null when the node or the value is missing).
fn value(node: Option<&DataNode>, name: &str, kind: PropertyKind) -> Value {
    let Some(n) = node else {
        return if kind == PropertyKind::Many {
            json!([])
        } else {
            Value::Null
        };
    };
    match kind {
        PropertyKind::Attribute => n.value(name),
        PropertyKind::One => n
            .peers(name)
            .into_iter()
            .next()
            .map_or(Value::Null, Value::from),
        PropertyKind::Many => {
            let mut peers = n.peers(name);
            peers.sort();
            json!(peers)
        }
    }
}

/// The properties of `kind`: (name, what it is).
fn properties(schema: &BranchSchema, kind: &str) -> Vec<(String, PropertyKind)> {
    let name = |e: &serde_json::Map<String, Value>| {
        e.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut out: Vec<(String, PropertyKind)> = schema
        .fields(kind, "attributes")
        .iter()
        .map(|a| (name(a), PropertyKind::Attribute))
        .collect();
    for r in schema.fields(kind, "relationships") {
        let k = if r.get("cardinality").and_then(Value::as_str) == Some("one") {
            PropertyKind::One
        } else {
            PropertyKind::Many
        };
        out.push((name(&r), k));
    }
    out
}

fn conflict_id(branch: &Branch, path: &str, values: [&Value; 3]) -> String {
    let h = crate::object_store::md5_hex(
        format!(
            "{}|{path}|{}|{}|{}",
            branch.id, values[0], values[1], values[2]
        )
        .as_bytes(),
    );
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// What `branch` changed in its data, node by node (in kind, then id order), with the
/// conflicts and their resolutions. `schema` is the branch's schema.
pub async fn branch_diff(
    s: &Services,
    schema: &BranchSchema,
    branch: &Branch,
) -> Result<Vec<NodeDiff>, DataError> {
    let kinds: Vec<String> = schema.nodes.keys().cloned().collect();
    let (owns, _) = view::branch_records(s, &branch.name, &kinds).await?;
    let mut out = Vec::with_capacity(owns.len());
    for (id, version) in owns {
        let ours = version.node();
        let base = view::base_node(s, &branch.name, &id).await?;
        let main = view::main_node(s, &id).await?;
        let Some(kind) = ours
            .as_ref()
            .or(base.as_ref())
            .or(main.as_ref())
            .map(|n| n.kind.clone())
        else {
            continue;
        };
        out.push(node_diff(s, schema, branch, id, kind, base, ours, main).await?);
    }
    out.sort_by(|a, b| (&a.kind, &a.id).cmp(&(&b.kind, &b.id)));
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn node_diff(
    s: &Services,
    schema: &BranchSchema,
    branch: &Branch,
    id: String,
    kind: String,
    base: Option<DataNode>,
    ours: Option<DataNode>,
    main: Option<DataNode>,
) -> Result<NodeDiff, DataError> {
    let action = Action::of_node(base.as_ref(), ours.as_ref());
    let main_action = Action::of_node(base.as_ref(), main.as_ref());
    let selected = |conflict_id: String| async move {
        let key = resolution_key(branch, &conflict_id);
        use infrastream_core::error::DomainError;
        let v = s.store.meta(&key).await.map_err(|e| e.user_error())?;
        Ok::<_, DataError>(v.as_deref().and_then(Selection::parse))
    };
    // The node itself: deleted on one side, changed on the other.
    let node_conflict = matches!(
        (action, main_action),
        (Action::Removed, Action::Updated) | (Action::Updated, Action::Removed)
    );
    let conflict = if node_conflict {
        let path = format!("data/{id}");
        let [b, o, m] = [&base, &ours, &main].map(|n| json!(n.as_ref().map(|n| &n.attributes)));
        let cid = conflict_id(branch, &path, [&b, &o, &m]);
        Some(Conflict {
            selected: selected(cid.clone()).await?,
            id: cid,
            path,
            base_value: Value::Null,
            branch_value: Value::Null,
            main_value: Value::Null,
            branch_action: action,
            main_action,
        })
    } else {
        None
    };
    let mut props = Vec::new();
    for (name, pk) in properties(schema, &kind) {
        let (b, o, m) = (
            value(base.as_ref(), &name, pk),
            value(ours.as_ref(), &name, pk),
            value(main.as_ref(), &name, pk),
        );
        if b == o {
            continue;
        }
        // Both sides changed it, differently: a conflict (a many relationship merges its
        // peers added and removed on each side instead).
        let conflict = if pk != PropertyKind::Many && m != b && m != o && main.is_some() {
            let suffix = if pk == PropertyKind::One {
                "peer"
            } else {
                "value"
            };
            let path = format!("data/{id}/{name}/{suffix}");
            let cid = conflict_id(branch, &path, [&b, &o, &m]);
            Some(Conflict {
                selected: selected(cid.clone()).await?,
                id: cid,
                path,
                branch_action: Action::of(&b, &o),
                main_action: Action::of(&b, &m),
                base_value: b.clone(),
                branch_value: o.clone(),
                main_value: m,
            })
        } else {
            None
        };
        props.push(PropertyDiff {
            action: Action::of(&b, &o),
            name,
            kind: pk,
            previous: b,
            new: o,
            conflict,
        });
    }
    let label = ours
        .as_ref()
        .or(base.as_ref())
        .or(main.as_ref())
        .map(|n| n.display_label(schema))
        .unwrap_or_default();
    Ok(NodeDiff {
        label,
        local: view::local(schema, &kind),
        id,
        kind,
        base,
        branch: ours,
        main,
        action,
        properties: props,
        conflict,
    })
}

/// The node the default branch gets when the branch's changes are applied to it: the
/// branch's changes win where only it changed a property; a conflict goes the way it was
/// resolved (unresolved: the branch's way — callers refuse unresolved conflicts first); a
/// many relationship gets the peers the branch added and loses those it removed.
pub fn applied(d: &NodeDiff) -> Option<DataNode> {
    if let Some(c) = &d.conflict {
        return match c.selected {
            Some(Selection::Base) => d.main.clone(),
            _ => d.branch.clone(),
        };
    }
    let (Some(ours), Some(main), Some(_)) = (&d.branch, &d.main, &d.base) else {
        // Added or removed by the branch (or by both sides).
        return d.branch.clone();
    };
    let mut out = main.clone();
    for p in &d.properties {
        if p.conflict.as_ref().and_then(|c| c.selected) == Some(Selection::Base) {
            continue;
        }
        match p.kind {
            PropertyKind::Attribute => match ours.attributes.get(&p.name) {
                Some(a) => out.attributes.insert(p.name.clone(), a.clone()),
                None => out.attributes.remove(&p.name),
            },
            PropertyKind::One => match ours.relationships.get(&p.name) {
                Some(r) => out.relationships.insert(p.name.clone(), r.clone()),
                None => out.relationships.remove(&p.name),
            },
            PropertyKind::Many => {
                let ids = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|i| i.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let (before, after) = (ids(&p.previous), ids(&p.new));
                let mut peers = main.peers(&p.name);
                peers.retain(|i| !before.contains(i) || after.contains(i));
                for i in after {
                    if !peers.contains(&i) {
                        peers.push(i);
                    }
                }
                out.relationships.insert(p.name.clone(), json!(peers))
            }
        };
    }
    Some(out)
}

/// The conflict with id `conflict_id` among `diffs`, or a not-found error.
pub fn find_conflict<'a>(
    diffs: &'a [NodeDiff],
    conflict_id: &str,
) -> Result<&'a Conflict, DataError> {
    diffs
        .iter()
        .flat_map(NodeDiff::conflicts)
        .find(|c| c.id == conflict_id)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("No conflict with id {conflict_id}"),
            )
        })
}

/// The version a record keeps for `node`.
pub(super) fn version(node: Option<&DataNode>) -> Version {
    node.map_or(Version::Gone, |n| Version::Present(n.clone()))
}

/// The branch named `name` (not the default one) and what it changed, for `DiffTree`.
pub async fn of_branch(s: &Services, name: &str) -> Result<(Branch, Vec<NodeDiff>), DataError> {
    use infrastream_core::error::DomainError;
    let branch = s
        .store
        .branch(name)
        .await
        .map_err(|e| e.user_error())?
        .ok_or_else(|| Error::not_found(format!("Branch: {name} not found.")))?;
    if branch.is_default {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("The default branch {name} has no diff with itself"),
        ));
    }
    let schema = crate::schema::branch_schema(s, name)
        .await
        .map_err(|e| e.user_error())?;
    let diffs = branch_diff(s, &schema, &branch).await?;
    Ok((branch, diffs))
}

/// Records `selection` for the conflict `conflict_id` of branch `name`, or of whichever open
/// branch has it when `name` is the default branch (`ResolveDiffConflict` sent to `/graphql`).
pub async fn resolve_conflict(
    s: &Services,
    name: &str,
    conflict_id: &str,
    selection: Selection,
) -> Result<(), DataError> {
    use infrastream_core::error::DomainError;
    let names = if name == infrastream_core::branch::DEFAULT_BRANCH {
        view::open_branches(s).await?
    } else {
        vec![name.to_owned()]
    };
    for name in names {
        let (branch, diffs) = of_branch(s, &name).await?;
        if find_conflict(&diffs, conflict_id).is_ok() {
            let change = resolve(&branch, conflict_id, selection);
            s.store
                .commit(infrastream_store::Commit::change(change))
                .await
                .map_err(|e| e.user_error())?;
            return Ok(());
        }
    }
    Err(Error::not_found(format!(
        "No conflict with id {conflict_id}"
    )))
}
