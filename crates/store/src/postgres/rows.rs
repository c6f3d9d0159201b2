//! Row ↔ domain type mapping. Timestamps are stored as microseconds since the Unix epoch and
//! JSON as the text that was committed, as in the SQLite backend.

use crate::StoreError;
use chrono::{DateTime, Utc};
use infrastream_core::{
    Account, ApiToken, Branch, BranchStatus, Event, Node, Position, RelatedNode, RevokedSession,
    Role, SavedQuery, Timestamp,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

pub(crate) fn micros(t: &Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> Result<Timestamp, StoreError> {
    DateTime::<Utc>::from_timestamp_micros(v)
        .ok_or_else(|| StoreError::backend(format!("timestamp out of range: {v}")))
}

fn json(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::backend_context("bad json in store", e))
}

/// The columns [`event`] reads, in a `SELECT`.
pub(crate) const EVENT_COLUMNS: &str = "position, id, name, branch, account_id, occurred_at, \
    level, parent_id, has_children, primary_node_id, primary_node_kind, related_nodes, data, context";

pub(crate) fn event(row: &PgRow) -> Result<Event, StoreError> {
    let primary_id: Option<String> = row.try_get("primary_node_id")?;
    let primary_kind: Option<String> = row.try_get("primary_node_kind")?;
    let related: &str = row.try_get("related_nodes")?;
    Ok(Event {
        position: Position(row.try_get::<i64, _>("position")? as u64),
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        branch: row.try_get("branch")?,
        account_id: row.try_get("account_id")?,
        occurred_at: from_micros(row.try_get("occurred_at")?)?,
        level: row.try_get::<i64, _>("level")? as u32,
        parent_id: row.try_get("parent_id")?,
        has_children: row.try_get("has_children")?,
        primary_node: primary_id.map(|id| RelatedNode {
            id,
            kind: primary_kind.unwrap_or_default(),
        }),
        related_nodes: serde_json::from_str::<Vec<RelatedNode>>(related)
            .map_err(|e| StoreError::backend_context("bad related nodes in store", e))?,
        data: json(row.try_get("data")?)?,
        context: json(row.try_get("context")?)?,
    })
}

pub(crate) fn branch(row: &PgRow) -> Result<Branch, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Branch {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        origin_branch: row.try_get("origin_branch")?,
        branched_from: from_micros(row.try_get("branched_from")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        status: BranchStatus::parse(&status)
            .ok_or_else(|| StoreError::backend(format!("bad branch status {status}")))?,
        sync_with_git: row.try_get("sync_with_git")?,
        is_default: row.try_get("is_default")?,
        has_schema_changes: row.try_get("has_schema_changes")?,
        graph_version: row.try_get("graph_version")?,
    })
}

pub(crate) fn saved_query(row: &PgRow) -> Result<SavedQuery, StoreError> {
    Ok(SavedQuery {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        query: row.try_get("query")?,
        description: row.try_get("description")?,
    })
}

pub(crate) fn account(row: &PgRow) -> Result<Account, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::backend(format!("bad role {role}")))?,
        password_hash: row.try_get("password_hash")?,
    })
}

pub(crate) fn token(row: &PgRow) -> Result<ApiToken, StoreError> {
    let expires: Option<i64> = row.try_get("expires_at")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        token_hash: row.try_get("token_hash")?,
        expires_at: expires.map(from_micros).transpose()?,
        revoked: row.try_get("revoked")?,
    })
}

pub(crate) fn node(row: &PgRow) -> Result<Node, StoreError> {
    Ok(Node {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        data: json(row.try_get("data")?)?,
    })
}

pub(crate) fn revoked_session(row: &PgRow) -> Result<RevokedSession, StoreError> {
    Ok(RevokedSession {
        session_id: row.try_get("session_id")?,
        account_id: row.try_get("account_id")?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
    })
}
