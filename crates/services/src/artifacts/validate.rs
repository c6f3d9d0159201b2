//! The rules a definition, an artifact and a generation target must follow.

use super::template::check_template;
use super::{ArtifactError, BRANCH_KIND, CONTENT_TYPES, Definition, Result, STATUSES};
use crate::object_store::{ObjectStore, md5_hex};
use crate::{OperationKind, Services};
use infrastream_core::RelatedNode;
use infrastream_store::Store;
use serde_json::Value;

pub(crate) fn check_content_type(ct: &str) -> Result<()> {
    if CONTENT_TYPES.contains(&ct) {
        Ok(())
    } else {
        Err(ArtifactError::UnsupportedContentType(ct.to_owned()))
    }
}

pub(crate) fn check_status(status: &str) -> Result<()> {
    if STATUSES.contains(&status) {
        Ok(())
    } else {
        Err(ArtifactError::InvalidStatus(status.to_owned()))
    }
}

/// Whether `document` holds a mutation or a subscription (which no definition may run).
pub(crate) fn is_not_a_query(services: &Services, document: &str) -> bool {
    matches!(
        services.queries.get().operation_kind(document),
        Some(OperationKind::Mutation | OperationKind::Subscription)
    )
}

/// Checks every attribute of a definition before it is saved.
pub(crate) async fn check_definition(services: &Services, d: &Definition) -> Result<()> {
    if d.name.trim().is_empty() {
        return Err(crate::nodes::NodeError::Required("name").into());
    }
    if d.d.artifact_name.trim().is_empty() {
        return Err(ArtifactError::EmptyArtifactName);
    }
    check_content_type(&d.d.content_type)?;
    if !matches!(d.d.parameters, Value::Object(_) | Value::Null) {
        return Err(ArtifactError::ParametersNotObject);
    }
    let queries = services.store.saved_queries().await?;
    let Some(q) = queries.iter().find(|q| q.name == d.d.query) else {
        return Err(ArtifactError::UnknownSavedQuery(d.d.query.clone()));
    };
    if is_not_a_query(services, &q.query) {
        return Err(ArtifactError::NotAQuery(q.name.clone()));
    }
    check_template(&d.name, &d.d.template)
}

/// Checks an artifact's attributes; fills in the checksum from the stored object when only
/// the storage id is given, and refuses a checksum that does not match the object.
pub(crate) async fn check_artifact(services: &Services, a: &mut super::Artifact) -> Result<()> {
    if a.data.name.trim().is_empty() {
        return Err(ArtifactError::EmptyName);
    }
    check_status(&a.data.status)?;
    check_content_type(&a.data.content_type)?;
    if let Some(storage_id) = &a.data.storage_id {
        if !ObjectStore::is_valid_id(storage_id) {
            return Err(ArtifactError::InvalidStorageId(storage_id.clone()));
        }
        let bytes = services
            .objects
            .get(storage_id)
            .await
            .map_err(ArtifactError::Objects)?
            .ok_or_else(|| ArtifactError::ObjectNotFound(storage_id.clone()))?;
        let actual = md5_hex(&bytes);
        match &a.data.checksum {
            Some(c) if *c != actual => {
                return Err(ArtifactError::ChecksumMismatch {
                    given: c.clone(),
                    storage_id: storage_id.clone(),
                    actual,
                });
            }
            _ => a.data.checksum = Some(actual),
        }
    }
    Ok(())
}

/// `Kind:id` or a bare id.
pub(crate) fn split_target(spec: &str) -> Result<(Option<&str>, &str)> {
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
        return Err(ArtifactError::InvalidTarget(spec.to_owned()));
    }
    Ok((kind, id))
}

/// The `{id, kind}` of a target given as a string (see [`super`]); `known` are artifacts
/// whose targets' kinds are known.
pub(crate) async fn resolve_target(
    store: &dyn Store,
    spec: &str,
    known: &[super::Artifact],
) -> Result<RelatedNode> {
    let (kind, id) = split_target(spec)?;
    let node = |kind: &str| {
        Ok(RelatedNode {
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
    if let Some(n) = store.node(id).await? {
        return node(&n.kind);
    }
    if store.branches().await?.iter().any(|b| b.id == id) {
        return node(BRANCH_KIND);
    }
    if store.saved_queries().await?.iter().any(|q| q.id == id) {
        return node("CoreGraphQLQuery");
    }
    if store.account(id).await?.is_some() {
        return node("CoreAccount");
    }
    Err(ArtifactError::TargetNotFound(id.to_owned()))
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
    fn content_types_and_statuses_are_checked() {
        assert!(check_content_type("text/plain").is_ok());
        let e = check_content_type("text/html").unwrap_err().to_string();
        assert!(e.contains("text/html") && e.contains("application/json"));
        assert!(check_status("Ready").is_ok());
        assert!(check_status("Done").is_err());
    }
}
