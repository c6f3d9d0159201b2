//! Generation: for each target, run the definition's saved query (through the
//! [`QueryRunner`](crate::QueryRunner)), render the template with its data, store the content
//! in the object store and commit the artifact with its `infrahub.artifact.created` /
//! `.updated` event — all under the artifact's lock.

use super::model::{
    artifact_key, artifacts, commit_artifact, find_artifact_by_key, lock_key, referenced_definition,
};
use super::template::render_template;
use super::validate::{is_not_a_query, resolve_target};
use super::{Artifact, ArtifactError, DEFINITION_KIND, Definition, Result};
use crate::object_store::md5_hex;
use crate::{Caller, QueryOutcome, Services};
use infrastream_core::RelatedNode;
use serde_json::{Map, Value};

/// What a generation did to one artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateOutcome {
    /// First content: `infrahub.artifact.created` was emitted.
    Created,
    /// New content: `infrahub.artifact.updated` was emitted.
    Updated,
    /// Same checksum as before: no event, no new object.
    Unchanged,
    /// The query or the template failed: status `Error`, no event.
    Error,
}

impl GenerateOutcome {
    /// `created`, `updated`, `unchanged` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Error => "error",
        }
    }
}

/// One artifact after a generation.
#[derive(Debug, Clone)]
pub struct GeneratedArtifact {
    /// The artifact as stored.
    pub artifact: Artifact,
    /// What happened.
    pub outcome: GenerateOutcome,
    /// The artifact event emitted, if any.
    pub event_id: Option<String>,
}

/// Generates the artifacts of `definition` (an id or a name) on `branch` as `caller`: for each
/// of `targets` (strings as in [`super`]; the artifact is created when missing), or, when
/// `targets` is `None` or empty, for every existing artifact of the definition on that
/// branch.
///
/// An artifact that existed when the request started but was deleted before its turn (or a
/// definition deleted meanwhile) is skipped, not recreated: deletes stand. More targets than
/// `artifact_max_targets_per_request` (when not 0) are refused before anything runs.
pub async fn generate(
    services: &Services,
    caller: &Caller,
    branch: &str,
    definition: &str,
    targets: Option<Vec<String>>,
) -> Result<Vec<GeneratedArtifact>> {
    if !caller.role.can_write() {
        return Err(ArtifactError::ReadOnly);
    }
    let max = services.settings.artifact_max_targets_per_request;
    if let Some(t) = &targets
        && max > 0
        && t.len() > max
    {
        return Err(ArtifactError::TooManyTargets {
            given: t.len(),
            max,
        });
    }
    let store = services.store.as_ref();
    let def = referenced_definition(store, definition).await?;
    let existing: Vec<Artifact> = artifacts(store)
        .await?
        .into_iter()
        .filter(|a| a.data.definition_id == def.id && a.data.branch == branch)
        .collect();
    let mut resolved: Vec<RelatedNode> = Vec::new();
    match targets.filter(|t| !t.is_empty()) {
        Some(specs) => {
            for spec in &specs {
                let t = resolve_target(store, spec, &existing).await?;
                if !resolved.iter().any(|r| r.id == t.id) {
                    resolved.push(t);
                }
            }
        }
        None => resolved.extend(existing.iter().map(|a| a.data.target.clone())),
    }
    let run = Generation {
        services,
        caller,
        branch,
    };
    let mut out = Vec::with_capacity(resolved.len());
    for target in resolved {
        let seen = existing
            .iter()
            .find(|a| a.data.target.id == target.id)
            .map(|a| a.id.as_str());
        if let Some(g) = run.one(&def, target, seen).await? {
            out.push(g);
        }
    }
    Ok(out)
}

struct Generation<'a> {
    services: &'a Services,
    caller: &'a Caller,
    branch: &'a str,
}

impl Generation<'_> {
    /// Generates the artifact of `def` for `target`; `seen` is the id of the artifact when the
    /// request started, if it existed. `None` when it (or the definition) was deleted since.
    async fn one(
        &self,
        def: &Definition,
        target: RelatedNode,
        seen: Option<&str>,
    ) -> Result<Option<GeneratedArtifact>> {
        let store = self.services.store.as_ref();
        let key = artifact_key(&def.id, self.branch, &target.id);
        let _guard = self.services.locks.lock(&lock_key(&key)).await;
        let before = find_artifact_by_key(store, &key).await?;
        let deleted = seen.is_some_and(|id| before.as_ref().is_none_or(|b| b.id != id));
        let definition_gone = store
            .node(&def.id)
            .await?
            .is_none_or(|n| n.kind != DEFINITION_KIND);
        if deleted || definition_gone {
            return Ok(None);
        }
        let mut a = before.clone().unwrap_or_else(|| {
            let id = uuid::Uuid::now_v7().to_string();
            Artifact::pending(id, def, target.clone(), self.branch)
        });
        a.data.name = def.d.artifact_name.clone();
        a.data.content_type = def.d.content_type.clone();
        a.data.parameters = def.d.parameters.clone();
        let outcome = match self.render(def, &a.data.target).await {
            Err(message) => {
                a.data.status = "Error".into();
                a.data.error = Some(message);
                GenerateOutcome::Error
            }
            Ok(content) => {
                let bytes = content.into_bytes();
                let checksum = md5_hex(&bytes);
                // Content-addressed: unchanged content is not written again (a damaged copy
                // is repaired under the same id).
                let storage_id = self
                    .services
                    .objects
                    .put(bytes)
                    .await
                    .map_err(ArtifactError::Objects)?;
                a.data.status = "Ready".into();
                a.data.error = None;
                let unchanged = a.data.checksum.as_deref() == Some(checksum.as_str());
                a.data.checksum = Some(checksum);
                a.data.storage_id = Some(storage_id);
                match (
                    unchanged,
                    before.as_ref().and_then(|b| b.data.checksum.as_ref()),
                ) {
                    (true, _) => GenerateOutcome::Unchanged,
                    (false, Some(_)) => GenerateOutcome::Updated,
                    (false, None) => GenerateOutcome::Created,
                }
            }
        };
        let event_id = commit_artifact(store, &a, before.as_ref(), self.caller).await?;
        Ok(Some(GeneratedArtifact {
            artifact: a,
            outcome,
            event_id,
        }))
    }

    /// Runs the definition's saved query for `target` and renders the template with its data;
    /// `Err` is the message recorded as the artifact's error.
    async fn render(&self, def: &Definition, target: &RelatedNode) -> Result<String, String> {
        let queries = self.services.store.saved_queries().await.map_err(|e| {
            tracing::error!(error = %e, "store failure loading saved queries");
            "Internal server error".to_string()
        })?;
        let Some(q) = queries.into_iter().find(|q| q.name == def.d.query) else {
            return Err(format!("The saved query '{}' does not exist", def.d.query));
        };
        if is_not_a_query(self.services, &q.query) {
            return Err(format!(
                "The saved query '{}' is not a query operation",
                q.name
            ));
        }
        let mut variables = match &def.d.parameters {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        variables.insert("id".into(), Value::String(target.id.clone()));
        let outcome = self
            .services
            .queries
            .get()
            .run(&q.query, Value::Object(variables), self.caller, self.branch)
            .await;
        let data = match outcome {
            QueryOutcome::Data(data) => data,
            QueryOutcome::Errors(messages) => {
                return Err(format!(
                    "The query '{}' failed: {}",
                    q.name,
                    messages.join("; ")
                ));
            }
        };
        render_template(
            def.name.clone(),
            def.d.template.clone(),
            data,
            self.services.settings.artifact_template_fuel,
        )
        .await
    }
}
