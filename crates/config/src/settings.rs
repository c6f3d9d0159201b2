//! Every setting, declared once: documentation, key, type, default and flags (see
//! [`declare_settings!`]). `--help`, docs/settings.md, layering and validation are derived
//! from these declarations; the order here is the order of `--help` and the reference.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::redact::redact_database_url;
use crate::{IntervalUnit, LogFormat, StoreBackend};

declare_settings! {
    "subscriptions.";
    /// Settings of GraphQL subscriptions (`[subscriptions]` in the file).
    #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct SubscriptionSettings {
        /// Unit of the `interval` argument of polling subscriptions.
        interval_unit: IntervalUnit = IntervalUnit::Milliseconds;
        /// Smallest accepted polling interval, in milliseconds; smaller requests are raised
        /// to it.
        min_interval_ms: u64 = 100, at_least_one;
        /// Polling interval in milliseconds when a subscription gives none.
        default_interval_ms: u64 = 1000, at_least_one;
        /// Frames a WebSocket connection may have queued unsent (its client is not reading
        /// what live subscriptions produce) before it is closed with 1013, telling the client
        /// to resubscribe with `after`. Replay from an old `after` is never refused: it runs
        /// at the client's pace. Bounds the memory of a stalled connection.
        lag_close_threshold: u64 = 4096, at_least_one;
    }
}

declare_settings! {
    "webhooks.";
    /// Settings of outgoing webhooks (`[webhooks]` in the file). See docs/webhooks.md.
    #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct WebhookSettings {
        /// Whether webhooks may be delivered to loopback, link-local and private addresses
        /// (127.0.0.0/8, ::1, 169.254.0.0/16, fe80::/10, 10.0.0.0/8, 172.16.0.0/12,
        /// 192.168.0.0/16, fc00::/7, …). Off by default: a webhook URL must not reach into
        /// the server's own network unless the operator says so.
        allow_private_destinations: bool = false;
        /// Milliseconds one delivery attempt may take (connect, send, answer) before it
        /// counts as failed.
        timeout_ms: u64 = 10_000, at_least_one;
        /// Attempts per delivery before it is dead-lettered (the first one included).
        max_attempts: u32 = 15, at_least_one;
        /// Delay before the first retry, in milliseconds; each further retry waits twice as
        /// long (with jitter), up to `retry_max_ms`.
        retry_base_ms: u64 = 1_000, at_least_one;
        /// Longest delay between two attempts, in milliseconds (default one hour); a
        /// `Retry-After` answer is honoured up to this bound.
        retry_max_ms: u64 = 3_600_000, at_least_one;
        /// Webhooks delivered to at the same time (each webhook's deliveries stay in log
        /// order).
        concurrency: u32 = 16, at_least_one;
        /// PEM bundle of the certificate authorities trusted for `https://` webhook URLs.
        /// Unset: `SSL_CERT_FILE`, else the system's bundle
        /// (`/etc/ssl/certs/ca-certificates.crt`). A webhook with `validate_certificates`
        /// false skips the check.
        ca_file: Option<String> = None;
    }
}

declare_settings! {
    "";
    /// All settings of the server; see [`settings_help`](crate::settings_help) or
    /// docs/settings.md for the list with defaults and environment variables. `Debug` never
    /// shows a secret.
    // Serialization includes the secrets: it exists for layering (`load`), never for display.
    #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    pub struct Settings {
        /// Address (IP:port) the HTTP and WebSocket server listens on.
        listen: String = "127.0.0.1:8000".to_owned();
        /// Directory of the embedded store (with `store = "sqlite"`, which keeps the server's
        /// signing secret in it), of artifact content and of repository mirrors.
        data_dir: PathBuf = PathBuf::from("./infrastream-data");
        /// Pending connections the listening socket queues before the server accepts them
        /// (the kernel caps it at `net.core.somaxconn`).
        listen_backlog: u32 = 4096, at_least_one;
        /// Storage backend: `sqlite` (one embedded database file in `data_dir`, for one
        /// server) or `postgres` (the PostgreSQL database at `database_url`, shared by any
        /// number of servers, which all see one event log; `data_dir` still holds artifact
        /// content and repository mirrors).
        store: StoreBackend = StoreBackend::Sqlite;
        /// Database URL, required when `store = "postgres"`
        /// (`postgres://user:password@host:port/database`). This build connects without TLS:
        /// keep the database on loopback or a trusted network. Its password is never shown.
        database_url: Option<String> = None, secret(redact_database_url);
        /// Connections each server keeps in its PostgreSQL read pool (`store = "postgres"`);
        /// it opens one more for its writer and one to listen for other servers' commits.
        database_max_connections: u32 = 10, at_least_one;
        /// Milliseconds between reads of the shared log when no notification arrived
        /// (`store = "postgres"`): the longest an event committed by another server waits if
        /// its notification is lost (notifications normally deliver it at once).
        database_poll_interval_ms: u64 = 1000, at_least_one;
        /// Milliseconds a server waits for a PostgreSQL connection (`store = "postgres"`): to
        /// open one, or for a free one of its pool when all are busy; past it the request
        /// fails instead of hanging while the database is unreachable.
        database_connect_timeout_ms: u64 = 5000, at_least_one;
        /// Whether every commit is flushed to stable storage before it is acknowledged
        /// (SQLite; a PostgreSQL server's durability is its own, `synchronous_commit`).
        fsync: bool = true;
        /// Most writes committed together in one group commit.
        group_commit_max_batch: usize = 1024, at_least_one;
        /// Milliseconds the outcome of the store's last commit answers `/ready`; when the
        /// last commit is older (or failed longer ago), `/ready` commits a probe (one
        /// metadata row rewritten): at most one probe per interval, however often `/ready`
        /// is polled.
        ready_probe_interval_ms: u64 = 1000, at_least_one;
        /// Milliseconds `/ready` waits for its probe commit before answering 503.
        ready_probe_timeout_ms: u64 = 5000, at_least_one;
        /// Bytes a readiness probe commits (one metadata row, rewritten in place): the
        /// server is ready while a change of this size fits. A tiny probe would still fit in
        /// the room a refused, larger change left behind on a full disk; at most 16 MiB.
        ready_probe_bytes: usize = 65_536, at_least_one;
        /// API token given to the `admin` account on first start (random if unset).
        initial_admin_token: Option<String> = None, secret;
        /// Password given to the `admin` account on first start (random if unset).
        initial_admin_password: Option<String> = None, secret;
        /// JWT signing secret (at least 32 bytes), for deployments that manage their secrets;
        /// unset, the server generates one at first start and keeps it in its data directory.
        /// Changing it invalidates every JWT issued before; to rotate keys without that, use
        /// `jwt_secret_file`.
        jwt_secret: Option<String> = None, secret;
        /// File holding the JWT signing keys, one per line (each at least 32 bytes; blank
        /// lines and lines starting with `#` are ignored, surrounding white space is trimmed),
        /// instead of `jwt_secret`: the first key signs new tokens, every key verifies the
        /// tokens it signed. Re-read on SIGHUP. It must not be readable by group or others.
        jwt_secret_file: Option<String> = None;
        /// PEM file of the TLS certificate chain (the server's certificate first); with
        /// `tls_key`, the server speaks HTTPS and WSS only. Unset (the default), it speaks
        /// plain HTTP. Re-read with `tls_key` on SIGHUP.
        tls_cert: Option<String> = None;
        /// PEM file of the TLS private key (PKCS#8, PKCS#1/RSA or SEC1) matching `tls_cert`;
        /// it must not be readable by group or others.
        tls_key: Option<String> = None;
        /// Milliseconds a new connection has to complete its TLS handshake before it is
        /// dropped.
        tls_handshake_timeout_ms: u64 = 10_000, at_least_one;
        /// Whether requests without credentials get a read-only session.
        allow_anonymous_access: bool = false;
        /// Lifetime of JWT access tokens, in seconds.
        access_token_lifetime_secs: u64 = 3600, at_least_one;
        /// Lifetime of JWT refresh tokens, in seconds (the default is 30 days).
        refresh_token_lifetime_secs: u64 = 2_592_000, at_least_one;
        /// Largest accepted HTTP request body, in bytes.
        max_body_bytes: usize = 1_048_576, at_least_one;
        /// Deepest accepted GraphQL query nesting.
        max_query_depth: usize = 24, at_least_one;
        /// Highest accepted GraphQL query complexity.
        max_query_complexity: usize = 20_000, at_least_one;
        /// Deepest recursion allowed while parsing a GraphQL document.
        max_query_recursion: usize = 64, at_least_one;
        /// `InfrahubEvent` page size when the query gives no `limit`.
        event_page_default: u32 = 10, at_least_one;
        /// Largest accepted `InfrahubEvent` page size.
        event_page_max: u32 = 50, at_least_one;
        /// Most simultaneous WebSocket connections.
        max_connections: usize = 20_000, at_least_one;
        /// Most simultaneous WebSocket connections of one account.
        max_connections_per_account: usize = 10_000, at_least_one;
        /// Most active subscriptions on one connection.
        max_subscriptions_per_connection: usize = 100, at_least_one;
        /// Most active subscriptions of one account, over all its connections.
        max_subscriptions_per_account: usize = 250_000, at_least_one;
        /// Largest accepted WebSocket message, in bytes.
        ws_max_message_bytes: usize = 1_048_576, at_least_one;
        /// Milliseconds a new WebSocket has to send `connection_init`.
        ws_init_timeout_ms: u64 = 3000, at_least_one;
        /// Milliseconds between keep-alive messages on idle WebSockets.
        ws_keepalive_interval_ms: u64 = 10_000, at_least_one;
        /// Milliseconds a WebSocket may hold unsent frames without the client reading any
        /// before it is closed. A closing socket also gets this long to send what was queued
        /// before its close frame.
        ws_write_timeout_ms: u64 = 10_000, at_least_one;
        /// Milliseconds a closing WebSocket waits for the client's close reply once its own
        /// close frame is sent (its input is read and discarded meanwhile).
        ws_close_reply_wait_ms: u64 = 1000, at_least_one;
        /// Milliseconds a WebSocket refused during protocol negotiation gets to send its
        /// close frame before it is dropped.
        ws_refusal_close_timeout_ms: u64 = 1000, at_least_one;
        /// Fan-out shards writing live `events` frames; 0 = one per CPU core.
        fanout_shards: usize = 0;
        /// New connections accepted per second per client IP address; 0 = unlimited.
        connection_rate_per_address: u32 = 10_000;
        /// Milliseconds a verified credential is cached (changes made through this server
        /// apply at once and re-check every live socket).
        token_check_interval_ms: u64 = 250, at_least_one;
        /// Most verified credentials cached at once; when it is full the cache is emptied
        /// before the next one is added.
        credential_cache_max_entries: usize = 100_000, at_least_one;
        /// Threads that compute Argon2 password hashes (logins, account creation, password
        /// changes); 0 = one per CPU core. Each hash holds about 19 MiB while it runs, so this
        /// bounds the memory and CPU that password checks take, whatever the request rate.
        password_hash_threads: usize = 0;
        /// Password hashes that may wait for a free hashing thread. A login that finds this
        /// many waiting is refused at once (429 with `Retry-After`); account changes wait for
        /// room instead. Half of it is kept for logins from addresses where a login succeeded
        /// recently (within `refresh_token_lifetime_secs`) and none failed since.
        password_hash_queue: usize = 32, at_least_one;
        /// Failed logins for one account name from one client address before each further
        /// failure of that pair backs off. The owner of an account is never locked out from
        /// another address by failures from this one.
        login_failures_before_backoff: u32 = 5;
        /// Failed logins from one client address (any account names; IPv6 counted per /64)
        /// before each further failure from it backs off.
        login_address_failures_before_backoff: u32 = 20;
        /// Backoff after the first failure past an allowance, in milliseconds; it doubles
        /// with each further failure. While it runs, logins from that address (or for that
        /// account from that address) are refused with 429 and `Retry-After`, without checking
        /// the password.
        login_backoff_base_ms: u64 = 1000, at_least_one;
        /// Longest login backoff, in milliseconds. A record with no failure for this long
        /// after its backoff ended is forgotten.
        login_backoff_max_ms: u64 = 60_000, at_least_one;
        /// Most records kept by each login table (failures per address, failures per account
        /// and address, trusted addresses); when one is full, forgotten records go first,
        /// then, among a sample, the one whose backoff ends soonest (the oldest trust).
        login_throttle_max_entries: usize = 100_000, at_least_one;
        /// Most recent events kept in memory for subscribers (older ones are read from the
        /// store).
        event_tail_capacity: usize = 65_536, at_least_one;
        /// Seconds an event is kept in the event log: older events are pruned (they
        /// disappear from `InfrahubEvent`, and a subscription resuming from one gets
        /// `CURSOR_PRUNED`). 0 = keep events forever. At most 100 years.
        retention_max_age_secs: u64 = 0;
        /// Most events kept in the event log: the oldest beyond this many are pruned. 0 = no
        /// count limit. With both limits set, an event goes when either says so.
        retention_max_events: u64 = 0;
        /// Seconds between two prunes of the event log when `retention_max_age_secs` or
        /// `retention_max_events` is set (the first runs at start). Between two prunes the
        /// log may exceed its limits by what was committed meanwhile.
        retention_interval_secs: u64 = 60, at_least_one;
        /// Rendered `events` payloads kept per subscribed document (the most recent events),
        /// so that every subscriber of the same document shares one rendering.
        renderer_cache_events: usize = 1024, at_least_one;
        /// Documents registered with the shared `events` renderer above which renderers no
        /// longer subscribed to are swept from the registry (when the next one is added).
        renderer_registry_sweep_threshold: usize = 1024, at_least_one;
        /// Format of the log lines written to stderr: `text` (human-readable, coloured on a
        /// terminal) or `json` (one JSON object per line: `timestamp`, `level`, `target`,
        /// `fields` with the message and the event's fields, `span` and `spans` with the
        /// fields of the spans it happened in). `RUST_LOG` filters either (default `info`). See
        /// docs/monitoring.md.
        log_format: LogFormat = LogFormat::Text;
        /// Bearer token that `GET /metrics` requires when set (`Authorization: Bearer
        /// <token>`); any credential the rest of the API accepts (an API token, a JWT) is
        /// accepted too. Unset, `/metrics` is open to anyone who can reach the server. See
        /// docs/monitoring.md.
        metrics_token: Option<String> = None, secret;
        /// Subscription settings (`[subscriptions]`).
        subscriptions: SubscriptionSettings = SubscriptionSettings::default(), section;
        /// Outgoing webhook settings (`[webhooks]`).
        webhooks: WebhookSettings = WebhookSettings::default(), section;
        /// Key with which Infrahub signs the webhooks it sends to `POST
        /// /api/ingest/infrahub` (its webhook's `shared_key`). Unset (the default), the
        /// endpoint refuses every request. See docs/companion.md.
        ingest_infrahub_key: Option<String> = None, secret;
        /// Seconds between automatic syncs of Git repositories; 0 = off.
        repository_sync_interval_secs: u64 = 0;
        /// Seconds a `git` fetch (or first clone) of a repository may take before it is
        /// stopped and the sync fails.
        git_fetch_timeout_secs: u64 = 600, at_least_one;
        /// Seconds a local `git` command (init, for-each-ref, …) may take before it is
        /// stopped and the sync fails.
        git_local_timeout_secs: u64 = 60, at_least_one;
        /// Instructions one artifact template rendering may execute before it is stopped
        /// with an error (a template cannot keep a server thread busy forever).
        artifact_template_fuel: u64 = 20_000_000, at_least_one;
        /// Most targets one artifact generation request may name; 0 = unlimited.
        artifact_max_targets_per_request: usize = 0;
        /// Milliseconds, at shutdown, that open WebSocket sessions get to close (1001)
        /// before the server stops without them.
        shutdown_sessions_timeout_ms: u64 = 10_000, at_least_one;
        /// Milliseconds, at shutdown, that a running periodic repository sync gets to stop
        /// and record its outcome.
        shutdown_repository_sync_timeout_ms: u64 = 10_000, at_least_one;
        /// Milliseconds, at shutdown, that each HTTP connection gets to finish its
        /// in-flight request.
        shutdown_http_drain_timeout_ms: u64 = 10_000, at_least_one;
        /// Milliseconds, at shutdown, that a closing WebSocket gets to send what was queued
        /// before its close frame (at most `ws_write_timeout_ms`).
        shutdown_ws_linger_ms: u64 = 1000, at_least_one;
        /// Milliseconds, at shutdown, that a closing WebSocket waits for the client's close
        /// reply.
        shutdown_ws_close_reply_wait_ms: u64 = 250, at_least_one;
    }
}
