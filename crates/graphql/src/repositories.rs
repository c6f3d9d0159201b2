//! Git repositories (`CoreRepository`) in Infrahub's node shape, their sync on demand
//! (`RepositorySync`) and the periodic sync (SPEC §2, §3).
//!
//! A repository is a generic stored node of kind `CoreRepository`; its data keeps the
//! location, the default branch, the head of every branch and tag seen by the last
//! successful sync (`refs`), the default branch's head (`commit`) and the sync status.
//!
//! A sync, serialized per repository by an async mutex (also taken by update and delete, so a
//! sync never writes back a repository changed or deleted meanwhile):
//! 1. commits `infrahub.repository.sync_started` (status `started`) with the node marked
//!    `syncing`;
//! 2. fetches into the bare mirror `<data_dir>/repositories/<id>/` ([`crate::git_sync`]);
//! 3. commits, in one transaction, the updated node, `infrahub.repository.sync_completed`
//!    (`succeeded` with the default branch's head as `commit`, or `failed` with a message) and,
//!    as its children, one `infrahub.repository.update_commit` per branch or tag whose head
//!    moved (`commit_previous` null when the ref is new). Refs that disappeared are dropped
//!    from `refs` without an event (`commit` is non-null in that event type).
//!
//! All three events have the repository as primary node and no related nodes; they are
//! global (`branch` null). `RepositorySync` is synchronous: it returns once the sync has
//! been committed, with `ok` telling whether it succeeded. Registering a repository does not
//! fetch it: call `RepositorySync`, or let the periodic sync (`repository_sync_interval_secs`)
//! pick it up.

use crate::context::{Res, caller, event_context, gql, require_write, services, store_err};
use crate::git_sync::{self, Location};
use crate::node::{
    DeleteInput, Dropdown, NodeKey, TextAttribute, TextAttributeCreate, TextAttributeUpdate,
    TextValue, object_result,
};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::{
    Error, EventName, NewEvent, Node, ParentRef, RelatedNode, format_timestamp, now,
    validate_branch_name,
};
use infrastream_services::Services;
use infrastream_store::{Change, Commit, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, PoisonError, Weak};
use tokio_util::sync::CancellationToken;

/// Node kind of repositories.
pub(crate) const REPOSITORY_KIND: &str = "CoreRepository";

/// Sync status values (Infrahub's `RepositorySyncStatus`).
mod status {
    pub(super) const UNKNOWN: &str = "unknown";
    pub(super) const SYNCING: &str = "syncing";
    pub(super) const IN_SYNC: &str = "in-sync";
    pub(super) const ERROR: &str = "error-import";
}

/// What a repository node keeps in its `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RepoData {
    location: String,
    default_branch: String,
    #[serde(default)]
    description: Option<String>,
    /// Head of the default branch after the last successful sync.
    #[serde(default)]
    commit: Option<String>,
    /// Ref name → commit, as of the last successful sync.
    #[serde(default)]
    refs: BTreeMap<String, String>,
    #[serde(default = "unknown")]
    sync_status: String,
    #[serde(default)]
    sync_message: Option<String>,
    #[serde(default)]
    last_synced_at: Option<String>,
}

fn unknown() -> String {
    status::UNKNOWN.into()
}

/// A repository.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    id: String,
    name: String,
    data: RepoData,
}

impl Repo {
    fn from_node(node: Node) -> Option<Self> {
        if node.kind != REPOSITORY_KIND {
            return None;
        }
        match serde_json::from_value(node.data) {
            Ok(data) => Some(Self {
                id: node.id,
                name: node.name,
                data,
            }),
            Err(e) => {
                tracing::error!(id = %node.id, error = %e, "unreadable repository node");
                None
            }
        }
    }

    fn to_node(&self) -> Node {
        Node {
            id: self.id.clone(),
            kind: REPOSITORY_KIND.into(),
            name: self.name.clone(),
            data: serde_json::to_value(&self.data).unwrap_or(Value::Null),
        }
    }

    fn related(&self) -> RelatedNode {
        RelatedNode {
            id: self.id.clone(),
            kind: REPOSITORY_KIND.into(),
        }
    }
}

/// A Git repository in Infrahub's node shape.
pub(crate) struct CoreRepository(Repo);

#[Object(rename_fields = "snake_case")]
impl CoreRepository {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.name)
    }
    async fn description(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.description.as_deref())
    }
    /// Where it is fetched from; userinfo (`user:password@`) is never shown.
    async fn location(&self) -> Option<TextAttribute> {
        TextAttribute::of(git_sync::redact(&self.0.data.location))
    }
    async fn default_branch(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.default_branch)
    }
    /// Head of the default branch after the last successful sync.
    async fn commit(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.commit.as_deref())
    }
    /// `unknown`, `syncing`, `in-sync` or `error-import`.
    async fn sync_status(&self) -> Option<Dropdown> {
        Some(Dropdown {
            value: Some(self.0.data.sync_status.clone()),
        })
    }
    /// Why the last sync failed (null after a successful one).
    async fn sync_message(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.sync_message.as_deref())
    }
    /// When the last sync ended.
    async fn last_synced_at(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.last_synced_at.as_deref())
    }
}

crate::node::paginated!(PaginatedCoreRepository, EdgedCoreRepository, CoreRepository);

async fn all_repos(s: &Services) -> Result<Vec<Repo>, StoreError> {
    Ok(s.store
        .nodes(REPOSITORY_KIND)
        .await?
        .into_iter()
        .filter_map(Repo::from_node)
        .collect())
}

async fn repo_by_id(s: &Services, id: &str) -> Result<Option<Repo>, StoreError> {
    Ok(s.store.node(id).await?.and_then(Repo::from_node))
}

#[derive(Default)]
pub(crate) struct RepositoryQuery;

#[Object(rename_args = "snake_case")]
impl RepositoryQuery {
    /// Git repositories, optionally by name or ids.
    #[graphql(name = "CoreRepository")]
    async fn core_repository(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreRepository> {
        let all = all_repos(services(ctx)).await.map_err(store_err)?;
        let ids: Option<Vec<String>> = ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect());
        Ok(PaginatedCoreRepository::of(
            all.into_iter()
                .filter(|r| name_value.as_ref().is_none_or(|n| *n == r.name))
                .filter(|r| ids.as_ref().is_none_or(|ids| ids.contains(&r.id)))
                .map(CoreRepository)
                .collect(),
        ))
    }
}

/// Data of `CoreRepositoryCreate`.
#[derive(InputObject)]
#[graphql(name = "CoreRepositoryCreateInput", rename_fields = "snake_case")]
pub(crate) struct CreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    description: Option<TextAttributeCreate>,
    location: Option<TextAttributeCreate>,
    default_branch: Option<TextAttributeCreate>,
}

/// Data of `CoreRepositoryUpdate`: the repository is found by `id` or `hfid` (`[name]`).
#[derive(InputObject)]
#[graphql(name = "CoreRepositoryUpdateInput", rename_fields = "snake_case")]
pub(crate) struct UpdateInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    description: Option<TextAttributeUpdate>,
    location: Option<TextAttributeUpdate>,
    default_branch: Option<TextAttributeUpdate>,
}

/// Data of `CoreRepositoryUpsert`: updates the repository found by `id`, `hfid` or name, or
/// creates it.
#[derive(InputObject)]
#[graphql(name = "CoreRepositoryUpsertInput", rename_fields = "snake_case")]
pub(crate) struct UpsertInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    description: Option<TextAttributeUpdate>,
    location: Option<TextAttributeUpdate>,
    default_branch: Option<TextAttributeUpdate>,
}

/// The attribute values of any of the three inputs.
struct Values {
    name: Option<String>,
    description: Option<String>,
    location: Option<String>,
    default_branch: Option<String>,
}

object_result!(CoreRepositoryCreate, CoreRepository);
object_result!(CoreRepositoryUpdate, CoreRepository);
object_result!(CoreRepositoryUpsert, CoreRepository);

/// Result of `CoreRepositoryDelete`: `{ok}` as in Infrahub, plus the removed repository.
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct CoreRepositoryDelete {
    ok: Option<bool>,
    /// The repository as it was before the delete (an infrastream extension).
    object: Option<CoreRepository>,
}

/// `{id}` of the repository to sync.
#[derive(InputObject)]
#[graphql(name = "RepositorySyncInput", rename_fields = "snake_case")]
pub(crate) struct RepositorySyncInput {
    id: String,
}

/// Result of `RepositorySync`: `ok` is whether the sync succeeded; `object` the repository
/// after it (its `sync_message` says why a sync failed).
#[derive(SimpleObject)]
#[graphql(name = "RepositorySyncResult", rename_fields = "snake_case")]
pub(crate) struct RepositorySyncResult {
    ok: bool,
    object: Option<CoreRepository>,
}

/// Checks name, location and default branch.
fn check(r: &Repo) -> Res<()> {
    if r.name.trim().is_empty() {
        return Err(gql(Error::invalid("name.value is required")));
    }
    Location::parse(&r.data.location).map_err(|m| gql(Error::invalid(m)))?;
    validate_branch_name(&r.data.default_branch).map_err(|e| {
        gql(Error::invalid(format!(
            "Invalid default_branch: {}",
            e.message
        )))
    })?;
    Ok(())
}

fn create(id: Option<String>, data: Values) -> Res<Repo> {
    let id = match id {
        // The id names the mirror's directory: only UUIDs are accepted.
        Some(id) => uuid::Uuid::parse_str(&id)
            .map_err(|_| {
                gql(Error::invalid(format!(
                    "Invalid id '{id}': expected a UUID"
                )))
            })?
            .hyphenated()
            .to_string(),
        None => uuid::Uuid::now_v7().to_string(),
    };
    Ok(Repo {
        id,
        name: data
            .name
            .ok_or_else(|| gql(Error::invalid("name.value is required")))?,
        data: RepoData {
            location: data
                .location
                .ok_or_else(|| gql(Error::invalid("location.value is required")))?,
            default_branch: data.default_branch.unwrap_or_else(|| "main".into()),
            description: data.description,
            commit: None,
            refs: BTreeMap::new(),
            sync_status: status::UNKNOWN.into(),
            sync_message: None,
            last_synced_at: None,
        },
    })
}

fn merge(mut r: Repo, data: Values) -> Repo {
    if let Some(name) = data.name {
        r.name = name;
    }
    if let Some(location) = data.location {
        r.data.location = location;
    }
    if let Some(description) = data.description {
        r.data.description = Some(description);
    }
    if let Some(branch) = data.default_branch
        && branch != r.data.default_branch
    {
        r.data.commit = r.data.refs.get(&format!("refs/heads/{branch}")).cloned();
        r.data.default_branch = branch;
    }
    r
}

async fn put(s: &Services, r: Repo) -> Res<Repo> {
    check(&r)?;
    s.store
        .commit(Commit {
            changes: vec![Change::PutNode(r.to_node())],
            events: vec![],
        })
        .await
        .map_err(store_err)?;
    Ok(r)
}

/// Inserts a new repository (its id must be free in every kind: `PutNode` replaces by id).
async fn insert(s: &Services, r: Repo) -> Res<Repo> {
    check(&r)?;
    let _guard = lock_for(s, &r.id).lock_owned().await;
    if s.store.node(&r.id).await.map_err(store_err)?.is_some() {
        return Err(gql(Error::new(
            infrastream_core::ErrorKind::AlreadyExists,
            format!("A node with id {} already exists", r.id),
        )));
    }
    put(s, r).await
}

/// The repository designated by `key`.
async fn find(s: &Services, key: &NodeKey) -> Res<Option<Repo>> {
    match key {
        NodeKey::Id(id) => repo_by_id(s, id).await.map_err(store_err),
        NodeKey::Name(name) => Ok(all_repos(s)
            .await
            .map_err(store_err)?
            .into_iter()
            .find(|r| r.name == *name)),
    }
}

/// The id of the repository designated by `key`, which must exist.
async fn existing_id(s: &Services, key: NodeKey) -> Res<String> {
    match key {
        NodeKey::Id(id) => Ok(id),
        key => find(s, &key)
            .await?
            .map(|r| r.id)
            .ok_or_else(|| gql(not_found(&key.to_string()))),
    }
}

/// Changes an existing repository under its lock (so no sync writes back a stale copy).
async fn change(s: &Services, id: &str, data: Values) -> Res<Repo> {
    let _guard = lock_for(s, id).lock_owned().await;
    let existing = repo_by_id(s, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| gql(not_found(id)))?;
    put(s, merge(existing, data)).await
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("Repository {id} not found"))
}

#[derive(Default)]
pub(crate) struct RepositoryMutation;

#[Object(rename_args = "snake_case")]
impl RepositoryMutation {
    /// Registers a repository (it is fetched by `RepositorySync` or the periodic sync).
    #[graphql(name = "CoreRepositoryCreate")]
    async fn create(
        &self,
        ctx: &Context<'_>,
        data: CreateInput,
    ) -> Res<Option<CoreRepositoryCreate>> {
        require_write(ctx)?;
        let values = Values {
            name: data.name.text(),
            description: data.description.text(),
            location: data.location.text(),
            default_branch: data.default_branch.text(),
        };
        let r = insert(services(ctx), create(data.id, values)?).await?;
        Ok(CoreRepositoryCreate::done(CoreRepository(r)))
    }

    /// Changes a repository, found by `id` or `hfid`.
    #[graphql(name = "CoreRepositoryUpdate")]
    async fn update(
        &self,
        ctx: &Context<'_>,
        data: UpdateInput,
    ) -> Res<Option<CoreRepositoryUpdate>> {
        require_write(ctx)?;
        let s = services(ctx);
        let id = existing_id(s, NodeKey::required(data.id, data.hfid, REPOSITORY_KIND)?).await?;
        let values = Values {
            name: data.name.text(),
            description: data.description.text(),
            location: data.location.text(),
            default_branch: data.default_branch.text(),
        };
        let r = change(s, &id, values).await?;
        Ok(CoreRepositoryUpdate::done(CoreRepository(r)))
    }

    /// Creates or changes a repository, found by `id`, `hfid` or else by name.
    #[graphql(name = "CoreRepositoryUpsert")]
    async fn upsert(
        &self,
        ctx: &Context<'_>,
        data: UpsertInput,
    ) -> Res<Option<CoreRepositoryUpsert>> {
        require_write(ctx)?;
        let s = services(ctx);
        let values = Values {
            name: data.name.text(),
            description: data.description.text(),
            location: data.location.text(),
            default_branch: data.default_branch.text(),
        };
        let key = match NodeKey::from_input(data.id.clone(), data.hfid, REPOSITORY_KIND)? {
            Some(k) => Some(k),
            None => values.name.clone().map(NodeKey::Name),
        };
        let found = match &key {
            Some(k) => find(s, k).await?,
            None => None,
        };
        let r = match found {
            Some(existing) => change(s, &existing.id, values).await?,
            None => insert(s, create(data.id, values)?).await?,
        };
        Ok(CoreRepositoryUpsert::done(CoreRepository(r)))
    }

    /// Removes a repository and its mirror, found by `id` or `hfid`; returns the removed
    /// repository.
    #[graphql(name = "CoreRepositoryDelete")]
    async fn delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreRepositoryDelete>> {
        require_write(ctx)?;
        let s = services(ctx);
        let id = existing_id(s, data.key(REPOSITORY_KIND)?).await?;
        let _guard = lock_for(s, &id).lock_owned().await;
        let existing = repo_by_id(s, &id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| gql(not_found(&id)))?;
        s.store
            .commit(Commit {
                changes: vec![Change::DeleteNode {
                    id: existing.id.clone(),
                }],
                events: vec![],
            })
            .await
            .map_err(store_err)?;
        git_sync::remove_mirror(&repos_dir(s), &existing.id).await;
        Ok(Some(CoreRepositoryDelete {
            ok: Some(true),
            object: Some(CoreRepository(existing)),
        }))
    }

    /// Fetches the repository now and returns when the sync has been committed.
    #[graphql(name = "RepositorySync")]
    async fn sync(
        &self,
        ctx: &Context<'_>,
        data: RepositorySyncInput,
    ) -> Res<RepositorySyncResult> {
        require_write(ctx)?;
        let actor = Actor {
            account_id: caller(ctx).account_id(),
            context: event_context(ctx),
        };
        match sync_repository(services(ctx), &data.id, &actor, &CancellationToken::new()).await {
            Ok((ok, repo)) => Ok(RepositorySyncResult {
                ok,
                object: Some(CoreRepository(repo)),
            }),
            Err(SyncError::NotFound) => Err(gql(not_found(&data.id))),
            Err(SyncError::Store(e)) => Err(store_err(e)),
            Err(SyncError::Cancelled) => Err(gql(Error::conflict("The sync was cancelled"))),
        }
    }
}

/// Who caused a sync.
struct Actor {
    account_id: Option<String>,
    context: Value,
}

enum SyncError {
    NotFound,
    Cancelled,
    Store(StoreError),
}

impl From<StoreError> for SyncError {
    fn from(e: StoreError) -> Self {
        SyncError::Store(e)
    }
}

fn repos_dir(s: &Services) -> PathBuf {
    s.settings.data_dir.join("repositories")
}

/// One lock per mirror directory, shared by every server in the process (tests run several);
/// entries go away with their last user.
fn lock_for(s: &Services, id: &str) -> Arc<tokio::sync::Mutex<()>> {
    type Locks = HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>;
    static LOCKS: LazyLock<std::sync::Mutex<Locks>> = LazyLock::new(Default::default);
    let key = repos_dir(s).join(id);
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, l| l.strong_count() > 0);
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(key, Arc::downgrade(&lock));
    lock
}

fn event(r: &Repo, name: &str, actor: &Actor, data: Value) -> NewEvent {
    let mut e = NewEvent::new(name);
    e.account_id = actor.account_id.clone();
    e.primary_node = Some(r.related());
    e.data = data;
    e.context = actor.context.clone();
    e
}

/// Syncs one repository (see the module documentation); returns whether it succeeded and the
/// repository after it. Waits for any sync, update or delete of the same repository first.
async fn sync_repository(
    s: &Services,
    id: &str,
    actor: &Actor,
    cancel: &CancellationToken,
) -> Result<(bool, Repo), SyncError> {
    let lock = lock_for(s, id);
    let _guard = tokio::select! {
        g = lock.lock_owned() => g,
        () = cancel.cancelled() => return Err(SyncError::Cancelled),
    };
    let mut repo = repo_by_id(s, id).await?.ok_or(SyncError::NotFound)?;
    let base = json!({"repository_id": repo.id, "repository_name": repo.name});
    let with = |extra: Value| {
        let mut d = base.clone();
        if let (Some(d), Value::Object(extra)) = (d.as_object_mut(), extra) {
            d.extend(extra);
        }
        d
    };

    repo.data.sync_status = status::SYNCING.into();
    s.store
        .commit(Commit {
            changes: vec![Change::PutNode(repo.to_node())],
            events: vec![event(
                &repo,
                EventName::REPOSITORY_SYNC_STARTED,
                actor,
                with(json!({"status": "started", "message": null, "commit": null})),
            )],
        })
        .await?;

    let outcome = match Location::parse(&repo.data.location) {
        Ok(location) => git_sync::sync_mirror(&repos_dir(s), &repo.id, &location, cancel)
            .await
            .and_then(|heads| {
                let branch = format!("refs/heads/{}", repo.data.default_branch);
                match heads.get(&branch) {
                    Some(head) => Ok((head.clone(), heads)),
                    None => Err(format!(
                        "Branch {} does not exist in {}",
                        repo.data.default_branch,
                        location.display()
                    )),
                }
            }),
        Err(message) => Err(message),
    };

    repo.data.last_synced_at = Some(format_timestamp(&now()));
    let mut events = Vec::new();
    let ok = match outcome {
        Ok((head, heads)) => {
            events.push(event(
                &repo,
                EventName::REPOSITORY_SYNC_COMPLETED,
                actor,
                with(json!({"status": "succeeded", "message": null, "commit": head})),
            ));
            for (git_ref, commit) in &heads {
                let previous = repo.data.refs.get(git_ref);
                if previous != Some(commit) {
                    let mut e = event(
                        &repo,
                        EventName::REPOSITORY_UPDATE_COMMIT,
                        actor,
                        with(json!({
                            "commit": commit,
                            "commit_previous": previous,
                            "ref": git_ref,
                        })),
                    );
                    e.parent = Some(ParentRef::InBatch(0));
                    events.push(e);
                }
            }
            repo.data.refs = heads;
            repo.data.commit = Some(head);
            repo.data.sync_status = status::IN_SYNC.into();
            repo.data.sync_message = None;
            true
        }
        Err(message) => {
            tracing::info!(repository = %repo.name, %message, "repository sync failed");
            events.push(event(
                &repo,
                EventName::REPOSITORY_SYNC_COMPLETED,
                actor,
                with(json!({"status": "failed", "message": message, "commit": null})),
            ));
            repo.data.sync_status = status::ERROR.into();
            repo.data.sync_message = Some(message);
            false
        }
    };
    s.store
        .commit(Commit {
            changes: vec![Change::PutNode(repo.to_node())],
            events,
        })
        .await?;
    Ok((ok, repo))
}

/// Starts the periodic sync of every repository when `repository_sync_interval_secs > 0`:
/// one round every interval (counted from the end of the previous round), until `shutdown`
/// is cancelled. A sync running at shutdown is interrupted and recorded as failed; await the
/// returned task before closing the store.
pub fn spawn_periodic_repository_sync(
    services: Services,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let secs = services.settings.repository_sync_interval_secs;
    if secs == 0 {
        return None;
    }
    let interval = std::time::Duration::from_secs(secs);
    Some(tokio::spawn(async move {
        let actor = Actor {
            account_id: None,
            context: json!({"account_id": null, "branch": null, "trigger": "periodic"}),
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = shutdown.cancelled() => return,
            }
            let repos = match all_repos(&services).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "periodic repository sync: cannot list repositories");
                    continue;
                }
            };
            for r in repos {
                if shutdown.is_cancelled() {
                    return;
                }
                match sync_repository(&services, &r.id, &actor, &shutdown).await {
                    Ok(_) | Err(SyncError::NotFound) => {}
                    Err(SyncError::Cancelled) => return,
                    Err(SyncError::Store(e)) => {
                        tracing::error!(repository = %r.name, error = %e, "periodic repository sync: store failure");
                    }
                }
            }
        }
    }))
}
