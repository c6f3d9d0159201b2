//! Versioned migrations of the PostgreSQL database. Applied versions are rows of
//! `schema_migrations`; each entry of [`MIGRATIONS`] moves the schema one version up, in its
//! own transaction holding a transaction-scoped advisory lock, so that several instances
//! starting together apply each migration once (the others wait, then find it applied). A
//! database newer than the binary is refused.
//!
//! The tables mirror the SQLite backend's: timestamps are microseconds since the Unix epoch
//! (`BIGINT`, the same range and comparisons as SQLite's), JSON is kept as the text that was
//! committed (`TEXT`: `jsonb` would reorder the keys, and events are shown with their keys in
//! the order they were written), and names that are listed in order are `COLLATE "C"`, so
//! they sort by bytes as SQLite's do, whatever the database's locale. `log_head` is the one
//! row every writer locks to number events (see `writer`).

use crate::StoreError;
use sqlx::{Connection, PgConnection};

/// Key of the advisory lock taken by migrations (any constant: it only has to be the same
/// for every instance).
const MIGRATION_LOCK: i64 = 0x696e_6672_6173_7472; // "infrastr"

/// Migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Readiness probes rewrite a row of `ready_probe_bytes` repeated text: stored out of line and
-- uncompressed, so a probe really needs that much room.
ALTER TABLE meta ALTER COLUMN value SET STORAGE EXTERNAL;
CREATE TABLE log_head (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    position BIGINT NOT NULL,
    last_time BIGINT
);
INSERT INTO log_head (position) VALUES (0);
CREATE TABLE events (
    position BIGINT PRIMARY KEY,
    id UUID NOT NULL UNIQUE,
    name TEXT COLLATE "C" NOT NULL,
    branch TEXT,
    subject_branch TEXT,
    account_id TEXT,
    occurred_at BIGINT NOT NULL,
    level BIGINT NOT NULL,
    parent_id UUID,
    has_children BOOLEAN NOT NULL DEFAULT FALSE,
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
    position BIGINT NOT NULL,
    PRIMARY KEY (node_id, position)
);
CREATE TABLE branches (
    id TEXT PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    description TEXT,
    origin_branch TEXT NOT NULL,
    branched_from BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    sync_with_git BOOLEAN NOT NULL,
    is_default BOOLEAN NOT NULL,
    has_schema_changes BOOLEAN NOT NULL,
    graph_version BIGINT NOT NULL
);
CREATE TABLE saved_queries (
    id TEXT PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    query TEXT NOT NULL,
    description TEXT
);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL
);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at BIGINT,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE TABLE revoked_sessions (
    session_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_sessions_expiry ON revoked_sessions (expires_at);
"#,
    r#"
-- 2: retention deletes the related-node rows of a range of positions.
CREATE INDEX event_related_position ON event_related (position);
"#,
];

/// The schema version this binary writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`CURRENT_VERSION`], one transaction per migration, each under the
/// migration lock; refuses a database whose version is newer.
pub(crate) async fn migrate(conn: &mut PgConnection) -> Result<(), StoreError> {
    loop {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        // Checked rather than `CREATE TABLE IF NOT EXISTS`, which logs a notice on every start.
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
                .fetch_one(&mut *tx)
                .await?;
        if !exists {
            sqlx::raw_sql(
                "CREATE TABLE schema_migrations (\
                     version BIGINT PRIMARY KEY, \
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .execute(&mut *tx)
            .await?;
        }
        let found: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                .fetch_one(&mut *tx)
                .await?;
        if found > CURRENT_VERSION {
            return Err(StoreError::TooNew {
                found,
                supported: CURRENT_VERSION,
            });
        }
        if found == CURRENT_VERSION {
            tx.commit().await?;
            return Ok(());
        }
        // `MIGRATIONS` are constants of this file.
        sqlx::raw_sql(MIGRATIONS[found as usize])
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
            .bind(found + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = found + 1, "applied store migration");
    }
}
