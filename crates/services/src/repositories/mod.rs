//! Git repositories (`CoreRepository`): registered as nodes, fetched into mirrors by a sync on
//! demand or periodically ([`sync`]), through the git adapter ([`git`]) (SPEC §2, §3).
//!
//! A repository is a generic stored node of kind `CoreRepository`; its data keeps the
//! location, the default branch, the head of every branch and tag seen by the last
//! successful sync (`refs`), the default branch's head (`commit`) and the sync status. It is a
//! [`NodeKind`]: listed, created, changed and removed by the operations of [`crate::nodes`].
//! Its id names its mirror's directory, so only UUIDs are accepted. Update and delete take the
//! repository's lock (`repository/<id>`, as a sync does), so a sync never writes back a
//! repository changed or deleted meanwhile. Registering a repository does not fetch it.

pub mod git;
pub mod location;
pub mod sync;

pub use sync::{spawn_periodic_repository_sync, sync_repository};

use crate::nodes::{Attribute, AttributeKind, NodeError, NodeKind, Scope, store_code};
use crate::{LockGuard, Services};
use async_trait::async_trait;
use git::{Location, LocationError};
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_core::{Node, RelatedNode, validate_branch_name};
use infrastream_store::{Change, Commit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Node kind of repositories.
pub const KIND: &str = "CoreRepository";

/// Sync status values (Infrahub's `RepositorySyncStatus`).
pub mod status {
    /// Never synced.
    pub const UNKNOWN: &str = "unknown";
    /// A sync is running.
    pub const SYNCING: &str = "syncing";
    /// The last sync succeeded.
    pub const IN_SYNC: &str = "in-sync";
    /// The last sync failed.
    pub const ERROR: &str = "error-import";
}

/// What went wrong with a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// A chosen id that is not a UUID.
    #[error("Invalid id '{0}': expected a UUID")]
    InvalidId(String),
    /// The location cannot be fetched from.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The default branch's name breaks the naming rules; why.
    #[error("Invalid default_branch: {0}")]
    InvalidDefaultBranch(String),
    /// The sync was cancelled (the server is shutting down) before it started.
    #[error("The sync was cancelled")]
    Cancelled,
    /// A failure every kind shares.
    #[error(transparent)]
    Node(#[from] NodeError),
}

crate::nodes::store_errors_via_node!(RepositoryError);

impl DomainError for RepositoryError {
    fn code(&self) -> &'static Code {
        match self {
            RepositoryError::InvalidId(_)
            | RepositoryError::Location(_)
            | RepositoryError::InvalidDefaultBranch(_) => &codes::BAD_USER_INPUT,
            RepositoryError::Cancelled => &codes::CONFLICT,
            RepositoryError::Node(NodeError::Store(e)) => store_code(e),
            RepositoryError::Node(e) => e.code(),
        }
    }
}

/// What a repository node keeps in its `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepositoryData {
    /// Where it is fetched from (may hold userinfo: show [`Repository::shown_location`]).
    pub location: String,
    /// The branch whose head is `commit`.
    pub default_branch: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Head of the default branch after the last successful sync.
    #[serde(default)]
    pub commit: Option<String>,
    /// Ref name → commit, as of the last successful sync.
    #[serde(default)]
    pub refs: BTreeMap<String, String>,
    /// One of [`status`].
    #[serde(default = "unknown")]
    pub sync_status: String,
    /// Why the last sync failed.
    #[serde(default)]
    pub sync_message: Option<String>,
    /// When the last sync ended.
    #[serde(default)]
    pub last_synced_at: Option<String>,
    /// Log position of the last completed sync's `sync_started` event: a sync requested
    /// when the log's head was before it is served by that sync (not shown over GraphQL).
    #[serde(default)]
    pub last_sync_started_position: Option<u64>,
}

fn unknown() -> String {
    status::UNKNOWN.into()
}

/// A repository.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Its id (a UUID; names its mirror).
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Everything else.
    pub data: RepositoryData,
}

impl Repository {
    fn from_node(node: Node) -> Option<Self> {
        if node.kind != KIND {
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
            kind: KIND.into(),
            name: self.name.clone(),
            data: serde_json::to_value(&self.data).unwrap_or(Value::Null),
        }
    }

    fn related(&self) -> RelatedNode {
        RelatedNode {
            id: self.id.clone(),
            kind: KIND.into(),
        }
    }

    /// The location as shown: userinfo (`user:password@`) removed.
    pub fn shown_location(&self) -> String {
        git::redact(&self.data.location)
    }

    /// Checks name, location and default branch.
    fn check(&self) -> Result<(), RepositoryError> {
        if self.name.trim().is_empty() {
            return Err(NodeError::Required("name").into());
        }
        Location::parse(&self.data.location)?;
        validate_branch_name(&self.data.default_branch)
            .map_err(|e| RepositoryError::InvalidDefaultBranch(e.message))?;
        Ok(())
    }
}

/// The attribute values of a repository mutation.
#[derive(Debug, Default)]
pub struct Values {
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `location`.
    pub location: Option<String>,
    /// `default_branch` (`main` when created without one).
    pub default_branch: Option<String>,
}

/// Waits for and takes the lock of repository `id`.
async fn lock(s: &Services, id: &str) -> LockGuard {
    s.locks.lock(&format!("repository/{id}")).await
}

/// Stores `r` with `change` (`CreateNode` or `UpdateNode`, both checked in the store's
/// transaction: an id is taken once, and an update needs the node to exist with its kind).
async fn put(
    s: &Services,
    r: Repository,
    change: fn(infrastream_core::Node) -> Change,
) -> Result<Repository, RepositoryError> {
    r.check()?;
    s.store.commit(Commit::change(change(r.to_node()))).await?;
    Ok(r)
}

#[async_trait]
impl NodeKind for Repository {
    const KIND: &'static str = KIND;
    const LABEL: &'static str = "Repository";
    const ATTRIBUTES: &'static [Attribute] = &[
        Attribute::text("name", true),
        Attribute::text("description", false),
        Attribute::text("location", true),
        Attribute::text("default_branch", false),
        Attribute::computed("commit", AttributeKind::Text),
        Attribute::computed("sync_status", AttributeKind::Dropdown),
        Attribute::computed("sync_message", AttributeKind::Text),
        Attribute::computed("last_synced_at", AttributeKind::Text),
    ];
    type Values = Values;
    type Error = RepositoryError;

    crate::nodes::named_by_fields!();

    async fn build(
        _: &Services,
        _: Scope<'_>,
        id: Option<String>,
        data: Values,
    ) -> Result<Self, RepositoryError> {
        let id = match id {
            // The id names the mirror's directory: only UUIDs are accepted.
            Some(id) => uuid::Uuid::parse_str(&id)
                .map_err(|_| RepositoryError::InvalidId(id))?
                .hyphenated()
                .to_string(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        Ok(Repository {
            id,
            name: data.name.ok_or(NodeError::Required("name"))?,
            data: RepositoryData {
                location: data.location.ok_or(NodeError::Required("location"))?,
                default_branch: data.default_branch.unwrap_or_else(|| "main".into()),
                description: data.description,
                commit: None,
                refs: BTreeMap::new(),
                sync_status: status::UNKNOWN.into(),
                sync_message: None,
                last_synced_at: None,
                last_sync_started_position: None,
            },
        })
    }

    async fn merge(mut self, _: &Services, data: Values) -> Result<Self, RepositoryError> {
        if let Some(name) = data.name {
            self.name = name;
        }
        if let Some(location) = data.location {
            self.data.location = location;
        }
        if let Some(description) = data.description {
            self.data.description = Some(description);
        }
        if let Some(branch) = data.default_branch
            && branch != self.data.default_branch
        {
            self.data.commit = self.data.refs.get(&format!("refs/heads/{branch}")).cloned();
            self.data.default_branch = branch;
        }
        Ok(self)
    }

    async fn all(s: &Services) -> Result<Vec<Self>, RepositoryError> {
        Ok(s.store
            .nodes(KIND)
            .await?
            .into_iter()
            .filter_map(Repository::from_node)
            .collect())
    }

    async fn by_id(s: &Services, id: &str) -> Result<Option<Self>, RepositoryError> {
        Ok(s.store.node(id).await?.and_then(Repository::from_node))
    }

    /// Inserts a new repository; its id must be free in every kind.
    async fn insert(s: &Services, _: Scope<'_>, r: Self) -> Result<Self, RepositoryError> {
        r.check()?;
        let _guard = lock(s, &r.id).await;
        if s.store.node(&r.id).await?.is_some() {
            return Err(NodeError::IdTaken(r.id).into());
        }
        put(s, r, Change::CreateNode).await
    }

    async fn replace(s: &Services, _: Scope<'_>, r: Self) -> Result<Self, RepositoryError> {
        put(s, r, Change::UpdateNode).await
    }

    /// Changes an existing repository under its lock (so no sync writes back a stale copy).
    async fn update(
        s: &Services,
        _: Scope<'_>,
        id: &str,
        values: Values,
    ) -> Result<Self, RepositoryError> {
        let _guard = lock(s, id).await;
        let existing = Self::by_id(s, id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(id))?;
        put(s, existing.merge(s, values).await?, Change::UpdateNode).await
    }

    /// Removes a repository and its mirror; returns the removed repository.
    async fn remove(
        s: &Services,
        _: Scope<'_>,
        id: String,
    ) -> Result<Option<Self>, RepositoryError> {
        let _guard = lock(s, &id).await;
        let existing = Self::by_id(s, &id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(&id))?;
        s.store
            .commit(Commit::change(Change::DeleteNode {
                id: existing.id.clone(),
            }))
            .await?;
        git::Git::new(&s.settings).remove_mirror(&existing.id).await;
        Ok(Some(existing))
    }
}
