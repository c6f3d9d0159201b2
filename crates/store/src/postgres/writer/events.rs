//! Events of a commit: positions, ids, parents, and their rows, inserted with one statement
//! per table whatever their number.

use super::super::rows::micros;
use super::{Cursor, rejected};
use crate::StoreError;
use infrastream_core::{ErrorKind, Event, NewEvent, ParentRef, event::subject_branch, now};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use std::sync::LazyLock;
use uuid::Uuid;

/// Assigns ids, positions, times, levels and `has_children`.
pub(super) async fn build_events(
    conn: &mut PgConnection,
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
                let row = sqlx::query("SELECT level FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                let Some(row) = row else {
                    return Err(rejected(
                        ErrorKind::NotFound,
                        format!("Parent event {id} not found"),
                    ));
                };
                sqlx::query("UPDATE events SET has_children = TRUE WHERE id = $1")
                    .bind(id)
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

/// Every event row of a commit (or a group of commits): one array per column, so the text
/// is the same whatever the number of rows.
const EVENT_ROWS: &str = "INSERT INTO events (position, id, name, branch, subject_branch, \
    account_id, occurred_at, level, parent_id, has_children, primary_node_id, primary_node_kind, \
    related_nodes, data, context) \
    SELECT * FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::int8[], $8::int8[], $9::uuid[], $10::bool[], $11::text[], $12::text[], $13::text[], \
    $14::text[], $15::text[])";

/// The related-node index rows of those events (a node named twice by one event is one row).
const RELATED_ROWS: &str = "INSERT INTO event_related (node_id, position) \
    SELECT * FROM UNNEST($16::text[], $17::int8[]) ON CONFLICT DO NOTHING";

/// Both, in one statement (one round trip).
static INSERT: LazyLock<String> =
    LazyLock::new(|| format!("WITH ev AS ({EVENT_ROWS}) {RELATED_ROWS}"));

/// Both, and the new head written back and announced (`$18` position, `$19` time, `$20`
/// channel): the last statement of a batch before its COMMIT.
static INSERT_AND_ADVANCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH ev AS ({EVENT_ROWS}), rel AS ({RELATED_ROWS}), \
         h AS (UPDATE log_head SET position = $18, last_time = $19 RETURNING position) \
         SELECT pg_notify($20, position::text) FROM h"
    )
});

/// The new head of the log, written with the batch's last rows.
pub(super) struct Advance {
    /// Position of the last event.
    pub(super) position: i64,
    /// Time of the last event, in microseconds.
    pub(super) last_time: Option<i64>,
}

/// Inserts events (and their related-node index rows) in one statement.
pub(super) async fn insert_events(
    conn: &mut PgConnection,
    events: &[&Event],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    bind_rows(sqlx::query(INSERT.as_str()), events)?
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Inserts events (possibly none) and moves the log head to `advance`, notifying the other
/// instances at commit, in one statement.
pub(super) async fn insert_events_and_advance(
    conn: &mut PgConnection,
    events: &[&Event],
    advance: Advance,
) -> Result<(), StoreError> {
    bind_rows(sqlx::query(INSERT_AND_ADVANCE.as_str()), events)?
        .bind(advance.position)
        .bind(advance.last_time)
        .bind(super::CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

type Query = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `$1`–`$17`: the event rows' columns, then the related-node rows'.
fn bind_rows(q: Query, events: &[&Event]) -> Result<Query, StoreError> {
    let mut related = Vec::with_capacity(events.len());
    for e in events {
        related.push(
            serde_json::to_string(&e.related_nodes)
                .map_err(|err| StoreError::backend_context("encoding related nodes", err))?,
        );
    }
    let column = |f: fn(&Event) -> Option<String>| events.iter().map(|e| f(e)).collect::<Vec<_>>();
    let (nodes, positions): (Vec<String>, Vec<i64>) = events
        .iter()
        .flat_map(|e| {
            e.related_nodes
                .iter()
                .map(|n| (n.id.clone(), e.position.0 as i64))
        })
        .unzip();
    Ok(q.bind(
        events
            .iter()
            .map(|e| e.position.0 as i64)
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.id).collect::<Vec<Uuid>>())
    .bind(events.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
    .bind(column(|e| e.branch.clone()))
    .bind(column(|e| {
        subject_branch(&e.name, &e.data).map(str::to_owned)
    }))
    .bind(column(|e| e.account_id.clone()))
    .bind(
        events
            .iter()
            .map(|e| micros(&e.occurred_at))
            .collect::<Vec<_>>(),
    )
    .bind(events.iter().map(|e| e.level as i64).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.parent_id)
            .collect::<Vec<Option<Uuid>>>(),
    )
    .bind(events.iter().map(|e| e.has_children).collect::<Vec<_>>())
    .bind(column(|e| e.primary_node.as_ref().map(|n| n.id.clone())))
    .bind(column(|e| e.primary_node.as_ref().map(|n| n.kind.clone())))
    .bind(related)
    .bind(
        events
            .iter()
            .map(|e| e.data.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.context.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(nodes)
    .bind(positions))
}
