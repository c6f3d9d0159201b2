//! The writer task of one instance: group commit. Every commit request queued while the
//! previous batch was being written joins the next batch; a batch is one transaction, and
//! each request inside it that could be refused is a savepoint, so one refused request does
//! not undo its neighbours (as in the SQLite backend).
//!
//! **Positions across instances.** A batch's transaction first locks the one row of
//! `log_head` (`SELECT … FOR UPDATE`) and numbers its events from the position found there;
//! it writes the new head back and commits. The lock is held until the commit, so the
//! writers of every instance commit one after another, in position order: a reader that sees
//! an event sees every event before it (a sequence would not do this — a value taken by a
//! transaction that commits later becomes visible out of order). A refused request rolls its
//! positions back with its savepoint, a failed batch rolls everything back: no gap either way.
//! The same lock serializes the checks of the changes (a name is free, a status is the one
//! expected) with the writes of every other instance.
//!
//! A batch that only appends events (the common case: no change to check, no stored parent)
//! skips the explicit transaction: one statement, its own transaction, moves the head (taking
//! the same lock), numbers and inserts the rows and notifies ([`append_batch`]). The lock is
//! then held while the database runs and commits that one statement, never across a round
//! trip to this process.
//!
//! Each committed batch notifies `infrastream_events` (delivered at commit) for the other
//! instances, and hands its events and replies to this instance's follower, which publishes
//! them in position order and then answers the requests.
//!
//! Applying one change is in [`changes`]; turning requested events into rows, in [`events`].

use super::follower::{self, Delivery};
use crate::{Change, Commit, Readiness, StoreError};
use infrastream_core::{Chain, Error, ErrorKind, Event, ParentRef, Position, Timestamp};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgExecutor, Row};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

mod changes;
mod events;

use changes::apply_change;
use events::{Advance, Appended, append, build_events, insert_events, insert_events_and_advance};

/// Reply channel of one commit.
pub(crate) type Reply = oneshot::Sender<Result<Vec<Event>, StoreError>>;

/// `application_name` of the writer's connection (how operators and tests find it in
/// `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "infrastream-writer";

/// How long the server lets the writer's session sit idle inside a transaction before it
/// ends the session: a writer cut off mid-batch (a network partition, a frozen process) holds
/// the log head's lock, which every instance needs to commit, until then. A batch sends its
/// statements back to back, so it never comes near.
pub(crate) const IDLE_IN_TRANSACTION_TIMEOUT: &str = "10s";

/// The channel other instances (and this one's follower) listen on.
pub(crate) const CHANNEL: &str = "infrastream_events";

/// The channel announcing changes to accounts, tokens or revoked sessions; the payload is the
/// committing instance's id (an instance ignores its own: it re-checks at once anyway).
pub(crate) const CREDENTIALS_CHANNEL: &str = "infrastream_credentials";

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
    /// Finish what is queued before this message, close the connection, stop the follower
    /// (after it published everything), then reply.
    Close(oneshot::Sender<()>),
}

/// Where the writer's results go.
pub(crate) struct Outlet {
    /// The follower: committed events and the replies that wait for their publication.
    pub(crate) follower: mpsc::UnboundedSender<follower::Msg>,
    /// Where the outcome of every batch is recorded.
    pub(crate) readiness: Arc<Readiness>,
    /// This instance's id, in its credential notifications.
    pub(crate) instance: String,
}

/// The metadata row a readiness probe rewrites (the time of the probe, repeated).
pub(crate) const PROBE_KEY: &str = "ready_probe";

/// Where the next event goes.
#[derive(Clone, Copy)]
struct Cursor {
    next: Position,
    last_time: Option<Timestamp>,
}

/// The writer's connection: opened when needed, dropped after a failed batch (it may be
/// broken), so the next batch starts on a fresh one.
struct WriterConnection {
    options: PgConnectOptions,
    timeout: Duration,
    conn: Option<PgConnection>,
}

impl WriterConnection {
    async fn get(&mut self) -> Result<&mut PgConnection, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(super::connect_within(&self.options, self.timeout).await?);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    fn discard(&mut self) {
        self.conn = None;
    }
}

pub(crate) async fn run(
    options: PgConnectOptions,
    timeout: Duration,
    conn: PgConnection,
    mut rx: mpsc::Receiver<Msg>,
    out: Outlet,
    max_batch: usize,
) {
    let mut conn = WriterConnection {
        options,
        timeout,
        conn: Some(conn),
    };
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::new();
        let mut probes = Vec::new();
        let mut probe_bytes = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Commit(c, r) => batch.push((c, r)),
                Msg::Probe { bytes, reply } => {
                    probe_bytes = probe_bytes.max(bytes);
                    probes.push(reply);
                }
                Msg::Close(done) => closing = Some(done),
            }
            if closing.is_none() && batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(&mut conn, batch, &out).await;
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
    if let Some(c) = conn.conn.take()
        && let Err(e) = c.close().await
    {
        tracing::warn!(error = %e, "closing the store writer connection failed");
    }
    let (stopped, follower_done) = oneshot::channel();
    if out.follower.send(follower::Msg::Close(stopped)).is_ok() {
        let _ = follower_done.await;
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

async fn write_batch(conn: &mut WriterConnection, batch: Vec<(Box<Commit>, Reply)>, out: &Outlet) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut committing = false;
    let mut result = write(conn, &batch, &mut outcomes, &mut committing, &out.instance).await;
    if let Err(e) = &result
        && !committing
        && connection_lost(e)
    {
        // Nothing was committed (the server rolls back a transaction whose connection
        // ends): written again on a new connection. Once COMMIT was sent the outcome is
        // unknown, so the batch fails instead.
        tracing::warn!(error = %Chain(e), "the store writer's connection was lost; writing the batch again on a new one");
        conn.discard();
        outcomes.clear();
        result = write(conn, &batch, &mut outcomes, &mut committing, &out.instance).await;
    }
    match result {
        Ok(()) => {
            out.readiness.record(Ok(()));
            let replies: Vec<_> = batch
                .into_iter()
                .map(|(_, reply)| reply)
                .zip(outcomes)
                .collect();
            let events: Vec<Event> = replies
                .iter()
                .filter_map(|(_, o)| o.as_ref().ok())
                .flatten()
                .cloned()
                .collect();
            if events.is_empty() {
                for (reply, outcome) in replies {
                    let _ = reply.send(outcome);
                }
            } else {
                // Answered once published: when a commit returns, `head()` has reached it.
                let delivery = Delivery { events, replies };
                if let Err(mpsc::error::SendError(follower::Msg::Deliver(d))) =
                    out.follower.send(follower::Msg::Deliver(delivery))
                {
                    for (reply, outcome) in d.replies {
                        let _ = reply.send(outcome);
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %Chain(&e), requests = batch.len(), "store batch failed; rolled back");
            // The transaction was rolled back (or the connection is gone with it): nothing
            // of the batch is committed, the head row was not moved, no position is lost.
            // The connection may be broken: the next batch opens a new one.
            conn.discard();
            out.readiness.record(Err(&e));
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

/// Writes one batch in one transaction; `outcomes` gets one entry per request.
async fn write(
    conn: &mut WriterConnection,
    batch: &[(Box<Commit>, Reply)],
    outcomes: &mut Vec<Result<Vec<Event>, StoreError>>,
    committing: &mut bool,
    instance: &str,
) -> Result<(), StoreError> {
    if batch.iter().all(|(commit, _)| events_only(commit)) {
        return append_batch(conn, batch, outcomes, committing).await;
    }
    let conn = conn.get().await?;
    // The transaction and the lock on the log head in one round trip. On any failure the
    // connection is dropped (see `write_batch`), which rolls the transaction back.
    let row = sqlx::raw_sql("BEGIN; SELECT position, last_time FROM log_head FOR UPDATE")
        .fetch_one(&mut *conn)
        .await?;
    let mut cursor = cursor(&row)?;
    let start = cursor;
    // Outcomes whose events are built but not yet inserted (see `events_only`).
    let mut pending: Vec<usize> = Vec::new();
    for (commit, _) in batch {
        if events_only(commit) {
            // Cannot be refused: no savepoint, and its rows join one INSERT.
            let events = build_events(conn, &commit.events, &mut cursor).await?;
            pending.push(outcomes.len());
            outcomes.push(Ok(events));
            continue;
        }
        // Earlier events first: this commit may name one of them as its parent.
        insert_pending(conn, outcomes, &mut pending).await?;
        sqlx::query("SAVEPOINT c").execute(&mut *conn).await?;
        let before = cursor;
        match apply(conn, commit, &mut cursor).await {
            Ok(events) => {
                sqlx::query("RELEASE SAVEPOINT c")
                    .execute(&mut *conn)
                    .await?;
                outcomes.push(Ok(events));
            }
            Err(e) if refusal(&e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT c")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT c")
                    .execute(&mut *conn)
                    .await?;
                cursor = before;
                if !matches!(e, StoreError::Rejected(_)) {
                    tracing::error!(error = %Chain(&e), "a commit's own data was refused by the database; its neighbours go on");
                }
                outcomes.push(Err(e));
            }
            Err(other) => return Err(other),
        }
    }
    if cursor.next != start.next {
        // The last rows, the new head and the notification in one statement.
        let events: Vec<&Event> = pending
            .drain(..)
            .filter_map(|i| outcomes[i].as_ref().ok())
            .flatten()
            .collect();
        let advance = Advance {
            position: cursor.next.0 as i64 - 1,
            last_time: cursor.last_time.as_ref().map(super::rows::micros),
        };
        insert_events_and_advance(conn, &events, advance).await?;
    }
    let credentials = batch
        .iter()
        .zip(outcomes.iter())
        .any(|((commit, _), outcome)| outcome.is_ok() && changes_credentials(commit));
    if credentials {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CREDENTIALS_CHANNEL)
            .bind(instance)
            .execute(&mut *conn)
            .await?;
    }
    *committing = true;
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(())
}

/// Writes a batch whose commits only append events (see [`events_only`]) with one statement
/// that is its own transaction ([`append`]): the log head's lock is held only while the
/// database runs and commits it, never across a round trip to this process, so the writers
/// of several instances hand it on without waiting for each other's scheduling.
///
/// When the connection is lost, whether the statement committed is unknown: it is sent again
/// on a new connection with the same event ids, which the database refuses if the first one
/// committed — the batch is then where that one put it.
async fn append_batch(
    conn: &mut WriterConnection,
    batch: &[(Box<Commit>, Reply)],
    outcomes: &mut Vec<Result<Vec<Event>, StoreError>>,
    committing: &mut bool,
) -> Result<(), StoreError> {
    // Numbered from 1 here; moved after the head once the database said where it was.
    let mut cursor = Cursor {
        next: Position(1),
        last_time: None,
    };
    {
        let c = conn.get().await?;
        for (commit, _) in batch {
            let events = build_events(c, &commit.events, &mut cursor).await?;
            outcomes.push(Ok(events));
        }
    }
    let events: Vec<&Event> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .flatten()
        .collect();
    let Some(first) = events.first().map(|e| e.id) else {
        return Ok(());
    };
    *committing = true;
    let first_try = append(conn.get().await?, &events, CHANNEL).await;
    let appended = match first_try {
        Err(e) if connection_lost(&e) => {
            tracing::warn!(error = %Chain(&e), "the store writer's connection was lost while appending; appending again on a new one");
            conn.discard();
            let c = conn.get().await?;
            match append(c, &events, CHANNEL).await {
                Err(e) if duplicate_event_id(&e) => appended_at(c, first).await?,
                other => other?,
            }
        }
        other => other?,
    };
    let time = super::rows::from_micros(appended.time)?;
    for event in outcomes
        .iter_mut()
        .filter_map(|o| o.as_mut().ok())
        .flatten()
    {
        event.position = Position((appended.base + event.position.0 as i64) as u64);
        event.occurred_at = time;
    }
    Ok(())
}

/// Whether `e` is the database refusing an event id that is already in the log.
fn duplicate_event_id(e: &StoreError) -> bool {
    let StoreError::Backend(cause) = e else {
        return false;
    };
    matches!(
        cause.downcast_ref::<sqlx::Error>(),
        Some(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505")
            && db.constraint() == Some("events_id_key")
    )
}

/// Where an appended batch whose first event is `first` went.
async fn appended_at(conn: &mut PgConnection, first: uuid::Uuid) -> Result<Appended, StoreError> {
    let row = sqlx::query("SELECT position, occurred_at FROM events WHERE id = $1")
        .bind(first)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Appended {
        base: row.try_get::<i64, _>("position")? - 1,
        time: row.try_get("occurred_at")?,
    })
}

/// Where the next event goes, from the locked log head row.
fn cursor(row: &sqlx::postgres::PgRow) -> Result<Cursor, StoreError> {
    let position: i64 = row.try_get("position")?;
    let last: Option<i64> = row.try_get("last_time")?;
    Ok(Cursor {
        next: Position(position as u64 + 1),
        last_time: last.map(super::rows::from_micros).transpose()?,
    })
}

/// Whether `e` says the connection is gone (an I/O or protocol failure, SQLSTATE class 08
/// "connection exception", or 57P01–57P05: the server is shutting down or ended the session)
/// rather than that the statement failed.
fn connection_lost(e: &StoreError) -> bool {
    let (StoreError::Backend(cause) | StoreError::StorageFull(cause)) = e else {
        return false;
    };
    match cause.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_)) => true,
        Some(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// Whether a commit's failure is its own: a refusal ([`StoreError::Rejected`]), or the
/// database refusing the commit's own values (SQLSTATE class 22, data exception, or 23,
/// integrity constraint violation) — the connection and the transaction are fine, so rolling
/// back to the commit's savepoint undoes it alone.
fn refusal(e: &StoreError) -> bool {
    match e {
        StoreError::Rejected(_) => true,
        StoreError::Backend(cause) => cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| match e {
                sqlx::Error::Database(db) => db.code(),
                _ => None,
            })
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => false,
    }
}

/// A readiness probe: one transaction rewriting one metadata row, the time of the probe
/// repeated over `bytes` bytes (stored uncompressed: see the schema), committed like any
/// batch. `Ok` means the store can commit a change of that size now.
async fn probe(conn: &mut WriterConnection, bytes: usize) -> Result<(), StoreError> {
    match probe_once(conn, bytes).await {
        // A connection that died while idle says nothing about the store: try a new one.
        Err(e) if connection_lost(&e) => probe_once(conn, bytes).await,
        other => other,
    }
}

async fn probe_once(conn: &mut WriterConnection, bytes: usize) -> Result<(), StoreError> {
    let time = infrastream_core::format_timestamp(&infrastream_core::now()) + " ";
    let value: String = time.chars().cycle().take(bytes.max(time.len())).collect();
    let result: Result<(), StoreError> = async {
        let mut tx = conn.get().await?.begin().await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(PROBE_KEY)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        conn.discard();
    }
    result
}

fn rejected(kind: ErrorKind, message: String) -> StoreError {
    StoreError::Rejected(Error::new(kind, message))
}

async fn exists(
    conn: impl PgExecutor<'_>,
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
    conn: &mut PgConnection,
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

/// Whether a commit changes what a credential verifies against: an account, a token, a
/// revoked session.
fn changes_credentials(commit: &Commit) -> bool {
    commit.changes.iter().any(|c| {
        matches!(
            c,
            Change::InsertAccount(_)
                | Change::UpdateAccount(_)
                | Change::DeleteAccount { .. }
                | Change::InsertToken(_)
                | Change::RevokeToken { .. }
                | Change::RevokeSession(_)
        )
    })
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
    conn: &mut PgConnection,
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
