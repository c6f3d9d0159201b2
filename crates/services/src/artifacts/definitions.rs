//! Artifact definitions as a [`NodeKind`]: listed, created, changed and removed by the
//! operations of [`crate::nodes`]. Removing a definition removes its artifacts, each under
//! its lock.

use super::model::{artifacts, definitions, find_definition, lock_key};
use super::validate::check_definition;
use super::{ArtifactError, DEFINITION_KIND, Definition, DefinitionData, Result};
use crate::Services;
use crate::nodes::{Attribute, NodeError, NodeKind, Scope};
use async_trait::async_trait;
use infrastream_store::{Change, Commit};
use serde_json::{Value, json};

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

/// Checks and commits `d`, as a new node or as a change.
async fn save(services: &Services, d: Definition, is_new: bool) -> Result<Definition> {
    let store = services.store.as_ref();
    check_definition(services, &d).await?;
    if is_new && store.node(&d.id).await?.is_some() {
        return Err(NodeError::IdTaken(d.id).into());
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
    store.commit(Commit::change(change)).await?;
    Ok(d)
}

#[async_trait]
impl NodeKind for Definition {
    const KIND: &'static str = DEFINITION_KIND;
    const LABEL: &'static str = "Artifact definition";
    const ATTRIBUTES: &'static [Attribute] = &[
        Attribute::text("name", true),
        Attribute::text("artifact_name", true),
        Attribute::text("content_type", true),
        Attribute::json("parameters", false),
        Attribute::text("query", true),
        Attribute::text("template", true),
        Attribute::text("description", false),
    ];
    type Values = DefinitionValues;
    type Error = ArtifactError;

    crate::nodes::named_by_fields!();

    async fn build(
        _: &Services,
        _: Scope<'_>,
        id: Option<String>,
        data: DefinitionValues,
    ) -> Result<Self> {
        let required = |v: Option<String>, field| v.ok_or(NodeError::Required(field));
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

    async fn merge(self, _: &Services, data: DefinitionValues) -> Result<Self> {
        Ok(Definition {
            id: self.id,
            name: data.name.unwrap_or(self.name),
            d: DefinitionData {
                artifact_name: data.artifact_name.unwrap_or(self.d.artifact_name),
                content_type: data.content_type.unwrap_or(self.d.content_type),
                parameters: data.parameters.unwrap_or(self.d.parameters),
                query: data.query.unwrap_or(self.d.query),
                template: data.template.unwrap_or(self.d.template),
                description: data.description.or(self.d.description),
            },
        })
    }

    async fn all(s: &Services) -> Result<Vec<Self>> {
        definitions(s.store.as_ref()).await
    }

    async fn by_id(s: &Services, id: &str) -> Result<Option<Self>> {
        Ok(find_definition(s.store.as_ref(), id)
            .await?
            .filter(|d| d.id == id))
    }

    async fn insert(s: &Services, _: Scope<'_>, d: Self) -> Result<Self> {
        save(s, d, true).await
    }

    async fn replace(s: &Services, _: Scope<'_>, d: Self) -> Result<Self> {
        save(s, d, false).await
    }

    /// Removes the definition and its artifacts, each under its lock (so no generation or
    /// change of one of them is half done when it goes).
    async fn remove(s: &Services, _: Scope<'_>, id: String) -> Result<Option<Self>> {
        let store = s.store.as_ref();
        let mut guards = Vec::new();
        for a in artifacts(store).await? {
            if a.data.definition_id == id {
                guards.push(s.locks.lock(&lock_key(&a.key())).await);
            }
        }
        // What is there now that the locks are held.
        let def = Self::by_id(s, &id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(&id))?;
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
        Ok(None)
    }
}
