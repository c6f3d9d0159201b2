//! Pruning the log (retention) in PostgreSQL, one chunk per transaction on a pooled
//! connection, so commits of every instance go on between chunks.
//!
//! Instances pruning at the same moment take turns (a transaction-scoped advisory lock), and
//! each chunk re-reads where the log starts, so a prefix is removed once. Where the log starts
//! is kept in `meta` (`log_pruned_through`, `log_newest_pruned_id`, as the embedded store
//! does), written in the chunk's transaction. Positions are numbered from `log_head`, which
//! pruning never touches, so they are never reused.

use super::rows::micros;
use crate::{LogStart, PruneOutcome, PrunePolicy, StoreError};
use infrastream_core::Position;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Connection, Row};
use uuid::Uuid;

/// Metadata key of [`LogStart::pruned_through`].
const PRUNED_THROUGH_KEY: &str = "log_pruned_through";
/// Metadata key of [`LogStart::newest_pruned_id`].
const NEWEST_PRUNED_ID_KEY: &str = "log_newest_pruned_id";
/// Advisory lock key (one `bigint`) that serializes prunes across instances.
const PRUNE_LOCK: i64 = 0x696e_6673_7072_756e; // "infsprun"
/// Events removed per transaction.
const CHUNK: u64 = 10_000;

/// Reads where the log starts from `meta`.
pub(super) async fn load_log_start(
    conn: impl sqlx::PgExecutor<'_>,
) -> Result<LogStart, StoreError> {
    let rows = sqlx::query("SELECT key, value FROM meta WHERE key IN ($1, $2)")
        .bind(PRUNED_THROUGH_KEY)
        .bind(NEWEST_PRUNED_ID_KEY)
        .fetch_all(conn)
        .await?;
    let mut start = LogStart::default();
    for row in rows {
        let key: String = row.try_get("key")?;
        let value: String = row.try_get("value")?;
        let bad = |e: &dyn std::fmt::Display| {
            StoreError::backend(format!("bad metadata {key} = {value:?}: {e}"))
        };
        if key == PRUNED_THROUGH_KEY {
            start.pruned_through = Position(value.parse().map_err(|e| bad(&e))?);
        } else {
            start.newest_pruned_id = Some(Uuid::parse_str(&value).map_err(|e| bad(&e))?);
        }
    }
    Ok(start)
}

/// Prunes per `policy`, chunk by chunk, until nothing more goes.
pub(super) async fn prune(pool: &PgPool, policy: PrunePolicy) -> Result<PruneOutcome, StoreError> {
    let mut removed = 0;
    loop {
        let mut conn = pool.acquire().await?;
        let (chunk, start) = prune_chunk(&mut conn, &policy).await?;
        removed += chunk;
        if chunk < CHUNK {
            return Ok(PruneOutcome {
                removed,
                log_start: start,
            });
        }
    }
}

/// One chunk: removes at most [`CHUNK`] events; returns how many and where the log starts.
async fn prune_chunk(
    conn: &mut PgConnection,
    policy: &PrunePolicy,
) -> Result<(u64, LogStart), StoreError> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PRUNE_LOCK)
        .execute(&mut *tx)
        .await?;
    let start = load_log_start(&mut *tx).await?;
    // The committed head: every position up to it is committed (or pruned).
    let head: i64 = sqlx::query_scalar("SELECT position FROM log_head")
        .fetch_optional(&mut *tx)
        .await?
        .unwrap_or(0);
    let head = head.max(0) as u64;
    let lo = start.pruned_through.0;
    let Some(hi) = policy.chunk_end(lo, head, CHUNK) else {
        return Ok((0, start));
    };
    let first_younger = match policy.occurred_before {
        None => None,
        Some(cutoff) => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(position) FROM events \
             WHERE position > $1 AND position <= $2 AND occurred_at >= $3",
        )
        .bind(lo as i64)
        .bind(hi as i64)
        .bind(micros(&cutoff))
        .fetch_one(&mut *tx)
        .await?
        .map(|p| p as u64),
    };
    let through = policy.prune_through(lo, hi, head, first_younger);
    if through <= lo {
        return Ok((0, start));
    }
    let (lo_i, through_i) = (lo as i64, through as i64);
    let newest: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM events WHERE position > $1 AND position <= $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(lo_i)
    .bind(through_i)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM event_related WHERE position > $1 AND position <= $2")
        .bind(lo_i)
        .bind(through_i)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM events WHERE position > $1 AND position <= $2")
        .bind(lo_i)
        .bind(through_i)
        .execute(&mut *tx)
        .await?;
    let newest = newest.max(start.newest_pruned_id);
    let mut set = vec![(PRUNED_THROUGH_KEY, through.to_string())];
    if let Some(id) = newest {
        set.push((NEWEST_PRUNED_ID_KEY, id.to_string()));
    }
    for (key, value) in set {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    // Positions are gap-free from the log's start: the range held exactly these events.
    Ok((
        through - lo,
        LogStart {
            pruned_through: Position(through),
            newest_pruned_id: newest,
        },
    ))
}
