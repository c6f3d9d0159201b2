//! The embedded backend: one SQLite file in WAL mode. One writer task does group commit
//! (see [`writer`]); a small pool of read-only connections serves reads concurrently.

mod filter_sql;
mod rows;
mod schema;
mod writer;

use crate::{Commit, EventPage, LogStart, PruneOutcome, PrunePolicy, Readiness, Store, StoreError};
use async_trait::async_trait;
use infrastream_core::{
    Account, ApiToken, Branch, Event, EventFilter, Node, Position, RevokedSession, SavedQuery,
    SortOrder,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;
use writer::Msg;

/// The schema version this binary writes.
pub const CURRENT_SCHEMA_VERSION: i64 = schema::CURRENT_VERSION;

/// Options of the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file.
    pub path: PathBuf,
    /// fsync on every commit (`synchronous = FULL`); otherwise `NORMAL` (durable against a
    /// process crash, not against power loss).
    pub fsync: bool,
    /// Most commit requests written in one transaction.
    pub max_batch: usize,
    /// Read connections.
    pub readers: u32,
    /// How long the outcome of the last commit answers [`Store::ready`] before a probe
    /// commit checks again.
    pub ready_probe_interval: Duration,
    /// Longest wait for a readiness probe's commit.
    pub ready_probe_timeout: Duration,
    /// Size of a readiness probe's commit, in bytes: the store is ready while a change of
    /// this size can be committed.
    pub ready_probe_bytes: usize,
    /// Most events one transaction of [`Store::prune`] removes: a long prune is done in
    /// chunks, with the commits queued meanwhile written between them.
    pub prune_chunk_events: u64,
}

impl SqliteOptions {
    /// Defaults for a database file at `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            fsync: true,
            max_batch: 1024,
            readers: 4,
            ready_probe_interval: Duration::from_secs(1),
            ready_probe_timeout: Duration::from_secs(5),
            ready_probe_bytes: 65_536,
            prune_chunk_events: 10_000,
        }
    }
}

/// The embedded store.
pub struct SqliteStore {
    writer: mpsc::Sender<Msg>,
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    reads: SqlitePool,
    head: watch::Receiver<Position>,
    feed: Mutex<Option<crate::CommitFeed>>,
    readiness: Arc<Readiness>,
    probe_bytes: usize,
    log_start: watch::Receiver<LogStart>,
    prune_chunk: u64,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer task.
    pub async fn open(options: SqliteOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(&options.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.fsync {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(10))
            .log_statements(tracing::log::LevelFilter::Trace);
        let mut conn: SqliteConnection = connect.connect().await?;
        schema::migrate(&mut conn).await?;
        let start = writer::load_log_start(&mut conn).await?;
        let head_pos: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&mut conn)
            .await?;
        // With every event pruned, the head stays at the last pruned position.
        let head_pos = (head_pos.unwrap_or(0) as u64).max(start.pruned_through.0);
        let (head_tx, head) = watch::channel(Position(head_pos));
        let (log_start_tx, log_start) = watch::channel(start);
        // Readers are opened up front and kept: opening one later, while the writer holds the
        // write lock, could wait on the busy timeout; they set no pragmas that need a lock.
        let read_options = SqliteConnectOptions::new()
            .filename(&options.path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10))
            .log_statements(tracing::log::LevelFilter::Trace);
        let readers = options.readers.max(1);
        let reads = SqlitePoolOptions::new()
            .max_connections(readers)
            .min_connections(readers)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(read_options)
            .await?;
        let (tx, rx) = mpsc::channel(options.max_batch.max(1) * 4);
        let (feed_tx, feed) = mpsc::unbounded_channel();
        let readiness = Arc::new(Readiness::new(
            options.ready_probe_interval,
            options.ready_probe_timeout,
        ));
        let published = writer::Published {
            head: head_tx,
            feed: feed_tx,
            readiness: readiness.clone(),
            log_start: log_start_tx,
        };
        let task = tokio::spawn(writer::run(conn, rx, published, options.max_batch.max(1)));
        Ok(Self {
            writer: tx,
            writer_task: Mutex::new(Some(task)),
            reads,
            head,
            feed: Mutex::new(Some(feed)),
            readiness,
            probe_bytes: options.ready_probe_bytes,
            log_start,
            prune_chunk: options.prune_chunk_events.max(1),
        })
    }

    async fn one<T>(
        &self,
        sql: &'static str,
        arg: &str,
        map: fn(&sqlx::sqlite::SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let row = sqlx::query(sql)
            .bind(arg)
            .fetch_optional(&self.reads)
            .await?;
        row.as_ref().map(map).transpose()
    }

    async fn all<T>(
        &self,
        sql: &'static str,
        map: fn(&sqlx::sqlite::SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        sqlx::query(sql)
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(map)
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, commit: Commit) -> Result<Vec<Event>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Msg::Commit(Box::new(commit), tx))
            .await
            .map_err(|_| StoreError::backend("store is closed"))?;
        rx.await
            .map_err(|_| StoreError::backend("store writer stopped"))?
    }

    fn head(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }

    fn take_commit_feed(&self) -> Option<crate::CommitFeed> {
        self.feed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    async fn read_after(&self, after: Position, limit: usize) -> Result<Vec<Event>, StoreError> {
        // Read before the query: every event up to it is committed (or pruned) by then.
        let head = *self.head.borrow();
        let sql = format!(
            "SELECT {} FROM events WHERE position > ? ORDER BY position LIMIT ?",
            rows::EVENT_COLUMNS
        );
        let events = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.0 as i64)
            .bind(limit as i64)
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(rows::event)
            .collect::<Result<Vec<_>, _>>()?;
        // Positions are gap-free from the log's start: a first event later than `after + 1`
        // (or none, though the head is past `after`) means the events after `after` were
        // pruned. Checked on what the query saw, so a concurrent prune cannot slip between.
        let pruned_through = match events.first() {
            Some(first) if first.position != after.next() => Position(first.position.0 - 1),
            None if limit > 0 && after < head => {
                self.log_start.borrow().pruned_through.max(after.next())
            }
            _ => return Ok(events),
        };
        Err(StoreError::Pruned {
            after,
            pruned_through,
        })
    }

    async fn query_events(
        &self,
        filter: &EventFilter,
        order: SortOrder,
        limit: u32,
        offset: u32,
    ) -> Result<EventPage, StoreError> {
        let count: i64 = filter_sql::count(filter)
            .build()
            .fetch_one(&self.reads)
            .await?
            .try_get(0)?;
        let events = filter_sql::page(filter, order, limit, offset)
            .build()
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(rows::event)
            .collect::<Result<_, _>>()?;
        Ok(EventPage {
            count: count as u64,
            events,
        })
    }

    async fn event_position(&self, id: Uuid) -> Result<Option<Position>, StoreError> {
        let p: Option<i64> = sqlx::query_scalar("SELECT position FROM events WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reads)
            .await?;
        Ok(p.map(|p| Position(p as u64)))
    }

    async fn prune(&self, policy: PrunePolicy) -> Result<PruneOutcome, StoreError> {
        let mut removed = 0;
        loop {
            let (tx, rx) = oneshot::channel();
            self.writer
                .send(Msg::Prune {
                    policy,
                    max_rows: self.prune_chunk,
                    reply: tx,
                })
                .await
                .map_err(|_| StoreError::backend("store is closed"))?;
            let chunk = rx
                .await
                .map_err(|_| StoreError::backend("store writer stopped"))??;
            removed += chunk.removed;
            if !chunk.more {
                return Ok(PruneOutcome {
                    removed,
                    log_start: chunk.log_start,
                });
            }
        }
    }

    async fn log_start(&self) -> Result<LogStart, StoreError> {
        Ok(*self.log_start.borrow())
    }

    async fn branches(&self) -> Result<Vec<Branch>, StoreError> {
        self.all("SELECT * FROM branches ORDER BY name", rows::branch)
            .await
    }

    async fn branch(&self, name: &str) -> Result<Option<Branch>, StoreError> {
        self.one("SELECT * FROM branches WHERE name = ?", name, rows::branch)
            .await
    }

    async fn saved_queries(&self) -> Result<Vec<SavedQuery>, StoreError> {
        self.all(
            "SELECT * FROM saved_queries ORDER BY name",
            rows::saved_query,
        )
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.all("SELECT * FROM accounts ORDER BY name", rows::account)
            .await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        self.one("SELECT * FROM accounts WHERE id = ?", id, rows::account)
            .await
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.one("SELECT * FROM accounts WHERE name = ?", name, rows::account)
            .await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.one(
            "SELECT * FROM api_tokens WHERE token_hash = ?",
            token_hash,
            rows::token,
        )
        .await
    }

    async fn token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.one("SELECT * FROM api_tokens WHERE id = ?", id, rows::token)
            .await
    }

    async fn tokens_of(&self, account_id: &str) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query("SELECT * FROM api_tokens WHERE account_id = ? AND NOT revoked ORDER BY id")
            .bind(account_id)
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(rows::token)
            .collect()
    }

    async fn revoked_session(
        &self,
        session_id: &str,
    ) -> Result<Option<RevokedSession>, StoreError> {
        self.one(
            "SELECT * FROM revoked_sessions WHERE session_id = ?",
            session_id,
            rows::revoked_session,
        )
        .await
    }

    async fn nodes(&self, kind: &str) -> Result<Vec<Node>, StoreError> {
        sqlx::query("SELECT * FROM nodes WHERE kind = ? ORDER BY name")
            .bind(kind)
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(rows::node)
            .collect()
    }

    async fn node(&self, id: &str) -> Result<Option<Node>, StoreError> {
        self.one("SELECT * FROM nodes WHERE id = ?", id, rows::node)
            .await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reads)
            .await?)
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.readiness
            .check(|| async {
                let (tx, rx) = oneshot::channel();
                let bytes = self.probe_bytes;
                self.writer
                    .send(Msg::Probe { bytes, reply: tx })
                    .await
                    .map_err(|_| StoreError::backend("store is closed"))?;
                rx.await
                    .map_err(|_| StoreError::backend("store writer stopped"))?
            })
            .await
    }

    async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.writer.send(Msg::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let task = self.writer_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.reads.close().await;
    }
}
