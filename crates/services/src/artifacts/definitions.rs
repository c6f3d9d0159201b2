//! Creating, changing and removing artifact definitions.

use super::model::{artifacts, definitions, find_definition, lock_key};
use super::validate::check_definition;
use super::{ArtifactError, Definition, DefinitionData, Result};
use crate::Services;
use infrastream_store::{Change, Commit};
use serde_json::{Value, json};

/// How a change designates an existing definition: by id, or by name (its hfid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionKey {
    /// By node id.
    Id(String),
    /// By name.
    Name(String),
}

impl std::fmt::Display for DefinitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefinitionKey::Id(id) => f.write_str(id),
            DefinitionKey::Name(name) => write!(f, "[{name:?}]"),
        }
    }
}

/// The attribute values a create, update or upsert gives; `None` leaves an attribute as it
/// is (or, on create, is refused for the required ones).
#[derive(Debug, Clone, Default)]
pub struct DefinitionValues {
    /// Unique name (required on create).
    pub name: Option<String>,
    /// Name of the artifacts (required on create).
    pub artifact_name: Option<String>,
    /// Content type (required on create).
    pub content_type: Option<String>,
    /// Query variables; `{}` on create when absent.
    pub parameters: Option<Value>,
    /// Name of the saved query (required on create).
    pub query: Option<String>,
    /// minijinja source (required on create).
    pub template: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// Every definition.
pub async fn list_definitions(services: &Services) -> Result<Vec<Definition>> {
    definitions(services.store.as_ref()).await
}

/// The definition with node id `id`, if there is one.
pub async fn definition(services: &Services, id: &str) -> Result<Option<Definition>> {
    Ok(find_definition(services.store.as_ref(), id)
        .await?
        .filter(|d| d.id == id))
}

/// The definition `key` designates, if any.
pub async fn find(services: &Services, key: &DefinitionKey) -> Result<Option<Definition>> {
    match key {
        DefinitionKey::Id(id) => definition(services, id).await,
        DefinitionKey::Name(name) => Ok(list_definitions(services)
            .await?
            .into_iter()
            .find(|d| d.name == *name)),
    }
}

async fn existing(services: &Services, key: &DefinitionKey) -> Result<Definition> {
    find(services, key)
        .await?
        .ok_or_else(|| ArtifactError::DefinitionNotFound(key.to_string()))
}

fn merged(existing: Definition, data: DefinitionValues) -> Definition {
    Definition {
        id: existing.id,
        name: data.name.unwrap_or(existing.name),
        d: DefinitionData {
            artifact_name: data.artifact_name.unwrap_or(existing.d.artifact_name),
            content_type: data.content_type.unwrap_or(existing.d.content_type),
            parameters: data.parameters.unwrap_or(existing.d.parameters),
            query: data.query.unwrap_or(existing.d.query),
            template: data.template.unwrap_or(existing.d.template),
            description: data.description.or(existing.d.description),
        },
    }
}

fn new_definition(id: Option<String>, data: DefinitionValues) -> Result<Definition> {
    let required = |v: Option<String>, field| v.ok_or(ArtifactError::Required(field));
    Ok(Definition {
        id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name: required(data.name, "name")?,
        d: DefinitionData {
            artifact_name: required(data.artifact_name, "artifact_name")?,
            content_type: required(data.content_type, "content_type")?,
            parameters: data.parameters.unwrap_or_else(|| json!({})),
            query: required(data.query, "query")?,
            template: required(data.template, "template")?,
            description: data.description,
        },
    })
}

async fn save(services: &Services, d: Definition, is_new: bool) -> Result<Definition> {
    let store = services.store.as_ref();
    check_definition(services, &d).await?;
    if is_new && store.node(&d.id).await?.is_some() {
        return Err(ArtifactError::IdTaken(d.id));
    }
    if definitions(store)
        .await?
        .iter()
        .any(|o| o.name == d.name && o.id != d.id)
    {
        return Err(ArtifactError::DefinitionNameTaken(d.name));
    }
    // The store checks again inside its transaction: of two concurrent creates with one id,
    // exactly one wins and the other gets `ALREADY_EXISTS`.
    let change = if is_new {
        Change::CreateNode(d.to_node())
    } else {
        Change::UpdateNode(d.to_node())
    };
    store
        .commit(Commit {
            changes: vec![change],
            events: vec![],
        })
        .await?;
    Ok(d)
}

/// Creates a definition (with node id `id`, or a new one).
pub async fn create_definition(
    services: &Services,
    id: Option<String>,
    values: DefinitionValues,
) -> Result<Definition> {
    let d = new_definition(id, values)?;
    save(services, d, true).await
}

/// Changes the definition `key` designates.
pub async fn update_definition(
    services: &Services,
    key: &DefinitionKey,
    values: DefinitionValues,
) -> Result<Definition> {
    let e = existing(services, key).await?;
    save(services, merged(e, values), false).await
}

/// Changes the definition `key` designates (by default: the one named `values.name`), or
/// creates it (with node id `id`, or a new one).
pub async fn upsert_definition(
    services: &Services,
    key: Option<DefinitionKey>,
    id: Option<String>,
    values: DefinitionValues,
) -> Result<Definition> {
    let key = key.or_else(|| values.name.clone().map(DefinitionKey::Name));
    let found = match &key {
        Some(k) => find(services, k).await?,
        None => None,
    };
    match found {
        Some(e) => save(services, merged(e, values), false).await,
        None => create_definition(services, id, values).await,
    }
}

/// Removes the definition `key` designates and its artifacts, each under its lock (so no
/// generation or change of one of them is half done when it goes).
pub async fn delete_definition(services: &Services, key: &DefinitionKey) -> Result<()> {
    let store = services.store.as_ref();
    let def = existing(services, key).await?;
    let mut guards = Vec::new();
    for a in artifacts(store).await? {
        if a.data.definition_id == def.id {
            guards.push(services.locks.lock(&lock_key(&a.key())).await);
        }
    }
    // What is there now that the locks are held.
    let def = existing(services, &DefinitionKey::Id(def.id)).await?;
    let mut changes: Vec<Change> = artifacts(store)
        .await?
        .into_iter()
        .filter(|a| a.data.definition_id == def.id)
        .map(|a| Change::DeleteNode { id: a.id })
        .collect();
    changes.push(Change::DeleteNode { id: def.id });
    store
        .commit(Commit {
            changes,
            events: vec![],
        })
        .await?;
    drop(guards);
    Ok(())
}
