//! Branches: the `Branch` query and the branch lifecycle mutations; the rules and the events
//! they commit are the domain's ([`infrastream_services::branches`]).

use crate::context::{Res, caller, domain, require_write, services, url_branch};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use infrastream_core::{Branch as CoreBranch, BranchStatus};
use infrastream_services::branches::{self, NewBranch};
use infrastream_services::nodes::NodeFilter;

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
        let filter = NodeFilter {
            ids: crate::node::id_list(ids),
            name,
            ..Default::default()
        };
        let all = branches::list(services(ctx), &filter)
            .await
            .map_err(domain)?;
        Ok(all.into_iter().map(Branch).collect())
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

/// The actor of a change the request makes.
fn actor(ctx: &Context<'_>) -> infrastream_services::Actor {
    caller(ctx).actor(&url_branch(ctx))
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
        let new = NewBranch {
            name: data.name,
            description: data.description,
            sync_with_git: data.sync_with_git,
        };
        let (b, task) = branches::create(services(ctx), &actor(ctx), new)
            .await
            .map_err(domain)?;
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
        let task = branches::delete(services(ctx), &actor(ctx), data.name.as_deref())
            .await
            .map_err(domain)?;
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
        let (merged, task) = branches::merge(services(ctx), &actor(ctx), data.name.as_deref())
            .await
            .map_err(domain)?;
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
        let (rebased, task) = branches::rebase(services(ctx), &actor(ctx), data.name.as_deref())
            .await
            .map_err(domain)?;
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
        let b = branches::validate(services(ctx), data.name.as_deref())
            .await
            .map_err(domain)?;
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
        let updated = branches::update(services(ctx), &data.name, data.description)
            .await
            .map_err(domain)?;
        Ok(Some(BranchUpdate {
            ok: Some(true),
            object: Some(Branch(updated)),
        }))
    }
}
