//! The single writer task: group commit. Every commit request queued while the previous batch
//! was being written joins the next batch; a batch is one SQLite transaction (one fsync), and
//! each request inside it is a savepoint, so one refused request does not undo its neighbours.
//!
//! Applying one change is in [`changes`]; turning requested events into rows, in [`events`];
//! pruning the log, in [`prune`].

use crate::{Commit, LogStart, PrunePolicy, Readiness, StoreError};
use infrastream_core::{Chain, Error, ErrorKind, Event, ParentRef, Position, Timestamp};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Row, SqliteExecutor};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

mod changes;
mod events;
mod prune;
#[cfg(test)]
mod storage_full_tests;

use changes::apply_change;
use events::{build_events, insert_events};
pub(crate) use prune::{PruneChunk, load_log_start};

/// Reply channel of one commit.
pub(crate) type Reply = oneshot::Sender<Result<Vec<Event>, StoreError>>;

/// Messages to the writer task.
pub(crate) enum Msg {
    /// Commit this and reply.
    Commit(Box<Commit>, Reply),
    /// Commit a probe (one metadata row of about `bytes` bytes) and reply whether it
    /// committed.
    Probe {
        /// Size of the row's value.
        bytes: usize,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Prune one chunk of at most `max_rows` events ([`prune::prune_chunk`]) and reply.
    Prune {
        /// What to prune.
        policy: PrunePolicy,
        /// Most events removed in this chunk's transaction.
        max_rows: u64,
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<PruneChunk, StoreError>>,
    },
    /// Finish what is queued before this message, close the connection, then reply.
    Close(oneshot::Sender<()>),
}

/// What the writer publishes after each committed batch.
pub(crate) struct Published {
    /// The position of the last committed event.
    pub(crate) head: watch::Sender<Position>,
    /// The committed events themselves (the receiver may be gone: nobody takes the feed).
    pub(crate) feed: mpsc::UnboundedSender<Vec<Event>>,
    /// Where the outcome of every batch is recorded.
    pub(crate) readiness: Arc<Readiness>,
    /// Where the log starts, after every prune.
    pub(crate) log_start: watch::Sender<LogStart>,
}

/// The metadata row a readiness probe rewrites (the time of the probe, repeated).
pub(crate) const PROBE_KEY: &str = "ready_probe";

/// Where the next event goes.
#[derive(Clone, Copy)]
struct Cursor {
    next: Position,
    last_time: Option<Timestamp>,
}

pub(crate) async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Msg>,
    head: Published,
    max_batch: usize,
) {
    let mut start = *head.log_start.borrow();
    let mut cursor = match load_cursor(&mut conn, start.pruned_through).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "store writer could not read the log head");
            return;
        }
    };
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::new();
        let mut probes = Vec::new();
        let mut prunes = Vec::new();
        let mut probe_bytes = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Commit(c, r) => batch.push((c, r)),
                Msg::Probe { bytes, reply } => {
                    probe_bytes = probe_bytes.max(bytes);
                    probes.push(reply);
                }
                Msg::Prune {
                    policy,
                    max_rows,
                    reply,
                } => prunes.push((policy, max_rows, reply)),
                Msg::Close(done) => closing = Some(done),
            }
            if closing.is_none() && batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(&mut conn, batch, &mut cursor, &head).await;
        }
        for (policy, max_rows, reply) in prunes {
            let last = Position(cursor.next.0 - 1);
            let outcome = prune::prune_chunk(&mut conn, &policy, last, max_rows, &mut start).await;
            if matches!(outcome, Ok(ref chunk) if chunk.removed > 0) {
                head.log_start.send_replace(start);
            }
            let _ = reply.send(outcome);
        }
        if !probes.is_empty() {
            let outcome = probe(&mut conn, probe_bytes).await.map_err(Arc::new);
            for reply in probes {
                let _ = reply.send(
                    outcome
                        .clone()
                        .map_err(|e| StoreError::shared("readiness probe failed", e)),
                );
            }
        }
    }
    if let Err(e) = sqlx::Connection::close(conn).await {
        tracing::warn!(error = %e, "closing the store writer connection failed");
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Where the next event goes: after the last stored event, or after the last pruned one when
/// every event was pruned (positions are never reused).
async fn load_cursor(
    conn: &mut SqliteConnection,
    pruned_through: Position,
) -> Result<Cursor, StoreError> {
    let row = sqlx::query("SELECT MAX(position) AS p, MAX(occurred_at) AS t FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let p: Option<i64> = row.try_get("p")?;
    let t: Option<i64> = row.try_get("t")?;
    Ok(Cursor {
        next: Position((p.unwrap_or(0) as u64).max(pruned_through.0) + 1),
        last_time: t.and_then(chrono::DateTime::from_timestamp_micros),
    })
}

async fn write_batch(
    conn: &mut SqliteConnection,
    batch: Vec<(Box<Commit>, Reply)>,
    cursor: &mut Cursor,
    head: &Published,
) {
    let start = *cursor;
    let mut outcomes = Vec::with_capacity(batch.len());
    let result: Result<(), StoreError> = async {
        begin(conn).await?;
        // Outcomes whose events are built but not yet inserted (see `events_only`).
        let mut pending: Vec<usize> = Vec::new();
        for (commit, _) in &batch {
            if events_only(commit) {
                // Cannot be refused: no savepoint, and its rows join one multi-row INSERT.
                let events = build_events(conn, &commit.events, cursor).await?;
                pending.push(outcomes.len());
                outcomes.push(Ok(events));
                continue;
            }
            // Earlier events first: this commit may name one of them as its parent.
            insert_pending(conn, &outcomes, &mut pending).await?;
            sqlx::query("SAVEPOINT c").execute(&mut *conn).await?;
            let before = *cursor;
            match apply(conn, commit, cursor).await {
                Ok(events) => {
                    sqlx::query("RELEASE c").execute(&mut *conn).await?;
                    outcomes.push(Ok(events));
                }
                Err(StoreError::Rejected(e)) => {
                    sqlx::query("ROLLBACK TO c").execute(&mut *conn).await?;
                    sqlx::query("RELEASE c").execute(&mut *conn).await?;
                    *cursor = before;
                    outcomes.push(Err(StoreError::Rejected(e)));
                }
                Err(other) => return Err(other),
            }
        }
        insert_pending(conn, &outcomes, &mut pending).await?;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            head.readiness.record(Ok(()));
            if cursor.next != start.next {
                let committed: Vec<Event> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok())
                    .flatten()
                    .cloned()
                    .collect();
                let _ = head.feed.send(committed);
                head.head.send_replace(Position(cursor.next.0 - 1));
            }
            for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::error!(error = %Chain(&e), requests = batch.len(), "store batch failed; rolled back");
            // SQLite may have rolled back already (it may on SQLITE_FULL or an I/O error):
            // this ROLLBACK then fails, harmlessly.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            // Nothing of the batch is committed, so the positions (and the time) it took are
            // given again: the next commit continues the log with no gap. Nothing was fed to
            // the bus and the head did not move. (Not re-read from the database: if the
            // ROLLBACK failed with the transaction still open, a read would see its rows.)
            *cursor = start;
            head.readiness.record(Err(&e));
            // Every request of the batch gets the same cause, in its class (a full storage
            // stays `StorageFull`).
            let cause = Arc::new(e);
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::shared(
                    "store batch failed; rolled back",
                    cause.clone(),
                )));
            }
        }
    }
}

/// Starts the write transaction. A transaction left open by a failed one (whose ROLLBACK
/// failed too) is rolled back first, so one failure cannot wedge the writer.
pub(super) async fn begin(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    match sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("within a transaction") => {
            tracing::warn!("the store writer found a transaction left open; rolling it back");
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A readiness probe: one transaction rewriting one metadata row, the time of the probe
/// repeated over `bytes` bytes, committed like any batch. `Ok` means the store can commit a
/// change of that size now. The row is rewritten in place (its old pages are reused), so
/// repeated probes do not grow the database; and a probe of a typical change's size is not
/// fooled by the few pages a refused, larger commit left in the write-ahead log, where a
/// tiny one would fit while real changes are still refused.
async fn probe(conn: &mut SqliteConnection, bytes: usize) -> Result<(), StoreError> {
    // The time of the probe, repeated: every page of the row differs from the last probe's
    // (SQLite writes only the pages whose content changed when a row keeps its size).
    let time = infrastream_core::format_timestamp(&infrastream_core::now()) + " ";
    let value: String = time.chars().cycle().take(bytes.max(time.len())).collect();
    let result: Result<(), StoreError> = async {
        begin(conn).await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(PROBE_KEY)
        .bind(value)
        .execute(&mut *conn)
        .await?;
        sqlx::query("COMMIT").execute(&mut *conn).await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    result
}

fn rejected(kind: ErrorKind, message: String) -> StoreError {
    StoreError::Rejected(Error::new(kind, message))
}

async fn exists(
    conn: impl SqliteExecutor<'_>,
    sql: &'static str,
    arg: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(sql)
        .bind(arg)
        .fetch_optional(conn)
        .await?
        .is_some())
}

async fn apply(
    conn: &mut SqliteConnection,
    commit: &Commit,
    cursor: &mut Cursor,
) -> Result<Vec<Event>, StoreError> {
    for change in &commit.changes {
        apply_change(conn, change).await?;
    }
    let events = build_events(conn, &commit.events, cursor).await?;
    insert_events(conn, &events.iter().collect::<Vec<_>>()).await?;
    Ok(events)
}

/// Whether a commit only appends events that name no stored parent: nothing in it can be
/// refused, so it needs no savepoint and its rows can be inserted together with its
/// neighbours'.
fn events_only(commit: &Commit) -> bool {
    commit.changes.is_empty()
        && commit
            .events
            .iter()
            .all(|e| !matches!(e.parent, Some(ParentRef::Existing(_))))
}

/// Inserts the events of the `pending` outcomes (all `Ok`) and empties `pending`.
async fn insert_pending(
    conn: &mut SqliteConnection,
    outcomes: &[Result<Vec<Event>, StoreError>],
    pending: &mut Vec<usize>,
) -> Result<(), StoreError> {
    let events: Vec<&Event> = pending
        .drain(..)
        .filter_map(|i| outcomes[i].as_ref().ok())
        .flatten()
        .collect();
    insert_events(conn, &events).await
}

#[cfg(test)]
mod tests {
    use super::events::{CHUNKS, chunked};
    use super::*;
    use crate::Change;
    use crate::conformance::branch;
    use infrastream_core::{NewEvent, RelatedNode};
    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;

    #[test]
    fn chunks_cover_every_row_once() {
        for n in 0..300usize {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<_> = chunked(&rows).collect();
            let flat: Vec<usize> = chunks.iter().flat_map(|(_, c)| c.iter().copied()).collect();
            assert_eq!(flat, rows);
            assert!(chunks.iter().all(|(k, c)| CHUNKS[*k] == c.len()));
            assert!(
                chunks.len() <= n / 64 + 6,
                "{n} rows in {} chunks",
                chunks.len()
            );
        }
    }

    fn emit(i: usize) -> Commit {
        let mut e = NewEvent::new(format!("t.e{i}"));
        e.related_nodes = vec![
            RelatedNode {
                id: format!("n{i}"),
                kind: "K".into(),
            },
            RelatedNode {
                id: "shared".into(),
                kind: "K".into(),
            },
        ];
        Commit::events(vec![e.clone(), e])
    }

    /// One batch mixing grouped event-only commits, a refused change, and a child of a stored
    /// event: positions stay contiguous, the refusal undoes only itself, every row is written.
    #[tokio::test]
    async fn mixed_batch_is_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        super::super::schema::migrate(&mut conn).await.unwrap();
        let (tx, rx) = mpsc::channel(1024);
        let (head_tx, head) = watch::channel(Position(0));
        let mut replies = Vec::new();
        let mut send = |c: Commit| {
            let (r, w) = oneshot::channel();
            tx.try_send(Msg::Commit(Box::new(c), r)).ok().unwrap();
            replies.push(w);
        };
        // Batch 1: a parent and a branch.
        send(Commit::events(vec![NewEvent::new("t.parent")]));
        send(Commit {
            changes: vec![Change::InsertBranch(branch("b"))],
            events: vec![NewEvent::new("t.branch")],
        });
        let (feed, mut fed) = mpsc::unbounded_channel();
        let published = Published {
            head: head_tx,
            feed,
            readiness: Arc::new(Readiness::new(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(1),
            )),
            log_start: watch::channel(LogStart::default()).0,
        };
        let task = tokio::spawn(run(conn, rx, published, 1024));
        let parent = replies.remove(0).await.unwrap().unwrap().remove(0);
        replies.remove(0).await.unwrap().unwrap();
        // Batch 2 (queued while the writer waits, so written as one transaction).
        let mut send = |c: Commit| {
            let (r, w) = oneshot::channel();
            tx.try_send(Msg::Commit(Box::new(c), r)).ok().unwrap();
            replies.push(w);
        };
        for i in 0..70 {
            send(emit(i));
        }
        send(Commit {
            changes: vec![Change::InsertBranch(branch("b"))],
            events: vec![NewEvent::new("t.dup")],
        });
        send(emit(70));
        let mut child = NewEvent::new("t.child");
        child.parent = Some(ParentRef::Existing(parent.id));
        send(Commit::events(vec![child]));
        send(emit(71));
        let (done_tx, done) = oneshot::channel();
        tx.try_send(Msg::Close(done_tx)).ok().unwrap();
        let mut positions = vec![1, 2];
        for (i, r) in replies.into_iter().enumerate() {
            match r.await.unwrap() {
                Ok(events) => positions.extend(events.iter().map(|e| e.position.0)),
                Err(StoreError::Rejected(e)) => {
                    assert_eq!(i, 70, "only the duplicate branch is refused");
                    assert_eq!(e.kind, ErrorKind::AlreadyExists);
                }
                Err(e) => panic!("commit {i} failed: {e}"),
            }
        }
        done.await.unwrap();
        task.await.unwrap();
        let n = 2 + 72 * 2 + 1;
        assert_eq!(positions, (1..=n).collect::<Vec<u64>>());
        assert_eq!(*head.borrow(), Position(n));
        // The feed carried every committed event, in position order, and nothing refused.
        let mut fed_positions = Vec::new();
        while let Ok(batch) = fed.try_recv() {
            fed_positions.extend(batch.iter().map(|e| e.position.0));
        }
        assert_eq!(fed_positions, (1..=n).collect::<Vec<u64>>());

        let mut conn = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .connect()
            .await
            .unwrap();
        let rows: Vec<(i64, String, i64, bool)> = sqlx::query_as(
            "SELECT position, name, level, has_children FROM events ORDER BY position",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows.len() as u64, n);
        assert!(rows.iter().enumerate().all(|(i, r)| r.0 == i as i64 + 1));
        assert_eq!(rows[0].1, "t.parent");
        assert!(rows[0].3, "the parent has children");
        let child = rows.iter().find(|r| r.1 == "t.child").unwrap();
        assert_eq!((child.0, child.2), (2 + 71 * 2 + 1, 1));
        assert!(rows.iter().all(|r| r.1 != "t.dup"));
        let related: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_related")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(related, 72 * 2 * 2);
        let shared: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM event_related WHERE node_id = 'shared'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        assert_eq!(shared, 144);
    }
}
