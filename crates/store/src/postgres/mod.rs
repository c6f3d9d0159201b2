//! The shared backend: one PostgreSQL database for any number of instances.
//!
//! - [`writer`]: one task per instance does group commit; every instance numbers its events
//!   under one row lock, so positions are gap-free and become visible in position order.
//! - [`follower`]: one task per instance publishes every committed event (its own and other
//!   instances') into the commit feed and `head()`, in order, no gap, no duplicate.
//! - [`listener`]: `LISTEN infrastream_events` wakes the follower when another instance
//!   committed; a fallback poll covers lost notifications and outages. It also hears other
//!   instances' credential changes (`infrastream_credentials`).
//! - [`schema`]: versioned migrations under an advisory lock.
//!
//! Connections per instance: the pool of `max_connections` (reads, the follower's reads), one
//! for the writer and one for the listener.

mod filter_sql;
mod follower;
mod listener;
mod prune;
mod rows;
mod schema;
mod text;
mod writer;

pub use listener::APPLICATION_NAME as LISTENER_APPLICATION_NAME;
pub use writer::APPLICATION_NAME as WRITER_APPLICATION_NAME;

use crate::{Commit, EventPage, LogStart, PruneOutcome, PrunePolicy, Readiness, Store, StoreError};
use async_trait::async_trait;
use infrastream_core::{
    Account, ApiToken, Branch, Event, EventFilter, Node, Position, RevokedSession, SavedQuery,
    SortOrder,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Row};
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;
use writer::Msg;

/// The schema version this binary writes.
pub const CURRENT_SCHEMA_VERSION: i64 = schema::CURRENT_VERSION;

/// `application_name` of the pooled connections (reads).
const POOL_APPLICATION_NAME: &str = "infrastream";

/// Options of the PostgreSQL store.
#[derive(Clone)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database?…` (libpq's URL syntax).
    pub url: String,
    /// Connections of the read pool (the writer and the listener have one each besides).
    pub max_connections: u32,
    /// Most commit requests written in one transaction.
    pub max_batch: usize,
    /// How often the follower reads the log even without a notification.
    pub poll_interval: Duration,
    /// Longest wait for a connection: a new one (the writer's, the listener's), or one of the
    /// read pool's, which a read waits for when all are busy or the server is unreachable.
    pub connect_timeout: Duration,
    /// How long the outcome of the last commit answers [`Store::ready`] before a probe
    /// commit checks again.
    pub ready_probe_interval: Duration,
    /// Longest wait for a readiness probe's commit.
    pub ready_probe_timeout: Duration,
    /// Size of a readiness probe's commit, in bytes.
    pub ready_probe_bytes: usize,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("max_batch", &self.max_batch)
            .field("poll_interval", &self.poll_interval)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresOptions {
    /// Defaults for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: 10,
            max_batch: 1024,
            poll_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            ready_probe_interval: Duration::from_secs(1),
            ready_probe_timeout: Duration::from_secs(5),
            ready_probe_bytes: 65_536,
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    writer: mpsc::Sender<Msg>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    listener: JoinHandle<()>,
    reads: PgPool,
    head: watch::Receiver<Position>,
    feed: Mutex<Option<crate::CommitFeed>>,
    credentials: watch::Receiver<u64>,
    readiness: Arc<Readiness>,
    probe_bytes: usize,
}

/// A connection failure, with where it tried to connect (never the password).
fn connect_error(options: &PgConnectOptions, e: impl Into<crate::BoxError>) -> StoreError {
    StoreError::backend_context(
        format!(
            "cannot connect to the PostgreSQL server at {}:{} (database {}; setting database_url)",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("<default>"),
        ),
        e,
    )
}

/// A new connection with `options`, or a clear error after `timeout`.
async fn connect_within(
    options: &PgConnectOptions,
    timeout: Duration,
) -> Result<sqlx::PgConnection, StoreError> {
    match tokio::time::timeout(timeout, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(connect_error(options, e)),
        Err(_) => Err(connect_error(
            options,
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no connection within {} ms (setting database_connect_timeout_ms)",
                    timeout.as_millis()
                ),
            ),
        )),
    }
}

impl PostgresStore {
    /// Connects, migrates the database (refusing one newer than this binary), and starts the
    /// writer, follower and listener tasks.
    pub async fn open(options: PostgresOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| {
                StoreError::backend_context("database_url is not a valid PostgreSQL URL", e)
            })?
            .log_statements(tracing::log::LevelFilter::Trace);
        let writer_options = connect
            .clone()
            .application_name(WRITER_APPLICATION_NAME)
            .options([(
                "idle_in_transaction_session_timeout",
                writer::IDLE_IN_TRANSACTION_TIMEOUT,
            )]);
        let mut writer_conn = connect_within(&writer_options, options.connect_timeout).await?;
        schema::migrate(&mut writer_conn).await?;
        let reads = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect.clone().application_name(POOL_APPLICATION_NAME))
            .await
            .map_err(|e| connect_error(&connect, e))?;
        let head_pos: i64 = sqlx::query_scalar("SELECT position FROM log_head")
            .fetch_one(&reads)
            .await?;
        let start = Position(head_pos as u64);
        let (head_tx, head) = watch::channel(start);
        let (feed_tx, feed) = mpsc::unbounded_channel();
        let readiness = Arc::new(Readiness::new(
            options.ready_probe_interval,
            options.ready_probe_timeout,
        ));
        let wake = Arc::new(Notify::new());
        let published = Arc::new(AtomicU64::new(start.0));
        let (follower_tx, follower_rx) = mpsc::unbounded_channel();
        let follower = follower::Follower {
            pool: reads.clone(),
            last: start,
            head: head_tx,
            feed: feed_tx,
            wake: wake.clone(),
            published: published.clone(),
            poll: options.poll_interval,
        };
        let follower_task = tokio::spawn(follower.run(follower_rx));
        let instance = Uuid::now_v7().to_string();
        let (credentials_tx, credentials) = watch::channel(0);
        let listener = tokio::spawn(listener::run(
            connect.clone(),
            options.connect_timeout,
            listener::Wakes {
                follower: wake,
                published,
                credentials: credentials_tx,
                instance: instance.clone(),
            },
        ));
        let (tx, rx) = mpsc::channel(options.max_batch.max(1) * 4);
        let outlet = writer::Outlet {
            follower: follower_tx,
            readiness: readiness.clone(),
            instance,
        };
        let writer_task = tokio::spawn(writer::run(
            writer_options,
            options.connect_timeout,
            writer_conn,
            rx,
            outlet,
            options.max_batch.max(1),
        ));
        Ok(Self {
            writer: tx,
            tasks: Mutex::new(vec![writer_task, follower_task]),
            listener,
            reads,
            head,
            feed: Mutex::new(Some(feed)),
            credentials,
            readiness,
            probe_bytes: options.ready_probe_bytes,
        })
    }

    async fn one<T>(
        &self,
        sql: &'static str,
        arg: &str,
        map: fn(&sqlx::postgres::PgRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        if arg.contains('\0') {
            // No stored text holds NUL (see `text`).
            return Ok(None);
        }
        let row = sqlx::query(sql)
            .bind(arg)
            .fetch_optional(&self.reads)
            .await?;
        row.as_ref().map(map).transpose()
    }

    async fn all<T>(
        &self,
        sql: &'static str,
        map: fn(&sqlx::postgres::PgRow) -> Result<T, StoreError>,
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
impl Store for PostgresStore {
    async fn commit(&self, commit: Commit) -> Result<Vec<Event>, StoreError> {
        text::refuse_nul(&commit)?;
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

    fn credential_changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.credentials.clone())
    }

    async fn read_after(&self, after: Position, limit: usize) -> Result<Vec<Event>, StoreError> {
        // Read before the query: every event up to it is committed (or pruned) by then.
        let head = *self.head.borrow();
        let sql = format!(
            "SELECT {} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
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
        // pruned (by any instance). Checked on what the query saw.
        let pruned_through = match events.first() {
            Some(first) if first.position != after.next() => Position(first.position.0 - 1),
            None if limit > 0 && after < head => {
                self.log_start().await?.pruned_through.max(after.next())
            }
            _ => return Ok(events),
        };
        Err(StoreError::Pruned {
            after,
            pruned_through,
        })
    }

    async fn prune(&self, policy: PrunePolicy) -> Result<PruneOutcome, StoreError> {
        prune::prune(&self.reads, policy).await
    }

    async fn log_start(&self) -> Result<LogStart, StoreError> {
        prune::load_log_start(&self.reads).await
    }

    async fn committed_head(&self) -> Result<Position, StoreError> {
        let head: i64 = sqlx::query_scalar("SELECT position FROM log_head")
            .fetch_one(&self.reads)
            .await?;
        Ok(Position(head as u64))
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
        let p: Option<i64> = sqlx::query_scalar("SELECT position FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reads)
            .await?;
        Ok(p.map(|p| Position(p as u64)))
    }

    async fn branches(&self) -> Result<Vec<Branch>, StoreError> {
        self.all("SELECT * FROM branches ORDER BY name", rows::branch)
            .await
    }

    async fn branch(&self, name: &str) -> Result<Option<Branch>, StoreError> {
        self.one("SELECT * FROM branches WHERE name = $1", name, rows::branch)
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
        self.one("SELECT * FROM accounts WHERE id = $1", id, rows::account)
            .await
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.one(
            "SELECT * FROM accounts WHERE name = $1",
            name,
            rows::account,
        )
        .await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.one(
            "SELECT * FROM api_tokens WHERE token_hash = $1",
            token_hash,
            rows::token,
        )
        .await
    }

    async fn token(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.one("SELECT * FROM api_tokens WHERE id = $1", id, rows::token)
            .await
    }

    async fn tokens_of(&self, account_id: &str) -> Result<Vec<ApiToken>, StoreError> {
        sqlx::query("SELECT * FROM api_tokens WHERE account_id = $1 AND NOT revoked ORDER BY id")
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
            "SELECT * FROM revoked_sessions WHERE session_id = $1",
            session_id,
            rows::revoked_session,
        )
        .await
    }

    async fn nodes(&self, kind: &str) -> Result<Vec<Node>, StoreError> {
        if kind.contains('\0') {
            return Ok(Vec::new());
        }
        sqlx::query("SELECT * FROM nodes WHERE kind = $1 ORDER BY name")
            .bind(kind)
            .fetch_all(&self.reads)
            .await?
            .iter()
            .map(rows::node)
            .collect()
    }

    async fn node(&self, id: &str) -> Result<Option<Node>, StoreError> {
        self.one("SELECT * FROM nodes WHERE id = $1", id, rows::node)
            .await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        if key.contains('\0') {
            return Ok(None);
        }
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
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
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            let _ = task.await;
        }
        self.listener.abort();
        self.reads.close().await;
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
