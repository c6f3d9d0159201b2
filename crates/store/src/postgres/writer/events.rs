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

/// The columns of the event rows that the writer computes, as `UNNEST` arguments `$1`–`$13`
/// (position and time follow: from the writer, or from the log head in [`APPEND`]).
const COLUMNS: &str = "id, name, branch, subject_branch, account_id, level, parent_id, \
    has_children, primary_node_id, primary_node_kind, related_nodes, data, context";
const ARRAYS: &str = "$1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], \
    $7::uuid[], $8::bool[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[]";

/// Every event row of a commit (or a group of commits), positions `$14` and times `$15`
/// given: one array per column, so the text is the same whatever the number of rows.
static EVENT_ROWS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events ({COLUMNS}, position, occurred_at) \
         SELECT * FROM UNNEST({ARRAYS}, $14::int8[], $15::int8[])"
    )
});

/// The related-node index rows of those events (a node named twice by one event is one row).
const RELATED_ROWS: &str = "INSERT INTO event_related (node_id, position) \
    SELECT * FROM UNNEST($16::text[], $17::int8[]) ON CONFLICT DO NOTHING";

/// Both, in one statement (one round trip).
static INSERT: LazyLock<String> =
    LazyLock::new(|| format!("WITH ev AS ({}) {RELATED_ROWS}", *EVENT_ROWS));

/// Both, and the new head written back and announced (`$18` position, `$19` time, `$20`
/// channel): the last statement of a batch before its COMMIT.
static INSERT_AND_ADVANCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH ev AS ({}), rel AS ({RELATED_ROWS}), \
         h AS (UPDATE log_head SET position = $18, last_time = $19 RETURNING position) \
         SELECT pg_notify($20, position::text) FROM h",
        *EVENT_ROWS
    )
});

/// A batch of events alone, as one statement that is its own transaction: it moves the log
/// head by the number of events `$16` (taking its lock), numbers the rows after the old head
/// in their order, stamps them with the later of `$17` and the head's last time, writes the
/// related-node rows (`$14` node ids, `$15` the 1-based index of their event), announces the
/// new head on channel `$18`, and returns the old head and the time.
static APPEND: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH h AS (UPDATE log_head SET position = position + $16, \
                    last_time = GREATEST(COALESCE(last_time, $17), $17) \
                RETURNING position - $16 AS base, last_time AS time, position AS head), \
         ev AS (INSERT INTO events ({COLUMNS}, position, occurred_at) \
                SELECT u.id, u.name, u.branch, u.subject_branch, u.account_id, u.level, \
                       u.parent_id, u.has_children, u.primary_node_id, u.primary_node_kind, \
                       u.related_nodes, u.data, u.context, h.base + u.ord, h.time \
                FROM h, UNNEST({ARRAYS}) WITH ORDINALITY \
                     AS u({COLUMNS}, ord)), \
         rel AS (INSERT INTO event_related (node_id, position) \
                 SELECT r.node_id, h.base + r.ord FROM h, \
                        UNNEST($14::text[], $15::int8[]) AS r(node_id, ord) \
                 ON CONFLICT DO NOTHING) \
         SELECT h.base, h.time, pg_notify($18, h.head::text) FROM h"
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

/// Where [`append`] put a batch: the position before its first event, and its time.
pub(super) struct Appended {
    /// The log head before the batch: its `i`-th event (from 0) is at `base + i + 1`.
    pub(super) base: i64,
    /// The time of every event of the batch, in microseconds.
    pub(super) time: i64,
}

/// Appends `events` (their positions and times are ignored) after the log head, in one
/// statement run as its own transaction (see [`APPEND`]); returns where they went. The
/// writer lock on the head is held only while that statement runs and commits.
pub(super) async fn append(
    conn: &mut PgConnection,
    events: &[&Event],
    channel: &str,
) -> Result<Appended, StoreError> {
    let (nodes, index): (Vec<String>, Vec<i64>) = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| {
            e.related_nodes
                .iter()
                .map(move |n| (n.id.clone(), i as i64 + 1))
        })
        .unzip();
    let row = bind_columns(sqlx::query(APPEND.as_str()), events)?
        .bind(nodes)
        .bind(index)
        .bind(events.len() as i64)
        .bind(micros(&now()))
        .bind(channel)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Appended {
        base: row.try_get("base")?,
        time: row.try_get("time")?,
    })
}

type Query = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Binds `$1`–`$17`: the event rows' columns, their positions and times, then the
/// related-node rows'.
fn bind_rows(q: Query, events: &[&Event]) -> Result<Query, StoreError> {
    let (nodes, positions): (Vec<String>, Vec<i64>) = events
        .iter()
        .flat_map(|e| {
            e.related_nodes
                .iter()
                .map(|n| (n.id.clone(), e.position.0 as i64))
        })
        .unzip();
    Ok(bind_columns(q, events)?
        .bind(
            events
                .iter()
                .map(|e| e.position.0 as i64)
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| micros(&e.occurred_at))
                .collect::<Vec<_>>(),
        )
        .bind(nodes)
        .bind(positions))
}

/// Binds `$1`–`$13`: the columns of [`COLUMNS`].
fn bind_columns(q: Query, events: &[&Event]) -> Result<Query, StoreError> {
    let mut related = Vec::with_capacity(events.len());
    for e in events {
        related.push(
            serde_json::to_string(&e.related_nodes)
                .map_err(|err| StoreError::backend_context("encoding related nodes", err))?,
        );
    }
    let column = |f: fn(&Event) -> Option<String>| events.iter().map(|e| f(e)).collect::<Vec<_>>();
    Ok(q.bind(events.iter().map(|e| e.id).collect::<Vec<Uuid>>())
        .bind(events.iter().map(|e| e.name.clone()).collect::<Vec<_>>())
        .bind(column(|e| e.branch.clone()))
        .bind(column(|e| {
            subject_branch(&e.name, &e.data).map(str::to_owned)
        }))
        .bind(column(|e| e.account_id.clone()))
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
        ))
}
