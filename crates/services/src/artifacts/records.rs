//! Creating, changing and removing artifacts directly (content uploaded beforehand to the
//! object store and named by `storage_id`). Every change, and every delete, happens under the
//! artifact's lock, re-reading the artifact there: a change made meanwhile is built upon and
//! a delete made meanwhile stands.

use super::model::{
    artifact_key, commit_artifact, find_artifact, find_artifact_by_key, find_definition, lock_key,
    referenced_definition,
};
use super::validate::{check_artifact, resolve_target};
use super::{Artifact, ArtifactData, ArtifactError, Result};
use crate::{Caller, Services};
use infrastream_store::{Change, Commit};
use serde_json::Value;

/// An artifact's target as given: `id`, and `kind` when infrastream does not store the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// Node id.
    pub id: String,
    /// Node kind, if given.
    pub kind: Option<String>,
}

/// The values a create, update or upsert gives; `None` leaves an attribute as it is.
#[derive(Debug, Clone, Default)]
pub struct ArtifactValues {
    /// Display name.
    pub name: Option<String>,
    /// Status (one of [`super::STATUSES`]).
    pub status: Option<String>,
    /// Content type.
    pub content_type: Option<String>,
    /// MD5 of the content: only together with `storage_id`, and then it must match.
    pub checksum: Option<String>,
    /// Object id of uploaded content.
    pub storage_id: Option<String>,
    /// Parameters.
    pub parameters: Option<Value>,
    /// Id or name of the definition (required on create; cannot change).
    pub definition: Option<String>,
    /// The target (required on create; cannot change).
    pub target: Option<TargetRef>,
}

/// Every artifact, of every branch.
pub async fn list_artifacts(services: &Services) -> Result<Vec<Artifact>> {
    super::model::artifacts(services.store.as_ref()).await
}

/// The artifact with node id `id`, if there is one.
pub async fn artifact(services: &Services, id: &str) -> Result<Option<Artifact>> {
    find_artifact(services.store.as_ref(), id).await
}

fn merge(mut a: Artifact, data: ArtifactValues, definition_id: Option<String>) -> Result<Artifact> {
    if let Some(d) = &definition_id
        && *d != a.data.definition_id
    {
        return Err(ArtifactError::DefinitionChanged);
    }
    if let Some(t) = &data.target
        && t.id != a.data.target.id
    {
        return Err(ArtifactError::TargetChanged);
    }
    if let Some(v) = data.name {
        a.data.name = v;
    }
    if let Some(v) = data.status {
        a.data.status = v;
    }
    if let Some(v) = data.content_type {
        a.data.content_type = v;
    }
    if let Some(v) = data.storage_id {
        a.data.storage_id = Some(v);
        a.data.checksum = data.checksum;
    } else if data.checksum.is_some() {
        return Err(ArtifactError::ChecksumWithoutStorageId);
    }
    if let Some(v) = data.parameters {
        a.data.parameters = v;
    }
    if a.data.status != "Error" {
        a.data.error = None;
    }
    Ok(a)
}

/// Applies `data` to the existing artifact `existing`.
async fn changed(
    services: &Services,
    existing: Artifact,
    data: ArtifactValues,
) -> Result<Artifact> {
    let definition_id = match &data.definition {
        Some(key) => Some(
            referenced_definition(services.store.as_ref(), key)
                .await?
                .id,
        ),
        None => None,
    };
    merge(existing, data, definition_id)
}

/// Creates an artifact on `branch` (with node id `id`, or a new one); with `storage_id` it
/// has content, and `infrahub.artifact.created` is emitted.
pub async fn create_artifact(
    services: &Services,
    caller: &Caller,
    branch: &str,
    id: Option<String>,
    data: ArtifactValues,
) -> Result<Artifact> {
    let store = services.store.as_ref();
    let def_key = data
        .definition
        .clone()
        .ok_or(ArtifactError::DefinitionRequired)?;
    let def = referenced_definition(store, &def_key).await?;
    let target_ref = data.target.clone().ok_or(ArtifactError::TargetRequired)?;
    let spec = match &target_ref.kind {
        Some(k) => format!("{k}:{}", target_ref.id),
        None => target_ref.id.clone(),
    };
    let target = resolve_target(store, &spec, &[]).await?;
    let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if store.node(&id).await?.is_some() {
        return Err(crate::nodes::NodeError::IdTaken(id).into());
    }
    let a = Artifact {
        id,
        data: ArtifactData {
            name: def.d.artifact_name.clone(),
            status: "Pending".into(),
            content_type: def.d.content_type.clone(),
            checksum: None,
            storage_id: None,
            parameters: def.d.parameters.clone(),
            definition_id: def.id.clone(),
            target,
            branch: branch.to_owned(),
            error: None,
        },
    };
    let mut a = merge(a, data, Some(def.id.clone()))?;
    if a.data.storage_id.is_some() && a.data.status == "Pending" {
        a.data.status = "Ready".into();
    }
    let _guard = services.locks.lock(&lock_key(&a.key())).await;
    if find_artifact_by_key(store, &a.key()).await?.is_some() {
        return Err(ArtifactError::ArtifactExists {
            definition: def.name,
            target: a.data.target.id,
            branch: a.data.branch,
        });
    }
    check_artifact(services, &mut a).await?;
    commit_artifact(store, &a, None, caller).await?;
    Ok(a)
}

/// Changes the artifact `existing` (as read before its lock was taken); a new `storage_id`
/// emits `infrahub.artifact.updated`.
async fn change(
    services: &Services,
    caller: &Caller,
    existing: Artifact,
    data: ArtifactValues,
) -> Result<Artifact> {
    let store = services.store.as_ref();
    let _guard = services.locks.lock(&lock_key(&existing.key())).await;
    let current = find_artifact(store, &existing.id)
        .await?
        .ok_or(ArtifactError::ArtifactNotFound(existing.id))?;
    let mut a = changed(services, current.clone(), data).await?;
    check_artifact(services, &mut a).await?;
    commit_artifact(store, &a, Some(&current), caller).await?;
    Ok(a)
}

/// Changes artifact `id`; a new `storage_id` emits `infrahub.artifact.updated`.
pub async fn update_artifact(
    services: &Services,
    caller: &Caller,
    id: &str,
    data: ArtifactValues,
) -> Result<Artifact> {
    let existing = artifact(services, id)
        .await?
        .ok_or_else(|| ArtifactError::ArtifactNotFound(id.to_owned()))?;
    change(services, caller, existing, data).await
}

/// Changes artifact `id`, or (without `id`) the artifact of `data`'s definition and target on
/// `branch`, or creates it.
pub async fn upsert_artifact(
    services: &Services,
    caller: &Caller,
    branch: &str,
    id: Option<String>,
    data: ArtifactValues,
) -> Result<Artifact> {
    let store = services.store.as_ref();
    let mut existing = match &id {
        Some(id) => find_artifact(store, id).await?,
        None => None,
    };
    if existing.is_none()
        && id.is_none()
        && let (Some(d), Some(t)) = (&data.definition, &data.target)
        && let Some(def) = find_definition(store, d).await?
    {
        existing = find_artifact_by_key(store, &artifact_key(&def.id, branch, &t.id)).await?;
    }
    match existing {
        Some(e) => change(services, caller, e, data).await,
        None => create_artifact(services, caller, branch, id, data).await,
    }
}

/// Removes artifact `id` (its content stays in the object store). It is removed under its
/// lock: a generation of it that is running finishes first, and none brings it back.
pub async fn delete_artifact(services: &Services, id: &str) -> Result<()> {
    let store = services.store.as_ref();
    let a = artifact(services, id)
        .await?
        .ok_or_else(|| ArtifactError::ArtifactNotFound(id.to_owned()))?;
    let _guard = services.locks.lock(&lock_key(&a.key())).await;
    if find_artifact(store, id).await?.is_none() {
        return Err(ArtifactError::ArtifactNotFound(id.to_owned()));
    }
    store
        .commit(Commit {
            changes: vec![Change::DeleteNode { id: id.to_owned() }],
            events: vec![],
        })
        .await?;
    Ok(())
}
