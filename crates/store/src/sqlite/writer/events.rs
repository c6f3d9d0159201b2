//! Events of a commit: positions, ids, parents, and multi-row inserts in fixed chunk sizes.

use super::super::rows::micros;
use super::{Cursor, rejected};
use crate::StoreError;
use infrastream_core::{ErrorKind, Event, NewEvent, ParentRef, event::subject_branch, now};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use std::sync::LazyLock;
use uuid::Uuid;

/// Assigns ids, positions, times, levels and `has_children`.
pub(super) async fn build_events(
    conn: &mut SqliteConnection,
    new: &[NewEvent],
    cursor: &mut Cursor,
) -> Result<Vec<Event>, StoreError> {
    let mut out: Vec<Event> = Vec::with_capacity(new.len());
    let time = match cursor.last_time {
        Some(last) => now().max(last),
        None => now(),
    };
    for (i, n) in new.iter().enumerate() {
        let (parent_id, level) = match &n.parent {
            None => (None, 0),
            Some(ParentRef::InBatch(j)) if *j < i => {
                out[*j].has_children = true;
                (Some(out[*j].id), out[*j].level + 1)
            }
            Some(ParentRef::InBatch(j)) => {
                return Err(StoreError::backend(format!(
                    "event {i} names a later event {j} of its commit as parent"
                )));
            }
            Some(ParentRef::Existing(id)) => {
                let row = sqlx::query("SELECT level FROM events WHERE id = ?")
                    .bind(id.to_string())
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else {
                    return Err(rejected(
                        ErrorKind::NotFound,
                        format!("Parent event {id} not found"),
                    ));
                };
                sqlx::query("UPDATE events SET has_children = 1 WHERE id = ?")
                    .bind(id.to_string())
                    .execute(&mut *conn)
                    .await?;
                (Some(*id), row.try_get::<i64, _>("level")? as u32 + 1)
            }
        };
        let mut n = n.clone();
        n.normalize_related();
        out.push(Event {
            position: cursor.next,
            id: Uuid::now_v7(),
            name: n.name,
            branch: n.branch,
            account_id: n.account_id,
            occurred_at: time,
            level,
            parent_id,
            has_children: false,
            primary_node: n.primary_node,
            related_nodes: n.related_nodes,
            data: n.data,
            context: n.context,
        });
        cursor.next = cursor.next.next();
    }
    if !out.is_empty() {
        cursor.last_time = Some(time);
    }
    Ok(out)
}

/// Rows per multi-row INSERT, largest first; a run of n rows is written as full chunks of the
/// largest size followed by the binary decomposition of the rest, so only these few statement
/// texts exist and all stay in the prepared-statement cache.
pub(super) const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

const EVENT_COLUMNS: &str = "position, id, name, branch, subject_branch, account_id, \
    occurred_at, level, parent_id, has_children, primary_node_id, primary_node_kind, \
    related_nodes, data, context";
const EVENT_PARAMS: usize = 15;

/// `INSERT INTO events … VALUES (…), (…)` for each size of [`CHUNKS`], in that order.
static INSERT_EVENTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS
        .iter()
        .map(|&n| {
            let row = format!("({})", vec!["?"; EVENT_PARAMS].join(", "));
            format!(
                "INSERT INTO events ({EVENT_COLUMNS}) VALUES {}",
                vec![row; n].join(", ")
            )
        })
        .collect()
});

/// `INSERT OR IGNORE INTO event_related … VALUES (?, ?), …` for each size of [`CHUNKS`].
static INSERT_RELATED: LazyLock<Vec<String>> = LazyLock::new(|| {
    CHUNKS
        .iter()
        .map(|&n| {
            format!(
                "INSERT OR IGNORE INTO event_related (node_id, position) VALUES {}",
                vec!["(?, ?)"; n].join(", ")
            )
        })
        .collect()
});

/// Splits `rows` into chunks of the sizes in [`CHUNKS`]; yields (index into CHUNKS, chunk).
pub(super) fn chunked<T>(mut rows: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    std::iter::from_fn(move || {
        let k = CHUNKS.iter().position(|&n| n <= rows.len())?;
        let (chunk, rest) = rows.split_at(CHUNKS[k]);
        rows = rest;
        Some((k, chunk))
    })
}

/// Inserts events (and their related-node index rows) with multi-row INSERTs.
pub(super) async fn insert_events(
    conn: &mut SqliteConnection,
    events: &[&Event],
) -> Result<(), StoreError> {
    for (k, chunk) in chunked(events) {
        let mut q = sqlx::query(INSERT_EVENTS[k].as_str());
        for e in chunk {
            let related = serde_json::to_string(&e.related_nodes)
                .map_err(|err| StoreError::backend_context("encoding related nodes", err))?;
            q = q
                .bind(e.position.0 as i64)
                .bind(e.id.to_string())
                .bind(e.name.as_str())
                .bind(e.branch.as_deref())
                .bind(subject_branch(&e.name, &e.data))
                .bind(e.account_id.as_deref())
                .bind(micros(&e.occurred_at))
                .bind(e.level as i64)
                .bind(e.parent_id.map(|p| p.to_string()))
                .bind(e.has_children)
                .bind(e.primary_node.as_ref().map(|n| n.id.as_str()))
                .bind(e.primary_node.as_ref().map(|n| n.kind.as_str()))
                .bind(related)
                .bind(e.data.to_string())
                .bind(e.context.to_string());
        }
        q.execute(&mut *conn).await?;
    }
    let related: Vec<(&str, i64)> = events
        .iter()
        .flat_map(|e| {
            e.related_nodes
                .iter()
                .map(|n| (n.id.as_str(), e.position.0 as i64))
        })
        .collect();
    for (k, chunk) in chunked(&related) {
        let mut q = sqlx::query(INSERT_RELATED[k].as_str());
        for &(node, position) in chunk {
            q = q.bind(node).bind(position);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
