//! Definitions and artifacts as they are stored (generic store nodes), how they are read, and
//! how an artifact is committed with the event its content change calls for.

use super::{ARTIFACT_KIND, ArtifactError, DEFINITION_KIND, Result};
use crate::Caller;
use crate::nodes::NodeError;
use infrastream_core::{EventName, NewEvent, Node, RelatedNode};
use infrastream_store::{Change, Commit, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Attributes of a definition, as stored in its node's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefinitionData {
    /// Name given to the artifacts.
    pub artifact_name: String,
    /// MIME type of the artifacts (one of [`super::CONTENT_TYPES`]).
    pub content_type: String,
    /// Passed to the query as variables (with `id`, the target's id).
    #[serde(default)]
    pub parameters: Value,
    /// Name of the saved query.
    pub query: String,
    /// The minijinja template.
    pub template: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// An artifact definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// Node id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Attributes.
    pub d: DefinitionData,
}

impl Definition {
    pub(crate) fn from_node(n: Node) -> Result<Self> {
        let d = serde_json::from_value(n.data).map_err(|e| corrupt(&n.id, e))?;
        Ok(Self {
            id: n.id,
            name: n.name,
            d,
        })
    }

    pub(crate) fn to_node(&self) -> Node {
        Node {
            id: self.id.clone(),
            kind: DEFINITION_KIND.into(),
            name: self.name.clone(),
            data: serde_json::to_value(&self.d).unwrap_or_default(),
        }
    }
}

/// Attributes of an artifact, as stored in its node's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactData {
    /// Display name (the definition's `artifact_name` unless set otherwise).
    pub name: String,
    /// `Pending`, `Processing`, `Ready` or `Error`.
    pub status: String,
    /// MIME type of the content.
    pub content_type: String,
    /// MD5 hex of the content.
    pub checksum: Option<String>,
    /// Object id of the content.
    pub storage_id: Option<String>,
    /// Parameters the content was generated with.
    #[serde(default)]
    pub parameters: Value,
    /// Id of the definition.
    pub definition_id: String,
    /// The node the artifact is generated for.
    pub target: RelatedNode,
    /// Branch the artifact lives on.
    pub branch: String,
    /// Why the last generation failed (status `Error`).
    #[serde(default)]
    pub error: Option<String>,
}

/// An artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// Node id.
    pub id: String,
    /// Attributes.
    pub data: ArtifactData,
}

impl Artifact {
    /// A new artifact of `def` for `target` on `branch`, not generated yet (`Pending`).
    pub(crate) fn pending(id: String, def: &Definition, target: RelatedNode, branch: &str) -> Self {
        Self {
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
        }
    }

    pub(crate) fn from_node(n: Node) -> Result<Self> {
        let data = serde_json::from_value(n.data).map_err(|e| corrupt(&n.id, e))?;
        Ok(Self { id: n.id, data })
    }

    /// Its unique node name: (definition, branch, target).
    pub(crate) fn key(&self) -> String {
        artifact_key(
            &self.data.definition_id,
            &self.data.branch,
            &self.data.target.id,
        )
    }

    pub(crate) fn to_node(&self) -> Node {
        Node {
            id: self.id.clone(),
            kind: ARTIFACT_KIND.into(),
            name: self.key(),
            data: serde_json::to_value(&self.data).unwrap_or_default(),
        }
    }
}

/// The unique node name of the artifact of `definition_id` for `target_id` on `branch`.
pub(crate) fn artifact_key(definition_id: &str, branch: &str, target_id: &str) -> String {
    json!([definition_id, branch, target_id]).to_string()
}

/// The key of the lock that serializes every change to the artifact with node name `key`
/// (generation, create, update, delete).
pub(crate) fn lock_key(key: &str) -> String {
    format!("artifact/{key}")
}

fn corrupt(id: &str, source: serde_json::Error) -> ArtifactError {
    ArtifactError::Corrupt {
        id: id.to_owned(),
        source,
    }
}

pub(crate) async fn definitions(store: &dyn Store) -> Result<Vec<Definition>> {
    store
        .nodes(DEFINITION_KIND)
        .await?
        .into_iter()
        .map(Definition::from_node)
        .collect()
}

/// The definition with id, or else name, `key`.
pub(crate) async fn find_definition(store: &dyn Store, key: &str) -> Result<Option<Definition>> {
    if let Some(n) = store.node(key).await?
        && n.kind == DEFINITION_KIND
    {
        return Definition::from_node(n).map(Some);
    }
    Ok(definitions(store)
        .await?
        .into_iter()
        .find(|d| d.name == key))
}

/// The definition `key` (an id or a name) names, which must exist.
pub(crate) async fn referenced_definition(store: &dyn Store, key: &str) -> Result<Definition> {
    find_definition(store, key)
        .await?
        .ok_or_else(|| NodeError::not_found::<Definition>(key).into())
}

pub(crate) async fn artifacts(store: &dyn Store) -> Result<Vec<Artifact>> {
    store
        .nodes(ARTIFACT_KIND)
        .await?
        .into_iter()
        .map(Artifact::from_node)
        .collect()
}

pub(crate) async fn find_artifact(store: &dyn Store, id: &str) -> Result<Option<Artifact>> {
    match store.node(id).await? {
        Some(n) if n.kind == ARTIFACT_KIND => Artifact::from_node(n).map(Some),
        _ => Ok(None),
    }
}

pub(crate) async fn find_artifact_by_key(store: &dyn Store, key: &str) -> Result<Option<Artifact>> {
    match store
        .nodes(ARTIFACT_KIND)
        .await?
        .into_iter()
        .find(|n| n.name == key)
    {
        Some(n) => Artifact::from_node(n).map(Some),
        None => Ok(None),
    }
}

/// The `infrahub.artifact.created` (no previous content) or `.updated` event for `a`.
fn artifact_event(
    a: &Artifact,
    previous: Option<(String, Option<String>)>,
    caller: &Caller,
) -> NewEvent {
    let name = if previous.is_some() {
        EventName::ARTIFACT_UPDATED
    } else {
        EventName::ARTIFACT_CREATED
    };
    let (checksum_previous, storage_id_previous) = previous.unzip();
    let actor = caller.actor(&a.data.branch);
    let mut e = NewEvent {
        branch: Some(a.data.branch.clone()),
        account_id: actor.account_id,
        primary_node: Some(RelatedNode {
            id: a.id.clone(),
            kind: ARTIFACT_KIND.into(),
        }),
        related_nodes: vec![a.data.target.clone()],
        data: json!({
            "artifact_definition_id": a.data.definition_id,
            "checksum": a.data.checksum,
            "checksum_previous": checksum_previous,
            "storage_id": a.data.storage_id,
            "storage_id_previous": storage_id_previous.flatten(),
            "target_id": a.data.target.id,
            "target_kind": a.data.target.kind,
        }),
        context: actor.context,
        ..NewEvent::new(name)
    };
    e.normalize_related();
    e
}

/// Commits `a` (as it now is, `before` being its stored state) with the artifact event its
/// content change calls for, if any; returns the event id. The caller holds the artifact's
/// lock, so that two changes never both see the same previous checksum.
pub(crate) async fn commit_artifact(
    store: &dyn Store,
    a: &Artifact,
    before: Option<&Artifact>,
    caller: &Caller,
) -> Result<Option<String>> {
    if before == Some(a) {
        return Ok(None);
    }
    let previous = before.and_then(|b| {
        b.data
            .checksum
            .clone()
            .map(|c| (c, b.data.storage_id.clone()))
    });
    let content_changed =
        a.data.checksum.is_some() && a.data.checksum != previous.as_ref().map(|p| p.0.clone());
    let events = if content_changed {
        vec![artifact_event(a, previous, caller)]
    } else {
        vec![]
    };
    // Created or updated inside the store's transaction: a concurrent create with the same id
    // fails there instead of overwriting, and an artifact deleted meanwhile is not recreated.
    let change = match before {
        None => Change::CreateNode(a.to_node()),
        Some(_) => Change::UpdateNode(a.to_node()),
    };
    let stored = store
        .commit(Commit {
            changes: vec![change],
            events,
        })
        .await?;
    Ok(stored.first().map(|e| e.id.to_string()))
}
