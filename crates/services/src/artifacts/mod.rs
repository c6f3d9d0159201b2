//! Artifact definitions and artifacts (`CoreArtifactDefinition`, `CoreArtifact`) and their
//! generation: a definition names a saved query (the data) and a minijinja template (the
//! transformation); [`generate`] runs the query for each target on a branch, renders the
//! template, stores the content in the [`ObjectStore`](crate::ObjectStore) and
//! commits the artifact together with its `infrahub.artifact.created` / `.updated` event
//! (SPEC §3).
//!
//! Both are generic store nodes. An artifact is identified by (definition, branch, target):
//! its node name is that triple, so the store's unique-name rule makes a second artifact for
//! the same triple impossible; its display name is the definition's `artifact_name`.
//!
//! Targets are given as strings: a node id (`"<id>"`, its kind looked up among stored nodes,
//! branches, saved queries and accounts, or taken from an existing artifact of that target),
//! or `"<Kind>:<id>"` to name the kind explicitly (for targets infrastream does not store).
//!
//! Every write to one artifact — generation, create, update, delete — holds the artifact's
//! lock (`artifact/<definition, branch, target>` in [`Services::locks`]) and re-reads the
//! artifact under it, so two generations never emit two events for one change and a deleted
//! artifact stays deleted.
//!
//! Definitions ([`Definition`]) and artifacts ([`Artifact`]) are [`NodeKind`]s: listed,
//! created, changed, upserted and removed by the generic operations of [`crate::nodes`]
//! (removing a definition removes its artifacts, each under its lock; artifacts are
//! branch-local, have no hfid, and reference their definition and target). Beyond that:
//! [`generate`] and [`content`].
//!
//! Errors are [`ArtifactError`]s; `user_error()` turns them into what a client sees.

mod definitions;
mod error;
mod generation;
mod model;
mod records;
mod template;
mod validate;

pub use definitions::DefinitionValues;
pub use error::{ArtifactError, Result};
pub use generation::{GenerateOutcome, GeneratedArtifact, generate};
pub use model::{Artifact, ArtifactData, Definition, DefinitionData};
pub use records::{ArtifactValues, TargetRef};

use crate::Services;
use crate::nodes::{NodeError, NodeKind};
use crate::object_store::md5_hex;

/// Node kind of artifact definitions.
pub const DEFINITION_KIND: &str = "CoreArtifactDefinition";
/// Node kind of artifacts.
pub const ARTIFACT_KIND: &str = "CoreArtifact";
/// Node kind of branches (as artifact targets).
const BRANCH_KIND: &str = "Branch";

/// The content types an artifact definition may declare (Infrahub's list).
pub const CONTENT_TYPES: [&str; 8] = [
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
pub const STATUSES: [&str; 4] = ["Pending", "Processing", "Ready", "Error"];

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
pub async fn content(services: &Services, id: &str) -> Result<ArtifactContent> {
    let a = Artifact::by_id(services, id)
        .await?
        .ok_or_else(|| NodeError::not_found::<Artifact>(id))?;
    let (Some(checksum), Some(storage_id)) = (&a.data.checksum, &a.data.storage_id) else {
        return Err(ArtifactError::NoContent {
            id: id.to_owned(),
            status: a.data.status,
        });
    };
    let bytes = services
        .objects
        .get(storage_id)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => ArtifactError::MalformedStorageId(id.to_owned()),
            _ => ArtifactError::Objects(e),
        })?
        .ok_or_else(|| ArtifactError::ContentMissing {
            id: id.to_owned(),
            storage_id: storage_id.clone(),
        })?;
    let actual = md5_hex(&bytes);
    if actual != *checksum {
        return Err(ArtifactError::ContentCorrupt {
            id: id.to_owned(),
            expected: checksum.clone(),
            actual,
        });
    }
    Ok(ArtifactContent {
        content_type: a.data.content_type,
        bytes,
    })
}
