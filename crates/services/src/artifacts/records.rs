//! Artifacts as a [`NodeKind`]: branch-local nodes without hfid, with a JSON attribute
//! (`parameters`), two relationships (`definition`, and the target as `object` or under its
//! older name `target`) and read-only attributes set by generation (`error_message`).
//! Content is uploaded beforehand to the object store and named by `storage_id`. Every change,
//! and every delete, happens under the artifact's lock, re-reading the artifact there: a
//! change made meanwhile is built upon and a delete made meanwhile stands.

use super::model::{
    artifact_key, artifacts, commit_artifact, find_artifact, find_artifact_by_key, find_definition,
    lock_key, referenced_definition,
};
use super::validate::{check_artifact, resolve_target};
use super::{ARTIFACT_KIND, Artifact, ArtifactError, Definition, Result};
use crate::Services;
use crate::nodes::{
    Attribute, AttributeKind, NodeError, NodeKey, NodeKind, RelatedRef, Relationship, Scope,
};
use async_trait::async_trait;
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
    /// The definition, by id or name (required on create; cannot change).
    pub definition: Option<RelatedRef>,
    /// The target, by id (required on create, here or as `target`; cannot change).
    pub object: Option<RelatedRef>,
    /// The target under infrastream's older name; same as `object`.
    pub target: Option<RelatedRef>,
}

impl ArtifactValues {
    /// The definition given (an id or a name).
    fn definition(&self) -> Result<Option<String>> {
        Ok(match &self.definition {
            None => None,
            Some(d) => Some(match d.key("definition")? {
                NodeKey::Id(id) => id,
                NodeKey::Name(name) => name,
            }),
        })
    }

    /// The target given, as `object` or as `target`, by id.
    fn target(&self) -> Result<Option<TargetRef>> {
        let t = match (&self.object, &self.target) {
            (Some(_), Some(_)) => return Err(ArtifactError::TargetTwice),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => return Ok(None),
        };
        match t.key("object")? {
            NodeKey::Id(id) => Ok(Some(TargetRef {
                id,
                kind: t.kind.clone(),
            })),
            NodeKey::Name(_) => Err(ArtifactError::TargetByHfid),
        }
    }
}

/// `a` with `data` applied; `definition_id` is the definition `data` names, if any.
fn apply(mut a: Artifact, data: ArtifactValues, definition_id: Option<String>) -> Result<Artifact> {
    if let Some(d) = &definition_id
        && *d != a.data.definition_id
    {
        return Err(ArtifactError::DefinitionChanged);
    }
    if let Some(t) = data.target()?
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

/// Under the lock of artifact `id` (as read before it was taken): re-reads it, makes the
/// change `f` computes from what is there now, checks and commits it; a new `storage_id`
/// emits `infrahub.artifact.updated`.
async fn change<F>(s: &Services, at: Scope<'_>, existing: &Artifact, f: F) -> Result<Artifact>
where
    F: AsyncFnOnce(Artifact) -> Result<Artifact>,
{
    let store = s.store.as_ref();
    let _guard = s.locks.lock(&lock_key(&existing.key())).await;
    let current = find_artifact(store, &existing.id)
        .await?
        .ok_or_else(|| NodeError::not_found::<Artifact>(&existing.id))?;
    let mut a = f(current.clone()).await?;
    check_artifact(s, &mut a).await?;
    commit_artifact(store, &a, Some(&current), at.caller).await?;
    Ok(a)
}

/// The artifact with node id `id`: not found otherwise.
async fn existing(s: &Services, id: &str) -> Result<Artifact> {
    Artifact::by_id(s, id)
        .await?
        .ok_or_else(|| NodeError::not_found::<Artifact>(id).into())
}

#[async_trait]
impl NodeKind for Artifact {
    const KIND: &'static str = ARTIFACT_KIND;
    const LABEL: &'static str = "Artifact";
    const ATTRIBUTES: &'static [Attribute] = &[
        Attribute::text("name", false),
        Attribute::text("status", false),
        Attribute::text("content_type", false),
        Attribute::text("checksum", false),
        Attribute::text("storage_id", false),
        Attribute::json("parameters", false),
        Attribute::computed("error_message", AttributeKind::Text),
    ];
    const RELATIONSHIPS: &'static [Relationship] = &[
        Relationship {
            name: "definition",
            peer: Some(super::DEFINITION_KIND),
        },
        Relationship {
            name: "object",
            peer: None,
        },
        Relationship {
            name: "target",
            peer: None,
        },
    ];
    const HFID: bool = false;
    type Values = ArtifactValues;
    type Error = ArtifactError;

    fn id(&self) -> &str {
        &self.id
    }
    /// The display name (not unique: an artifact's unique node name is its key).
    fn name(&self) -> &str {
        &self.data.name
    }
    fn name_value(_: &ArtifactValues) -> Option<&str> {
        None
    }
    /// `definition`, and the target as `object` (and `target`).
    fn related(&self, relationship: &str) -> Option<&str> {
        match relationship {
            "definition" => Some(&self.data.definition_id),
            "object" | "target" => Some(&self.data.target.id),
            _ => None,
        }
    }
    fn branch(&self) -> Option<&str> {
        Some(&self.data.branch)
    }
    fn check_values(values: &ArtifactValues) -> Result<()> {
        values.definition()?;
        values.target()?;
        Ok(())
    }

    /// A new artifact on the request's branch, of the definition and for the target given.
    async fn build(
        s: &Services,
        at: Scope<'_>,
        id: Option<String>,
        data: ArtifactValues,
    ) -> Result<Self> {
        let store = s.store.as_ref();
        let def_key = data
            .definition()?
            .ok_or(ArtifactError::DefinitionRequired)?;
        let def = referenced_definition(store, &def_key).await?;
        let target_ref = data.target()?.ok_or(ArtifactError::TargetRequired)?;
        let spec = match &target_ref.kind {
            Some(k) => format!("{k}:{}", target_ref.id),
            None => target_ref.id.clone(),
        };
        let target = resolve_target(store, &spec, &[]).await?;
        let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if store.node(&id).await?.is_some() {
            return Err(NodeError::IdTaken(id).into());
        }
        let a = Artifact::pending(id, &def, target, at.branch);
        let mut a = apply(a, data, Some(def.id))?;
        if a.data.storage_id.is_some() && a.data.status == "Pending" {
            a.data.status = "Ready".into();
        }
        Ok(a)
    }

    async fn merge(self, s: &Services, data: ArtifactValues) -> Result<Self> {
        let definition_id = match data.definition()? {
            Some(key) => Some(referenced_definition(s.store.as_ref(), &key).await?.id),
            None => None,
        };
        apply(self, data, definition_id)
    }

    async fn all(s: &Services) -> Result<Vec<Self>> {
        artifacts(s.store.as_ref()).await
    }

    async fn by_id(s: &Services, id: &str) -> Result<Option<Self>> {
        find_artifact(s.store.as_ref(), id).await
    }

    /// Without `id`: the artifact of the definition and target given on the request's branch.
    async fn upsert_match(
        s: &Services,
        at: Scope<'_>,
        data: &ArtifactValues,
    ) -> Result<Option<Self>> {
        let store = s.store.as_ref();
        if let (Some(d), Some(t)) = (data.definition()?, data.target()?)
            && let Some(def) = find_definition(store, &d).await?
        {
            return find_artifact_by_key(store, &artifact_key(&def.id, at.branch, &t.id)).await;
        }
        Ok(None)
    }

    /// Stores a new artifact under its lock (one artifact per definition, target and
    /// branch); with `storage_id` it has content, and `infrahub.artifact.created` is emitted.
    async fn insert(s: &Services, at: Scope<'_>, mut a: Self) -> Result<Self> {
        let store = s.store.as_ref();
        let _guard = s.locks.lock(&lock_key(&a.key())).await;
        if find_artifact_by_key(store, &a.key()).await?.is_some() {
            let definition = match Definition::by_id(s, &a.data.definition_id).await? {
                Some(d) => d.name,
                None => a.data.definition_id,
            };
            return Err(ArtifactError::ArtifactExists {
                definition,
                target: a.data.target.id,
                branch: a.data.branch,
            });
        }
        check_artifact(s, &mut a).await?;
        commit_artifact(store, &a, None, at.caller).await?;
        Ok(a)
    }

    /// Stores `a` as the artifact's new state, under its lock.
    async fn replace(s: &Services, at: Scope<'_>, a: Self) -> Result<Self> {
        change(s, at, &a.clone(), async |_| Ok(a)).await
    }

    /// Applies `values` to the artifact as it is once its lock is held.
    async fn update(s: &Services, at: Scope<'_>, id: &str, values: ArtifactValues) -> Result<Self> {
        let a = existing(s, id).await?;
        change(s, at, &a, async |current: Artifact| {
            current.merge(s, values).await
        })
        .await
    }

    /// Removes the artifact (its content stays in the object store) under its lock: a
    /// generation of it that is running finishes first, and none brings it back.
    async fn remove(s: &Services, _: Scope<'_>, id: String) -> Result<Option<Self>> {
        let store = s.store.as_ref();
        let a = existing(s, &id).await?;
        let _guard = s.locks.lock(&lock_key(&a.key())).await;
        existing(s, &id).await?;
        store
            .commit(Commit::change(Change::DeleteNode { id }))
            .await?;
        Ok(None)
    }
}
