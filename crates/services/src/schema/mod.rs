//! Schemas users load: nodes and generics in Infrahub's schema file format, per branch.
//!
//! - [`load`] (`POST /api/schema/load?branch=`) checks the body's shape ([`contract`]), merges
//!   the files into the branch's schema ([`registry`]), checks the result ([`rules`]) and, when
//!   it changed, commits it with one `infrahub.schema.updated` event (`branch_name`,
//!   `schema_hash`, `changed_elements`) in one transaction. A load that changes nothing
//!   commits nothing and answers `schema_updated: false`.
//! - [`read`] and [`summary`] (`GET /api/schema`, `GET /api/schema/summary`) answer in the
//!   shape Infrahub's SDK reads.
//!
//! Each branch keeps its own schema once something was loaded on it (the metadata value
//! `schema/<branch>`, with `schema-base/<branch>`: the schema it started from; the branch's
//! `has_schema_changes` becomes true); until then it reads the default branch's. Loads on one
//! branch are serialized by the lock `schema/<branch>` (across instances on PostgreSQL).
//! Merging the branch carries every kind it changed to the default branch (latest value wins,
//! [`carried_by_merge`]), in the merge's transaction, with an `infrahub.schema.updated` child
//! event; rebasing it reapplies its changes on the default branch's current schema
//! ([`carried_by_rebase`]). Nodes of these kinds are in [`crate::data`]; their GraphQL is
//! built from the branch's schema by the `graphql` crate.

pub mod builtin;
pub mod contract;
pub mod registry;
mod rules;

use crate::locks::LockGuard;
use crate::{Actor, Caller, Services};
use contract::ContractError;
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::error::DomainError;
use infrastream_core::{Branch, Error, ErrorKind, NewEvent};
use infrastream_store::{Change, Commit, StoreError};
use registry::BranchSchema;
use serde_json::{Value, json};

/// The event a load that changed the schema commits.
pub const SCHEMA_UPDATED: &str = "infrahub.schema.updated";

/// Why a schema request failed.
#[derive(Debug)]
pub enum SchemaError {
    /// The body's shape (answered as Infrahub's request validation: `{"detail": [...]}`).
    Contract(Vec<ContractError>),
    /// Rules of the merged schema (answered `{"data": null, "errors": [...]}`, 422).
    Invalid(Vec<String>),
    /// Any other refusal (unknown branch, no permission, store failure).
    Refused(Error),
}

impl From<StoreError> for SchemaError {
    fn from(e: StoreError) -> Self {
        SchemaError::Refused(e.user_error())
    }
}

/// What a load did (Infrahub's `SchemaUpdate`).
#[derive(Debug)]
pub struct Loaded {
    /// The schema's hash after the load.
    pub hash: String,
    /// Before it.
    pub previous_hash: String,
    /// `{added, changed, removed}`.
    pub diff: Value,
    /// Notes about the body (read-only keys ignored).
    pub warnings: Vec<Value>,
}

impl Loaded {
    /// The answer's body.
    pub fn to_json(&self) -> Value {
        json!({
            "hash": self.hash,
            "previous_hash": self.previous_hash,
            "diff": self.diff,
            "warnings": self.warnings,
            "schema_updated": self.hash != self.previous_hash,
        })
    }
}

/// The kinds of the built-in nodes, which a loaded relationship may point to.
const BUILTIN_KINDS: &[&str] = &[
    crate::accounts::KIND,
    crate::saved_queries::KIND,
    crate::repositories::KIND,
    crate::artifacts::DEFINITION_KIND,
    crate::artifacts::ARTIFACT_KIND,
];

fn meta_key(branch: &str) -> String {
    format!("schema/{branch}")
}

/// The schema stored under `key`, if any.
async fn stored_at(s: &Services, key: &str) -> Result<Option<BranchSchema>, StoreError> {
    match s.store.meta(key).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(|schema| Some(builtin::with_builtins(schema)))
            .map_err(|e| {
                StoreError::backend(format!("the stored schema {key} cannot be read: {e}"))
            }),
    }
}

/// The schema `branch` reads: its own, else the default branch's, else none.
async fn stored(s: &Services, branch: &str) -> Result<BranchSchema, StoreError> {
    for key in [meta_key(branch), meta_key(DEFAULT_BRANCH)] {
        if let Some(schema) = stored_at(s, &key).await? {
            return Ok(schema);
        }
    }
    Ok(builtin::with_builtins(BranchSchema::default()))
}

fn set(key: String, schema: &BranchSchema) -> Result<Change, StoreError> {
    let value = serde_json::to_string(schema)
        .map_err(|e| StoreError::backend(format!("cannot store the schema {key}: {e}")))?;
    Ok(Change::SetMeta {
        key,
        value,
        only_if_absent: false,
    })
}

/// Where a branch's schema as it was when the branch got a schema of its own is kept: what
/// a merge or a rebase compares the branch's schema with to know what the branch changed.
fn base_key(branch: &str) -> String {
    format!("schema-base/{branch}")
}

/// `infrahub.schema.updated` for `branch`, now at `hash`.
fn updated_event(actor: &Actor, branch: &str, hash: &str, changed_elements: Value) -> NewEvent {
    let mut event = NewEvent::new(SCHEMA_UPDATED);
    event.branch = Some(branch.to_owned());
    event.account_id = actor.account_id.clone();
    event.context = actor.context.clone();
    event.data = json!({
        "branch_name": branch,
        "schema_hash": hash,
        "changed_elements": changed_elements,
    });
    event
}

/// Holds the schema locks a merge or a rebase of `branch` needs: the default branch's, then
/// the branch's (loads take one of them, so the order cannot deadlock).
pub async fn lock_for_merge(s: &Services, branch: &str) -> (LockGuard, LockGuard) {
    let main = s.locks.lock(&meta_key(DEFAULT_BRANCH)).await;
    let own = s.locks.lock(&meta_key(branch)).await;
    (main, own)
}

/// What merging `branch` does to the default branch's schema (under [`lock_for_merge`]): every
/// kind the branch changed since it got a schema of its own replaces the default branch's
/// (latest value wins). Returns the default branch's schema after the merge, and the change
/// and its `infrahub.schema.updated` event (on the default branch) unless the branch changed
/// no kind.
pub async fn carried_by_merge(
    s: &Services,
    actor: &Actor,
    branch: &str,
) -> Result<(BranchSchema, Option<(Change, NewEvent)>), StoreError> {
    let ours = stored(s, DEFAULT_BRANCH).await?;
    let Some(theirs) = stored_at(s, &meta_key(branch)).await? else {
        return Ok((ours, None));
    };
    let base = stored_at(s, &base_key(branch))
        .await?
        .unwrap_or_else(|| builtin::with_builtins(BranchSchema::default()));
    let merged = registry::three_way(&base, &theirs, &ours);
    if merged.hash() == ours.hash() {
        return Ok((ours, None));
    }
    let (_, changed_elements) = registry::diff(&ours, &merged);
    let event = updated_event(actor, DEFAULT_BRANCH, &merged.hash(), changed_elements);
    let change = set(meta_key(DEFAULT_BRANCH), &merged)?;
    Ok((merged, Some((change, event))))
}

/// What rebasing `branch` does to its schema (under [`lock_for_merge`]): the default branch's
/// current schema with the kinds the branch changed applied on top, which becomes the new
/// base. Returns the branch's schema after the rebase, the changes, and an
/// `infrahub.schema.updated` event on the branch when its schema changed.
pub async fn carried_by_rebase(
    s: &Services,
    actor: &Actor,
    branch: &str,
) -> Result<(BranchSchema, Vec<Change>, Option<NewEvent>), StoreError> {
    let Some(theirs) = stored_at(s, &meta_key(branch)).await? else {
        return Ok((stored(s, DEFAULT_BRANCH).await?, Vec::new(), None));
    };
    let base = stored_at(s, &base_key(branch))
        .await?
        .unwrap_or_else(|| builtin::with_builtins(BranchSchema::default()));
    let main = stored(s, DEFAULT_BRANCH).await?;
    let rebased = registry::three_way(&base, &theirs, &main);
    let changes = vec![
        set(meta_key(branch), &rebased)?,
        set(base_key(branch), &main)?,
    ];
    let event = (rebased.hash() != theirs.hash()).then(|| {
        let (_, changed_elements) = registry::diff(&theirs, &rebased);
        updated_event(actor, branch, &rebased.hash(), changed_elements)
    });
    Ok((rebased, changes, event))
}

async fn known_branch(s: &Services, branch: &str) -> Result<Branch, SchemaError> {
    match s.store.branch(branch).await? {
        Some(b) => Ok(b),
        None => Err(SchemaError::Refused(Error::new(
            ErrorKind::InvalidInput,
            format!("Branch: {branch} not found."),
        ))),
    }
}

/// Loads `body` (`{"schemas": [...]}`) into `branch`'s schema as `caller` (who must be allowed
/// to write).
pub async fn load(
    s: &Services,
    caller: &Caller,
    branch: &str,
    body: &Value,
) -> Result<Loaded, SchemaError> {
    if !caller.role.can_write() {
        return Err(SchemaError::Refused(Error::new(
            ErrorKind::Forbidden,
            "You do not have permission to load a schema (read-only access)",
        )));
    }
    let checked = contract::check(body).map_err(SchemaError::Contract)?;
    if checked.files.is_empty() {
        return Err(SchemaError::Invalid(vec![
            "Cannot merge an empty list of schemas".into(),
        ]));
    }
    let target = known_branch(s, branch).await?;
    let _guard = s.locks.lock(&meta_key(branch)).await;
    let before = stored(s, branch).await?;
    let first_own = branch != DEFAULT_BRANCH && s.store.meta(&meta_key(branch)).await?.is_none();
    let mut after = before.clone();
    let loaded = after.merge(&checked.files);
    let mut errors = rules::duplicates(&checked.files);
    errors.extend(rules::check(&after, &loaded, BUILTIN_KINDS));
    if !errors.is_empty() {
        return Err(SchemaError::Invalid(errors));
    }
    let warnings = checked
        .ignored
        .iter()
        .map(|field| {
            json!({
                "type": "deprecation",
                "kinds": [],
                "message": format!("'{field}' is a read-only field, the submitted value is ignored"),
            })
        })
        .collect();
    let (previous_hash, hash) = (before.hash(), after.hash());
    let (diff, changed_elements) = registry::diff(&before, &after);
    if hash != previous_hash {
        let event = updated_event(&caller.actor(branch), branch, &hash, changed_elements);
        let mut changes = vec![set(meta_key(branch), &after)?];
        if first_own {
            // What the branch started from, for its merge and rebase; and the branch says
            // it has schema changes, as Infrahub's does.
            changes.push(set(base_key(branch), &before)?);
            changes.push(Change::UpdateBranch {
                branch: Branch {
                    has_schema_changes: true,
                    ..target.clone()
                },
                expect_status: Some(target.status),
            });
        }
        s.store
            .commit(Commit {
                changes,
                events: vec![event],
            })
            .await?;
    }
    Ok(Loaded {
        hash,
        previous_hash,
        diff,
        warnings,
    })
}

/// What is wrong with `schema` as a whole (a merge or a rebase combines two schemas that were
/// each valid into one that may not be: a relationship to a kind the other side removed…).
pub fn problems(schema: &BranchSchema) -> Vec<String> {
    rules::check(schema, &[], BUILTIN_KINDS)
}

/// The schema `branch` reads (its own, else the default branch's).
pub async fn branch_schema(s: &Services, branch: &str) -> Result<BranchSchema, StoreError> {
    stored(s, branch).await
}

/// The stored text of the schema `branch` reads (its own, else the default branch's), for a
/// cache keyed by it; `None` when no schema was ever loaded. [`parse`] reads it.
pub async fn branch_schema_text(s: &Services, branch: &str) -> Result<Option<String>, StoreError> {
    for key in [meta_key(branch), meta_key(DEFAULT_BRANCH)] {
        if let Some(text) = s.store.meta(&key).await? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// A schema from its stored text ([`branch_schema_text`]).
pub fn parse(text: &str) -> Result<BranchSchema, StoreError> {
    serde_json::from_str(text)
        .map(builtin::with_builtins)
        .map_err(|e| StoreError::backend(format!("a stored schema cannot be read: {e}")))
}

/// `branch`'s schema in Infrahub's read shape.
pub async fn read(s: &Services, branch: &str) -> Result<Value, SchemaError> {
    known_branch(s, branch).await?;
    Ok(stored(s, branch).await?.render())
}

/// `branch`'s schema hashes: `{main, nodes, generics}`.
pub async fn summary(s: &Services, branch: &str) -> Result<Value, SchemaError> {
    known_branch(s, branch).await?;
    Ok(stored(s, branch).await?.summary())
}
