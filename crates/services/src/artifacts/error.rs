//! What can go wrong with definitions, artifacts, their generation and their content. Every
//! variant names its registered code; the messages of the non-internal ones are what clients
//! see (and what tests compare), the internal ones keep their source for the log.

use super::{CONTENT_TYPES, STATUSES};
use crate::nodes::NodeError;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_core::storage_full;
use infrastream_store::StoreError;

/// An error of the artifact domain.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// A definition's `artifact_name` is blank.
    #[error("artifact_name.value must not be empty")]
    EmptyArtifactName,
    /// An artifact's `name` is blank.
    #[error("name.value must not be empty")]
    EmptyName,
    /// A content type outside [`CONTENT_TYPES`].
    #[error("content_type '{0}' is not supported; expected one of: {types}", types = CONTENT_TYPES.join(", "))]
    UnsupportedContentType(String),
    /// A status outside [`STATUSES`].
    #[error("status '{0}' is not valid; expected one of: {statuses}", statuses = STATUSES.join(", "))]
    InvalidStatus(String),
    /// A definition's `parameters` is not a JSON object.
    #[error(
        "parameters.value must be a JSON object (its keys are passed to the query as variables)"
    )]
    ParametersNotObject,
    /// A definition names a saved query that does not exist.
    #[error("The saved query '{0}' does not exist (query.value names a CoreGraphQLQuery)")]
    UnknownSavedQuery(String),
    /// A definition names a saved mutation or subscription.
    #[error("The saved query '{0}' is not a query operation")]
    NotAQuery(String),
    /// A definition's template does not compile.
    #[error("The template does not compile: {0}")]
    TemplateDoesNotCompile(String),
    /// A target string that is neither an id nor `Kind:id`.
    #[error("Invalid target '{0}': expected a node id or Kind:id")]
    InvalidTarget(String),
    /// An artifact input without its definition.
    #[error("definition.id is required")]
    DefinitionRequired,
    /// An artifact input without its target.
    #[error("object.id is required (the artifact's target)")]
    TargetRequired,
    /// An artifact input with its target both as `object` and as `target`.
    #[error("Give the artifact's target as object or as target, not both")]
    TargetTwice,
    /// An artifact input whose target is given by hfid.
    #[error("The artifact's target must be given by id (object.id)")]
    TargetByHfid,
    /// An update that would move an artifact to another definition.
    #[error("The definition of an artifact cannot be changed")]
    DefinitionChanged,
    /// An update that would move an artifact to another target.
    #[error("The target of an artifact cannot be changed")]
    TargetChanged,
    /// A checksum without the storage id it is the checksum of.
    #[error("checksum can only be set together with storage_id")]
    ChecksumWithoutStorageId,
    /// A storage id that is not 64 lowercase hex characters.
    #[error("storage_id '{0}' is not a valid object identifier (64 hexadecimal characters)")]
    InvalidStorageId(String),
    /// A checksum that is not the one of the object named.
    #[error("checksum {given} does not match the content of object {storage_id} ({actual})")]
    ChecksumMismatch {
        /// The checksum given.
        given: String,
        /// The object.
        storage_id: String,
        /// The object's checksum.
        actual: String,
    },
    /// A generation request with more targets than `artifact_max_targets_per_request`.
    #[error(
        "The request names {given} targets; at most {max} are allowed per request (setting artifact_max_targets_per_request)"
    )]
    TooManyTargets {
        /// Targets named.
        given: usize,
        /// The setting.
        max: usize,
    },
    /// A read-only caller asked for a generation.
    #[error("You do not have permission to generate artifacts (read-only access)")]
    ReadOnly,
    /// A target that is not stored and was given without its kind.
    #[error("Target {0} not found: give the id of a stored node, or its kind as Kind:{0}")]
    TargetNotFound(String),
    /// A storage id naming no stored object.
    #[error("Object {0} not found")]
    ObjectNotFound(String),
    /// An artifact without content.
    #[error("Artifact {id} has no content (status {status})")]
    NoContent {
        /// The artifact.
        id: String,
        /// Its status.
        status: String,
    },
    /// A definition would take another one's name.
    #[error("An artifact definition named {0} already exists")]
    DefinitionNameTaken(String),
    /// A second artifact for the same (definition, target, branch).
    #[error(
        "An artifact of definition {definition} for target {target} already exists on branch {branch}"
    )]
    ArtifactExists {
        /// Name of the definition.
        definition: String,
        /// Id of the target.
        target: String,
        /// The branch.
        branch: String,
    },
    /// The recorded storage id of an artifact is malformed.
    #[error("The content of artifact {0} is unavailable: its storage id is malformed")]
    MalformedStorageId(String),
    /// The object an artifact records is not stored.
    #[error("The content of artifact {id} is missing from storage (object {storage_id})")]
    ContentMissing {
        /// The artifact.
        id: String,
        /// The object.
        storage_id: String,
    },
    /// The stored bytes do not match the artifact's checksum.
    #[error(
        "The stored content of artifact {id} does not match its checksum (expected {expected}, found {actual})"
    )]
    ContentCorrupt {
        /// The artifact.
        id: String,
        /// The recorded checksum.
        expected: String,
        /// The checksum of the stored bytes.
        actual: String,
    },
    /// A failure every node kind shares (not found, key or required attribute missing, id
    /// taken, the store's refusal).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The store refused a change (its message is the client's) or failed (internal).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the object store failed (`STORAGE_FULL` when the storage is full,
    /// with the message that says so; internal otherwise).
    #[error("{}", objects_message(.0))]
    Objects(#[source] std::io::Error),
    /// A stored definition or artifact node does not decode.
    #[error("stored artifact node {id} does not decode")]
    Corrupt {
        /// The node.
        id: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Results of the artifact domain.
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;

impl DomainError for ArtifactError {
    fn code(&self) -> &'static Code {
        use ArtifactError::*;
        match self {
            EmptyArtifactName
            | EmptyName
            | UnsupportedContentType(_)
            | InvalidStatus(_)
            | ParametersNotObject
            | UnknownSavedQuery(_)
            | NotAQuery(_)
            | TemplateDoesNotCompile(_)
            | InvalidTarget(_)
            | DefinitionRequired
            | TargetRequired
            | TargetTwice
            | TargetByHfid
            | DefinitionChanged
            | TargetChanged
            | ChecksumWithoutStorageId
            | InvalidStorageId(_)
            | ChecksumMismatch { .. } => &codes::BAD_USER_INPUT,
            TooManyTargets { .. } => &codes::LIMIT_EXCEEDED,
            ReadOnly => &codes::FORBIDDEN,
            TargetNotFound(_) | ObjectNotFound(_) | NoContent { .. } => &codes::NOT_FOUND,
            DefinitionNameTaken(_) | ArtifactExists { .. } => &codes::ALREADY_EXISTS,
            MalformedStorageId(_) | ContentMissing { .. } | ContentCorrupt { .. } => {
                &codes::CONFLICT
            }
            Node(e) => e.code(),
            Store(e) => e.code(),
            Objects(e) if storage_full::is_storage_full(e) => &codes::STORAGE_FULL,
            Objects(_) | Corrupt { .. } => &codes::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What [`ArtifactError::Objects`] says: the client's message for a full storage, else a
/// summary for logs (the client of an internal failure sees only a correlation id).
fn objects_message(e: &std::io::Error) -> &'static str {
    if storage_full::is_storage_full(e) {
        storage_full::MESSAGE
    } else {
        "object storage failure"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infrastream_core::Error;

    #[test]
    fn messages_and_codes() {
        let e = ArtifactError::TooManyTargets { given: 3, max: 2 }.user_error();
        assert_eq!((e.code, e.http_status()), ("LIMIT_EXCEEDED", 429));
        assert!(
            e.message.contains("artifact_max_targets_per_request"),
            "{e}"
        );
        let e = ArtifactError::from(NodeError::NotFound {
            label: "Artifact definition",
            key: "[\"d\"]".into(),
        })
        .user_error();
        assert_eq!(e, Error::not_found("Artifact definition [\"d\"] not found"));
        let rejected = Error::conflict("no");
        let e = ArtifactError::Store(StoreError::Rejected(rejected.clone())).user_error();
        assert_eq!(e, rejected);
        let e = ArtifactError::Store(StoreError::Backend("disk /x".into())).user_error();
        assert_eq!(e.code, "INTERNAL_SERVER_ERROR");
        assert!(!e.message.contains("/x"), "{e}");
        // A full storage says so, from the store or from the object store.
        let full = || std::io::Error::from_raw_os_error(28);
        for e in [
            ArtifactError::Store(StoreError::backend(full())),
            ArtifactError::Objects(full()),
            ArtifactError::Objects(std::io::Error::from(std::io::ErrorKind::QuotaExceeded)),
        ] {
            let shown = e.user_error();
            assert_eq!((shown.code, shown.http_status()), ("STORAGE_FULL", 507));
            assert_eq!(shown.message, infrastream_core::storage_full::MESSAGE);
        }
        let e = ArtifactError::Objects(std::io::Error::other("/secret/objects: EIO")).user_error();
        assert_eq!(e.code, "INTERNAL_SERVER_ERROR");
        assert!(!e.message.contains("secret"), "{e}");
    }
}
