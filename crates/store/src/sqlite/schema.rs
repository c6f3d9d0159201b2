//! Versioned migrations of the SQLite database. Version 0 is an empty file; each entry of
//! [`MIGRATIONS`] moves the schema one version up. A database newer than the binary is refused.

use crate::StoreError;
use sqlx::{Connection, SqliteConnection};

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    branch TEXT,
    subject_branch TEXT,
    account_id TEXT,
    occurred_at INTEGER NOT NULL,
    level INTEGER NOT NULL,
    parent_id TEXT,
    has_children INTEGER NOT NULL DEFAULT 0,
    primary_node_id TEXT,
    primary_node_kind TEXT,
    related_nodes TEXT NOT NULL,
    data TEXT NOT NULL,
    context TEXT NOT NULL
);
CREATE INDEX events_name ON events (name);
CREATE INDEX events_branch ON events (branch);
CREATE INDEX events_primary ON events (primary_node_id);
CREATE INDEX events_parent ON events (parent_id);
CREATE INDEX events_time ON events (occurred_at);
CREATE INDEX events_account ON events (account_id);
CREATE TABLE event_related (
    node_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (node_id, position)
) WITHOUT ROWID;
CREATE TABLE branches (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    origin_branch TEXT NOT NULL,
    branched_from INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    sync_with_git INTEGER NOT NULL,
    is_default INTEGER NOT NULL,
    has_schema_changes INTEGER NOT NULL,
    graph_version INTEGER NOT NULL
);
CREATE TABLE saved_queries (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    query TEXT NOT NULL,
    description TEXT
);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);
"#,
    r#"
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, name)
);
"#,
    r#"
CREATE TABLE revoked_sessions (
    session_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_sessions_expiry ON revoked_sessions (expires_at);
"#,
];

/// The schema version this binary writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`CURRENT_VERSION`], one transaction per migration.
pub(crate) async fn migrate(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let found: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    if found > CURRENT_VERSION {
        return Err(StoreError::TooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            version + 1
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = version + 1, "applied store migration");
    }
    Ok(())
}
