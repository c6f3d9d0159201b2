//! Group membership: `RelationshipAdd` / `RelationshipRemove` on the `members` of a node of a
//! group kind (one inheriting from `CoreGroup`) commit `infrahub.group.member_added` /
//! `member_removed` — the group as primary node, the members that actually joined or left
//! (`members`, also the related nodes) and the group's ancestors (`ancestors`: its `parent`
//! group, that one's, and so on, when the group kind has a `parent` relationship) — instead of
//! an `infrahub.node.updated`. Adding a member twice or removing a non-member changes nothing
//! and commits nothing. (A `<Kind>Update` that sets `members` is a node update, with its
//! `infrahub.node.updated` event, as any other.)

use super::{At, DataError, DataNode, get, view};
use crate::schema::builtin;
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::{EventName, NewEvent, RelatedNode};
use infrastream_store::Commit;
use serde_json::json;

/// How far up `parent` links [`ancestors`] follows (a guard against cycles).
const MAX_DEPTH: usize = 64;

/// The groups above `group`, nearest first.
async fn ancestors(at: &At<'_>, group: &DataNode) -> Result<Vec<RelatedNode>, DataError> {
    let mut out: Vec<RelatedNode> = Vec::new();
    let mut current = group.clone();
    while out.len() < MAX_DEPTH {
        let Some(parent) = current.peers("parent").into_iter().next() else {
            break;
        };
        if parent == group.id || out.iter().any(|a| a.id == parent) {
            break;
        }
        let Some(p) = get(at.services, at.schema, at.branch, &parent).await? else {
            break;
        };
        if !builtin::is_group(at.schema, &p.kind) {
            break;
        }
        out.push(RelatedNode {
            id: p.id.clone(),
            kind: p.kind.clone(),
        });
        current = p;
    }
    Ok(out)
}

/// Commits `group`'s members going from `before` to `after`: `moved` joined (`added`) or left.
pub(super) async fn save_members(
    at: &At<'_>,
    before: &DataNode,
    after: &DataNode,
    moved: Vec<RelatedNode>,
    added: bool,
) -> Result<(), DataError> {
    use infrastream_core::error::DomainError;
    if moved.is_empty() {
        return Ok(());
    }
    let branch = if view::agnostic(at.schema, &after.kind) {
        DEFAULT_BRANCH
    } else {
        at.branch
    };
    let actor = at.caller.actor(branch);
    let name = if added {
        EventName::GROUP_MEMBER_ADDED
    } else {
        EventName::GROUP_MEMBER_REMOVED
    };
    let mut event = NewEvent::new(name);
    event.branch = Some(branch.to_owned());
    event.account_id = actor.account_id;
    event.context = actor.context;
    event.primary_node = Some(RelatedNode {
        id: after.id.clone(),
        kind: after.kind.clone(),
    });
    let ancestors = ancestors(at, after).await?;
    let nodes = |list: &[RelatedNode]| -> Vec<serde_json::Value> {
        list.iter()
            .map(|n| json!({"id": n.id, "kind": n.kind}))
            .collect()
    };
    event.data = json!({
        "node_id": after.id,
        "kind": after.kind,
        "members": nodes(&moved),
        "ancestors": nodes(&ancestors),
    });
    event.related_nodes = moved;
    let changes =
        view::changes(at.services, at.schema, at.branch, Some(before), Some(after)).await?;
    at.services
        .store
        .commit(Commit {
            changes,
            events: vec![event],
        })
        .await
        .map_err(|e| e.user_error())?;
    Ok(())
}
