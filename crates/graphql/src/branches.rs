//! Branches: the `Branch` query and the branch lifecycle mutations, each committed together
//! with its event (SPEC §2, §3, §5).

use crate::context::{Res, caller, event_context, gql, require_write, services, store_err};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::{
    Branch as CoreBranch, BranchStatus, Error, EventName, NewEvent, RelatedNode, now,
    validate_branch_name,
};
use infrastream_store::{Change, Commit};
use serde_json::json;

/// Node kind used for branches in events.
pub(crate) const BRANCH_KIND: &str = "Branch";

/// Lifecycle state of a branch: Infrahub's values, plus `MERGE_FAILED` (a merge that failed
/// leaves the branch open to another attempt). `NEED_UPGRADE_REBASE` is never reached here
/// (there are no schema migrations) but is declared so that clients generated from Infrahub's
/// schema recognise every value.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "BranchStatus")]
pub(crate) enum Status {
    Deleting,
    Merged,
    Merging,
    NeedRebase,
    NeedUpgradeRebase,
    Open,
    MergeFailed,
}

impl From<BranchStatus> for Status {
    fn from(s: BranchStatus) -> Self {
        match s {
            BranchStatus::Open => Status::Open,
            BranchStatus::NeedRebase => Status::NeedRebase,
            BranchStatus::Merging => Status::Merging,
            BranchStatus::Merged => Status::Merged,
            BranchStatus::Deleting => Status::Deleting,
            BranchStatus::MergeFailed => Status::MergeFailed,
        }
    }
}

/// A branch.
pub(crate) struct Branch(pub(crate) CoreBranch);

#[Object(rename_fields = "snake_case")]
impl Branch {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn origin_branch(&self) -> Option<&str> {
        Some(&self.0.origin_branch)
    }
    /// When the branch last started from `main`.
    async fn branched_from(&self) -> Option<String> {
        Some(infrastream_core::format_timestamp(&self.0.branched_from))
    }
    /// When the branch was created (RFC 3339, UTC).
    async fn created_at(&self) -> Option<String> {
        Some(infrastream_core::format_timestamp(&self.0.created_at))
    }
    async fn status(&self) -> Status {
        self.0.status.into()
    }
    async fn sync_with_git(&self) -> Option<bool> {
        Some(self.0.sync_with_git)
    }
    async fn is_default(&self) -> Option<bool> {
        Some(self.0.is_default)
    }
    /// Every branch is isolated (Infrahub dropped the other mode).
    #[graphql(deprecation = "non isolated mode is not supported anymore")]
    async fn is_isolated(&self) -> Option<bool> {
        Some(true)
    }
    async fn has_schema_changes(&self) -> Option<bool> {
        Some(self.0.has_schema_changes)
    }
    async fn graph_version(&self) -> Option<i64> {
        Some(self.0.graph_version)
    }
}

#[derive(Default)]
pub(crate) struct BranchQuery;

#[Object(rename_args = "snake_case")]
impl BranchQuery {
    /// Branches, optionally by ids or by name.
    #[graphql(name = "Branch")]
    async fn branch(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<Option<ID>>>,
        name: Option<String>,
    ) -> Res<Vec<Branch>> {
        let all = services(ctx).store.branches().await.map_err(store_err)?;
        let ids: Option<Vec<String>> = ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect());
        Ok(all
            .into_iter()
            .filter(|b| name.as_ref().is_none_or(|n| *n == b.name))
            .filter(|b| ids.as_ref().is_none_or(|ids| ids.contains(&b.id)))
            .map(Branch)
            .collect())
    }
}

/// Data of `BranchCreate` (Infrahub's extra fields are accepted and ignored).
#[derive(InputObject)]
#[graphql(name = "BranchCreateInput", rename_fields = "snake_case")]
pub(crate) struct BranchCreateInput {
    id: Option<String>,
    name: String,
    description: Option<String>,
    origin_branch: Option<String>,
    branched_from: Option<String>,
    sync_with_git: Option<bool>,
    #[graphql(deprecation = "Non isolated mode is not supported anymore")]
    is_isolated: Option<bool>,
}

/// `{name}` of the branch to merge, rebase or validate.
#[derive(InputObject)]
#[graphql(name = "BranchNameInput", rename_fields = "snake_case")]
pub(crate) struct BranchNameInput {
    name: Option<String>,
}

/// Data of `BranchDelete`. The branch is deleted from infrastream only: no Git repository
/// here has branches written by infrastream, so `delete_from_git` has nothing to act on.
#[derive(InputObject)]
#[graphql(name = "BranchDeleteInput", rename_fields = "snake_case")]
pub(crate) struct BranchDeleteInput {
    name: Option<String>,
    #[graphql(default_with = "Some(false)")]
    delete_from_git: Option<bool>,
}

/// Data of `BranchUpdate`.
#[derive(InputObject)]
#[graphql(name = "BranchUpdateInput", rename_fields = "snake_case")]
pub(crate) struct BranchUpdateInput {
    name: String,
    description: Option<String>,
    #[graphql(deprecation = "Non isolated mode is not supported anymore")]
    is_isolated: Option<bool>,
}

/// The task of a branch operation (operations complete synchronously; the id is the event's).
#[derive(SimpleObject)]
#[graphql(name = "TaskInfo", rename_fields = "snake_case")]
pub(crate) struct TaskInfo {
    id: Option<String>,
}

impl TaskInfo {
    fn of(event_id: Option<String>) -> Option<Self> {
        event_id.map(|id| TaskInfo { id: Some(id) })
    }
}

/// Declares the `{object, ok, task}` result of a branch mutation, named after the mutation.
macro_rules! branch_result {
    ($name:ident) => {
        /// `{object, ok, task}`; `object` is left out when the caller did not wait.
        #[derive(SimpleObject)]
        #[graphql(rename_fields = "snake_case")]
        pub(crate) struct $name {
            object: Option<Branch>,
            ok: Option<bool>,
            task: Option<TaskInfo>,
        }

        impl $name {
            fn done(object: CoreBranch, wait: Option<bool>, task: Option<String>) -> Option<Self> {
                Some(Self {
                    // Infrahub returns the branch only to a caller that waited.
                    object: (wait != Some(false)).then_some(Branch(object)),
                    ok: Some(true),
                    task: TaskInfo::of(task),
                })
            }
        }
    };
}

branch_result!(BranchCreate);
branch_result!(BranchMerge);
branch_result!(BranchRebase);
branch_result!(BranchValidate);

/// Result of `BranchDelete`.
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct BranchDelete {
    ok: Option<bool>,
    task: Option<TaskInfo>,
}

/// Result of `BranchUpdate`: `{ok}` as in Infrahub, plus the updated branch.
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct BranchUpdate {
    ok: Option<bool>,
    /// The branch after the update (an infrastream extension).
    object: Option<Branch>,
}

/// The branch name of a `BranchNameInput` or `BranchDeleteInput`: Infrahub declares it
/// optional, but every operation needs it.
fn required_name(name: Option<String>) -> Res<String> {
    name.ok_or_else(|| gql(Error::invalid("The branch name is required (data.name)")))
}

async fn existing(ctx: &Context<'_>, name: &str) -> Res<CoreBranch> {
    services(ctx)
        .store
        .branch(name)
        .await
        .map_err(store_err)?
        .ok_or_else(|| gql(Error::branch_not_found(name)))
}

fn refuse_default(b: &CoreBranch, verb: &str) -> Res<()> {
    if b.is_default {
        return Err(gql(Error::invalid(format!(
            "The default branch {} cannot be {verb}",
            b.name
        ))));
    }
    Ok(())
}

fn branch_event(
    ctx: &Context<'_>,
    name: &str,
    b: &CoreBranch,
    data: serde_json::Value,
) -> NewEvent {
    NewEvent {
        account_id: caller(ctx).account_id(),
        primary_node: Some(RelatedNode {
            id: b.id.clone(),
            kind: BRANCH_KIND.into(),
        }),
        data,
        context: event_context(ctx),
        ..NewEvent::new(name)
    }
}

/// Commits `change` with `event`, returning the branch and the id of the (first) event.
async fn commit(
    ctx: &Context<'_>,
    changes: Vec<Change>,
    events: Vec<NewEvent>,
) -> Res<Option<String>> {
    let stored = services(ctx)
        .store
        .commit(Commit { changes, events })
        .await
        .map_err(store_err)?;
    Ok(stored.first().map(|e| e.id.to_string()))
}

#[derive(Default)]
pub(crate) struct BranchMutation;

#[Object(rename_args = "snake_case")]
impl BranchMutation {
    /// Creates a branch from `main`.
    #[graphql(name = "BranchCreate")]
    async fn branch_create(
        &self,
        ctx: &Context<'_>,
        data: BranchCreateInput,
        wait_until_completion: Option<bool>,
        #[graphql(deprecation = "Please use `wait_until_completion` instead")]
        background_execution: Option<bool>,
    ) -> Res<Option<BranchCreate>> {
        require_write(ctx)?;
        let _ = (
            &data.id,
            &data.origin_branch,
            &data.branched_from,
            data.is_isolated,
            background_execution,
        );
        validate_branch_name(&data.name).map_err(gql)?;
        let t = now();
        let b = CoreBranch {
            id: uuid::Uuid::now_v7().to_string(),
            name: data.name.clone(),
            description: data.description,
            origin_branch: DEFAULT_BRANCH.into(),
            branched_from: t,
            created_at: t,
            status: BranchStatus::Open,
            sync_with_git: data.sync_with_git.unwrap_or(false),
            is_default: false,
            has_schema_changes: false,
            graph_version: 0,
        };
        let event = branch_event(
            ctx,
            EventName::BRANCH_CREATED,
            &b,
            json!({"created_branch": b.name, "branch_id": b.id, "sync_with_git": b.sync_with_git}),
        );
        let task = commit(ctx, vec![Change::InsertBranch(b.clone())], vec![event]).await?;
        Ok(BranchCreate::done(b, wait_until_completion, task))
    }

    /// Deletes a branch (not `main`).
    #[graphql(name = "BranchDelete")]
    async fn branch_delete(
        &self,
        ctx: &Context<'_>,
        data: BranchDeleteInput,
        wait_until_completion: Option<bool>,
    ) -> Res<Option<BranchDelete>> {
        require_write(ctx)?;
        // Deletion completes before the reply whether or not the caller waits.
        let _ = (wait_until_completion, data.delete_from_git);
        let b = existing(ctx, &required_name(data.name)?).await?;
        refuse_default(&b, "deleted")?;
        let event = branch_event(
            ctx,
            EventName::BRANCH_DELETED,
            &b,
            json!({"deleted_branch": b.name, "branch_id": b.id, "proposed_change_id": null}),
        );
        let task = commit(
            ctx,
            vec![Change::DeleteBranch {
                name: b.name.clone(),
            }],
            vec![event],
        )
        .await?;
        Ok(Some(BranchDelete {
            ok: Some(true),
            task: TaskInfo::of(task),
        }))
    }

    /// Merges a branch into `main`.
    #[graphql(name = "BranchMerge")]
    async fn branch_merge(
        &self,
        ctx: &Context<'_>,
        data: BranchNameInput,
        wait_until_completion: Option<bool>,
    ) -> Res<Option<BranchMerge>> {
        require_write(ctx)?;
        let b = existing(ctx, &required_name(data.name)?).await?;
        refuse_default(&b, "merged")?;
        if !matches!(
            b.status,
            BranchStatus::Open | BranchStatus::NeedRebase | BranchStatus::MergeFailed
        ) {
            return Err(gql(Error::conflict(format!(
                "Branch {} cannot be merged: its status is {}",
                b.name,
                b.status.as_str()
            ))));
        }
        let merged = CoreBranch {
            status: BranchStatus::Merged,
            graph_version: b.graph_version + 1,
            ..b.clone()
        };
        let event = branch_event(
            ctx,
            EventName::BRANCH_MERGED,
            &b,
            json!({"source_branch": b.name, "branch_id": b.id}),
        );
        let change = Change::UpdateBranch {
            branch: merged.clone(),
            expect_status: Some(b.status),
        };
        let task = commit(ctx, vec![change], vec![event]).await?;
        Ok(BranchMerge::done(merged, wait_until_completion, task))
    }

    /// Rebases a branch onto the current `main`: `branched_from` moves to now.
    #[graphql(name = "BranchRebase")]
    async fn branch_rebase(
        &self,
        ctx: &Context<'_>,
        data: BranchNameInput,
        wait_until_completion: Option<bool>,
    ) -> Res<Option<BranchRebase>> {
        require_write(ctx)?;
        let b = existing(ctx, &required_name(data.name)?).await?;
        refuse_default(&b, "rebased")?;
        if !matches!(b.status, BranchStatus::Open | BranchStatus::NeedRebase) {
            return Err(gql(Error::conflict(format!(
                "Branch {} cannot be rebased: its status is {}",
                b.name,
                b.status.as_str()
            ))));
        }
        let rebased = CoreBranch {
            status: BranchStatus::Open,
            branched_from: now(),
            graph_version: b.graph_version + 1,
            ..b.clone()
        };
        let mut event = branch_event(
            ctx,
            EventName::BRANCH_REBASED,
            &b,
            json!({"rebased_branch": b.name, "branch_id": b.id}),
        );
        event.branch = Some(b.name.clone());
        let change = Change::UpdateBranch {
            branch: rebased.clone(),
            expect_status: Some(b.status),
        };
        let task = commit(ctx, vec![change], vec![event]).await?;
        Ok(BranchRebase::done(rebased, wait_until_completion, task))
    }

    /// Checks that a branch can be merged (no data conflicts exist without data nodes).
    #[graphql(name = "BranchValidate")]
    async fn branch_validate(
        &self,
        ctx: &Context<'_>,
        data: BranchNameInput,
        wait_until_completion: Option<bool>,
    ) -> Res<Option<BranchValidate>> {
        require_write(ctx)?;
        let b = existing(ctx, &required_name(data.name)?).await?;
        Ok(BranchValidate::done(b, wait_until_completion, None))
    }

    /// Changes a branch's description.
    #[graphql(name = "BranchUpdate")]
    async fn branch_update(
        &self,
        ctx: &Context<'_>,
        data: BranchUpdateInput,
    ) -> Res<Option<BranchUpdate>> {
        require_write(ctx)?;
        let _ = data.is_isolated;
        let b = existing(ctx, &data.name).await?;
        let updated = CoreBranch {
            description: data.description,
            ..b.clone()
        };
        commit(
            ctx,
            vec![Change::UpdateBranch {
                branch: updated.clone(),
                expect_status: Some(b.status),
            }],
            vec![],
        )
        .await?;
        Ok(Some(BranchUpdate {
            ok: Some(true),
            object: Some(Branch(updated)),
        }))
    }
}
