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
//! `schema/<branch>`); until then it reads the default branch's. Loads on one branch are
//! serialized by the lock `schema/<branch>` (across instances on PostgreSQL). What is not
//! built yet: nodes of these kinds, GraphQL generated from them, and schema changes carried by
//! a merge — a branch's schema stays on the branch.

pub mod contract;
pub mod registry;
mod rules;

use crate::{Caller, Services};
use contract::ContractError;
use infrastream_core::error::DomainError;
use infrastream_core::{Error, ErrorKind, NewEvent};
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

/// The schema `branch` reads: its own, else the default branch's, else none.
async fn stored(s: &Services, branch: &str) -> Result<BranchSchema, SchemaError> {
    for key in [meta_key(branch), meta_key("main")] {
        if let Some(text) = s.store.meta(&key).await? {
            return serde_json::from_str(&text).map_err(|e| {
                SchemaError::Refused(Error::new(
                    ErrorKind::Internal,
                    format!("The stored schema of branch {branch} cannot be read: {e}"),
                ))
            });
        }
    }
    Ok(BranchSchema::default())
}

async fn known_branch(s: &Services, branch: &str) -> Result<(), SchemaError> {
    match s.store.branch(branch).await? {
        Some(_) => Ok(()),
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
    known_branch(s, branch).await?;
    let _guard = s.locks.lock(&meta_key(branch)).await;
    let before = stored(s, branch).await?;
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
        let actor = caller.actor(branch);
        let mut event = NewEvent::new(SCHEMA_UPDATED);
        event.branch = Some(branch.to_owned());
        event.account_id = actor.account_id;
        event.context = actor.context;
        event.data = json!({
            "branch_name": branch,
            "schema_hash": hash,
            "changed_elements": changed_elements,
        });
        let text = serde_json::to_string(&after).map_err(|e| {
            SchemaError::Refused(Error::new(
                ErrorKind::Internal,
                format!("Cannot store the schema: {e}"),
            ))
        })?;
        s.store
            .commit(Commit {
                changes: vec![Change::SetMeta {
                    key: meta_key(branch),
                    value: text,
                    only_if_absent: false,
                }],
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
