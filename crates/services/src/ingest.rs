//! Companion mode: the webhooks a real Infrahub sends (`CoreStandardWebhook`), taken in as
//! events of the log (`POST /api/ingest/infrahub`, see docs/companion.md).
//!
//! The request's signature is checked first, by
//! [`crate::webhooks::signing::verify_infrahub`] (Infrahub's raw-key HMAC-SHA256 of
//! `<webhook-id>.<webhook-timestamp>.<body>`, a 5-minute window). Then, here:
//!
//! - [`map`] (pure): Infrahub's body (`{"data", "id", "branch", "account_id", "occured_at",
//!   "event"}`) to the event infrastream itself commits for that change — same name, branch,
//!   account, primary and related nodes, `data` in infrastream's shape — with
//!   `context.origin = {"source": "infrahub", "event_id", "occured_at"}`.
//! - [`ingest`]: commits it once per Infrahub event id: a durable marker
//!   (`ingest.infrahub.<id>` in the metadata) goes in the same commit as the event, and the
//!   requests of one id are serialized by [`crate::Locks`] (database-level on a shared
//!   PostgreSQL), so a replay — or two identical requests at once — stores one event.

use crate::Services;
use infrastream_core::error::DomainError;
use infrastream_core::{
    Error, ErrorKind, EventFilter, EventName, NewEvent, RelatedNode, SortOrder,
};
use infrastream_store::{Change, Commit};
use serde_json::{Map, Value, json};

/// Metadata key prefix of the markers of ingested Infrahub events.
pub const MARKER_PREFIX: &str = "ingest.infrahub.";
/// Marker value between the event's commit and the recording of its id.
const PENDING: &str = "pending";
/// Longest Infrahub event id accepted.
const MAX_ID_LEN: usize = 255;
/// Kind of a branch as a primary node (as in [`crate::branches`]).
const BRANCH_KIND: &str = crate::branches::BRANCH_KIND;
const ARTIFACT_KIND: &str = "CoreArtifact";
const PROPOSED_CHANGE_KIND: &str = "CoreProposedChange";
/// Branch of node, artifact and group events Infrahub sends without one (its global branch).
const DEFAULT_BRANCH: &str = "main";

// ---------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------

/// An Infrahub event ready to commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Infrahub's id of the event (the body's `id`), the deduplication key.
    pub infrahub_id: String,
    /// The event infrastream commits.
    pub event: NewEvent,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// Reads the fields of one JSON object, naming the path of the missing or mistyped one.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    fn of(value: &'a Value, path: &'a str) -> Result<Self, Error> {
        value
            .as_object()
            .map(|obj| Self { obj, path })
            .ok_or_else(|| invalid(format!("The field '{path}' must be a JSON object")))
    }

    fn name(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// A required, non-empty string.
    fn text(&self, key: &str) -> Result<String, Error> {
        match self.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(invalid(format!(
                "The field '{}' must not be empty",
                self.name(key)
            ))),
            Some(_) => Err(invalid(format!(
                "The field '{}' must be a string",
                self.name(key)
            ))),
            None => Err(invalid(format!(
                "The field '{}' is required",
                self.name(key)
            ))),
        }
    }

    /// An optional string (absent or null: `None`).
    fn opt_text(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!(
                "The field '{}' must be a string or null",
                self.name(key)
            ))),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(invalid(format!(
                "The field '{}' must be a boolean",
                self.name(key)
            ))),
        }
    }

    fn required(&self, key: &str) -> Result<&'a Value, Error> {
        self.obj
            .get(key)
            .ok_or_else(|| invalid(format!("The field '{}' is required", self.name(key))))
    }
}

/// Infrahub's body mapped to the event infrastream commits for the same change. Refused
/// (`InvalidInput`, the message naming the field) when a field is missing or mistyped, or the
/// event type is one infrastream shows with a typed shape it does not take from Infrahub
/// (`infrahub.repository.…`, `infrahub.account.…`). Any other `infrahub.…` type infrastream
/// does not model itself is stored as is (`StandardEvent`: Infrahub's `data` unchanged, the
/// primary node from `data.node_id` and `data.kind` when both are strings).
pub fn map(body: &Value) -> Result<Ingested, Error> {
    let top = Fields::of(body, "")
        .map_err(|_| invalid("The request body must be a JSON object (Infrahub's webhook body)"))?;
    let infrahub_id = top.text("id")?;
    if infrahub_id.len() > MAX_ID_LEN || infrahub_id.chars().any(char::is_control) {
        return Err(invalid(format!(
            "The field 'id' must be at most {MAX_ID_LEN} printable characters"
        )));
    }
    let name = top.text("event")?;
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(invalid(
            "The field 'event' must be at most 255 printable characters",
        ));
    }
    if !name.starts_with(EventName::RESERVED_PREFIX) {
        return Err(invalid(format!(
            "The field 'event' must be an Infrahub event type (infrahub.…), got '{name}'"
        )));
    }
    let occured_at = top.text("occured_at")?;
    let branch = top.opt_text("branch")?;
    let account_id = top.opt_text("account_id")?;
    let data_value = top.required("data")?;
    let data = Fields::of(data_value, "data")?;

    let mut event = match name.as_str() {
        EventName::NODE_CREATED | EventName::NODE_UPDATED | EventName::NODE_DELETED => {
            node_event(&name, &data, branch.as_deref())?
        }
        EventName::BRANCH_CREATED
        | EventName::BRANCH_DELETED
        | EventName::BRANCH_MERGED
        | EventName::BRANCH_REBASED => branch_event(&name, &data)?,
        EventName::ARTIFACT_CREATED | EventName::ARTIFACT_UPDATED => {
            artifact_event(&name, &data, branch.as_deref())?
        }
        EventName::GROUP_MEMBER_ADDED | EventName::GROUP_MEMBER_REMOVED => {
            group_event(&name, &data, branch.as_deref())?
        }
        other if EventName::graphql_type(other) == "StandardEvent" => {
            let mut e = NewEvent::new(other);
            e.branch = branch.clone();
            if let (Some(Value::String(id)), Some(Value::String(kind))) =
                (data.get("node_id"), data.get("kind"))
            {
                e.primary_node = Some(RelatedNode {
                    id: id.clone(),
                    kind: kind.clone(),
                });
            }
            e.data = data_value.clone();
            e
        }
        other => {
            return Err(invalid(format!(
                "The event type '{other}' is not taken from Infrahub (infrastream records it itself)"
            )));
        }
    };
    event.account_id = account_id.clone();
    event.context = json!({
        "account_id": account_id,
        "branch": branch.clone().or_else(|| event.branch.clone()),
        "origin": {"source": "infrahub", "event_id": infrahub_id, "occured_at": occured_at},
    });
    event.normalize_related();
    Ok(Ingested { infrahub_id, event })
}

/// A node of a `{"id", "kind"}` list (group members, ancestors).
fn id_kind_list(data: &Fields<'_>, key: &str) -> Result<Vec<RelatedNode>, Error> {
    let Some(v) = data.get(key) else {
        return Ok(Vec::new());
    };
    let items = v.as_array().ok_or_else(|| {
        invalid(format!(
            "The field '{}' must be a list of {{id, kind}}",
            data.name(key)
        ))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{}[{i}]", data.name(key));
            let f = Fields::of(item, &path)?;
            Ok(RelatedNode {
                id: f.text("id")?,
                kind: f.text("kind")?,
            })
        })
        .collect()
}

fn nodes_json(list: &[RelatedNode]) -> Value {
    list.iter()
        .map(|n| json!({"id": n.id, "kind": n.kind}))
        .collect()
}

/// An attribute value as infrastream's node events carry it: text, or null.
fn value_text(v: Option<&Value>) -> Value {
    match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => json!(s),
        Some(other) => json!(other.to_string()),
    }
}

/// Entries of a changelog map (`{name: entry}`) or list, each with its name.
fn changelog_entries<'a>(
    changelog: &Fields<'a>,
    key: &str,
) -> Result<Vec<(String, &'a Value)>, Error> {
    match changelog.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Object(m)) => Ok(m.iter().map(|(k, v)| (k.clone(), v)).collect()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|v| {
                let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
                (name.to_owned(), v)
            })
            .collect()),
        Some(_) => Err(invalid(format!(
            "The field '{}' must be a JSON object",
            changelog.name(key)
        ))),
    }
}

/// `infrahub.node.*`: Infrahub's `{kind, node_id, action, changelog: {display_label, hfid,
/// attributes: {name: {value, value_previous, kind, value_update_status}}, relationships:
/// {name: {peer_id, peer_kind, peer_id_previous, peer_kind_previous} | {peers: [{peer_id,
/// peer_kind, peer_status}]}}}, fields}` to infrastream's `{node_id, kind, action,
/// display_label, human_friendly_id, attributes: [...], relationships: [...]}`.
fn node_event(name: &str, data: &Fields<'_>, branch: Option<&str>) -> Result<NewEvent, Error> {
    let node_id = data.text("node_id")?;
    let kind = data.text("kind")?;
    let action = match data.opt_text("action")? {
        Some(a) => a,
        None => name.rsplit('.').next().unwrap_or_default().to_owned(),
    };
    let empty = Value::Object(Map::new());
    let changelog_value = data.get("changelog").unwrap_or(&empty);
    let changelog = Fields::of(changelog_value, "data.changelog")?;
    let mut attributes = Vec::new();
    for (attr_name, attr) in changelog_entries(&changelog, "attributes")? {
        let path = format!("data.changelog.attributes.{attr_name}");
        let a = Fields::of(attr, &path)?;
        let attr_name = a.opt_text("name")?.unwrap_or(attr_name);
        let (value, previous) = (a.get("value"), a.get("value_previous"));
        let diff = match a.opt_text("value_update_status")? {
            Some(s) => s.to_ascii_lowercase(),
            None => match (previous, value) {
                (None, Some(_)) => "added".into(),
                (Some(_), None) => "removed".into(),
                (Some(p), Some(v)) if p != v => "updated".into(),
                _ => "unchanged".into(),
            },
        };
        attributes.push(json!({
            "name": attr_name,
            "kind": a.get("kind").cloned().unwrap_or(Value::Null),
            "action": diff,
            "value": value_text(value),
            "value_previous": value_text(previous),
        }));
    }
    let mut relationships = Vec::new();
    let mut related = Vec::new();
    for (rel_name, rel) in changelog_entries(&changelog, "relationships")? {
        let path = format!("data.changelog.relationships.{rel_name}");
        let r = Fields::of(rel, &path)?;
        let rel_name = r.opt_text("name")?.unwrap_or(rel_name);
        let mut added = Vec::new();
        let mut removed = Vec::new();
        if let Some(peers) = r.get("peers") {
            let peers = peers.as_array().ok_or_else(|| {
                invalid(format!("The field '{}' must be a list", r.name("peers")))
            })?;
            for (i, peer) in peers.iter().enumerate() {
                let p_path = format!("{path}.peers[{i}]");
                let p = Fields::of(peer, &p_path)?;
                let node = RelatedNode {
                    id: p.text("peer_id")?,
                    kind: p.text("peer_kind")?,
                };
                match p.opt_text("peer_status")?.as_deref() {
                    Some("added") => added.push(node.clone()),
                    Some("removed") => removed.push(node.clone()),
                    _ => {}
                }
                related.push(node);
            }
        } else {
            let current = r.opt_text("peer_id")?;
            let previous = r.opt_text("peer_id_previous")?;
            let node =
                |id: &Option<String>, kind_key: &str| -> Result<Option<RelatedNode>, Error> {
                    match id {
                        Some(id) if !id.is_empty() => Ok(Some(RelatedNode {
                            id: id.clone(),
                            kind: r.opt_text(kind_key)?.unwrap_or_default(),
                        })),
                        _ => Ok(None),
                    }
                };
            let (cur, prev) = (
                node(&current, "peer_kind")?,
                node(&previous, "peer_kind_previous")?,
            );
            if current != previous {
                added.extend(cur.clone());
                removed.extend(prev.clone());
            }
            related.extend(prev);
            related.extend(cur);
        }
        for (list, verb) in [(added, "added"), (removed, "removed")] {
            for n in list {
                relationships.push(
                    json!({"name": rel_name, "action": verb, "peer": {"id": n.id, "kind": n.kind}}),
                );
            }
        }
    }
    let hfid = match changelog.get("hfid") {
        Some(Value::Array(parts)) if !parts.is_empty() => Value::Array(parts.clone()),
        _ => Value::Null,
    };
    let mut e = NewEvent::new(name);
    e.branch = Some(branch.unwrap_or(DEFAULT_BRANCH).to_owned());
    e.primary_node = Some(RelatedNode {
        id: node_id.clone(),
        kind: kind.clone(),
    });
    e.related_nodes = related;
    e.data = json!({
        "node_id": node_id,
        "kind": kind,
        "action": action,
        "display_label": changelog.opt_text("display_label")?,
        "human_friendly_id": hfid,
        "attributes": attributes,
        "relationships": relationships,
    });
    Ok(e)
}

/// `infrahub.branch.*`: Infrahub's `{branch_name, branch_id, sync_with_git,
/// proposed_change_id}` to infrastream's (`created_branch`, `deleted_branch`,
/// `source_branch` or `rebased_branch`, with `branch_id`); global events but for a rebase,
/// which occurs on the rebased branch, as infrastream's own.
fn branch_event(name: &str, data: &Fields<'_>) -> Result<NewEvent, Error> {
    let branch_name = data.text("branch_name")?;
    let branch_id = data.text("branch_id")?;
    let mut e = NewEvent::new(name);
    e.primary_node = Some(RelatedNode {
        id: branch_id.clone(),
        kind: BRANCH_KIND.into(),
    });
    e.data = match name {
        EventName::BRANCH_CREATED => json!({
            "created_branch": branch_name,
            "branch_id": branch_id,
            "sync_with_git": data.opt_bool("sync_with_git")?.unwrap_or(false),
        }),
        EventName::BRANCH_DELETED => json!({
            "deleted_branch": branch_name,
            "branch_id": branch_id,
            "proposed_change_id": data.opt_text("proposed_change_id")?,
        }),
        EventName::BRANCH_MERGED => {
            if let Some(pc) = data.opt_text("proposed_change_id")? {
                e.related_nodes.push(RelatedNode {
                    id: pc,
                    kind: PROPOSED_CHANGE_KIND.into(),
                });
            }
            json!({"source_branch": branch_name, "branch_id": branch_id})
        }
        _ => {
            e.branch = Some(branch_name.clone());
            json!({"rebased_branch": branch_name, "branch_id": branch_id})
        }
    };
    Ok(e)
}

/// `infrahub.artifact.*`: Infrahub's `{node_id, artifact_definition_id, target_id,
/// target_kind, checksum, checksum_previous, storage_id, storage_id_previous}`.
fn artifact_event(name: &str, data: &Fields<'_>, branch: Option<&str>) -> Result<NewEvent, Error> {
    let node_id = data.text("node_id")?;
    let target = RelatedNode {
        id: data.text("target_id")?,
        kind: data.text("target_kind")?,
    };
    let mut e = NewEvent::new(name);
    e.branch = Some(branch.unwrap_or(DEFAULT_BRANCH).to_owned());
    e.primary_node = Some(RelatedNode {
        id: node_id,
        kind: ARTIFACT_KIND.into(),
    });
    e.data = json!({
        "artifact_definition_id": data.text("artifact_definition_id")?,
        "checksum": data.text("checksum")?,
        "checksum_previous": data.opt_text("checksum_previous")?,
        "storage_id": data.text("storage_id")?,
        "storage_id_previous": data.opt_text("storage_id_previous")?,
        "target_id": target.id,
        "target_kind": target.kind,
    });
    e.related_nodes = vec![target];
    Ok(e)
}

/// `infrahub.group.*`: Infrahub's `{kind, node_id, action, members: [{id, kind}],
/// ancestors: [{id, kind}]}`.
fn group_event(name: &str, data: &Fields<'_>, branch: Option<&str>) -> Result<NewEvent, Error> {
    let node_id = data.text("node_id")?;
    let kind = data.text("kind")?;
    let members = id_kind_list(data, "members")?;
    let ancestors = id_kind_list(data, "ancestors")?;
    let mut e = NewEvent::new(name);
    e.branch = Some(branch.unwrap_or(DEFAULT_BRANCH).to_owned());
    e.primary_node = Some(RelatedNode {
        id: node_id.clone(),
        kind: kind.clone(),
    });
    e.data = json!({
        "node_id": node_id,
        "kind": kind,
        "members": nodes_json(&members),
        "ancestors": nodes_json(&ancestors),
    });
    e.related_nodes = members;
    Ok(e)
}

// ---------------------------------------------------------------------------------------
// Commit
// ---------------------------------------------------------------------------------------

/// What [`ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Id of the stored event (`None` only for a replay whose event is no longer in the log).
    pub event_id: Option<String>,
    /// Whether the Infrahub event had been ingested already (nothing was stored now).
    pub duplicate: bool,
}

/// The metadata key marking Infrahub event `infrahub_id` as ingested.
pub fn marker_key(infrahub_id: &str) -> String {
    format!("{MARKER_PREFIX}{infrahub_id}")
}

/// Commits `ingested` unless its Infrahub event was ingested already; returns once the event
/// (and its marker, in the same commit) is durable.
pub async fn ingest(s: &Services, ingested: Ingested) -> Result<Outcome, Error> {
    let key = marker_key(&ingested.infrahub_id);
    // Two requests of one event (Infrahub retries; two webhooks to this server) take turns,
    // so the second sees the first's marker.
    let _turn = s
        .locks
        .lock(&format!("ingest/infrahub/{}", ingested.infrahub_id))
        .await;
    if let Some(value) = s.store.meta(&key).await.map_err(|e| e.user_error())? {
        let event_id = recorded_event(s, &key, &value, &ingested).await?;
        return Ok(Outcome {
            event_id,
            duplicate: true,
        });
    }
    let stored = s
        .store
        .commit(Commit {
            changes: vec![Change::SetMeta {
                key: key.clone(),
                value: PENDING.into(),
                only_if_absent: true,
            }],
            events: vec![ingested.event],
        })
        .await
        .map_err(|e| e.user_error())?;
    let event_id = stored.first().map(|e| e.id.to_string());
    if let Some(id) = &event_id {
        // The marker learns the event's id (known only once committed), so that a replay
        // answers without searching; if this fails, a replay searches instead.
        let recorded = s
            .store
            .commit(Commit::change(Change::SetMeta {
                key,
                value: id.clone(),
                only_if_absent: false,
            }))
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, event_id = %id, "could not record the id of an ingested Infrahub event");
        }
    }
    Ok(Outcome {
        event_id,
        duplicate: false,
    })
}

/// The id of the event an earlier ingestion stored: the marker's value, or — when the id was
/// not recorded (`pending`) — the event found by its origin (then recorded).
async fn recorded_event(
    s: &Services,
    key: &str,
    value: &str,
    ingested: &Ingested,
) -> Result<Option<String>, Error> {
    if uuid::Uuid::parse_str(value).is_ok() {
        return Ok(Some(value.to_owned()));
    }
    let filter = EventFilter {
        event_types: vec![ingested.event.name.clone()],
        primary_node_ids: ingested
            .event
            .primary_node
            .iter()
            .map(|n| n.id.clone())
            .collect(),
        ..EventFilter::default()
    };
    const PAGE: u32 = 200;
    for page in 0..10 {
        let found = s
            .store
            .query_events(&filter, SortOrder::Desc, PAGE, page * PAGE)
            .await
            .map_err(|e| e.user_error())?;
        let hit = found.events.iter().find(|e| {
            e.context
                .pointer("/origin/event_id")
                .and_then(Value::as_str)
                == Some(ingested.infrahub_id.as_str())
                && e.context.pointer("/origin/source").and_then(Value::as_str) == Some("infrahub")
        });
        if let Some(e) = hit {
            let id = e.id.to_string();
            let _ = s
                .store
                .commit(Commit::change(Change::SetMeta {
                    key: key.to_owned(),
                    value: id.clone(),
                    only_if_absent: false,
                }))
                .await;
            return Ok(Some(id));
        }
        if found.events.len() < PAGE as usize {
            break;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signatures computed by Python as Infrahub does (`hmac.new(key.encode(),
    /// f"{msg_id}.{ts}.{json.dumps(payload, separators=(",", ":"))}".encode(), sha256)`) and
    /// as Infrahub 1.2.x did (default separators), for the body as its `httpx` sends it
    /// (compact, non-ASCII raw): the shared verifier the endpoint uses accepts both.
    #[test]
    fn python_signatures_verify() {
        use crate::webhooks::signing::verify_infrahub;
        let body = r#"{"data":{"name":"Zürich","n":1.5,"x":1e-05},"id":"e1","event":"infrahub.x"}"#;
        let headers = |sig: &str| {
            [
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", "1700000000"),
                ("webhook-signature", sig),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        };
        let compact = "v1,Vq8pdtUmaQXNKU97QBrc+kpjsNlViEJNen/oDjH1IHI=";
        let spaced = "v1,XUYQcXeUnjMBsBLflNBtGnoTX4LFDJVRhFvGq+2EB9s=";
        for sig in [compact, spaced] {
            assert_eq!(
                verify_infrahub("s3cr3t", &headers(sig), body.as_bytes(), 1_700_000_100),
                Ok(())
            );
        }
        assert!(
            verify_infrahub("other", &headers(compact), body.as_bytes(), 1_700_000_000).is_err()
        );
        assert!(
            verify_infrahub("s3cr3t", &headers(compact), body.as_bytes(), 1_700_000_301).is_err()
        );
    }

    fn body(event: &str, data: Value) -> Value {
        json!({
            "data": data,
            "id": "0b5c4e6a-1f5e-4c61-9c2e-2f0a2f6d4e01",
            "branch": "feature-1",
            "account_id": "18230a3c-0c9e-4b5e-a8e5-c5a4d36ec5f3",
            "occured_at": "2025-06-01T10:00:00.000000+00:00",
            "event": event,
        })
    }

    #[test]
    fn node_update_maps_to_infrastream_shape() {
        let b = body(
            "infrahub.node.updated",
            json!({
                "kind": "InfraDevice", "node_id": "d1", "action": "updated",
                "changelog": {
                    "node_id": "d1", "node_kind": "InfraDevice", "display_label": "edge1", "hfid": ["edge1"],
                    "attributes": {"description": {"name": "description", "value": "new", "value_previous": "old",
                        "properties": {}, "kind": "Text", "value_update_status": "updated"},
                        "mtu": {"name": "mtu", "value": 9000, "value_previous": null, "properties": {}, "kind": "Number", "value_update_status": "added"}},
                    "relationships": {
                        "site": {"name": "site", "peer_id_previous": "s1", "peer_kind_previous": "LocationSite",
                            "peer_id": "s2", "peer_kind": "LocationSite", "properties": {}, "cardinality": "one", "peer_status": "updated"},
                        "tags": {"name": "tags", "peers": [{"peer_id": "t1", "peer_kind": "BuiltinTag", "peer_status": "added", "properties": {}}], "cardinality": "many"}
                    }
                },
                "fields": ["description", "mtu", "site", "tags"]
            }),
        );
        let Ingested { infrahub_id, event } = map(&b).unwrap();
        assert_eq!(infrahub_id, "0b5c4e6a-1f5e-4c61-9c2e-2f0a2f6d4e01");
        assert_eq!(event.name, "infrahub.node.updated");
        assert_eq!(event.branch.as_deref(), Some("feature-1"));
        assert_eq!(
            event.account_id.as_deref(),
            Some("18230a3c-0c9e-4b5e-a8e5-c5a4d36ec5f3")
        );
        assert_eq!(event.primary_node.as_ref().unwrap().id, "d1");
        let ids: Vec<&str> = event.related_nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2", "t1"]);
        assert_eq!(
            event.data,
            json!({
                "node_id": "d1", "kind": "InfraDevice", "action": "updated",
                "display_label": "edge1", "human_friendly_id": ["edge1"],
                "attributes": [
                    {"name": "description", "kind": "Text", "action": "updated", "value": "new", "value_previous": "old"},
                    {"name": "mtu", "kind": "Number", "action": "added", "value": "9000", "value_previous": null}
                ],
                "relationships": [
                    {"name": "site", "action": "added", "peer": {"id": "s2", "kind": "LocationSite"}},
                    {"name": "site", "action": "removed", "peer": {"id": "s1", "kind": "LocationSite"}},
                    {"name": "tags", "action": "added", "peer": {"id": "t1", "kind": "BuiltinTag"}}
                ]
            })
        );
        assert_eq!(
            event.context,
            json!({"account_id": "18230a3c-0c9e-4b5e-a8e5-c5a4d36ec5f3", "branch": "feature-1",
                "origin": {"source": "infrahub", "event_id": "0b5c4e6a-1f5e-4c61-9c2e-2f0a2f6d4e01",
                    "occured_at": "2025-06-01T10:00:00.000000+00:00"}})
        );
    }

    #[test]
    fn branch_events_are_global_but_rebases() {
        let created = map(&body(
            "infrahub.branch.created",
            json!({"branch_name": "feature-1", "branch_id": "b1", "sync_with_git": true}),
        ))
        .unwrap()
        .event;
        assert_eq!(created.branch, None);
        assert_eq!(
            created.data,
            json!({"created_branch": "feature-1", "branch_id": "b1", "sync_with_git": true})
        );
        assert_eq!(created.primary_node.unwrap().kind, "Branch");
        let merged = map(&body(
            "infrahub.branch.merged",
            json!({"branch_name": "feature-1", "branch_id": "b1", "proposed_change_id": "pc1"}),
        ))
        .unwrap()
        .event;
        assert_eq!(
            merged.data,
            json!({"source_branch": "feature-1", "branch_id": "b1"})
        );
        assert_eq!(merged.related_nodes[0].kind, "CoreProposedChange");
        let rebased = map(&body(
            "infrahub.branch.rebased",
            json!({"branch_id": "b1", "branch_name": "feature-1"}),
        ))
        .unwrap()
        .event;
        assert_eq!(rebased.branch.as_deref(), Some("feature-1"));
    }

    #[test]
    fn refusals_name_the_field() {
        let msg = |v: Value| map(&v).unwrap_err().message;
        assert_eq!(
            msg(json!([1])),
            "The request body must be a JSON object (Infrahub's webhook body)"
        );
        let mut b = body("infrahub.node.created", json!({"kind": "K"}));
        assert_eq!(msg(b.clone()), "The field 'data.node_id' is required");
        b["data"] = json!({"kind": "K", "node_id": 3});
        assert_eq!(msg(b.clone()), "The field 'data.node_id' must be a string");
        b.as_object_mut().unwrap().remove("id");
        assert_eq!(msg(b.clone()), "The field 'id' is required");
        let b = body("infrahub.repository.sync_started", json!({}));
        assert!(msg(b).contains("not taken from Infrahub"));
        let b = body("acme.thing", json!({}));
        assert!(msg(b).contains("must be an Infrahub event type"));
        let mut b = body(
            "infrahub.group.member_added",
            json!({"node_id": "g", "kind": "CoreStandardGroup", "members": [{"id": "m"}]}),
        );
        assert_eq!(
            msg(b.clone()),
            "The field 'data.members[0].kind' is required"
        );
        b.as_object_mut().unwrap().remove("occured_at");
        assert_eq!(msg(b), "The field 'occured_at' is required");
    }

    #[test]
    fn other_infrahub_types_are_kept_as_they_are() {
        let data = json!({"proposed_change_id": "pc1", "node_id": "pc1", "kind": "CoreProposedChange", "x": [1]});
        let e = map(&body("infrahub.proposed_change.merged", data.clone()))
            .unwrap()
            .event;
        assert_eq!(e.data, data);
        assert_eq!(e.branch.as_deref(), Some("feature-1"));
        assert_eq!(e.primary_node.unwrap().id, "pc1");
    }
}
