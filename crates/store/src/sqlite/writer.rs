//! The single writer task: group commit. Every commit request queued while the previous batch
//! was being written joins the next batch; a batch is one SQLite transaction (one fsync), and
//! each request inside it is a savepoint, so one refused request does not undo its neighbours.

use super::rows::micros;
use crate::{Change, Commit, StoreError};
use infrastream_core::{
    Error, ErrorKind, Event, NewEvent, ParentRef, Position, Timestamp, event::subject_branch, now,
};
use sqlx::sqlite::{SqliteConnection, SqliteQueryResult};
use sqlx::{Row, SqliteExecutor};
use std::sync::LazyLock;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

/// Reply channel of one commit.
pub(crate) type Reply = oneshot::Sender<Result<Vec<Event>, StoreError>>;

/// Messages to the writer task.
pub(crate) enum Msg {
    /// Commit this and reply.
    Commit(Box<Commit>, Reply),
    /// Finish what is queued before this message, close the connection, then reply.
    Close(oneshot::Sender<()>),
}

/// What the writer publishes after each committed batch.
pub(crate) struct Published {
    /// The position of the last committed event.
    pub(crate) head: watch::Sender<Position>,
    /// The committed events themselves (the receiver may be gone: nobody takes the feed).
    pub(crate) feed: mpsc::UnboundedSender<Vec<Event>>,
}

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
    let mut cursor = match load_cursor(&mut conn).await {
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
        match first {
            Msg::Commit(c, r) => batch.push((c, r)),
            Msg::Close(done) => closing = Some(done),
        }
        while closing.is_none() && batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Msg::Commit(c, r)) => batch.push((c, r)),
                Ok(Msg::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            write_batch(&mut conn, batch, &mut cursor, &head).await;
        }
    }
    if let Err(e) = sqlx::Connection::close(conn).await {
        tracing::warn!(error = %e, "closing the store writer connection failed");
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

async fn load_cursor(conn: &mut SqliteConnection) -> Result<Cursor, StoreError> {
    let row = sqlx::query("SELECT MAX(position) AS p, MAX(occurred_at) AS t FROM events")
        .fetch_one(&mut *conn)
        .await?;
    let p: Option<i64> = row.try_get("p")?;
    let t: Option<i64> = row.try_get("t")?;
    Ok(Cursor {
        next: Position(p.unwrap_or(0) as u64 + 1),
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
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
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
            tracing::error!(error = %e, requests = batch.len(), "store batch failed; rolled back");
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            *cursor = load_cursor(conn).await.unwrap_or(start);
            // Every request of the batch gets the same cause.
            let cause = std::sync::Arc::new(e);
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::backend_context(
                    "store batch failed; rolled back",
                    cause.clone(),
                )));
            }
        }
    }
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

async fn apply_change(conn: &mut SqliteConnection, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::InsertBranch(b) => {
            if exists(&mut *conn, "SELECT 1 FROM branches WHERE name = ?", &b.name).await? {
                return Err(rejected(
                    ErrorKind::AlreadyExists,
                    format!("The branch {} already exists", b.name),
                ));
            }
            write_branch(conn, b, "INSERT INTO branches (id, name, description, origin_branch, branched_from, created_at, status, sync_with_git, is_default, has_schema_changes, graph_version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)").await?;
        }
        Change::UpdateBranch {
            branch: b,
            expect_status,
        } => {
            let row = sqlx::query("SELECT status FROM branches WHERE id = ?")
                .bind(&b.id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::Rejected(Error::branch_not_found(&b.name)));
            };
            let status: String = row.try_get("status")?;
            if let Some(expected) = expect_status
                && status != expected.as_str()
            {
                return Err(rejected(
                    ErrorKind::Conflict,
                    format!(
                        "Branch {} is {status}, expected {}",
                        b.name,
                        expected.as_str()
                    ),
                ));
            }
            write_branch(conn, b, "UPDATE branches SET name = ?2, description = ?3, origin_branch = ?4, branched_from = ?5, created_at = ?6, status = ?7, sync_with_git = ?8, is_default = ?9, has_schema_changes = ?10, graph_version = ?11 WHERE id = ?1").await?;
        }
        Change::DeleteBranch { name } => {
            let done = sqlx::query("DELETE FROM branches WHERE name = ?")
                .bind(name)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Rejected(Error::branch_not_found(name)));
            }
        }
        Change::InsertSavedQuery(q) | Change::UpdateSavedQuery(q) => {
            let taken = "SELECT 1 FROM saved_queries WHERE name = ? AND id <> ?";
            name_free(conn, taken, &q.name, &q.id, "A GraphQL query").await?;
            let sql = if matches!(change, Change::InsertSavedQuery(_)) {
                "INSERT INTO saved_queries (id, name, query, description) VALUES (?1, ?2, ?3, ?4)"
            } else {
                "UPDATE saved_queries SET name = ?2, query = ?3, description = ?4 WHERE id = ?1"
            };
            let done = sqlx::query(sql)
                .bind(&q.id)
                .bind(&q.name)
                .bind(&q.query)
                .bind(&q.description)
                .execute(&mut *conn)
                .await?;
            found(&done, "GraphQL query", &q.id)?;
        }
        Change::DeleteSavedQuery { id } => {
            delete_by_id(
                conn,
                "DELETE FROM saved_queries WHERE id = ?",
                id,
                "GraphQL query",
            )
            .await?;
        }
        Change::InsertAccount(a) | Change::UpdateAccount(a) => {
            let taken = "SELECT 1 FROM accounts WHERE name = ? AND id <> ?";
            name_free(conn, taken, &a.name, &a.id, "An account").await?;
            let sql = if matches!(change, Change::InsertAccount(_)) {
                "INSERT INTO accounts (id, name, role, password_hash) VALUES (?1, ?2, ?3, ?4)"
            } else {
                "UPDATE accounts SET name = ?2, role = ?3, password_hash = ?4 WHERE id = ?1"
            };
            let done = sqlx::query(sql)
                .bind(&a.id)
                .bind(&a.name)
                .bind(a.role.as_str())
                .bind(&a.password_hash)
                .execute(&mut *conn)
                .await?;
            found(&done, "Account", &a.id)?;
        }
        Change::DeleteAccount { id } => {
            delete_by_id(conn, "DELETE FROM accounts WHERE id = ?", id, "Account").await?;
            sqlx::query("UPDATE api_tokens SET revoked = 1 WHERE account_id = ?")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        Change::InsertToken(t) => {
            sqlx::query("INSERT INTO api_tokens (id, account_id, name, token_hash, expires_at, revoked) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&t.id)
                .bind(&t.account_id)
                .bind(&t.name)
                .bind(&t.token_hash)
                .bind(t.expires_at.as_ref().map(micros))
                .bind(t.revoked)
                .execute(&mut *conn)
                .await?;
        }
        Change::RevokeToken { id, account_id } => {
            let done = sqlx::query(
                "UPDATE api_tokens SET revoked = 1 WHERE id = ?1 AND (?2 IS NULL OR account_id = ?2)",
            )
            .bind(id)
            .bind(account_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(rejected(
                    ErrorKind::NotFound,
                    format!("Token {id} not found"),
                ));
            }
        }
        Change::CreateNode(n) | Change::UpdateNode(n) | Change::PutNode(n) => {
            // Inside the writer's transaction: nothing can change between check and write.
            let stored: Option<String> = sqlx::query_scalar("SELECT kind FROM nodes WHERE id = ?")
                .bind(&n.id)
                .fetch_optional(&mut *conn)
                .await?;
            match (change, stored) {
                (Change::CreateNode(_), Some(_)) => {
                    return Err(rejected(
                        ErrorKind::AlreadyExists,
                        format!("A node with id {} already exists", n.id),
                    ));
                }
                (Change::UpdateNode(_), None) => {
                    return Err(rejected(
                        ErrorKind::NotFound,
                        format!("Node {} not found", n.id),
                    ));
                }
                (_, Some(kind)) if kind != n.kind => {
                    return Err(rejected(
                        ErrorKind::Conflict,
                        format!(
                            "Node {} is a {kind}; it cannot become a {} (a node's kind never changes)",
                            n.id, n.kind
                        ),
                    ));
                }
                _ => {}
            }
            let taken = sqlx::query("SELECT 1 FROM nodes WHERE kind = ? AND name = ? AND id <> ?")
                .bind(&n.kind)
                .bind(&n.name)
                .bind(&n.id)
                .fetch_optional(&mut *conn)
                .await?;
            if taken.is_some() {
                return Err(rejected(
                    ErrorKind::AlreadyExists,
                    format!("A {} named {} already exists", n.kind, n.name),
                ));
            }
            sqlx::query(
                "INSERT INTO nodes (id, kind, name, data) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, data = excluded.data",
            )
            .bind(&n.id)
            .bind(&n.kind)
            .bind(&n.name)
            .bind(n.data.to_string())
            .execute(&mut *conn)
            .await?;
        }
        Change::DeleteNode { id } => {
            delete_by_id(conn, "DELETE FROM nodes WHERE id = ?", id, "Node").await?;
        }
        Change::SetMeta {
            key,
            value,
            only_if_absent,
        } => {
            let sql = if *only_if_absent {
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
            } else {
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            };
            sqlx::query(sql)
                .bind(key)
                .bind(value)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn delete_by_id(
    conn: &mut SqliteConnection,
    sql: &'static str,
    id: &str,
    what: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    found(&done, what, id)
}

/// `{what} {id} not found` when a write by id touched no row.
fn found(done: &SqliteQueryResult, what: &str, id: &str) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        return Err(rejected(
            ErrorKind::NotFound,
            format!("{what} {id} not found"),
        ));
    }
    Ok(())
}

/// Refuses `name` for row `id` when another row has it: `taken` selects such a row by name
/// and id; `what` names the kind of row with its article (`An account`).
async fn name_free(
    conn: &mut SqliteConnection,
    taken: &'static str,
    name: &str,
    id: &str,
    what: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query(taken)
        .bind(name)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if row.is_some() {
        return Err(rejected(
            ErrorKind::AlreadyExists,
            format!("{what} named {name} already exists"),
        ));
    }
    Ok(())
}

async fn write_branch(
    conn: &mut SqliteConnection,
    b: &infrastream_core::Branch,
    sql: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(&b.id)
        .bind(&b.name)
        .bind(&b.description)
        .bind(&b.origin_branch)
        .bind(micros(&b.branched_from))
        .bind(micros(&b.created_at))
        .bind(b.status.as_str())
        .bind(b.sync_with_git)
        .bind(b.is_default)
        .bind(b.has_schema_changes)
        .bind(b.graph_version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Assigns ids, positions, times, levels and `has_children`.
async fn build_events(
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
const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

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
fn chunked<T>(mut rows: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    std::iter::from_fn(move || {
        let k = CHUNKS.iter().position(|&n| n <= rows.len())?;
        let (chunk, rest) = rows.split_at(CHUNKS[k]);
        rows = rest;
        Some((k, chunk))
    })
}

/// Inserts events (and their related-node index rows) with multi-row INSERTs.
async fn insert_events(conn: &mut SqliteConnection, events: &[&Event]) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::branch;
    use infrastream_core::RelatedNode;
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
