//! Branches: their lifecycle — create, delete, merge, rebase, validate, update — and the rules
//! of each (a valid name; the default branch is never deleted, merged or rebased; which
//! statuses allow a merge or a rebase), each change committed together with its event
//! (SPEC §2, §3, §5). A merge or rebase commits only if the branch's status is still the one
//! it was checked against.

use crate::nodes::{NodeFilter, store_code};
use crate::{Actor, Services, data};
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_core::{
    Branch, BranchStatus, EventName, NewEvent, ParentRef, RelatedNode, now, validate_branch_name,
};
use infrastream_store::{Change, Commit, StoreError};
use serde_json::json;

/// Node kind used for branches in events.
pub const BRANCH_KIND: &str = "Branch";

/// What went wrong with a branch operation.
#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    /// The operation names no branch.
    #[error("The branch name is required (data.name)")]
    NameRequired,
    /// The name of a new branch breaks the naming rules.
    #[error(transparent)]
    InvalidName(infrastream_core::Error),
    /// No branch has this name.
    #[error("Branch: {0} not found.")]
    NotFound(String),
    /// The default branch cannot undergo the operation (`deleted`, `merged`, `rebased`).
    #[error("The default branch {name} cannot be {verb}")]
    Default {
        /// The default branch's name.
        name: String,
        /// What was attempted.
        verb: &'static str,
    },
    /// The branch's status does not allow the operation (`merged`, `rebased`).
    #[error("Branch {name} cannot be {verb}: its status is {status}")]
    Status {
        /// The branch.
        name: String,
        /// What was attempted.
        verb: &'static str,
        /// Its status.
        status: &'static str,
    },
    /// The branch's data refuses the operation (an unresolved conflict) or a read failed.
    #[error(transparent)]
    Data(infrastream_core::Error),
    /// The store refused the change or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError for BranchError {
    fn code(&self) -> &'static Code {
        match self {
            BranchError::NameRequired | BranchError::Default { .. } => &codes::BAD_USER_INPUT,
            BranchError::InvalidName(e) => e.code(),
            BranchError::NotFound(_) => &codes::NOT_FOUND,
            BranchError::Status { .. } => &codes::CONFLICT,
            BranchError::Data(e) => e.code(),
            BranchError::Store(e) => store_code(e),
        }
    }
}

/// What a new branch is given.
#[derive(Debug, Default)]
pub struct NewBranch {
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Whether it is synchronised with Git repositories.
    pub sync_with_git: Option<bool>,
}

/// A branch after an operation, and the id of the event it committed (its task), if any.
pub type Done = (Branch, Option<String>);

/// The branches that pass `filter` (`ids` and `name`).
pub async fn list(s: &Services, filter: &NodeFilter) -> Result<Vec<Branch>, BranchError> {
    Ok(s.store
        .branches()
        .await?
        .into_iter()
        .filter(|b| filter.matches(&b.id, &b.name))
        .collect())
}

/// The branch named `name`: Infrahub declares it optional in its inputs, but every
/// operation needs it.
async fn existing(s: &Services, name: Option<&str>) -> Result<Branch, BranchError> {
    let name = name.ok_or(BranchError::NameRequired)?;
    s.store
        .branch(name)
        .await?
        .ok_or_else(|| BranchError::NotFound(name.to_owned()))
}

fn refuse_default(b: &Branch, verb: &'static str) -> Result<(), BranchError> {
    if b.is_default {
        return Err(BranchError::Default {
            name: b.name.clone(),
            verb,
        });
    }
    Ok(())
}

fn refuse_status(
    b: &Branch,
    verb: &'static str,
    allowed: &[BranchStatus],
) -> Result<(), BranchError> {
    if allowed.contains(&b.status) {
        return Ok(());
    }
    Err(BranchError::Status {
        name: b.name.clone(),
        verb,
        status: b.status.as_str(),
    })
}

fn event(actor: &Actor, name: &str, b: &Branch, data: serde_json::Value) -> NewEvent {
    NewEvent {
        account_id: actor.account_id.clone(),
        primary_node: Some(RelatedNode {
            id: b.id.clone(),
            kind: BRANCH_KIND.into(),
        }),
        data,
        context: actor.context.clone(),
        ..NewEvent::new(name)
    }
}

/// Commits `changes` with `events`; returns the id of the first event.
async fn commit(
    s: &Services,
    changes: Vec<Change>,
    events: Vec<NewEvent>,
) -> Result<Option<String>, BranchError> {
    let stored = s.store.commit(Commit { changes, events }).await?;
    Ok(stored.first().map(|e| e.id.to_string()))
}

/// Creates a branch from `main`.
pub async fn create(s: &Services, actor: &Actor, new: NewBranch) -> Result<Done, BranchError> {
    validate_branch_name(&new.name).map_err(BranchError::InvalidName)?;
    let t = now();
    let b = Branch {
        id: uuid::Uuid::now_v7().to_string(),
        name: new.name,
        description: new.description,
        origin_branch: DEFAULT_BRANCH.into(),
        branched_from: t,
        created_at: t,
        status: BranchStatus::Open,
        sync_with_git: new.sync_with_git.unwrap_or(false),
        is_default: false,
        has_schema_changes: false,
        graph_version: 0,
    };
    let e = event(
        actor,
        EventName::BRANCH_CREATED,
        &b,
        json!({"created_branch": b.name, "branch_id": b.id, "sync_with_git": b.sync_with_git}),
    );
    let task = commit(s, vec![Change::InsertBranch(b.clone())], vec![e]).await?;
    Ok((b, task))
}

/// Deletes a branch (not the default one); returns the id of its event.
pub async fn delete(
    s: &Services,
    actor: &Actor,
    name: Option<&str>,
) -> Result<Option<String>, BranchError> {
    let b = existing(s, name).await?;
    refuse_default(&b, "deleted")?;
    let e = event(
        actor,
        EventName::BRANCH_DELETED,
        &b,
        json!({"deleted_branch": b.name, "branch_id": b.id, "proposed_change_id": null}),
    );
    let change = Change::DeleteBranch {
        name: b.name.clone(),
    };
    // Its data goes with it.
    let schema = crate::schema::branch_schema(s, &b.name).await?;
    let _data_locks = data::merge::lock_all(s, &[&schema]).await;
    let mut changes = vec![change];
    changes.extend(
        data::merge::dropped_with(s, &b.name, &schema)
            .await
            .map_err(BranchError::Data)?,
    );
    commit(s, changes, vec![e]).await
}

/// Merges a branch into `main`: open, needing a rebase, or after a failed merge.
pub async fn merge(s: &Services, actor: &Actor, name: Option<&str>) -> Result<Done, BranchError> {
    let b = existing(s, name).await?;
    refuse_default(&b, "merged")?;
    use BranchStatus::*;
    refuse_status(&b, "merged", &[Open, NeedRebase, MergeFailed])?;
    let merged = Branch {
        status: Merged,
        graph_version: b.graph_version + 1,
        ..b.clone()
    };
    let e = event(
        actor,
        EventName::BRANCH_MERGED,
        &b,
        json!({"source_branch": b.name, "branch_id": b.id}),
    );
    let change = Change::UpdateBranch {
        branch: merged.clone(),
        expect_status: Some(b.status),
    };
    let (mut changes, mut events) = (vec![change], vec![e]);
    // The schema and the data the branch changed go with it, in the same transaction.
    let _schema_locks = crate::schema::lock_for_merge(s, &b.name).await;
    let branch_schema = crate::schema::branch_schema(s, &b.name).await?;
    let (schema, schema_change) = crate::schema::carried_by_merge(s, actor, &b.name).await?;
    refuse_invalid_schema(&b, "merge", &schema)?;
    let _data_locks = data::merge::lock_all(s, &[&branch_schema, &schema]).await;
    if let Some((change, mut updated)) = schema_change {
        updated.parent = Some(ParentRef::InBatch(0));
        changes.push(change);
        events.push(updated);
    }
    let (data_changes, data_events) =
        data::merge::carried_by_merge(s, actor, &b, &branch_schema, &schema)
            .await
            .map_err(BranchError::Data)?;
    changes.extend(data_changes);
    events.extend(data_events);
    let task = commit(s, changes, events).await?;
    Ok((merged, task))
}

/// Refuses to `verb` (merge, rebase) `b` when the schema it would produce breaks a rule.
fn refuse_invalid_schema(
    b: &Branch,
    verb: &str,
    schema: &crate::schema::registry::BranchSchema,
) -> Result<(), BranchError> {
    let problems = crate::schema::problems(schema);
    if problems.is_empty() {
        return Ok(());
    }
    Err(BranchError::Data(infrastream_core::Error::new(
        infrastream_core::ErrorKind::Conflict,
        format!(
            "Unable to {verb} the branch '{}', the resulting schema is not valid: {}",
            b.name,
            problems.join(", ")
        ),
    )))
}

/// Rebases a branch onto the current `main`: `branched_from` moves to now.
pub async fn rebase(s: &Services, actor: &Actor, name: Option<&str>) -> Result<Done, BranchError> {
    let b = existing(s, name).await?;
    refuse_default(&b, "rebased")?;
    refuse_status(
        &b,
        "rebased",
        &[BranchStatus::Open, BranchStatus::NeedRebase],
    )?;
    let rebased = Branch {
        status: BranchStatus::Open,
        branched_from: now(),
        graph_version: b.graph_version + 1,
        ..b.clone()
    };
    let mut e = event(
        actor,
        EventName::BRANCH_REBASED,
        &b,
        json!({"rebased_branch": b.name, "branch_id": b.id}),
    );
    e.branch = Some(b.name.clone());
    let change = Change::UpdateBranch {
        branch: rebased.clone(),
        expect_status: Some(b.status),
    };
    let _schema_locks = crate::schema::lock_for_merge(s, &b.name).await;
    let before_schema = crate::schema::branch_schema(s, &b.name).await?;
    let (schema, schema_changes, updated) =
        crate::schema::carried_by_rebase(s, actor, &b.name).await?;
    refuse_invalid_schema(&b, "rebase", &schema)?;
    let _data_locks = data::merge::lock_all(s, &[&before_schema, &schema]).await;
    let mut changes = vec![change];
    changes.extend(schema_changes);
    let mut events = vec![e];
    if let Some(mut updated) = updated {
        updated.parent = Some(ParentRef::InBatch(0));
        events.push(updated);
    }
    let (data_changes, data_events) =
        data::merge::carried_by_rebase(s, actor, &b, &before_schema, &schema)
            .await
            .map_err(BranchError::Data)?;
    changes.extend(data_changes);
    events.extend(data_events);
    let task = commit(s, changes, events).await?;
    Ok((rebased, task))
}

/// Checks that a branch can be merged (no data conflicts exist without data nodes).
pub async fn validate(s: &Services, name: Option<&str>) -> Result<Branch, BranchError> {
    existing(s, name).await
}

/// Changes a branch's description.
pub async fn update(
    s: &Services,
    name: &str,
    description: Option<String>,
) -> Result<Branch, BranchError> {
    let b = existing(s, Some(name)).await?;
    let updated = Branch {
        description,
        ..b.clone()
    };
    let change = Change::UpdateBranch {
        branch: updated.clone(),
        expect_status: Some(b.status),
    };
    commit(s, vec![change], vec![]).await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_keep_their_messages_and_codes() {
        let mut b = Branch {
            id: "1".into(),
            name: "main".into(),
            description: None,
            origin_branch: DEFAULT_BRANCH.into(),
            branched_from: now(),
            created_at: now(),
            status: BranchStatus::Merged,
            sync_with_git: false,
            is_default: true,
            has_schema_changes: false,
            graph_version: 0,
        };
        let e = refuse_default(&b, "deleted").unwrap_err().user_error();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "BAD_USER_INPUT",
                "The default branch main cannot be deleted"
            )
        );
        b.name = "dev".into();
        let e = refuse_status(&b, "merged", &[BranchStatus::Open])
            .unwrap_err()
            .user_error();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                "CONFLICT",
                "Branch dev cannot be merged: its status is MERGED"
            )
        );
        let e = BranchError::NotFound("x".into()).user_error();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("NOT_FOUND", "Branch: x not found.")
        );
        assert_eq!(
            BranchError::NameRequired.user_error().message,
            "The branch name is required (data.name)"
        );
    }
}
