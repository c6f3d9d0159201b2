//! What merging or rebasing a branch does to its data, as store changes and child events that
//! the branch operation commits with its own event, in one transaction: all of it or none.
//!
//! Both run under [`lock_all`] (every kind's data lock), so no data change interleaves.

use super::diff::{self, NodeDiff, Selection};
use super::event::node_event;
use super::{DataError, DataNode, view};
use crate::schema::registry::BranchSchema;
use crate::{Actor, Services, locks::LockGuard};
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::{Branch, Error, ErrorKind, NewEvent, ParentRef};
use infrastream_store::Change;

/// The data locks of every kind of `schemas`, in name order (the order data changes take
/// them in).
pub async fn lock_all(s: &Services, schemas: &[&BranchSchema]) -> Vec<LockGuard> {
    let mut kinds: Vec<&String> = schemas.iter().flat_map(|s| s.nodes.keys()).collect();
    kinds.sort();
    kinds.dedup();
    let mut guards = Vec::with_capacity(kinds.len());
    for k in kinds {
        guards.push(s.locks.lock(&format!("data/{k}")).await);
    }
    guards
}

/// The kinds whose records a branch may keep.
fn kinds(schemas: &[&BranchSchema]) -> Vec<String> {
    let mut kinds: Vec<String> = schemas
        .iter()
        .flat_map(|s| s.nodes.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn refused(message: String) -> DataError {
    Error::new(ErrorKind::Conflict, message)
}

/// The paths of `diffs`' conflicts that fail `ok`, joined for a message, or `None`.
fn failing(diffs: &[NodeDiff], ok: impl Fn(Option<Selection>) -> bool) -> Option<String> {
    let paths: Vec<&str> = diffs
        .iter()
        .filter(|d| !d.local)
        .flat_map(NodeDiff::conflicts)
        .filter(|c| !ok(c.selected))
        .map(|c| c.path.as_str())
        .collect();
    (!paths.is_empty()).then(|| paths.join(", "))
}

/// What merging `branch` does to the default branch's data: each node the branch changed
/// (but those of `branch: local` kinds) gets the branch's changes ([`diff::applied`]), with
/// an `infrahub.node.*` event on the default branch as a child of the merge's event (index 0
/// of the commit); the branch's records are dropped. Refused, with Infrahub's message, while a
/// conflict is unresolved. `branch_schema` is the branch's schema, `merged` the default
/// branch's after the merge.
pub async fn carried_by_merge(
    s: &Services,
    actor: &Actor,
    branch: &Branch,
    branch_schema: &BranchSchema,
    merged: &BranchSchema,
) -> Result<(Vec<Change>, Vec<NewEvent>), DataError> {
    let diffs = diff::branch_diff(s, branch_schema, branch).await?;
    if let Some(paths) = failing(&diffs, |sel| sel.is_some()) {
        let any_resolved = diffs
            .iter()
            .flat_map(NodeDiff::conflicts)
            .any(|c| c.selected.is_some());
        let why = if any_resolved {
            "conflict resolution missing"
        } else {
            "validation failed"
        };
        return Err(refused(format!(
            "Unable to merge the branch '{}', {why}: {paths}",
            branch.name
        )));
    }
    let results: Vec<(&NodeDiff, Option<DataNode>)> = diffs
        .iter()
        .filter(|d| !d.local)
        .map(|d| (d, diff::applied(d)))
        .collect();
    refuse_duplicates(s, merged, &branch.name, &results).await?;
    let (mut changes, mut events) = (Vec::new(), Vec::new());
    for (d, after) in results {
        if after == d.main {
            continue;
        }
        let (before, after) = (d.main.as_ref(), after.as_ref());
        if let Some(mut e) = node_event(actor, merged, DEFAULT_BRANCH, before, after) {
            e.parent = Some(ParentRef::InBatch(0));
            events.push(e);
        }
        changes.extend(view::main_changes(s, merged, before, after, &[&branch.name]).await?);
    }
    // The branch's records go, but the own versions of local kinds: they stay on it.
    let all = kinds(&[branch_schema, merged]);
    let (aware, local): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|k| !view::local(branch_schema, k));
    changes.extend(view::drop_branch_records(s, &branch.name, &aware, false).await?);
    changes.extend(view::drop_branch_records(s, &branch.name, &local, true).await?);
    Ok((changes, events))
}

/// Refuses the merge when a `unique` attribute would hold one value twice on the default
/// branch once the branch's nodes are applied (both sides created or renamed a node to it).
async fn refuse_duplicates(
    s: &Services,
    schema: &BranchSchema,
    branch: &str,
    results: &[(&NodeDiff, Option<DataNode>)],
) -> Result<(), DataError> {
    let mut kinds: Vec<&str> = results.iter().map(|(d, _)| d.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let unique = super::unique_attributes(schema, kind);
        if unique.is_empty() {
            continue;
        }
        let mut nodes: std::collections::HashMap<String, DataNode> =
            super::list(s, schema, DEFAULT_BRANCH, kind)
                .await?
                .into_iter()
                .map(|n| (n.id.clone(), n))
                .collect();
        for (d, after) in results.iter().filter(|(d, _)| d.kind == kind) {
            match after {
                Some(n) => nodes.insert(d.id.clone(), n.clone()),
                None => nodes.remove(&d.id),
            };
        }
        for attr in &unique {
            let mut seen = std::collections::HashSet::new();
            for n in nodes.values() {
                let v = n.value(attr);
                if !v.is_null() && !seen.insert(v.to_string()) {
                    return Err(refused(format!(
                        "Unable to merge the branch '{branch}', {kind}.{attr} would not be unique: {} is on both branches",
                        super::text(&v)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// What rebasing `branch` does to its data: it sees the default branch as it is now, with its
/// own changes on top ([`diff::applied`]); each node it sees differently gets an
/// `infrahub.node.*` event on the branch as a child of the rebase's event. Refused while a
/// conflict is not resolved in favour of the branch. `schema` is the branch's schema after the
/// rebase.
pub async fn carried_by_rebase(
    s: &Services,
    actor: &Actor,
    branch: &Branch,
    before_schema: &BranchSchema,
    schema: &BranchSchema,
) -> Result<(Vec<Change>, Vec<NewEvent>), DataError> {
    let diffs = diff::branch_diff(s, before_schema, branch).await?;
    if let Some(paths) = failing(&diffs, |sel| sel == Some(Selection::Diff)) {
        return Err(refused(format!(
            "Unable to rebase the branch '{}', conflicts not resolved in favour of the branch: {paths}",
            branch.name
        )));
    }
    let all = kinds(&[before_schema, schema]);
    let (_, bases) = view::branch_records(s, &branch.name, &all).await?;
    let (mut changes, mut events) = (Vec::new(), Vec::new());
    let mut event = |before: Option<&DataNode>, after: Option<&DataNode>| {
        if let Some(mut e) = node_event(actor, schema, &branch.name, before, after) {
            e.parent = Some(ParentRef::InBatch(0));
            events.push(e);
        }
    };
    for d in &diffs {
        let after = if d.local {
            d.branch.clone()
        } else {
            diff::applied(d)
        };
        event(d.branch.as_ref(), after.as_ref());
        let kind = &d.kind;
        if after == d.main && !d.local {
            // Nothing of its own left: the branch sees the default branch's node.
            changes.push(Change::DeleteNode {
                id: view::own(&d.id, &branch.name),
            });
        } else {
            let v = diff::version(after.as_ref());
            changes.push(view::own_record(&branch.name, &d.id, kind, &v));
        }
    }
    // Nodes only the default branch changed: the branch now sees their current version.
    for (id, version) in bases {
        if diffs.iter().any(|d| d.id == id) {
            continue;
        }
        let main = view::main_node(s, &id).await?;
        event(version.node().as_ref(), main.as_ref());
    }
    changes.extend(view::drop_branch_records(s, &branch.name, &all, true).await?);
    Ok((changes, events))
}

/// The changes that drop every record `branch` keeps (when it is deleted).
pub async fn dropped_with(
    s: &Services,
    branch: &str,
    schema: &BranchSchema,
) -> Result<Vec<Change>, DataError> {
    view::drop_branch_records(s, branch, &kinds(&[schema]), false).await
}
