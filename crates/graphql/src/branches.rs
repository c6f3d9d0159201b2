//! Branches: the `Branch` query and the branch lifecycle mutations, each committed together
//! with its event (SPEC §2, §3, §5).

use crate::context::{Res, caller, event_context, gql, require_write, services, store_err};
use crate::node::OkResult;
use crate::scalars::DateTime;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::{
    Branch as CoreBranch, BranchStatus, Error, EventName, NewEvent, RelatedNode, now,
    validate_branch_name,
};
use infrastream_store::{Change, Commit};
use serde_json::json;

/// Node kind used for branches in events.
pub(crate) const BRANCH_KIND: &str = "Branch";

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
    async fn origin_branch(&self) -> &str {
        &self.0.origin_branch
    }
    /// When the branch last started from `main`.
    async fn branched_from(&self) -> String {
        infrastream_core::format_timestamp(&self.0.branched_from)
    }
    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }
    /// `OPEN`, `NEED_REBASE`, `MERGING`, `MERGED`, `DELETING` or `MERGE_FAILED`.
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
    }
    async fn sync_with_git(&self) -> bool {
        self.0.sync_with_git
    }
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    async fn has_schema_changes(&self) -> bool {
        self.0.has_schema_changes
    }
    async fn graph_version(&self) -> i64 {
        self.0.graph_version
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
    is_isolated: Option<bool>,
}

/// `{name}`.
#[derive(InputObject)]
#[graphql(name = "BranchNameInput", rename_fields = "snake_case")]
pub(crate) struct BranchNameInput {
    name: String,
}

/// Data of `BranchUpdate`.
#[derive(InputObject)]
#[graphql(name = "BranchUpdateInput", rename_fields = "snake_case")]
pub(crate) struct BranchUpdateInput {
    name: String,
    description: Option<String>,
}

/// The task of a branch operation (operations complete synchronously; the id is the event's).
#[derive(SimpleObject)]
#[graphql(name = "TaskInfo", rename_fields = "snake_case")]
pub(crate) struct TaskInfo {
    id: String,
}

/// Result of a branch mutation.
#[derive(SimpleObject)]
#[graphql(name = "BranchMutationResult", rename_fields = "snake_case")]
pub(crate) struct BranchResult {
    ok: bool,
    object: Option<Branch>,
    task: Option<TaskInfo>,
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
        #[graphql(default = true)] wait_until_completion: bool,
        background_execution: Option<bool>,
    ) -> Res<BranchResult> {
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
        Ok(BranchResult {
            ok: true,
            object: wait_until_completion.then_some(Branch(b)),
            task: task.map(|id| TaskInfo { id }),
        })
    }

    /// Deletes a branch (not `main`).
    #[graphql(name = "BranchDelete")]
    async fn branch_delete(&self, ctx: &Context<'_>, data: BranchNameInput) -> Res<OkResult> {
        require_write(ctx)?;
        let b = existing(ctx, &data.name).await?;
        refuse_default(&b, "deleted")?;
        let event = branch_event(
            ctx,
            EventName::BRANCH_DELETED,
            &b,
            json!({"deleted_branch": b.name, "branch_id": b.id, "proposed_change_id": null}),
        );
        commit(
            ctx,
            vec![Change::DeleteBranch {
                name: b.name.clone(),
            }],
            vec![event],
        )
        .await?;
        Ok(OkResult { ok: true })
    }

    /// Merges a branch into `main`.
    #[graphql(name = "BranchMerge")]
    async fn branch_merge(&self, ctx: &Context<'_>, data: BranchNameInput) -> Res<BranchResult> {
        require_write(ctx)?;
        let b = existing(ctx, &data.name).await?;
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
        Ok(BranchResult {
            ok: true,
            object: Some(Branch(merged)),
            task: task.map(|id| TaskInfo { id }),
        })
    }

    /// Rebases a branch onto the current `main`: `branched_from` moves to now.
    #[graphql(name = "BranchRebase")]
    async fn branch_rebase(&self, ctx: &Context<'_>, data: BranchNameInput) -> Res<BranchResult> {
        require_write(ctx)?;
        let b = existing(ctx, &data.name).await?;
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
        Ok(BranchResult {
            ok: true,
            object: Some(Branch(rebased)),
            task: task.map(|id| TaskInfo { id }),
        })
    }

    /// Checks that a branch can be merged (no data conflicts exist without data nodes).
    #[graphql(name = "BranchValidate")]
    async fn branch_validate(&self, ctx: &Context<'_>, data: BranchNameInput) -> Res<BranchResult> {
        require_write(ctx)?;
        let b = existing(ctx, &data.name).await?;
        Ok(BranchResult {
            ok: true,
            object: Some(Branch(b)),
            task: None,
        })
    }

    /// Changes a branch's description.
    #[graphql(name = "BranchUpdate")]
    async fn branch_update(&self, ctx: &Context<'_>, data: BranchUpdateInput) -> Res<BranchResult> {
        require_write(ctx)?;
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
        Ok(BranchResult {
            ok: true,
            object: Some(Branch(updated)),
            task: None,
        })
    }
}
