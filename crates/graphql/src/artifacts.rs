//! Artifact definitions and artifacts (`CoreArtifactDefinition`, `CoreArtifact`) in Infrahub's
//! node shape, and their generation: a definition names a saved query (the data) and a
//! minijinja template (the transformation); `ArtifactGenerate` runs the query for each target
//! on the request's branch, renders the template, stores the content in the
//! [`ObjectStore`](crate::object_store::ObjectStore) and commits the artifact together with
//! its `infrahub.artifact.created` / `.updated` event (SPEC §3).
//!
//! Both are generic store nodes. An artifact is identified by (definition, branch, target):
//! its node name is that triple, so the store's unique-name rule makes a second artifact for
//! the same triple impossible; its display name (`name { value }`) is the definition's
//! `artifact_name`.
//!
//! Targets are given as strings: a node id (`"<id>"`, its kind looked up among stored nodes,
//! branches, saved queries and accounts, or taken from an existing artifact of that target),
//! or `"<Kind>:<id>"` to name the kind explicitly (for targets infrastream does not store).

use crate::context::{Res, caller, gql, require_write, services, store_err, url_branch};
use crate::events::RelatedNode;
use crate::node::{
    DeleteInput, NodeKey, RelatedNodeInput, TextAttribute, TextAttributeCreate,
    TextAttributeUpdate, TextValue, object_result, ok_result,
};
use crate::object_store::{ObjectStore, md5_hex};
use crate::scalars::GenericScalar;
use crate::{Caller, InfraSchema, UrlBranch};
use async_graphql::parser::types::OperationType;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::{Error, ErrorKind, EventName, NewEvent, Node, RelatedNode as CoreNode};
use infrastream_services::Services;
use infrastream_store::{Change, Commit, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// Node kind of artifact definitions.
pub(crate) const DEFINITION_KIND: &str = "CoreArtifactDefinition";
/// Node kind of artifacts.
pub(crate) const ARTIFACT_KIND: &str = "CoreArtifact";

/// The content types an artifact definition may declare (Infrahub's list).
pub(crate) const CONTENT_TYPES: [&str; 8] = [
    "application/json",
    "application/yaml",
    "application/xml",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/hcl",
    "image/svg+xml",
];

/// The values of an artifact's `status`.
pub(crate) const STATUSES: [&str; 4] = ["Pending", "Processing", "Ready", "Error"];

/// Instructions one template rendering may execute before it is stopped (a template cannot
/// spin a server thread forever).
const TEMPLATE_FUEL: u64 = 20_000_000;

// ---------------------------------------------------------------------------------------------
// Stored shapes
// ---------------------------------------------------------------------------------------------

/// Attributes of a definition, as stored in its node's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DefinitionData {
    artifact_name: String,
    content_type: String,
    #[serde(default)]
    parameters: Value,
    /// Name of the saved query.
    query: String,
    template: String,
    #[serde(default)]
    description: Option<String>,
}

/// An artifact definition.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    id: String,
    name: String,
    d: DefinitionData,
}

impl Definition {
    fn from_node(n: Node) -> Result<Self, Error> {
        let d = serde_json::from_value(n.data).map_err(|e| corrupt(&n.id, e))?;
        Ok(Self {
            id: n.id,
            name: n.name,
            d,
        })
    }

    fn to_node(&self) -> Node {
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
    pub target: CoreNode,
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
    fn from_node(n: Node) -> Result<Self, Error> {
        let data = serde_json::from_value(n.data).map_err(|e| corrupt(&n.id, e))?;
        Ok(Self { id: n.id, data })
    }

    fn key(&self) -> String {
        artifact_key(
            &self.data.definition_id,
            &self.data.branch,
            &self.data.target.id,
        )
    }

    fn to_node(&self) -> Node {
        Node {
            id: self.id.clone(),
            kind: ARTIFACT_KIND.into(),
            name: self.key(),
            data: serde_json::to_value(&self.data).unwrap_or_default(),
        }
    }
}

/// The unique node name of the artifact of `definition_id` for `target_id` on `branch`.
fn artifact_key(definition_id: &str, branch: &str, target_id: &str) -> String {
    json!([definition_id, branch, target_id]).to_string()
}

fn corrupt(id: &str, e: serde_json::Error) -> Error {
    tracing::error!(node = id, error = %e, "stored artifact node does not decode");
    Error::internal()
}

fn store_error(e: StoreError) -> Error {
    if !matches!(e, StoreError::Rejected(_)) {
        tracing::error!(error = %e, "store failure");
    }
    e.to_user_error()
}

fn io_error(e: std::io::Error) -> Error {
    tracing::error!(error = %e, "object storage failure");
    Error::internal()
}

async fn definitions(store: &dyn Store) -> Result<Vec<Definition>, Error> {
    store
        .nodes(DEFINITION_KIND)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(Definition::from_node)
        .collect()
}

/// The definition with id, or else name, `key`.
async fn find_definition(store: &dyn Store, key: &str) -> Result<Option<Definition>, Error> {
    if let Some(n) = store.node(key).await.map_err(store_error)?
        && n.kind == DEFINITION_KIND
    {
        return Definition::from_node(n).map(Some);
    }
    Ok(definitions(store)
        .await?
        .into_iter()
        .find(|d| d.name == key))
}

async fn artifact_nodes(store: &dyn Store) -> Result<Vec<Node>, Error> {
    store.nodes(ARTIFACT_KIND).await.map_err(store_error)
}

async fn artifacts(store: &dyn Store) -> Result<Vec<Artifact>, Error> {
    artifact_nodes(store)
        .await?
        .into_iter()
        .map(Artifact::from_node)
        .collect()
}

async fn find_artifact(store: &dyn Store, id: &str) -> Result<Option<Artifact>, Error> {
    match store.node(id).await.map_err(store_error)? {
        Some(n) if n.kind == ARTIFACT_KIND => Artifact::from_node(n).map(Some),
        _ => Ok(None),
    }
}

async fn find_artifact_by_key(store: &dyn Store, key: &str) -> Result<Option<Artifact>, Error> {
    match artifact_nodes(store)
        .await?
        .into_iter()
        .find(|n| n.name == key)
    {
        Some(n) => Artifact::from_node(n).map(Some),
        None => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn check_content_type(ct: &str) -> Result<(), Error> {
    if CONTENT_TYPES.contains(&ct) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "content_type '{ct}' is not supported; expected one of: {}",
            CONTENT_TYPES.join(", ")
        )))
    }
}

fn check_status(status: &str) -> Result<(), Error> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "status '{status}' is not valid; expected one of: {}",
            STATUSES.join(", ")
        )))
    }
}

fn template_env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_fuel(Some(TEMPLATE_FUEL));
    env
}

fn check_template(name: &str, source: &str) -> Result<(), Error> {
    let env = template_env();
    env.template_from_named_str(name, source)
        .map(|_| ())
        .map_err(|e| Error::invalid(format!("The template does not compile: {e}")))
}

/// Checks every attribute of a definition before it is saved.
async fn check_definition(store: &dyn Store, d: &Definition) -> Result<(), Error> {
    if d.name.trim().is_empty() {
        return Err(Error::invalid("name.value is required"));
    }
    if d.d.artifact_name.trim().is_empty() {
        return Err(Error::invalid("artifact_name.value must not be empty"));
    }
    check_content_type(&d.d.content_type)?;
    if !matches!(d.d.parameters, Value::Object(_) | Value::Null) {
        return Err(Error::invalid(
            "parameters.value must be a JSON object (its keys are passed to the query as variables)",
        ));
    }
    let queries = store.saved_queries().await.map_err(store_error)?;
    let Some(q) = queries.iter().find(|q| q.name == d.d.query) else {
        return Err(Error::invalid(format!(
            "The saved query '{}' does not exist (query.value names a CoreGraphQLQuery)",
            d.d.query
        )));
    };
    if matches!(
        crate::operation_type(&q.query, None),
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        return Err(Error::invalid(format!(
            "The saved query '{}' is not a query operation",
            q.name
        )));
    }
    check_template(&d.name, &d.d.template)
}

/// `Kind:id` or a bare id.
fn split_target(spec: &str) -> Result<(Option<&str>, &str), Error> {
    let spec = spec.trim();
    let valid_kind = |k: &str| {
        k.len() <= 255
            && k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let (kind, id) = match spec.split_once(':') {
        Some((k, id)) if valid_kind(k) => (Some(k), id.trim()),
        _ => (None, spec),
    };
    if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "Invalid target '{spec}': expected a node id or Kind:id"
        )));
    }
    Ok((kind, id))
}

/// The `{id, kind}` of a target given as a string (see the module documentation).
async fn resolve_target(
    store: &dyn Store,
    spec: &str,
    known: &[Artifact],
) -> Result<CoreNode, Error> {
    let (kind, id) = split_target(spec)?;
    let node = |kind: &str| {
        Ok(CoreNode {
            id: id.to_owned(),
            kind: kind.to_owned(),
        })
    };
    if let Some(kind) = kind {
        return node(kind);
    }
    if let Some(a) = known.iter().find(|a| a.data.target.id == id) {
        return node(&a.data.target.kind);
    }
    if let Some(n) = store.node(id).await.map_err(store_error)? {
        return node(&n.kind);
    }
    if store
        .branches()
        .await
        .map_err(store_error)?
        .iter()
        .any(|b| b.id == id)
    {
        return node(crate::branches::BRANCH_KIND);
    }
    if store
        .saved_queries()
        .await
        .map_err(store_error)?
        .iter()
        .any(|q| q.id == id)
    {
        return node("CoreGraphQLQuery");
    }
    if store.account(id).await.map_err(store_error)?.is_some() {
        return node("CoreAccount");
    }
    Err(Error::not_found(format!(
        "Target {id} not found: give the id of a stored node, or its kind as Kind:{id}"
    )))
}

// ---------------------------------------------------------------------------------------------
// Events and commits
// ---------------------------------------------------------------------------------------------

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
    let mut e = NewEvent {
        branch: Some(a.data.branch.clone()),
        account_id: caller.account_id(),
        primary_node: Some(CoreNode {
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
        context: json!({"account_id": caller.account_id(), "branch": a.data.branch}),
        ..NewEvent::new(name)
    };
    e.normalize_related();
    e
}

/// Commits `a` (as it now is, `before` being its stored state) with the artifact event its
/// content change calls for, if any; returns the event id.
async fn commit_artifact(
    store: &dyn Store,
    a: &Artifact,
    before: Option<&Artifact>,
    caller: &Caller,
) -> Result<Option<String>, Error> {
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
    let stored = store
        .commit(Commit {
            changes: vec![Change::PutNode(a.to_node())],
            events,
        })
        .await
        .map_err(store_error)?;
    Ok(stored.first().map(|e| e.id.to_string()))
}

/// One lock per artifact, so that two generations of the same artifact never both see the
/// same previous checksum (which would emit two events for one change).
fn artifact_lock(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Mutex::default);
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = locks.get(key).and_then(Weak::upgrade) {
        return l;
    }
    locks.retain(|_, w| w.strong_count() > 0);
    let l = Arc::new(tokio::sync::Mutex::new(()));
    locks.insert(key.to_owned(), Arc::downgrade(&l));
    l
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

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
/// of `targets` (strings as in the module documentation; the artifact is created when
/// missing), or, when `targets` is `None` or empty, for every existing artifact of the
/// definition on that branch.
pub async fn generate_artifacts(
    services: &Services,
    schema: &InfraSchema,
    caller: &Caller,
    branch: &str,
    definition: &str,
    targets: Option<Vec<String>>,
) -> Result<Vec<GeneratedArtifact>, Error> {
    if !caller.role.can_write() {
        return Err(Error::new(
            ErrorKind::Forbidden,
            "You do not have permission to generate artifacts (read-only access)",
        ));
    }
    let store = services.store.as_ref();
    let def = find_definition(store, definition)
        .await?
        .ok_or_else(|| Error::not_found(format!("Artifact definition {definition} not found")))?;
    let existing: Vec<Artifact> = artifacts(store)
        .await?
        .into_iter()
        .filter(|a| a.data.definition_id == def.id && a.data.branch == branch)
        .collect();
    let mut resolved: Vec<CoreNode> = Vec::new();
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
        schema,
        caller,
        branch,
    };
    let mut out = Vec::with_capacity(resolved.len());
    for target in resolved {
        out.push(run.one(&def, target).await?);
    }
    Ok(out)
}

struct Generation<'a> {
    services: &'a Services,
    schema: &'a InfraSchema,
    caller: &'a Caller,
    branch: &'a str,
}

impl Generation<'_> {
    async fn one(&self, def: &Definition, target: CoreNode) -> Result<GeneratedArtifact, Error> {
        let store = self.services.store.as_ref();
        let key = artifact_key(&def.id, self.branch, &target.id);
        let lock = artifact_lock(&key);
        let _guard = lock.lock().await;
        let before = find_artifact_by_key(store, &key).await?;
        let mut a = before.clone().unwrap_or_else(|| Artifact {
            id: uuid::Uuid::now_v7().to_string(),
            data: ArtifactData {
                name: def.d.artifact_name.clone(),
                status: "Pending".into(),
                content_type: def.d.content_type.clone(),
                checksum: None,
                storage_id: None,
                parameters: Value::Null,
                definition_id: def.id.clone(),
                target: target.clone(),
                branch: self.branch.to_owned(),
                error: None,
            },
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
                let storage_id = ObjectStore::new(&self.services.settings.data_dir)
                    .put(bytes)
                    .await
                    .map_err(io_error)?;
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
        Ok(GeneratedArtifact {
            artifact: a,
            outcome,
            event_id,
        })
    }

    /// Runs the definition's saved query for `target` and renders the template with its data;
    /// `Err` is the message shown as the artifact's error.
    async fn render(&self, def: &Definition, target: &CoreNode) -> Result<String, String> {
        let queries = self.services.store.saved_queries().await.map_err(|e| {
            tracing::error!(error = %e, "store failure loading saved queries");
            "Internal server error".to_string()
        })?;
        let Some(q) = queries.into_iter().find(|q| q.name == def.d.query) else {
            return Err(format!("The saved query '{}' does not exist", def.d.query));
        };
        if matches!(
            crate::operation_type(&q.query, None),
            Some(OperationType::Mutation | OperationType::Subscription)
        ) {
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
        let request = async_graphql::Request::new(q.query)
            .variables(async_graphql::Variables::from_json(Value::Object(
                variables,
            )))
            .data(self.caller.clone())
            .data(UrlBranch(self.branch.to_owned()));
        let response = self.schema.execute(request).await;
        if !response.errors.is_empty() {
            let messages: Vec<String> = response.errors.into_iter().map(|e| e.message).collect();
            return Err(format!(
                "The query '{}' failed: {}",
                q.name,
                messages.join("; ")
            ));
        }
        let data = serde_json::to_value(&response.data).unwrap_or(Value::Null);
        render_template(def.name.clone(), def.d.template.clone(), data).await
    }
}

/// Renders `source` with the query's `data` as context: its top-level fields as variables,
/// and the whole of it as `data` (as Infrahub's Jinja2 transforms see it).
async fn render_template(name: String, source: String, data: Value) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let env = template_env();
        let template = env
            .template_from_named_str(&name, &source)
            .map_err(|e| format!("The template does not compile: {e}"))?;
        let mut context = data.as_object().cloned().unwrap_or_default();
        context.insert("data".into(), data);
        template
            .render(minijinja::value::Serde(Value::Object(context)))
            .map_err(|e| format!("Template rendering failed: {e}"))
    })
    .await
    .map_err(|_| "Template rendering failed".to_string())?
}

// ---------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------

/// The current content of an artifact.
#[derive(Debug, Clone)]
pub struct ArtifactContent {
    /// The artifact's content type.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The current content of artifact `id`: not found for an unknown artifact or one without
/// content; a conflict when the stored bytes no longer match the recorded checksum.
pub async fn artifact_content(services: &Services, id: &str) -> Result<ArtifactContent, Error> {
    let a = find_artifact(services.store.as_ref(), id)
        .await?
        .ok_or_else(|| Error::not_found(format!("Artifact {id} not found")))?;
    let (Some(checksum), Some(storage_id)) = (&a.data.checksum, &a.data.storage_id) else {
        return Err(Error::not_found(format!(
            "Artifact {id} has no content (status {})",
            a.data.status
        )));
    };
    let bytes = ObjectStore::new(&services.settings.data_dir)
        .get(storage_id)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => Error::conflict(format!(
                "The content of artifact {id} is unavailable: its storage id is malformed"
            )),
            _ => io_error(e),
        })?
        .ok_or_else(|| {
            Error::conflict(format!(
                "The content of artifact {id} is missing from storage (object {storage_id})"
            ))
        })?;
    let actual = md5_hex(&bytes);
    if actual != *checksum {
        return Err(Error::conflict(format!(
            "The stored content of artifact {id} does not match its checksum (expected {checksum}, found {actual})"
        )));
    }
    Ok(ArtifactContent {
        content_type: a.data.content_type,
        bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// GraphQL: shapes
// ---------------------------------------------------------------------------------------------

/// A JSON attribute.
#[derive(SimpleObject, Clone)]
#[graphql(name = "JSONAttribute", rename_fields = "snake_case")]
pub(crate) struct JsonAttribute {
    value: Option<GenericScalar>,
}

impl JsonAttribute {
    fn of(v: &Value) -> Option<Self> {
        Some(Self {
            value: (!v.is_null()).then(|| GenericScalar(v.clone())),
        })
    }
}

/// JSON attribute of a create input; metadata is accepted and ignored (see
/// [`TextAttributeCreate`]).
#[derive(InputObject, Clone)]
#[graphql(name = "JSONAttributeCreate", rename_fields = "snake_case")]
pub(crate) struct JsonAttributeCreate {
    value: Option<GenericScalar>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// JSON attribute of an update or upsert input; metadata is accepted and ignored.
#[derive(InputObject, Clone)]
#[graphql(name = "JSONAttributeUpdate", rename_fields = "snake_case")]
pub(crate) struct JsonAttributeUpdate {
    value: Option<GenericScalar>,
    is_default: Option<bool>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// The value of an optional JSON attribute input, whichever its flavour.
trait JsonValue {
    fn json(self) -> Option<Value>;
}

impl JsonValue for Option<JsonAttributeCreate> {
    fn json(self) -> Option<Value> {
        self.and_then(|a| {
            let _ = (a.is_protected, a.is_visible, a.source, a.owner);
            a.value.map(|v| v.0)
        })
    }
}

impl JsonValue for Option<JsonAttributeUpdate> {
    fn json(self) -> Option<Value> {
        self.and_then(|a| {
            let _ = (
                a.is_default,
                a.is_protected,
                a.is_visible,
                a.source,
                a.owner,
            );
            a.value.map(|v| v.0)
        })
    }
}

/// An artifact definition.
pub(crate) struct CoreArtifactDefinition(Definition);

#[Object(rename_fields = "snake_case")]
impl CoreArtifactDefinition {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    /// Unique name.
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.name)
    }
    /// Name given to the artifacts.
    async fn artifact_name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.artifact_name)
    }
    /// MIME type of the artifacts.
    async fn content_type(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.content_type)
    }
    /// Passed to the query as variables (with `id`, the target's id).
    async fn parameters(&self) -> Option<JsonAttribute> {
        JsonAttribute::of(&self.0.d.parameters)
    }
    /// Name of the saved query (`CoreGraphQLQuery`) that provides the data.
    async fn query(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.query)
    }
    /// The minijinja template.
    async fn template(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.template)
    }
    async fn description(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.d.description.as_deref())
    }
}

crate::node::paginated!(
    PaginatedCoreArtifactDefinition,
    EdgedCoreArtifactDefinition,
    CoreArtifactDefinition
);

/// An artifact's definition: `{node}`, and its `id` even when the definition is gone.
#[derive(SimpleObject)]
#[graphql(
    name = "NestedEdgedCoreArtifactDefinition",
    rename_fields = "snake_case"
)]
pub(crate) struct DefinitionRef {
    /// Id of the definition (an infrastream extension).
    id: String,
    node: Option<CoreArtifactDefinition>,
}

/// An artifact.
pub(crate) struct CoreArtifact(Artifact);

#[Object(rename_fields = "snake_case")]
impl CoreArtifact {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.data.name)
    }
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.name)
    }
    /// `Pending`, `Processing`, `Ready` or `Error`.
    async fn status(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.status)
    }
    async fn content_type(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.content_type)
    }
    /// MD5 hex of the content.
    async fn checksum(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.checksum.as_deref())
    }
    /// Object id of the content (`GET /api/storage/object/{id}`).
    async fn storage_id(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.storage_id.as_deref())
    }
    async fn parameters(&self) -> Option<JsonAttribute> {
        JsonAttribute::of(&self.0.data.parameters)
    }
    /// Why the last generation failed (status `Error`).
    async fn error_message(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.error.as_deref())
    }
    /// Branch the artifact lives on.
    async fn branch(&self) -> &str {
        &self.0.data.branch
    }
    /// The node the artifact is generated for (Infrahub's `object`, as `{id, kind}`).
    async fn target(&self) -> RelatedNode {
        RelatedNode::from(&self.0.data.target)
    }
    /// The definition it is generated from.
    async fn definition(&self, ctx: &Context<'_>) -> Res<DefinitionRef> {
        let id = self.0.data.definition_id.clone();
        let store = services(ctx).store.as_ref();
        let node = match store.node(&id).await.map_err(store_err)? {
            Some(n) if n.kind == DEFINITION_KIND => Some(CoreArtifactDefinition(
                Definition::from_node(n).map_err(gql)?,
            )),
            _ => None,
        };
        Ok(DefinitionRef { id, node })
    }
}

crate::node::paginated!(PaginatedCoreArtifact, EdgedCoreArtifact, CoreArtifact);

fn id_list(ids: Option<Vec<Option<ID>>>) -> Option<Vec<String>> {
    ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect())
}

#[derive(Default)]
pub(crate) struct ArtifactQuery;

#[Object(rename_args = "snake_case")]
impl ArtifactQuery {
    /// Artifact definitions, optionally by name or ids.
    #[graphql(name = "CoreArtifactDefinition")]
    async fn core_artifact_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreArtifactDefinition> {
        let ids = id_list(ids);
        let all = definitions(services(ctx).store.as_ref())
            .await
            .map_err(gql)?;
        Ok(PaginatedCoreArtifactDefinition::of(
            all.into_iter()
                .filter(|d| name_value.as_ref().is_none_or(|n| *n == d.name))
                .filter(|d| ids.as_ref().is_none_or(|ids| ids.contains(&d.id)))
                .map(CoreArtifactDefinition)
                .collect(),
        ))
    }

    /// Artifacts of the request's branch, optionally by name, ids, definition or target
    /// (`object__ids`, or `target__ids`: the same filter under infrastream's older name).
    #[graphql(name = "CoreArtifact")]
    async fn core_artifact(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
        #[graphql(name = "definition__ids")] definition_ids: Option<Vec<Option<ID>>>,
        #[graphql(name = "object__ids")] object_ids: Option<Vec<Option<ID>>>,
        #[graphql(name = "target__ids")] target_ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreArtifact> {
        let branch = url_branch(ctx);
        let (ids, definition_ids) = (id_list(ids), id_list(definition_ids));
        let (object_ids, target_ids) = (id_list(object_ids), id_list(target_ids));
        let all = artifacts(services(ctx).store.as_ref()).await.map_err(gql)?;
        Ok(PaginatedCoreArtifact::of(
            all.into_iter()
                .filter(|a| a.data.branch == branch)
                .filter(|a| name_value.as_ref().is_none_or(|n| *n == a.data.name))
                .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.id)))
                .filter(|a| {
                    definition_ids
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&a.data.definition_id))
                })
                .filter(|a| {
                    [&object_ids, &target_ids]
                        .into_iter()
                        .flatten()
                        .all(|ids| ids.contains(&a.data.target.id))
                })
                .map(CoreArtifact)
                .collect(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// GraphQL: mutations
// ---------------------------------------------------------------------------------------------

/// Data of `CoreArtifactDefinitionCreate`. `query` (name of the saved query providing the
/// data) and `template` (minijinja source) are infrastream's: they stand for Infrahub's
/// `transformation`, which infrastream does not have.
#[derive(InputObject)]
#[graphql(
    name = "CoreArtifactDefinitionCreateInput",
    rename_fields = "snake_case"
)]
pub(crate) struct DefinitionCreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    artifact_name: Option<TextAttributeCreate>,
    content_type: Option<TextAttributeCreate>,
    parameters: Option<JsonAttributeCreate>,
    /// Name of the saved query.
    query: Option<TextAttributeCreate>,
    /// minijinja source.
    template: Option<TextAttributeCreate>,
    description: Option<TextAttributeCreate>,
}

/// Data of `CoreArtifactDefinitionUpdate`: the definition is found by `id` or `hfid`
/// (`[name]`).
#[derive(InputObject)]
#[graphql(
    name = "CoreArtifactDefinitionUpdateInput",
    rename_fields = "snake_case"
)]
pub(crate) struct DefinitionUpdateInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    artifact_name: Option<TextAttributeUpdate>,
    content_type: Option<TextAttributeUpdate>,
    parameters: Option<JsonAttributeUpdate>,
    /// Name of the saved query.
    query: Option<TextAttributeUpdate>,
    /// minijinja source.
    template: Option<TextAttributeUpdate>,
    description: Option<TextAttributeUpdate>,
}

/// Data of `CoreArtifactDefinitionUpsert`: updates the definition found by `id`, `hfid` or
/// name, or creates it.
#[derive(InputObject)]
#[graphql(
    name = "CoreArtifactDefinitionUpsertInput",
    rename_fields = "snake_case"
)]
pub(crate) struct DefinitionUpsertInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    artifact_name: Option<TextAttributeUpdate>,
    content_type: Option<TextAttributeUpdate>,
    parameters: Option<JsonAttributeUpdate>,
    /// Name of the saved query.
    query: Option<TextAttributeUpdate>,
    /// minijinja source.
    template: Option<TextAttributeUpdate>,
    description: Option<TextAttributeUpdate>,
}

/// The attribute values of any of the three definition inputs.
struct DefinitionValues {
    name: Option<String>,
    artifact_name: Option<String>,
    content_type: Option<String>,
    parameters: Option<Value>,
    query: Option<String>,
    template: Option<String>,
    description: Option<String>,
}

/// Converts any of the three definition inputs.
macro_rules! definition_values {
    ($data:expr) => {
        DefinitionValues {
            name: $data.name.text(),
            artifact_name: $data.artifact_name.text(),
            content_type: $data.content_type.text(),
            parameters: $data.parameters.json(),
            query: $data.query.text(),
            template: $data.template.text(),
            description: $data.description.text(),
        }
    };
}

object_result!(CoreArtifactDefinitionCreate, CoreArtifactDefinition);
object_result!(CoreArtifactDefinitionUpdate, CoreArtifactDefinition);
object_result!(CoreArtifactDefinitionUpsert, CoreArtifactDefinition);
ok_result!(CoreArtifactDefinitionDelete);

/// Data of `CoreArtifactCreate`: `definition` and the target (`object`, or `target`, its
/// infrastream name) are required; the target needs its `kind` unless infrastream stores it.
#[derive(InputObject)]
#[graphql(name = "CoreArtifactCreateInput", rename_fields = "snake_case")]
pub(crate) struct ArtifactCreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    status: Option<TextAttributeCreate>,
    content_type: Option<TextAttributeCreate>,
    checksum: Option<TextAttributeCreate>,
    storage_id: Option<TextAttributeCreate>,
    parameters: Option<JsonAttributeCreate>,
    definition: Option<RelatedNodeInput>,
    object: Option<RelatedNodeInput>,
    /// The target under infrastream's older name; same as `object`.
    target: Option<RelatedNodeInput>,
}

/// Data of `CoreArtifactUpdate`: the artifact is found by `id` (artifacts have no hfid).
#[derive(InputObject)]
#[graphql(name = "CoreArtifactUpdateInput", rename_fields = "snake_case")]
pub(crate) struct ArtifactUpdateInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    status: Option<TextAttributeUpdate>,
    content_type: Option<TextAttributeUpdate>,
    checksum: Option<TextAttributeUpdate>,
    storage_id: Option<TextAttributeUpdate>,
    parameters: Option<JsonAttributeUpdate>,
    definition: Option<RelatedNodeInput>,
    object: Option<RelatedNodeInput>,
    /// The target under infrastream's older name; same as `object`.
    target: Option<RelatedNodeInput>,
}

/// Data of `CoreArtifactUpsert`: updates the artifact found by `id`, or else by (definition,
/// target, branch), or creates it.
#[derive(InputObject)]
#[graphql(name = "CoreArtifactUpsertInput", rename_fields = "snake_case")]
pub(crate) struct ArtifactUpsertInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    status: Option<TextAttributeUpdate>,
    content_type: Option<TextAttributeUpdate>,
    checksum: Option<TextAttributeUpdate>,
    storage_id: Option<TextAttributeUpdate>,
    parameters: Option<JsonAttributeUpdate>,
    definition: Option<RelatedNodeInput>,
    object: Option<RelatedNodeInput>,
    /// The target under infrastream's older name; same as `object`.
    target: Option<RelatedNodeInput>,
}

/// An artifact's target as given: `id`, and `kind` when infrastream does not store the node.
#[derive(Clone)]
struct TargetRef {
    id: String,
    kind: Option<String>,
}

/// The values of any of the three artifact inputs.
struct ArtifactValues {
    name: Option<String>,
    status: Option<String>,
    content_type: Option<String>,
    checksum: Option<String>,
    storage_id: Option<String>,
    parameters: Option<Value>,
    /// Id or name of the definition.
    definition: Option<String>,
    target: Option<TargetRef>,
}

/// Converts any of the three artifact inputs, checking the node references.
macro_rules! artifact_values {
    ($data:expr) => {{
        let definition = match &$data.definition {
            Some(d) => Some(match d.key("definition")? {
                NodeKey::Id(id) => id,
                NodeKey::Name(name) => name,
            }),
            None => None,
        };
        let target = match ($data.object, $data.target) {
            (Some(_), Some(_)) => {
                return Err(gql(Error::invalid(
                    "Give the artifact's target as object or as target, not both",
                )));
            }
            (Some(t), None) | (None, Some(t)) => Some(target_ref(t)?),
            (None, None) => None,
        };
        ArtifactValues {
            name: $data.name.text(),
            status: $data.status.text(),
            content_type: $data.content_type.text(),
            checksum: $data.checksum.text(),
            storage_id: $data.storage_id.text(),
            parameters: $data.parameters.json(),
            definition,
            target,
        }
    }};
}

/// The target of an artifact input: by `id` (a target's hfid cannot be resolved here).
fn target_ref(t: RelatedNodeInput) -> Res<TargetRef> {
    match t.key("object")? {
        NodeKey::Id(id) => Ok(TargetRef { id, kind: t.kind }),
        NodeKey::Name(_) => Err(gql(Error::invalid(
            "The artifact's target must be given by id (object.id)",
        ))),
    }
}

/// The id of the artifact an update or upsert designates: artifacts have no hfid.
fn artifact_id(id: Option<String>, hfid: Option<Vec<Option<String>>>) -> Res<Option<String>> {
    match NodeKey::from_input(id, hfid, ARTIFACT_KIND)? {
        None => Ok(None),
        Some(NodeKey::Id(id)) => Ok(Some(id)),
        Some(NodeKey::Name(_)) => Err(gql(Error::invalid(
            "CoreArtifact has no hfid: designate the artifact by id",
        ))),
    }
}

object_result!(CoreArtifactCreate, CoreArtifact);
object_result!(CoreArtifactUpdate, CoreArtifact);
object_result!(CoreArtifactUpsert, CoreArtifact);
ok_result!(CoreArtifactDelete);

/// One artifact of an `ArtifactGenerate`.
#[derive(SimpleObject)]
#[graphql(name = "ArtifactGenerateItem", rename_fields = "snake_case")]
pub(crate) struct GenerateItem {
    /// `created`, `updated`, `unchanged` or `error`.
    result: String,
    /// The artifact event emitted, if any.
    event_id: Option<String>,
    object: CoreArtifact,
}

/// Result of `ArtifactGenerate`: `ok` is false when any artifact ended in `Error`.
#[derive(SimpleObject)]
#[graphql(name = "ArtifactGenerateResult", rename_fields = "snake_case")]
pub(crate) struct GenerateResult {
    ok: bool,
    count: i64,
    artifacts: Vec<GenerateItem>,
}

fn merge_definition(existing: Definition, data: DefinitionValues) -> Definition {
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

fn new_definition(id: Option<String>, data: DefinitionValues) -> Result<Definition, Error> {
    let required = |v: Option<String>, field: &str| {
        v.ok_or_else(|| Error::invalid(format!("{field}.value is required")))
    };
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

async fn save_definition(ctx: &Context<'_>, d: Definition, is_new: bool) -> Res<Definition> {
    let store = services(ctx).store.as_ref();
    check_definition(store, &d).await.map_err(gql)?;
    if is_new && store.node(&d.id).await.map_err(store_err)?.is_some() {
        return Err(gql(Error::new(
            ErrorKind::AlreadyExists,
            format!("A node with id {} already exists", d.id),
        )));
    }
    if definitions(store)
        .await
        .map_err(gql)?
        .iter()
        .any(|o| o.name == d.name && o.id != d.id)
    {
        return Err(gql(Error::new(
            ErrorKind::AlreadyExists,
            format!("An artifact definition named {} already exists", d.name),
        )));
    }
    store
        .commit(Commit {
            changes: vec![Change::PutNode(d.to_node())],
            events: vec![],
        })
        .await
        .map_err(store_err)?;
    Ok(d)
}

/// The definition `key` designates: by id, or by name (its hfid).
async fn definition_by_key(store: &dyn Store, key: &NodeKey) -> Res<Option<Definition>> {
    let found = match key {
        NodeKey::Id(id) => find_definition(store, id)
            .await
            .map_err(gql)?
            .filter(|d| d.id == *id),
        NodeKey::Name(name) => definitions(store)
            .await
            .map_err(gql)?
            .into_iter()
            .find(|d| d.name == *name),
    };
    Ok(found)
}

async fn existing_definition(store: &dyn Store, key: &NodeKey) -> Res<Definition> {
    definition_by_key(store, key).await?.ok_or_else(|| {
        gql(Error::not_found(format!(
            "Artifact definition {key} not found"
        )))
    })
}

fn merge_artifact(
    mut a: Artifact,
    data: ArtifactValues,
    definition_id: Option<String>,
) -> Result<Artifact, Error> {
    if let Some(d) = &definition_id
        && *d != a.data.definition_id
    {
        return Err(Error::invalid(
            "The definition of an artifact cannot be changed",
        ));
    }
    if let Some(t) = &data.target
        && t.id != a.data.target.id
    {
        return Err(Error::invalid(
            "The target of an artifact cannot be changed",
        ));
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
        return Err(Error::invalid(
            "checksum can only be set together with storage_id",
        ));
    }
    if let Some(v) = data.parameters {
        a.data.parameters = v;
    }
    if a.data.status != "Error" {
        a.data.error = None;
    }
    Ok(a)
}

/// The id of the definition an artifact input names (by id or name), which must exist.
async fn referenced_definition(store: &dyn Store, key: &str) -> Result<Definition, Error> {
    find_definition(store, key)
        .await?
        .ok_or_else(|| Error::not_found(format!("Artifact definition {key} not found")))
}

/// Checks an artifact's attributes; fills in the checksum from the stored object when only
/// the storage id is given, and refuses a checksum that does not match the object.
async fn check_artifact(services: &Services, a: &mut Artifact) -> Result<(), Error> {
    if a.data.name.trim().is_empty() {
        return Err(Error::invalid("name.value must not be empty"));
    }
    check_status(&a.data.status)?;
    check_content_type(&a.data.content_type)?;
    if let Some(storage_id) = &a.data.storage_id {
        if !ObjectStore::is_valid_id(storage_id) {
            return Err(Error::invalid(format!(
                "storage_id '{storage_id}' is not a valid object identifier (64 hexadecimal characters)"
            )));
        }
        let bytes = ObjectStore::new(&services.settings.data_dir)
            .get(storage_id)
            .await
            .map_err(io_error)?
            .ok_or_else(|| Error::not_found(format!("Object {storage_id} not found")))?;
        let actual = md5_hex(&bytes);
        match &a.data.checksum {
            Some(c) if *c != actual => {
                return Err(Error::invalid(format!(
                    "checksum {c} does not match the content of object {storage_id} ({actual})"
                )));
            }
            _ => a.data.checksum = Some(actual),
        }
    }
    Ok(())
}

async fn new_artifact(
    ctx: &Context<'_>,
    id: Option<String>,
    data: ArtifactValues,
) -> Result<Artifact, Error> {
    let store = services(ctx).store.as_ref();
    let branch = url_branch(ctx);
    let def_key = data
        .definition
        .clone()
        .ok_or_else(|| Error::invalid("definition.id is required"))?;
    let def = referenced_definition(store, &def_key).await?;
    let target_ref = data
        .target
        .clone()
        .ok_or_else(|| Error::invalid("object.id is required (the artifact's target)"))?;
    let spec = match &target_ref.kind {
        Some(k) => format!("{k}:{}", target_ref.id),
        None => target_ref.id.clone(),
    };
    let target = resolve_target(store, &spec, &[]).await?;
    let id = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    if store.node(&id).await.map_err(store_error)?.is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("A node with id {id} already exists"),
        ));
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
            branch,
            error: None,
        },
    };
    let mut a = merge_artifact(a, data, Some(def.id.clone()))?;
    if a.data.storage_id.is_some() && a.data.status == "Pending" {
        a.data.status = "Ready".into();
    }
    if find_artifact_by_key(store, &a.key()).await?.is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "An artifact of definition {} for target {} already exists on branch {}",
                def.name, a.data.target.id, a.data.branch
            ),
        ));
    }
    Ok(a)
}

/// Applies `data` to the existing artifact `existing`.
async fn changed_artifact(
    store: &dyn Store,
    existing: Artifact,
    data: ArtifactValues,
) -> Result<Artifact, Error> {
    let definition_id = match &data.definition {
        Some(key) => Some(referenced_definition(store, key).await?.id),
        None => None,
    };
    merge_artifact(existing, data, definition_id)
}

/// Saves `a` (created when `before` is `None`) with the artifact event its content change
/// calls for.
async fn save_artifact(
    ctx: &Context<'_>,
    mut a: Artifact,
    before: Option<Artifact>,
) -> Res<Artifact> {
    let s = services(ctx);
    let lock = artifact_lock(&a.key());
    let _guard = lock.lock().await;
    check_artifact(s, &mut a).await.map_err(gql)?;
    commit_artifact(s.store.as_ref(), &a, before.as_ref(), caller(ctx))
        .await
        .map_err(gql)?;
    Ok(a)
}

#[derive(Default)]
pub(crate) struct ArtifactMutation;

#[Object(rename_args = "snake_case")]
impl ArtifactMutation {
    /// Creates an artifact definition.
    #[graphql(name = "CoreArtifactDefinitionCreate")]
    async fn definition_create(
        &self,
        ctx: &Context<'_>,
        data: DefinitionCreateInput,
    ) -> Res<Option<CoreArtifactDefinitionCreate>> {
        require_write(ctx)?;
        let values = definition_values!(data);
        let d = new_definition(data.id, values).map_err(gql)?;
        let d = save_definition(ctx, d, true).await?;
        Ok(CoreArtifactDefinitionCreate::done(CoreArtifactDefinition(
            d,
        )))
    }

    /// Changes an artifact definition, found by `id` or `hfid`.
    #[graphql(name = "CoreArtifactDefinitionUpdate")]
    async fn definition_update(
        &self,
        ctx: &Context<'_>,
        data: DefinitionUpdateInput,
    ) -> Res<Option<CoreArtifactDefinitionUpdate>> {
        require_write(ctx)?;
        let key = NodeKey::required(data.id.clone(), data.hfid.clone(), DEFINITION_KIND)?;
        let values = definition_values!(data);
        let existing = existing_definition(services(ctx).store.as_ref(), &key).await?;
        let d = save_definition(ctx, merge_definition(existing, values), false).await?;
        Ok(CoreArtifactDefinitionUpdate::done(CoreArtifactDefinition(
            d,
        )))
    }

    /// Creates or changes an artifact definition, found by `id`, `hfid` or else by name.
    #[graphql(name = "CoreArtifactDefinitionUpsert")]
    async fn definition_upsert(
        &self,
        ctx: &Context<'_>,
        data: DefinitionUpsertInput,
    ) -> Res<Option<CoreArtifactDefinitionUpsert>> {
        require_write(ctx)?;
        let store = services(ctx).store.as_ref();
        let values = definition_values!(data);
        let key = match NodeKey::from_input(data.id.clone(), data.hfid.clone(), DEFINITION_KIND)? {
            Some(k) => Some(k),
            None => values.name.clone().map(NodeKey::Name),
        };
        let existing = match &key {
            Some(k) => definition_by_key(store, k).await?,
            None => None,
        };
        let d = match existing {
            Some(e) => save_definition(ctx, merge_definition(e, values), false).await?,
            None => {
                let d = new_definition(data.id, values).map_err(gql)?;
                save_definition(ctx, d, true).await?
            }
        };
        Ok(CoreArtifactDefinitionUpsert::done(CoreArtifactDefinition(
            d,
        )))
    }

    /// Removes an artifact definition and its artifacts; found by `id` or `hfid`.
    #[graphql(name = "CoreArtifactDefinitionDelete")]
    async fn definition_delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreArtifactDefinitionDelete>> {
        require_write(ctx)?;
        let store = services(ctx).store.as_ref();
        let def = existing_definition(store, &data.key(DEFINITION_KIND)?).await?;
        let mut changes: Vec<Change> = artifacts(store)
            .await
            .map_err(gql)?
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
            .await
            .map_err(store_err)?;
        Ok(CoreArtifactDefinitionDelete::done())
    }

    /// Creates an artifact on the request's branch (`definition` and the target required).
    /// With `storage_id` (an uploaded object) it has content, and `infrahub.artifact.created`
    /// is emitted.
    #[graphql(name = "CoreArtifactCreate")]
    async fn artifact_create(
        &self,
        ctx: &Context<'_>,
        data: ArtifactCreateInput,
    ) -> Res<Option<CoreArtifactCreate>> {
        require_write(ctx)?;
        let id = data.id.clone();
        let values = artifact_values!(data);
        let a = new_artifact(ctx, id, values).await.map_err(gql)?;
        let a = save_artifact(ctx, a, None).await?;
        Ok(CoreArtifactCreate::done(CoreArtifact(a)))
    }

    /// Changes an artifact, found by `id`; a new `storage_id` emits `infrahub.artifact.updated`.
    #[graphql(name = "CoreArtifactUpdate")]
    async fn artifact_update(
        &self,
        ctx: &Context<'_>,
        data: ArtifactUpdateInput,
    ) -> Res<Option<CoreArtifactUpdate>> {
        require_write(ctx)?;
        let id = artifact_id(data.id.clone(), data.hfid.clone())?
            .ok_or_else(|| gql(Error::invalid("id is required for CoreArtifact")))?;
        let values = artifact_values!(data);
        let store = services(ctx).store.as_ref();
        let existing = find_artifact(store, &id)
            .await
            .map_err(gql)?
            .ok_or_else(|| gql(Error::not_found(format!("Artifact {id} not found"))))?;
        let merged = changed_artifact(store, existing.clone(), values)
            .await
            .map_err(gql)?;
        let a = save_artifact(ctx, merged, Some(existing)).await?;
        Ok(CoreArtifactUpdate::done(CoreArtifact(a)))
    }

    /// Creates or changes an artifact, found by `id` or else by (definition, target, branch).
    #[graphql(name = "CoreArtifactUpsert")]
    async fn artifact_upsert(
        &self,
        ctx: &Context<'_>,
        data: ArtifactUpsertInput,
    ) -> Res<Option<CoreArtifactUpsert>> {
        require_write(ctx)?;
        let id = artifact_id(data.id.clone(), data.hfid.clone())?;
        let values = artifact_values!(data);
        let store = services(ctx).store.as_ref();
        let mut existing = match &id {
            Some(id) => find_artifact(store, id).await.map_err(gql)?,
            None => None,
        };
        if existing.is_none()
            && id.is_none()
            && let (Some(d), Some(t)) = (&values.definition, &values.target)
            && let Some(def) = find_definition(store, d).await.map_err(gql)?
        {
            let key = artifact_key(&def.id, &url_branch(ctx), &t.id);
            existing = find_artifact_by_key(store, &key).await.map_err(gql)?;
        }
        let a = match existing {
            Some(e) => {
                let merged = changed_artifact(store, e.clone(), values)
                    .await
                    .map_err(gql)?;
                save_artifact(ctx, merged, Some(e)).await?
            }
            None => {
                let a = new_artifact(ctx, id, values).await.map_err(gql)?;
                save_artifact(ctx, a, None).await?
            }
        };
        Ok(CoreArtifactUpsert::done(CoreArtifact(a)))
    }

    /// Removes an artifact, found by `id` (its content stays in the object store).
    #[graphql(name = "CoreArtifactDelete")]
    async fn artifact_delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreArtifactDelete>> {
        require_write(ctx)?;
        let id = artifact_id(data.id, data.hfid)?
            .ok_or_else(|| gql(Error::invalid("id is required for CoreArtifact")))?;
        let store = services(ctx).store.as_ref();
        if find_artifact(store, &id).await.map_err(gql)?.is_none() {
            return Err(gql(Error::not_found(format!("Artifact {id} not found"))));
        }
        store
            .commit(Commit {
                changes: vec![Change::DeleteNode { id }],
                events: vec![],
            })
            .await
            .map_err(store_err)?;
        Ok(CoreArtifactDelete::done())
    }

    /// Generates the artifacts of `definition` (id or name) on the request's branch: for each
    /// of `targets` (node ids, or `Kind:id`; the artifact is created when missing), or for all
    /// existing artifacts of the definition on that branch when `targets` is omitted or empty.
    #[graphql(name = "ArtifactGenerate")]
    async fn artifact_generate(
        &self,
        ctx: &Context<'_>,
        definition: String,
        targets: Option<Vec<String>>,
    ) -> Res<GenerateResult> {
        let caller = require_write(ctx)?;
        let schema = ctx.data_unchecked::<crate::SchemaHandle>().get();
        let done = generate_artifacts(
            services(ctx),
            &schema,
            caller,
            &url_branch(ctx),
            &definition,
            targets,
        )
        .await
        .map_err(gql)?;
        Ok(GenerateResult {
            ok: done.iter().all(|g| g.outcome != GenerateOutcome::Error),
            count: done.len() as i64,
            artifacts: done
                .into_iter()
                .map(|g| GenerateItem {
                    result: g.outcome.as_str().into(),
                    event_id: g.event_id,
                    object: CoreArtifact(g.artifact),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_ids_or_kind_and_id() {
        assert_eq!(split_target("abc").unwrap(), (None, "abc"));
        assert_eq!(
            split_target("InfraDevice:abc").unwrap(),
            (Some("InfraDevice"), "abc")
        );
        assert_eq!(split_target(" 1:2 ").unwrap(), (None, "1:2"));
        assert!(split_target("").is_err());
        assert!(split_target("Kind:").is_err());
        assert!(split_target("a\nb").is_err());
    }

    #[test]
    fn templates_are_checked_and_rendered_strictly() {
        assert!(check_template("t", "{{ x }}").is_ok());
        let e = check_template("t", "{% for %}").unwrap_err();
        assert!(
            e.message.starts_with("The template does not compile"),
            "{e}"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let data = json!({"Branch": [{"name": "main"}, {"name": "b"}]});
        let out = rt
            .block_on(render_template(
                "t".into(),
                "{% for b in Branch %}\n{{ b.name }}\n{% endfor %}\n{{ data.Branch | length }}"
                    .into(),
                data.clone(),
            ))
            .unwrap();
        assert_eq!(out, "main\nb\n2");
        let err = rt
            .block_on(render_template(
                "t".into(),
                "{{ missing.x }}".into(),
                data.clone(),
            ))
            .unwrap_err();
        assert!(err.starts_with("Template rendering failed"), "{err}");
        let err = rt
            .block_on(render_template(
                "t".into(),
                "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}"
                    .into(),
                data,
            ))
            .unwrap_err();
        assert!(err.contains("fuel"), "{err}");
    }

    #[test]
    fn content_types_and_statuses_are_checked() {
        assert!(check_content_type("text/plain").is_ok());
        let e = check_content_type("text/html").unwrap_err();
        assert!(e.message.contains("text/html") && e.message.contains("application/json"));
        assert!(check_status("Ready").is_ok());
        assert!(check_status("Done").is_err());
    }
}
