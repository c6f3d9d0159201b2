//! The infrastream server: axum routes for GraphQL over HTTP and the REST endpoints,
//! authentication, limits, first-start bootstrap, optional TLS and graceful shutdown. It wires
//! `store`, `graphql` and `auth` together; the binary (`crates/infrastream`) only parses flags
//! and calls [`Server::start`] and [`Server::serve`].

mod auth;
mod bootstrap;
mod cluster;
mod console;
mod data_dir;
mod graphiql;
mod graphql_http;
mod http_metrics;
mod ingest;
mod jwt_keys;
mod jwt_reload;
mod logging;
mod metrics;
mod probes;
mod reply;
mod retention;
mod routes;
mod schema;
mod storage;
mod tls;
mod ws;

pub use bootstrap::FirstStart;
pub use logging::{init_logging, init_logging_as};

use infrastream_auth::JwtKeys;
use infrastream_config::{Settings, StoreBackend};
use infrastream_graphql::{CredentialCache, InfraSchema, Services, build_schema};
use infrastream_store::postgres::{PostgresOptions, PostgresStore};
use infrastream_store::sqlite::{SqliteOptions, SqliteStore};
use infrastream_store::{Store, StoreError};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store could not be opened or failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A socket or file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The settings cannot be served.
    #[error("configuration: {0}")]
    Config(String),
}

/// Everything a request handler needs.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) services: Services,
    pub(crate) schema: InfraSchema,
    pub(crate) limits: Arc<ws::Limits>,
    /// Cancelled when the server shuts down; every WebSocket session watches it.
    pub(crate) shutdown: CancellationToken,
    /// The WebSocket sessions, so shutdown can wait for them to close.
    pub(crate) sessions: TaskTracker,
    /// Live delivery of `events` subscriptions.
    pub(crate) fanout: Arc<ws::Fanout>,
    /// Live delivery of `query` subscriptions.
    pub(crate) ticks: Arc<ws::TickFanout>,
    /// Keep-alive of every established WebSocket.
    pub(crate) keepalives: Arc<ws::KeepAlives>,
    /// Credentials of live sockets.
    pub(crate) watch: Arc<ws::CredentialWatch>,
    /// Which GraphQL schema runs a request: the built-in one, or the one of the kinds of a
    /// loaded schema (built and cached here).
    pub(crate) data_schemas: Arc<infrastream_graphql::data::DataSchemas>,
    /// Request counts and durations by route and status (`/metrics`).
    pub(crate) http_metrics: Arc<http_metrics::HttpMetrics>,
}

impl AppState {
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.services.domain.store
    }
    pub(crate) fn settings(&self) -> &Settings {
        &self.services.domain.settings
    }

    /// The 404 reply for a branch that does not exist (`main` always exists: it cannot be
    /// deleted, so the common case costs no store read).
    pub(crate) async fn refuse_unknown_branch(
        &self,
        branch: &str,
    ) -> Option<axum::response::Response> {
        if branch == infrastream_core::branch::DEFAULT_BRANCH {
            return None;
        }
        match self.store().branch(branch).await {
            Ok(Some(_)) => None,
            Ok(None) => Some(reply::error(&infrastream_core::Error::branch_not_found(
                branch,
            ))),
            Err(e) => {
                tracing::error!(error = %e, "store failure looking up a branch");
                Some(reply::error(&infrastream_core::Error::internal()))
            }
        }
    }
}

/// A started server: store open, bootstrap done, socket bound, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    first_start: FirstStart,
    /// The TLS configuration when `tls_cert` and `tls_key` are set.
    tls: Option<Arc<tls::Tls>>,
}

impl Server {
    /// Opens the store, runs first-start bootstrap and prepares the routes.
    pub async fn start(settings: Settings, listener: TcpListener) -> Result<Self, ServerError> {
        let tls = tls::Tls::from_settings(&settings)
            .map_err(ServerError::Config)?
            .map(Arc::new);
        if tls.is_none()
            && let Ok(addr) = listener.local_addr()
            && !addr.ip().is_loopback()
        {
            tracing::warn!(
                %addr,
                "serving plain HTTP beyond loopback: credentials and events cross the network \
                 unencrypted; set tls_cert and tls_key, or put a TLS proxy in front"
            );
        }
        let store: Arc<dyn Store> = match settings.store {
            StoreBackend::Sqlite => {
                data_dir::prepare(&settings.data_dir).map_err(ServerError::Config)?;
                let mut options = SqliteOptions::new(settings.data_dir.join(data_dir::DATABASE));
                options.fsync = settings.fsync;
                options.max_batch = settings.group_commit_max_batch;
                options.ready_probe_interval =
                    std::time::Duration::from_millis(settings.ready_probe_interval_ms);
                options.ready_probe_timeout =
                    std::time::Duration::from_millis(settings.ready_probe_timeout_ms);
                options.ready_probe_bytes = settings.ready_probe_bytes;
                let store = SqliteStore::open(options).await?;
                data_dir::restrict_database_files(&settings.data_dir)?;
                Arc::new(store)
            }
            StoreBackend::Postgres => {
                // Artifact content and repository mirrors still live in the data directory.
                data_dir::prepare(&settings.data_dir).map_err(ServerError::Config)?;
                let url = settings.database_url.clone().ok_or_else(|| {
                    ServerError::Config("store = \"postgres\" needs database_url".into())
                })?;
                let mut options = PostgresOptions::new(url);
                options.max_connections = settings.database_max_connections;
                options.max_batch = settings.group_commit_max_batch;
                options.poll_interval =
                    std::time::Duration::from_millis(settings.database_poll_interval_ms);
                options.connect_timeout =
                    std::time::Duration::from_millis(settings.database_connect_timeout_ms);
                options.ready_probe_interval =
                    std::time::Duration::from_millis(settings.ready_probe_interval_ms);
                options.ready_probe_timeout =
                    std::time::Duration::from_millis(settings.ready_probe_timeout_ms);
                options.ready_probe_bytes = settings.ready_probe_bytes;
                Arc::new(PostgresStore::open(options).await?)
            }
        };
        let shared = cluster::Shared::connect(&settings)
            .await
            .map_err(ServerError::Config)?;
        let passwords = Arc::new(infrastream_services::PasswordPool::from_settings(&settings));
        let boot = bootstrap::run(&store, &settings, &passwords).await?;
        let limits = Arc::new(ws::Limits::new(&settings));
        let credential_ttl = std::time::Duration::from_millis(settings.token_check_interval_ms);
        let bus = infrastream_bus::Bus::start(store.clone(), settings.event_tail_capacity);
        let metrics: Arc<infrastream_graphql::Metrics> = Arc::default();
        metrics.events_pruned_through.store(
            store.log_start().await?.pruned_through.0,
            std::sync::atomic::Ordering::Relaxed,
        );
        let shards = match settings.fanout_shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let fanout = Arc::new(ws::Fanout::start(&bus, shards, metrics.clone()));
        let ticks = Arc::new(ws::TickFanout::new(metrics.clone()));
        let renderers = Arc::new(infrastream_graphql::Renderers::new(
            settings.renderer_cache_events,
            settings.renderer_registry_sweep_threshold,
        ));
        let credentials = Arc::new(CredentialCache::new(
            credential_ttl,
            settings.credential_cache_max_entries,
        ));
        // Accounts and tokens changed by other servers sharing the store: verified again at
        // once, like changes made here (the cache is cleared and live sockets re-checked).
        if let Some(mut changes) = store.credential_changes() {
            let credentials = credentials.clone();
            tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    credentials.clear();
                }
            });
        }
        let login_throttle = Arc::new(infrastream_services::LoginThrottle::new(&settings));
        let domain = infrastream_services::Services {
            bus,
            store,
            settings: Arc::new(settings),
            jwt: Arc::new(JwtKeys::with_ring(boot.jwt)),
            deployment_id: boot.deployment_id.clone(),
            credentials,
            locks: shared.locks.clone(),
            objects: shared.objects.clone(),
            queries: Default::default(),
            passwords,
            login_throttle,
        };
        let services = Services {
            domain,
            metrics,
            query_hub: Arc::default(),
            renderers,
        };
        let schema = build_schema(services.clone());
        let data_schemas = Arc::new(infrastream_graphql::data::DataSchemas::new(&schema).await);
        services
            .query_hub
            .set_data(data_schemas.clone(), services.domain.clone());
        let state = AppState {
            services,
            schema,
            data_schemas,
            limits,
            shutdown: CancellationToken::new(),
            sessions: TaskTracker::new(),
            fanout,
            ticks,
            keepalives: Arc::new(ws::KeepAlives::new()),
            watch: Arc::default(),
            http_metrics: Arc::default(),
        };
        tokio::spawn(state.watch.clone().run(state.clone()));
        jwt_reload::spawn(&state);
        tokio::spawn(state.keepalives.clone().run(
            std::time::Duration::from_millis(state.settings().ws_keepalive_interval_ms),
            state.shutdown.clone(),
        ));
        if let Some(tls) = &tls {
            tls::reload_on_hangup(tls.clone(), state.shutdown.clone())?;
        }
        Ok(Self {
            listener,
            state,
            first_start: boot.first_start,
            tls,
        })
    }

    /// `https` when the server speaks TLS (`tls_cert`, `tls_key`), else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Secrets generated on this start (to be shown once), if any.
    pub fn first_start(&self) -> &FirstStart {
        &self.first_start
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and closes the store.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let app = routes::router(self.state.clone());
        let token = self.state.shutdown.clone();
        let repository_sync = infrastream_services::repositories::spawn_periodic_repository_sync(
            self.state.services.domain.clone(),
            token.clone(),
        );
        let retention = retention::spawn(&self.state);
        // Outgoing webhooks, delivered from the log (docs/webhooks.md).
        let webhooks = infrastream_services::webhooks::spawn(
            self.state.services.domain.clone(),
            token.clone(),
        );
        let drain =
            std::time::Duration::from_millis(self.state.settings().shutdown_http_drain_timeout_ms);
        let result = serve_http(
            self.listener,
            app,
            self.tls,
            token.clone(),
            drain,
            async move {
                shutdown.await;
                // WebSocket sessions are detached from hyper: tell them to close with 1001.
                token.cancel();
            },
        )
        .await;
        self.state.shutdown.cancel();
        self.state.sessions.close();
        let s = self.state.settings().clone();
        let sessions_wait = std::time::Duration::from_millis(s.shutdown_sessions_timeout_ms);
        if tokio::time::timeout(sessions_wait, self.state.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_ms = s.shutdown_sessions_timeout_ms,
                "some WebSocket sessions did not close within shutdown_sessions_timeout_ms"
            );
        }
        // An interrupted periodic sync still commits its `sync_completed` (failed).
        if let Some(task) = repository_sync
            && tokio::time::timeout(
                std::time::Duration::from_millis(s.shutdown_repository_sync_timeout_ms),
                task,
            )
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_ms = s.shutdown_repository_sync_timeout_ms,
                "the periodic repository sync did not stop within shutdown_repository_sync_timeout_ms"
            );
        }
        // The webhook engine stops at the cancellation (an attempt in progress is abandoned:
        // its delivery stays pending and is made again).
        let _ = webhooks.await;
        // The pruning task stops at the cancellation, between two of its transactions.
        if let Some(task) = retention {
            let _ = task.await;
        }
        self.state.store().close().await;
        tracing::info!("server stopped");
        result
    }
}

/// Serves HTTP/1.1 with upgrades until `shutdown` resolves, then lets in-flight requests
/// finish. Response header names are sent title-cased (`Content-Type`), and the WebSocket
/// upgrade answer spells the headers the client sent as the client spelled them
/// (`Sec-WebSocket-Protocol`), because some clients (Python `gql`) compare them
/// case-sensitively. TCP_NODELAY is set on every connection: frames are written whole, and
/// Nagle's algorithm would hold back the next one for up to 40 ms. With `tls`, each
/// connection's handshake runs in the connection's own task.
async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<tls::Tls>>,
    stop: CancellationToken,
    drain: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    use hyper_util::rt::TokioIo;
    let connections = TaskTracker::new();
    tokio::spawn(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(tls) = tls else {
                return serve_connection(TokioIo::new(stream), peer, app, stop, drain).await;
            };
            let handshake = tokio::select! {
                s = tls::handshake(&tls, stream, peer) => s,
                _ = stop.cancelled() => return,
            };
            if let Some(stream) = handshake {
                serve_connection(TokioIo::new(stream), peer, app, stop, drain).await;
            }
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Serves HTTP/1.1 with upgrades on one connection (TCP, or TLS over TCP) until it ends or
/// the server stops; then the in-flight request gets `drain` to finish.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: axum::Router,
    stop: CancellationToken,
    drain: std::time::Duration,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .title_case_headers(true)
        // Records the request's header-name cases, so the 101 answer can echo
        // `Sec-WebSocket-Protocol` exactly as the client wrote it (see `ws::upgrade`).
        .preserve_header_case(true)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
            return;
        }
        _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(drain, conn).await;
}

/// Binds the listening socket of `settings.listen` with `settings.listen_backlog` pending
/// connections (the standard library's 128 drops SYNs when thousands of clients connect at
/// once).
pub async fn bind(settings: &Settings) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(&settings.listen).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(settings.listen_backlog))
        {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// Starts and serves until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    Server::start(settings, listener)
        .await?
        .serve(shutdown)
        .await
}
