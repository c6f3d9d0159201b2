//! Where the versions of a node live, and what each branch sees.
//!
//! The default branch keeps each node as one store node (`kind`, `id`). Another branch `b`
//! keeps two more kinds of records, both store nodes too, so both store backends hold them
//! with the same code and transactions:
//! - its **own** version of a node it changed (`<kind>@b`, `<id>@b`): the node as the branch
//!   has it, or a tombstone when the branch deleted it;
//! - the **base** version of a node the default branch changed after `b` was branched
//!   (`<kind>#b`, `<id>#b`): the node as it was before that first change (copy on write), or
//!   a tombstone when the node did not exist then.
//!
//! So `b` sees, for each node: its own version, else the base version, else the default
//! branch's current one — the default branch as of `branched_from` plus its own changes. A
//! change on the default branch writes the base version for every open branch that has none
//! yet, in the same transaction. Rebase drops the base versions; merge applies the own versions
//! to the default branch and drops both ([`super::merge`]).
//!
//! Kinds declared `branch: agnostic` live on the default branch only and are seen and changed
//! from every branch. Attributes declared `branch: agnostic` are read from the default
//! branch's node and written to it from any branch. Kinds declared `branch: local` are kept
//! like aware ones and never leave their branch on merge.
//!
//! A change on the default branch that commits while a branch is being created may be seen
//! by the new branch (the branch list is read before the commit); branch creation takes no
//! data lock, to keep creates of nodes lock-free.

use super::{DataError, DataNode};
use crate::Services;
use crate::schema::registry::BranchSchema;
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::error::DomainError;
use infrastream_core::{BranchStatus, Node};
use infrastream_store::Change;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The store kind (or id) of `b`'s own version of nodes of `kind` (or of the node `id`).
pub(super) fn own(kind_or_id: &str, branch: &str) -> String {
    format!("{kind_or_id}@{branch}")
}

/// The store kind (or id) of `b`'s base version of nodes of `kind` (or of the node `id`).
pub(super) fn base(kind_or_id: &str, branch: &str) -> String {
    format!("{kind_or_id}#{branch}")
}

/// A branch record: a version of the node, or a tombstone.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Version {
    /// The node as it is.
    Present(DataNode),
    /// The node does not exist there.
    Gone,
}

impl Version {
    pub(super) fn node(self) -> Option<DataNode> {
        match self {
            Version::Present(n) => Some(n),
            Version::Gone => None,
        }
    }

    /// The node id a record is about, and its version.
    fn with_id(n: Node) -> (String, Self) {
        let id = n
            .data
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        (id, Self::from_record(n))
    }

    fn from_record(n: Node) -> Self {
        let part = |k: &str| {
            n.data
                .get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let field = |k: &str| {
            n.data
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        if n.data.get("state").and_then(Value::as_str) == Some("gone") {
            return Version::Gone;
        }
        Version::Present(DataNode {
            id: field("id"),
            kind: field("kind"),
            attributes: part("attributes"),
            relationships: part("relationships"),
        })
    }

    /// The store node of this version of node `id` of `kind`, as a record of kind
    /// `record_kind` and id `record_id`.
    fn record(&self, id: &str, kind: &str, record_kind: String, record_id: String) -> Node {
        let data = match self {
            Version::Present(n) => json!({
                "state": "present", "id": id, "kind": kind,
                "attributes": n.attributes, "relationships": n.relationships,
            }),
            Version::Gone => json!({"state": "gone", "id": id, "kind": kind}),
        };
        Node {
            name: format!("id:{record_id}"),
            id: record_id,
            kind: record_kind,
            data,
        }
    }
}

/// `branch`'s own record of node `id` of `kind` at `version`.
pub(super) fn own_record(branch: &str, id: &str, kind: &str, version: &Version) -> Change {
    Change::PutNode(version.record(id, kind, own(kind, branch), own(id, branch)))
}

/// `branch`'s base record of node `id` of `kind` at `version`.
fn base_record(branch: &str, id: &str, kind: &str, version: &Version) -> Change {
    Change::PutNode(version.record(id, kind, base(kind, branch), base(id, branch)))
}

/// How a kind (or an attribute) lives on branches: Infrahub's `branch` support.
fn support(element: Option<&Map<String, Value>>) -> Option<&str> {
    element
        .and_then(|e| e.get("branch"))
        .and_then(Value::as_str)
}

/// Whether nodes of `kind` live on the default branch only.
pub(super) fn agnostic(schema: &BranchSchema, kind: &str) -> bool {
    support(schema.nodes.get(kind)) == Some("agnostic")
}

/// Whether nodes of `kind` stay on their branch when it merges.
pub(super) fn local(schema: &BranchSchema, kind: &str) -> bool {
    support(schema.nodes.get(kind)) == Some("local")
}

/// The attributes of `kind` declared `branch: agnostic`.
fn agnostic_attributes(schema: &BranchSchema, kind: &str) -> Vec<String> {
    schema
        .fields(kind, "attributes")
        .iter()
        .filter(|a| support(Some(a)) == Some("agnostic"))
        .filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// The branch on which nodes of `kind` changed from `branch` are kept.
fn home<'a>(schema: &BranchSchema, kind: &str, branch: &'a str) -> &'a str {
    if agnostic(schema, kind) {
        DEFAULT_BRANCH
    } else {
        branch
    }
}

/// The store record with this id, if any.
pub(super) async fn record(s: &Services, id: &str) -> Result<Option<Version>, DataError> {
    Ok(s.store
        .node(id)
        .await
        .map_err(|e| e.user_error())?
        .map(Version::from_record))
}

/// The default branch's current node `id`.
pub(super) async fn main_node(s: &Services, id: &str) -> Result<Option<DataNode>, DataError> {
    Ok(s.store
        .node(id)
        .await
        .map_err(|e| e.user_error())?
        .map(DataNode::from_node))
}

/// Node `id` as `branch` had it at `branched_from`: its base version, else the default
/// branch's current one.
pub(super) async fn base_node(
    s: &Services,
    branch: &str,
    id: &str,
) -> Result<Option<DataNode>, DataError> {
    match record(s, &base(id, branch)).await? {
        Some(v) => Ok(v.node()),
        None => main_node(s, id).await,
    }
}

/// Node `id` as `branch` sees it.
pub async fn get(
    s: &Services,
    schema: &BranchSchema,
    branch: &str,
    id: &str,
) -> Result<Option<DataNode>, DataError> {
    if branch == DEFAULT_BRANCH {
        return main_node(s, id).await;
    }
    let seen = match record(s, &own(id, branch)).await? {
        Some(v) => v.node(),
        None => base_node(s, branch, id).await?,
    };
    match seen {
        // A node of an agnostic kind has no branch versions: this is the main one.
        Some(n) if !agnostic(schema, &n.kind) => with_agnostic_attributes(s, schema, n).await,
        other => Ok(other),
    }
}

/// `n` with the values of its agnostic attributes taken from the default branch's node.
async fn with_agnostic_attributes(
    s: &Services,
    schema: &BranchSchema,
    mut n: DataNode,
) -> Result<Option<DataNode>, DataError> {
    let names = agnostic_attributes(schema, &n.kind);
    if !names.is_empty()
        && let Some(main) = main_node(s, &n.id).await?
    {
        share(&mut n, &main, &names);
    }
    Ok(Some(n))
}

/// Gives `n` the values of attributes `names` that `main` (the default branch's version) has.
fn share(n: &mut DataNode, main: &DataNode, names: &[String]) {
    for name in names {
        match main.attributes.get(name) {
            Some(a) => n.attributes.insert(name.clone(), a.clone()),
            None => n.attributes.remove(name),
        };
    }
}

async fn kind_records(s: &Services, kind: &str) -> Result<Vec<Node>, DataError> {
    s.store.nodes(kind).await.map_err(|e| e.user_error())
}

/// Every node of `kind` as `branch` sees it, in the store's order of the default branch
/// (by name: the unique value, else the id).
pub async fn list(
    s: &Services,
    schema: &BranchSchema,
    branch: &str,
    kind: &str,
) -> Result<Vec<DataNode>, DataError> {
    let main: Vec<DataNode> = kind_records(s, kind)
        .await?
        .into_iter()
        .map(DataNode::from_node)
        .collect();
    let branch = home(schema, kind, branch);
    if branch == DEFAULT_BRANCH {
        return Ok(main);
    }
    // Base versions, then own versions over them: node id → what the branch sees.
    let mut seen: HashMap<String, Option<DataNode>> = HashMap::new();
    for family in [base(kind, branch), own(kind, branch)] {
        for r in kind_records(s, &family).await? {
            let (id, v) = Version::with_id(r);
            seen.insert(id, v.node());
        }
    }
    let agnostic_names = agnostic_attributes(schema, kind);
    let main_by_id: HashMap<&str, &DataNode> = main.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut out = Vec::new();
    for n in &main {
        match seen.remove(&n.id) {
            Some(Some(v)) => out.push(v),
            Some(None) => {}
            None => out.push(n.clone()),
        }
    }
    out.extend(seen.into_values().flatten());
    for n in &mut out {
        if let Some(m) = main_by_id.get(n.id.as_str()) {
            share(n, m, &agnostic_names);
        }
    }
    out.sort_by_key(|n| n.store_name(schema));
    Ok(out)
}

/// The branches that keep base versions: every one but the default branch that is not merged
/// or being deleted.
pub(super) async fn open_branches(s: &Services) -> Result<Vec<String>, DataError> {
    Ok(s.store
        .branches()
        .await
        .map_err(|e| e.user_error())?
        .into_iter()
        .filter(|b| {
            !b.is_default
                && b.name != DEFAULT_BRANCH
                && !matches!(b.status, BranchStatus::Merged | BranchStatus::Deleting)
        })
        .map(|b| b.name)
        .collect())
}

/// The store changes that take node `id` from `before` to `after` on `branch` (one of them
/// may be missing: a create or a delete).
pub(super) async fn changes(
    s: &Services,
    schema: &BranchSchema,
    branch: &str,
    before: Option<&DataNode>,
    after: Option<&DataNode>,
) -> Result<Vec<Change>, DataError> {
    let node = after.or(before).expect("one side exists");
    let branch = home(schema, &node.kind, branch);
    if branch == DEFAULT_BRANCH {
        return main_changes(s, schema, before, after, &[]).await;
    }
    let mut out = Vec::new();
    let version = match after {
        Some(a) => Version::Present(a.clone()),
        None => Version::Gone,
    };
    if after.is_none() && base_node(s, branch, &node.id).await?.is_none() {
        // Created on this branch and deleted there: nothing of it remains.
        out.push(Change::DeleteNode {
            id: own(&node.id, branch),
        });
    } else {
        out.push(own_record(branch, &node.id, &node.kind, &version));
    }
    // Agnostic attributes changed from a branch change the default branch's node.
    let names = agnostic_attributes(schema, &node.kind);
    if let (false, Some(a)) = (names.is_empty(), after)
        && let Some(main) = main_node(s, &node.id).await?
    {
        let mut updated = main.clone();
        for name in names {
            if let Some(v) = a.attributes.get(&name) {
                updated.attributes.insert(name, v.clone());
            }
        }
        if updated != main {
            out.push(Change::UpdateNode(updated.to_node(schema)));
        }
    }
    Ok(out)
}

/// The store changes that take the default branch's node from `before` to `after`, with the
/// base version for every open branch (but those in `skip`) that has none yet.
pub(super) async fn main_changes(
    s: &Services,
    schema: &BranchSchema,
    before: Option<&DataNode>,
    after: Option<&DataNode>,
    skip: &[&str],
) -> Result<Vec<Change>, DataError> {
    let node = after.or(before).expect("one side exists");
    let mut out = vec![match (before, after) {
        (None, Some(a)) => Change::CreateNode(a.to_node(schema)),
        (Some(_), Some(a)) => Change::UpdateNode(a.to_node(schema)),
        _ => Change::DeleteNode {
            id: node.id.clone(),
        },
    }];
    if agnostic(schema, &node.kind) {
        return Ok(out);
    }
    let was = match before {
        Some(b) => Version::Present(b.clone()),
        None => Version::Gone,
    };
    for b in open_branches(s).await? {
        if skip.contains(&b.as_str()) || record(s, &base(&node.id, &b)).await?.is_some() {
            continue;
        }
        out.push(base_record(&b, &node.id, &node.kind, &was));
    }
    Ok(out)
}

/// Every record `branch` keeps of nodes of `kinds`: (own versions, base versions).
pub(super) async fn branch_records(
    s: &Services,
    branch: &str,
    kinds: &[String],
) -> Result<(Vec<(String, Version)>, Vec<(String, Version)>), DataError> {
    let mut owns = Vec::new();
    let mut bases = Vec::new();
    for kind in kinds {
        for (family, into) in [
            (own(kind, branch), &mut owns),
            (base(kind, branch), &mut bases),
        ] {
            for r in kind_records(s, &family).await? {
                into.push(Version::with_id(r));
            }
        }
    }
    Ok((owns, bases))
}

/// The changes that remove every record `branch` keeps of nodes of `kinds`.
pub(super) async fn drop_branch_records(
    s: &Services,
    branch: &str,
    kinds: &[String],
    only_base: bool,
) -> Result<Vec<Change>, DataError> {
    let (owns, bases) = branch_records(s, branch, kinds).await?;
    let mut out = Vec::new();
    if !only_base {
        out.extend(owns.into_iter().map(|(id, _)| Change::DeleteNode {
            id: own(&id, branch),
        }));
    }
    out.extend(bases.into_iter().map(|(id, _)| Change::DeleteNode {
        id: base(&id, branch),
    }));
    Ok(out)
}
