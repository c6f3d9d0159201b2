//! Pruning the log, one chunk per transaction: the writer runs a chunk between two batches of
//! commits, so a long prune never holds commits back for more than one chunk.
//!
//! Where the log starts is kept in `meta` (`log_pruned_through`, `log_newest_pruned_id`),
//! written in the chunk's transaction: after a restart, positions continue after the last
//! pruned one even when every event was pruned, and pruned ids are still recognised.

use super::super::rows::micros;
use super::begin;
use crate::{LogStart, PrunePolicy, StoreError};
use infrastream_core::Position;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use uuid::Uuid;

/// Metadata key of [`LogStart::pruned_through`].
pub(crate) const PRUNED_THROUGH_KEY: &str = "log_pruned_through";
/// Metadata key of [`LogStart::newest_pruned_id`].
pub(crate) const NEWEST_PRUNED_ID_KEY: &str = "log_newest_pruned_id";

/// What one chunk did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PruneChunk {
    /// Events removed by the chunk.
    pub(crate) removed: u64,
    /// The chunk was full: more may be prunable.
    pub(crate) more: bool,
    /// Where the log starts after it.
    pub(crate) log_start: LogStart,
}

/// Reads where the log starts from `meta`.
pub(crate) async fn load_log_start(conn: &mut SqliteConnection) -> Result<LogStart, StoreError> {
    let rows = sqlx::query("SELECT key, value FROM meta WHERE key IN (?, ?)")
        .bind(PRUNED_THROUGH_KEY)
        .bind(NEWEST_PRUNED_ID_KEY)
        .fetch_all(&mut *conn)
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

/// Prunes at most `max_rows` events after `start.pruned_through`, per `policy`, with `head`
/// the last committed position; on success `start` is the new start.
pub(super) async fn prune_chunk(
    conn: &mut SqliteConnection,
    policy: &PrunePolicy,
    head: Position,
    max_rows: u64,
    start: &mut LogStart,
) -> Result<PruneChunk, StoreError> {
    let unchanged = |start: &LogStart| PruneChunk {
        removed: 0,
        more: false,
        log_start: *start,
    };
    let lo = start.pruned_through;
    let Some(hi) = policy.chunk_end(lo.0, head.0, max_rows) else {
        return Ok(unchanged(start));
    };
    let first_younger = match policy.occurred_before {
        None => None,
        Some(cutoff) => sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(position) FROM events \
             WHERE position > ? AND position <= ? AND occurred_at >= ?",
        )
        .bind(lo.0 as i64)
        .bind(hi as i64)
        .bind(micros(&cutoff))
        .fetch_one(&mut *conn)
        .await?
        .map(|p| p as u64),
    };
    let through = policy.prune_through(lo.0, hi, head.0, first_younger);
    if through <= lo.0 {
        return Ok(unchanged(start));
    }
    let result: Result<Option<Uuid>, StoreError> = async {
        begin(conn).await?;
        let (lo, through) = (lo.0 as i64, through as i64);
        let newest: Option<String> =
            sqlx::query_scalar("SELECT MAX(id) FROM events WHERE position > ? AND position <= ?")
                .bind(lo)
                .bind(through)
                .fetch_one(&mut *conn)
                .await?;
        let newest = newest
            .map(|id| Uuid::parse_str(&id))
            .transpose()
            .map_err(|e| StoreError::backend_context("bad event id in store", e))?;
        // The related-node index has no index on position: its rows are found from the
        // pruned events' own lists, by primary key.
        sqlx::query(
            "DELETE FROM event_related WHERE (node_id, position) IN (\
               SELECT json_extract(r.value, '$.id'), e.position \
               FROM events e, json_each(e.related_nodes) r \
               WHERE e.position > ? AND e.position <= ?)",
        )
        .bind(lo)
        .bind(through)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM events WHERE position > ? AND position <= ?")
            .bind(lo)
            .bind(through)
            .execute(&mut *conn)
            .await?;
        let newest = newest.max(start.newest_pruned_id);
        let mut set = vec![(PRUNED_THROUGH_KEY, through.to_string())];
        if let Some(id) = newest {
            set.push((NEWEST_PRUNED_ID_KEY, id.to_string()));
        }
        for (key, value) in set {
            sqlx::query(
                "INSERT INTO meta (key, value) VALUES (?, ?) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok(newest)
    }
    .await;
    match result {
        Ok(newest) => {
            *start = LogStart {
                pruned_through: Position(through),
                newest_pruned_id: newest,
            };
            Ok(PruneChunk {
                removed: through - lo.0,
                more: through - lo.0 == max_rows.max(1),
                log_start: *start,
            })
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}
