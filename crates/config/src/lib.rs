//! Settings of the infrastream server and how they are layered: built-in defaults, then a TOML
//! file, then `INFRASTREAM_*` environment variables, then command-line overrides. Unknown keys
//! are errors in every layer, values are checked against each setting's type before they are
//! merged so errors name the setting and where it came from, and the result is validated as a
//! whole. This crate reads no files other than the one it is given and no environment other
//! than the variables it is handed; the binary gathers them, and the server consumes
//! [`Settings`]. Secrets (initial admin credentials, the database password) never appear in
//! `Debug` output or in error messages.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Prefix of every environment variable that sets a setting.
pub const ENV_PREFIX: &str = "INFRASTREAM_";

/// `INFRASTREAM_*` environment variables that are not settings and are therefore ignored by
/// [`load`] instead of being rejected as unknown (e.g. a variable read by the binary itself).
pub const NON_SETTING_ENV_VARS: &[&str] = &[];

/// Storage backend of the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded SQLite database in `data_dir`.
    Sqlite,
    /// PostgreSQL server at `database_url`.
    Postgres,
}

/// Unit of the `interval` argument of polling subscriptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalUnit {
    /// `interval` counts milliseconds.
    Milliseconds,
    /// `interval` counts seconds.
    Seconds,
}

/// Settings of GraphQL subscriptions (`[subscriptions]` in the file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionSettings {
    /// Unit of the `interval` argument of polling subscriptions; default `milliseconds`.
    pub interval_unit: IntervalUnit,
    /// Smallest accepted polling interval in milliseconds (smaller requests are raised to
    /// it); default 100.
    pub min_interval_ms: u64,
    /// Polling interval in milliseconds when a subscription gives none; default 1000.
    pub default_interval_ms: u64,
    /// Frames a WebSocket connection may have queued unsent (its client is not reading what
    /// live subscriptions produce) before it is closed with 1013, telling the client to
    /// resubscribe with `after`. Replay from an old `after` is never refused: it runs at the
    /// client's pace. Bounds the memory of a stalled connection; default 4096.
    pub lag_close_threshold: u64,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            interval_unit: IntervalUnit::Milliseconds,
            min_interval_ms: 100,
            default_interval_ms: 1000,
            lag_close_threshold: 4096,
        }
    }
}

/// All settings of the server; see [`settings_help`] for the list with defaults.
// Serialization includes the secrets: it exists for layering (`load`), never for display.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address (IP:port) the HTTP and WebSocket server listens on; default `127.0.0.1:8000`.
    pub listen: String,
    /// Directory of the embedded store and the persisted server secret; default
    /// `./infrastream-data`.
    pub data_dir: PathBuf,
    /// Pending connections the listening socket queues before the server accepts them (the
    /// kernel caps it at `net.core.somaxconn`); default 4096.
    pub listen_backlog: u32,
    /// Storage backend, `sqlite` or `postgres`; default `sqlite`.
    pub store: StoreBackend,
    /// Database URL, required when `store = "postgres"`; default unset.
    pub database_url: Option<String>,
    /// Whether every commit is flushed to stable storage before it is acknowledged; default
    /// true.
    pub fsync: bool,
    /// Most writes committed together in one group commit; default 1024.
    pub group_commit_max_batch: usize,
    /// API token given to the `admin` account on first start instead of a random one;
    /// default unset.
    pub initial_admin_token: Option<String>,
    /// Password given to the `admin` account on first start instead of a random one;
    /// default unset.
    pub initial_admin_password: Option<String>,
    /// Whether requests without credentials get a read-only session; default false.
    pub allow_anonymous_access: bool,
    /// Lifetime of JWT access tokens in seconds; default 3600.
    pub access_token_lifetime_secs: u64,
    /// Lifetime of JWT refresh tokens in seconds; default 2592000 (30 days).
    pub refresh_token_lifetime_secs: u64,
    /// Largest accepted HTTP request body in bytes; default 1048576.
    pub max_body_bytes: usize,
    /// Deepest accepted GraphQL query nesting; default 24.
    pub max_query_depth: usize,
    /// Highest accepted GraphQL query complexity; default 20000.
    pub max_query_complexity: usize,
    /// Deepest recursion allowed while parsing a GraphQL document; default 64.
    pub max_query_recursion: usize,
    /// `InfrahubEvent` page size when the query gives no `limit`; default 10.
    pub event_page_default: u32,
    /// Largest accepted `InfrahubEvent` page size; default 50.
    pub event_page_max: u32,
    /// Most simultaneous WebSocket connections; default 20000.
    pub max_connections: usize,
    /// Most simultaneous WebSocket connections of one account; default 10000.
    pub max_connections_per_account: usize,
    /// Most active subscriptions on one connection; default 100.
    pub max_subscriptions_per_connection: usize,
    /// Most active subscriptions of one account over all its connections; default 250000.
    pub max_subscriptions_per_account: usize,
    /// Largest accepted WebSocket message in bytes; default 1048576.
    pub ws_max_message_bytes: usize,
    /// Milliseconds a new WebSocket has to send `connection_init`; default 3000.
    pub ws_init_timeout_ms: u64,
    /// Milliseconds between keep-alive messages on idle WebSockets; default 10000.
    pub ws_keepalive_interval_ms: u64,
    /// Milliseconds a WebSocket may hold unsent frames without the client reading any before
    /// it is closed; default 10000.
    pub ws_write_timeout_ms: u64,
    /// Fan-out shards writing live `events` frames, 0 = one per CPU core; default 0.
    pub fanout_shards: usize,
    /// New connections accepted per second per client IP address, 0 = unlimited; default
    /// 10000.
    pub connection_rate_per_address: u32,
    /// Milliseconds a verified credential is cached (changes made through this server apply
    /// at once and re-check every live socket); default 250.
    pub token_check_interval_ms: u64,
    /// Most recent events kept in memory for subscribers (older ones are read from the
    /// store); default 65536.
    pub event_tail_capacity: usize,
    /// Subscription settings (`[subscriptions]`).
    pub subscriptions: SubscriptionSettings,
    /// Seconds between automatic syncs of Git repositories, 0 = off; default 0.
    pub repository_sync_interval_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8000".to_owned(),
            data_dir: PathBuf::from("./infrastream-data"),
            listen_backlog: 4096,
            store: StoreBackend::Sqlite,
            database_url: None,
            fsync: true,
            group_commit_max_batch: 1024,
            initial_admin_token: None,
            initial_admin_password: None,
            allow_anonymous_access: false,
            access_token_lifetime_secs: 3600,
            refresh_token_lifetime_secs: 2_592_000,
            max_body_bytes: 1_048_576,
            max_query_depth: 24,
            max_query_complexity: 20_000,
            max_query_recursion: 64,
            event_page_default: 10,
            event_page_max: 50,
            max_connections: 20_000,
            max_connections_per_account: 10_000,
            max_subscriptions_per_connection: 100,
            max_subscriptions_per_account: 250_000,
            ws_max_message_bytes: 1_048_576,
            ws_init_timeout_ms: 3000,
            ws_keepalive_interval_ms: 10_000,
            ws_write_timeout_ms: 10_000,
            fanout_shards: 0,
            connection_rate_per_address: 10_000,
            token_check_interval_ms: 250,
            event_tail_capacity: 65_536,
            subscriptions: SubscriptionSettings::default(),
            repository_sync_interval_secs: 0,
        }
    }
}

/// Text shown instead of a secret.
const REDACTED: &str = "<redacted>";

/// Wrapper whose `Debug` prints a fixed placeholder instead of the value.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `database_url` with any password (URL userinfo, `password=` parameter) replaced.
pub fn redact_database_url(url: &str) -> String {
    let mut out = url.to_owned();
    // scheme://user:password@host/...
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let auth_end = out[auth_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..auth_end].rfind('@') {
            let userinfo = auth_start..auth_start + at;
            if let Some(colon) = out[userinfo.clone()].find(':') {
                out.replace_range(userinfo.start + colon + 1..userinfo.end, REDACTED);
            }
        }
    }
    // ?password=... in URLs, or password=... in key/value connection strings.
    let lower = out.to_ascii_lowercase();
    let mut result = String::with_capacity(out.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(i) = lower[search..].find("password=") {
        let start = search + i;
        let boundary = start == 0 || matches!(lower.as_bytes()[start - 1], b'?' | b'&' | b' ');
        let value_start = start + "password=".len();
        let value_end = out[value_start..]
            .find(['&', ' ', '#'])
            .map_or(out.len(), |j| value_start + j);
        if boundary {
            result.push_str(&out[rest..value_start]);
            result.push_str(REDACTED);
            rest = value_end;
        }
        search = value_end.max(value_start);
    }
    result.push_str(&out[rest..]);
    result
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Exhaustive destructuring: a new field fails to compile here until it is listed
        // (and someone decided whether it is a secret).
        let Settings {
            listen,
            data_dir,
            listen_backlog,
            store,
            database_url,
            fsync,
            group_commit_max_batch,
            initial_admin_token,
            initial_admin_password,
            allow_anonymous_access,
            access_token_lifetime_secs,
            refresh_token_lifetime_secs,
            max_body_bytes,
            max_query_depth,
            max_query_complexity,
            max_query_recursion,
            event_page_default,
            event_page_max,
            max_connections,
            max_connections_per_account,
            max_subscriptions_per_connection,
            max_subscriptions_per_account,
            ws_max_message_bytes,
            ws_init_timeout_ms,
            ws_keepalive_interval_ms,
            ws_write_timeout_ms,
            fanout_shards,
            connection_rate_per_address,
            token_check_interval_ms,
            event_tail_capacity,
            subscriptions,
            repository_sync_interval_secs,
        } = self;
        f.debug_struct("Settings")
            .field("listen", listen)
            .field("data_dir", data_dir)
            .field("listen_backlog", listen_backlog)
            .field("store", store)
            .field(
                "database_url",
                &database_url.as_deref().map(redact_database_url),
            )
            .field("fsync", fsync)
            .field("group_commit_max_batch", group_commit_max_batch)
            .field(
                "initial_admin_token",
                &initial_admin_token.as_ref().map(|_| Redacted),
            )
            .field(
                "initial_admin_password",
                &initial_admin_password.as_ref().map(|_| Redacted),
            )
            .field("allow_anonymous_access", allow_anonymous_access)
            .field("access_token_lifetime_secs", access_token_lifetime_secs)
            .field("refresh_token_lifetime_secs", refresh_token_lifetime_secs)
            .field("max_body_bytes", max_body_bytes)
            .field("max_query_depth", max_query_depth)
            .field("max_query_complexity", max_query_complexity)
            .field("max_query_recursion", max_query_recursion)
            .field("event_page_default", event_page_default)
            .field("event_page_max", event_page_max)
            .field("max_connections", max_connections)
            .field("max_connections_per_account", max_connections_per_account)
            .field(
                "max_subscriptions_per_connection",
                max_subscriptions_per_connection,
            )
            .field(
                "max_subscriptions_per_account",
                max_subscriptions_per_account,
            )
            .field("ws_max_message_bytes", ws_max_message_bytes)
            .field("ws_init_timeout_ms", ws_init_timeout_ms)
            .field("ws_keepalive_interval_ms", ws_keepalive_interval_ms)
            .field("ws_write_timeout_ms", ws_write_timeout_ms)
            .field("fanout_shards", fanout_shards)
            .field("connection_rate_per_address", connection_rate_per_address)
            .field("token_check_interval_ms", token_check_interval_ms)
            .field("event_tail_capacity", event_tail_capacity)
            .field("subscriptions", subscriptions)
            .field(
                "repository_sync_interval_secs",
                repository_sync_interval_secs,
            )
            .finish()
    }
}

/// Why settings could not be loaded; messages name the file, key or variable, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// Path of the file.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("config file {} is not valid TOML (line {line}, column {column}): {reason}", path.display())]
    Parse {
        /// Path of the file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        reason: String,
    },
    /// A key that is not a setting.
    #[error("unknown setting `{key}` in {origin} (see `infrastream serve --help`)")]
    UnknownKey {
        /// Dotted key as written.
        key: String,
        /// Where it came from (file, environment variable, command line).
        origin: String,
    },
    /// An `INFRASTREAM_*` environment variable that is not a setting.
    #[error(
        "unknown environment variable {name}: not an infrastream setting (see `infrastream serve --help`)"
    )]
    UnknownEnv {
        /// Name of the variable.
        name: String,
    },
    /// A value of the wrong type or out of range for its setting.
    #[error("invalid value for `{key}` in {origin}: {reason}")]
    InvalidValue {
        /// Dotted key of the setting.
        key: String,
        /// Where the value came from.
        origin: String,
        /// What was expected.
        reason: String,
    },
    /// The merged settings are inconsistent or out of range.
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        /// Dotted key of the offending setting.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "CONFIG_READ",
            ConfigError::Parse { .. } => "CONFIG_PARSE",
            ConfigError::UnknownKey { .. } => "CONFIG_UNKNOWN_KEY",
            ConfigError::UnknownEnv { .. } => "CONFIG_UNKNOWN_ENV",
            ConfigError::InvalidValue { .. } => "CONFIG_INVALID_VALUE",
            ConfigError::Invalid { .. } => "CONFIG_INVALID",
        }
    }
}

/// Type of a setting's value, used to check and parse values before merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Any string (also paths and optional strings).
    Str,
    /// `true` or `false`.
    Bool,
    /// Non-negative integer up to the given maximum.
    UInt(u64),
    /// One of the given strings.
    Enum(&'static [&'static str]),
}

impl Kind {
    /// Human description for `--help` and errors.
    fn describe(self) -> String {
        match self {
            Kind::Str => "a string".to_owned(),
            Kind::Bool => "a boolean (true or false)".to_owned(),
            Kind::UInt(max) if max == u64::from(u32::MAX) => {
                format!("an integer from 0 to {max}")
            }
            Kind::UInt(_) => "a non-negative integer".to_owned(),
            Kind::Enum(names) => format!("one of {}", names.join(", ")),
        }
    }
}

/// Largest value of a `u32` setting.
const U32: Kind = Kind::UInt(u32::MAX as u64);
/// Largest value of a `u64` or `usize` setting that TOML can hold.
const U64: Kind = Kind::UInt(i64::MAX as u64);

/// One setting: dotted key, type, and the one-line description shown by `--help`.
struct Spec {
    key: &'static str,
    kind: Kind,
    secret: bool,
    help: &'static str,
}

/// Shorthand for a non-secret [`Spec`].
const fn spec(key: &'static str, kind: Kind, help: &'static str) -> Spec {
    Spec {
        key,
        kind,
        secret: false,
        help,
    }
}

/// Every setting, in `--help` order. A test checks it against the fields of [`Settings`].
const SPECS: &[Spec] = &[
    spec(
        "listen",
        Kind::Str,
        "Address (IP:port) the HTTP and WebSocket server listens on.",
    ),
    spec(
        "data_dir",
        Kind::Str,
        "Directory of the embedded store and the server secret.",
    ),
    spec(
        "listen_backlog",
        U32,
        "Pending connections queued before they are accepted (capped by net.core.somaxconn).",
    ),
    spec(
        "store",
        Kind::Enum(&["sqlite", "postgres"]),
        "Storage backend.",
    ),
    Spec {
        key: "database_url",
        kind: Kind::Str,
        secret: true,
        help: "Database URL; required when store = \"postgres\".",
    },
    spec(
        "fsync",
        Kind::Bool,
        "Flush every commit to stable storage before acknowledging it.",
    ),
    spec(
        "group_commit_max_batch",
        U64,
        "Most writes committed together in one group commit.",
    ),
    Spec {
        key: "initial_admin_token",
        kind: Kind::Str,
        secret: true,
        help: "API token of the admin account created on first start (random if unset).",
    },
    Spec {
        key: "initial_admin_password",
        kind: Kind::Str,
        secret: true,
        help: "Password of the admin account created on first start (random if unset).",
    },
    spec(
        "allow_anonymous_access",
        Kind::Bool,
        "Give requests without credentials a read-only session.",
    ),
    spec(
        "access_token_lifetime_secs",
        U64,
        "Lifetime of JWT access tokens, in seconds.",
    ),
    spec(
        "refresh_token_lifetime_secs",
        U64,
        "Lifetime of JWT refresh tokens, in seconds.",
    ),
    spec(
        "max_body_bytes",
        U64,
        "Largest accepted HTTP request body, in bytes.",
    ),
    spec(
        "max_query_depth",
        U64,
        "Deepest accepted GraphQL query nesting.",
    ),
    spec(
        "max_query_complexity",
        U64,
        "Highest accepted GraphQL query complexity.",
    ),
    spec(
        "max_query_recursion",
        U64,
        "Deepest recursion allowed while parsing a GraphQL document.",
    ),
    spec(
        "event_page_default",
        U32,
        "InfrahubEvent page size when the query gives no limit.",
    ),
    spec(
        "event_page_max",
        U32,
        "Largest accepted InfrahubEvent page size.",
    ),
    spec(
        "max_connections",
        U64,
        "Most simultaneous WebSocket connections.",
    ),
    spec(
        "max_connections_per_account",
        U64,
        "Most simultaneous WebSocket connections of one account.",
    ),
    spec(
        "max_subscriptions_per_connection",
        U64,
        "Most active subscriptions on one connection.",
    ),
    spec(
        "max_subscriptions_per_account",
        U64,
        "Most active subscriptions of one account, over all its connections.",
    ),
    spec(
        "ws_max_message_bytes",
        U64,
        "Largest accepted WebSocket message, in bytes.",
    ),
    spec(
        "ws_init_timeout_ms",
        U64,
        "Milliseconds a new WebSocket has to send connection_init.",
    ),
    spec(
        "ws_keepalive_interval_ms",
        U64,
        "Milliseconds between keep-alive messages on idle WebSockets.",
    ),
    spec(
        "ws_write_timeout_ms",
        U64,
        "Milliseconds a WebSocket may hold unsent frames while its client reads nothing, then it is closed.",
    ),
    spec(
        "fanout_shards",
        U64,
        "Fan-out shards writing live events frames; 0 = one per CPU core.",
    ),
    spec(
        "connection_rate_per_address",
        U32,
        "New connections accepted per second per client IP address; 0 = unlimited.",
    ),
    spec(
        "token_check_interval_ms",
        U64,
        "Milliseconds a verified credential is cached; changes through this server apply at once.",
    ),
    spec(
        "event_tail_capacity",
        U64,
        "Most recent events kept in memory for subscribers; older ones are read from the store.",
    ),
    spec(
        "subscriptions.interval_unit",
        Kind::Enum(&["milliseconds", "seconds"]),
        "Unit of the interval argument of polling subscriptions.",
    ),
    spec(
        "subscriptions.min_interval_ms",
        U64,
        "Smallest polling interval in milliseconds; smaller requests are raised to it.",
    ),
    spec(
        "subscriptions.default_interval_ms",
        U64,
        "Polling interval in milliseconds when a subscription gives none.",
    ),
    spec(
        "subscriptions.lag_close_threshold",
        U64,
        "Frames a WebSocket may have queued unsent before it is closed as a slow consumer (1013).",
    ),
    spec(
        "repository_sync_interval_secs",
        U64,
        "Seconds between automatic syncs of Git repositories; 0 = off.",
    ),
];

/// Looks up the spec of a dotted key.
fn find_spec(key: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.key == key)
}

/// Whether `prefix` names a table of settings (e.g. `subscriptions`).
fn is_section(prefix: &str) -> bool {
    SPECS.iter().any(|s| {
        s.key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// Environment variable of a dotted key: `subscriptions.interval_unit` →
/// `INFRASTREAM_SUBSCRIPTIONS__INTERVAL_UNIT`.
pub fn env_var_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// Name of a TOML value's type, for error messages (never the value itself).
fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Checks `value` against the setting's type; the reason never quotes a secret value.
fn check_value(spec: &Spec, value: &toml::Value) -> Result<(), String> {
    let expected = spec.kind.describe();
    match (spec.kind, value) {
        (Kind::Str, toml::Value::String(_)) | (Kind::Bool, toml::Value::Boolean(_)) => Ok(()),
        (Kind::UInt(max), toml::Value::Integer(n)) => {
            if u64::try_from(*n).is_ok_and(|n| n <= max) {
                Ok(())
            } else {
                Err(format!("expected {expected}, found {n}"))
            }
        }
        (Kind::Enum(names), toml::Value::String(s)) => {
            if names.contains(&s.as_str()) {
                Ok(())
            } else if spec.secret {
                Err(format!("expected {expected}"))
            } else {
                Err(format!("expected {expected}, found \"{s}\""))
            }
        }
        (_, other) => Err(format!("expected {expected}, found {}", type_name(other))),
    }
}

/// Parses a value given as text (environment or command line) for a setting.
///
/// String-typed settings take the text verbatim, so a numeric password stays a string. Other
/// settings take it as a TOML scalar when it parses as an integer, float or boolean, and as a
/// string otherwise (which then fails the type check with a clear message).
fn parse_text_value(spec: &Spec, raw: &str) -> toml::Value {
    if matches!(spec.kind, Kind::Str | Kind::Enum(_)) {
        return toml::Value::String(raw.to_owned());
    }
    // Parse as the value of a one-key document; anything that is not exactly one scalar of
    // the accepted kinds (e.g. text smuggling a newline and a second key) stays a string.
    if let Ok(mut doc) = format!("v = {raw}").parse::<toml::Table>()
        && doc.len() == 1
        && let Some(v) = doc.remove("v")
        && matches!(
            v,
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
        )
    {
        return v;
    }
    toml::Value::String(raw.to_owned())
}

/// Sets the leaf at dotted `key` in `table`, creating intermediate tables.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Checks one layer's value for `key` and writes it into `merged`.
fn apply(
    merged: &mut toml::Table,
    key: &str,
    value: toml::Value,
    origin: &str,
) -> Result<(), ConfigError> {
    let Some(spec) = find_spec(key) else {
        return Err(ConfigError::UnknownKey {
            key: key.to_owned(),
            origin: origin.to_owned(),
        });
    };
    check_value(spec, &value).map_err(|reason| ConfigError::InvalidValue {
        key: key.to_owned(),
        origin: origin.to_owned(),
        reason,
    })?;
    set_path(merged, key, value);
    Ok(())
}

/// Merges a parsed TOML file into `merged`, key by key.
fn apply_file_table(
    merged: &mut toml::Table,
    table: toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        if is_section(&key) {
            match v {
                toml::Value::Table(inner) => apply_file_table(merged, inner, &key, origin)?,
                other => {
                    return Err(ConfigError::InvalidValue {
                        reason: format!("expected a table, found {}", type_name(&other)),
                        key,
                        origin: origin.to_owned(),
                    });
                }
            }
        } else {
            apply(merged, &key, v, origin)?;
        }
    }
    Ok(())
}

/// Converts a byte offset in `text` to a 1-based (line, column).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, column)
}

/// Reads and parses the TOML file at `path`.
fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    // `toml::de::Error`'s Display quotes the offending line, which may hold a secret, so
    // only its message and position are reported.
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| line_column(&text, span.start));
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            column,
            reason: e.message().trim().to_owned(),
        }
    })
}

/// The defaults as a TOML table (unset optional settings are absent).
fn default_table() -> toml::Table {
    toml::Table::try_from(Settings::default())
        .unwrap_or_else(|e| panic!("default settings must serialize to TOML: {e}"))
}

/// Loads settings: defaults, then the TOML `file`, then `INFRASTREAM_*` variables from `env`,
/// then `overrides` (dotted key, value) from the command line; validates the result.
///
/// `env` may hold the whole process environment: variables without the `INFRASTREAM_` prefix
/// are ignored. Override keys may use `-` for `_` (as in flag names).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> Result<Settings, ConfigError> {
    let mut merged = default_table();

    if let Some(path) = file {
        let table = read_file(path)?;
        let origin = format!("config file {}", path.display());
        apply_file_table(&mut merged, table, "", &origin)?;
    }

    // Sorted so that, with several bad variables, the error is the same on every run.
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    for (name, raw) in env {
        if NON_SETTING_ENV_VARS.contains(&name.as_str()) {
            continue;
        }
        let Some(spec) = SPECS.iter().find(|s| env_var_name(s.key) == name) else {
            return Err(ConfigError::UnknownEnv { name });
        };
        let origin = format!("environment variable {name}");
        apply(&mut merged, spec.key, parse_text_value(spec, &raw), &origin)?;
    }

    for (key, raw) in overrides {
        let key = key.trim().replace('-', "_");
        let origin = "command-line override";
        let Some(spec) = find_spec(&key) else {
            return Err(ConfigError::UnknownKey {
                key,
                origin: origin.to_owned(),
            });
        };
        apply(&mut merged, spec.key, parse_text_value(spec, raw), origin)?;
    }

    // Every value was checked against its setting above, so this only fails if `SPECS` and
    // `Settings` disagree; the message then names no value of a secret (those are strings,
    // which always deserialize).
    let settings: Settings =
        merged
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                key: "(settings)".to_owned(),
                reason: e.message().trim().to_owned(),
            })?;
    settings.validate()?;
    Ok(settings)
}

/// Shorthand for a validation error.
fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Checks ranges and relations between settings (called by [`load`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8000",
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        match (&self.store, &self.database_url) {
            (StoreBackend::Postgres, None) => {
                return Err(invalid(
                    "database_url",
                    "is required when store = \"postgres\"",
                ));
            }
            (_, Some(url)) if url.trim().is_empty() => {
                return Err(invalid("database_url", "must not be empty when set"));
            }
            _ => {}
        }
        if self.initial_admin_token.as_deref() == Some("") {
            return Err(invalid("initial_admin_token", "must not be empty when set"));
        }
        if self.initial_admin_password.as_deref() == Some("") {
            return Err(invalid(
                "initial_admin_password",
                "must not be empty when set",
            ));
        }
        // Zero in any of these would reject everything or make a timer spin (tokio panics
        // on a zero interval), never what anyone means.
        let at_least_one: [(&str, u64); 23] = [
            ("group_commit_max_batch", self.group_commit_max_batch as u64),
            ("listen_backlog", u64::from(self.listen_backlog)),
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime_secs,
            ),
            (
                "refresh_token_lifetime_secs",
                self.refresh_token_lifetime_secs,
            ),
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_query_depth", self.max_query_depth as u64),
            ("max_query_complexity", self.max_query_complexity as u64),
            ("max_query_recursion", self.max_query_recursion as u64),
            ("event_page_default", u64::from(self.event_page_default)),
            ("event_page_max", u64::from(self.event_page_max)),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_account",
                self.max_connections_per_account as u64,
            ),
            (
                "max_subscriptions_per_connection",
                self.max_subscriptions_per_connection as u64,
            ),
            (
                "max_subscriptions_per_account",
                self.max_subscriptions_per_account as u64,
            ),
            ("ws_max_message_bytes", self.ws_max_message_bytes as u64),
            ("ws_init_timeout_ms", self.ws_init_timeout_ms),
            ("ws_keepalive_interval_ms", self.ws_keepalive_interval_ms),
            ("ws_write_timeout_ms", self.ws_write_timeout_ms),
            ("token_check_interval_ms", self.token_check_interval_ms),
            ("event_tail_capacity", self.event_tail_capacity as u64),
            (
                "subscriptions.min_interval_ms",
                self.subscriptions.min_interval_ms,
            ),
            (
                "subscriptions.default_interval_ms",
                self.subscriptions.default_interval_ms,
            ),
            (
                "subscriptions.lag_close_threshold",
                self.subscriptions.lag_close_threshold,
            ),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.event_page_default > self.event_page_max {
            return Err(invalid(
                "event_page_default",
                format!(
                    "is {}, more than event_page_max ({})",
                    self.event_page_default, self.event_page_max
                ),
            ));
        }
        if self.subscriptions.default_interval_ms < self.subscriptions.min_interval_ms {
            return Err(invalid(
                "subscriptions.default_interval_ms",
                format!(
                    "is {}, less than subscriptions.min_interval_ms ({})",
                    self.subscriptions.default_interval_ms, self.subscriptions.min_interval_ms
                ),
            ));
        }
        Ok(())
    }

    /// The validated `listen` address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8000",
            )
        })
    }
}

/// Looks up a dotted key in a table.
fn get_path<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    match key.split_once('.') {
        None => table.get(key),
        Some((head, rest)) => get_path(table.get(head)?.as_table()?, rest),
    }
}

/// Help text listing every setting: dotted key, environment variable, default, description.
pub fn settings_help() -> String {
    let defaults = default_table();
    let mut out = String::from(
        "SETTINGS\n\
         Precedence, lowest first: defaults, the TOML file (--config), INFRASTREAM_* environment\n\
         variables, command-line flags. Nested keys are [sections] in the file and are joined\n\
         with __ in variable names. Unknown keys and variables are errors.\n",
    );
    for spec in SPECS {
        let default = match get_path(&defaults, spec.key) {
            Some(v) => v.to_string(),
            None => "unset".to_owned(),
        };
        out.push_str(&format!(
            "\n  {} (default {default})\n      {}\n      env {}; {}\n",
            spec.key,
            spec.help,
            env_var_name(spec.key),
            spec.kind.describe(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn ov(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        env(pairs)
    }

    #[test]
    fn defaults() {
        let s = load(None, Vec::new(), &[]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.listen, "127.0.0.1:8000");
        assert_eq!(s.data_dir, PathBuf::from("./infrastream-data"));
        assert_eq!(s.store, StoreBackend::Sqlite);
        assert_eq!(s.database_url, None);
        assert!(s.fsync);
        assert_eq!(s.group_commit_max_batch, 1024);
        assert!(!s.allow_anonymous_access);
        assert_eq!(s.access_token_lifetime_secs, 3600);
        assert_eq!(s.refresh_token_lifetime_secs, 2_592_000);
        assert_eq!(s.max_subscriptions_per_connection, 100);
        assert_eq!(s.ws_max_message_bytes, 1_048_576);
        assert_eq!(s.connection_rate_per_address, 10_000);
        assert_eq!(s.subscriptions.interval_unit, IntervalUnit::Milliseconds);
        assert_eq!(s.subscriptions.min_interval_ms, 100);
        assert_eq!(s.subscriptions.lag_close_threshold, 4096);
        assert_eq!(s.repository_sync_interval_secs, 0);
        assert_eq!(s.listen_addr().unwrap().port(), 8000);
        s.validate().unwrap();
    }

    #[test]
    fn file_overrides_defaults() {
        let f = file(
            "listen = \"0.0.0.0:9000\"\nfsync = false\nstore = \"postgres\"\n\
             database_url = \"postgres://u:p@h/db\"\n\
             [subscriptions]\ninterval_unit = \"seconds\"\nmin_interval_ms = 5\n",
        );
        let s = load(Some(f.path()), Vec::new(), &[]).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert!(!s.fsync);
        assert_eq!(s.store, StoreBackend::Postgres);
        assert_eq!(s.database_url.as_deref(), Some("postgres://u:p@h/db"));
        assert_eq!(s.subscriptions.interval_unit, IntervalUnit::Seconds);
        assert_eq!(s.subscriptions.min_interval_ms, 5);
        // Untouched keys of the section keep their defaults.
        assert_eq!(s.subscriptions.default_interval_ms, 1000);
        assert_eq!(s.max_query_depth, 24);
    }

    #[test]
    fn env_overrides_file_and_override_beats_env() {
        let f = file("max_query_depth = 10\nevent_page_max = 40\n");
        let e = env(&[
            ("INFRASTREAM_MAX_QUERY_DEPTH", "11"),
            ("INFRASTREAM_ALLOW_ANONYMOUS_ACCESS", "true"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ]);
        let s = load(Some(f.path()), e.clone(), &[]).unwrap();
        assert_eq!(s.max_query_depth, 11);
        assert_eq!(s.event_page_max, 40);
        assert!(s.allow_anonymous_access);

        let o = ov(&[
            ("max_query_depth", "12"),
            ("allow-anonymous-access", "false"),
        ]);
        let s = load(Some(f.path()), e, &o).unwrap();
        assert_eq!(s.max_query_depth, 12);
        assert!(!s.allow_anonymous_access);
        assert_eq!(s.event_page_max, 40);
    }

    #[test]
    fn nested_env_and_override() {
        let e = env(&[
            ("INFRASTREAM_SUBSCRIPTIONS__INTERVAL_UNIT", "seconds"),
            ("INFRASTREAM_SUBSCRIPTIONS__DEFAULT_INTERVAL_MS", "2_000"),
        ]);
        let s = load(None, e, &ov(&[("subscriptions.min_interval_ms", "7")])).unwrap();
        assert_eq!(s.subscriptions.interval_unit, IntervalUnit::Seconds);
        assert_eq!(s.subscriptions.default_interval_ms, 2000);
        assert_eq!(s.subscriptions.min_interval_ms, 7);
    }

    #[test]
    fn numeric_secret_stays_a_string() {
        let e = env(&[
            ("INFRASTREAM_INITIAL_ADMIN_TOKEN", "12345"),
            ("INFRASTREAM_INITIAL_ADMIN_PASSWORD", "true"),
        ]);
        let s = load(None, e, &[]).unwrap();
        assert_eq!(s.initial_admin_token.as_deref(), Some("12345"));
        assert_eq!(s.initial_admin_password.as_deref(), Some("true"));
    }

    #[test]
    fn unknown_key_in_file() {
        let f = file("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "listen_port"));
        let msg = err.to_string();
        assert!(
            msg.contains("listen_port") && msg.contains("config file"),
            "{msg}"
        );

        let f = file("[subscriptions]\nbogus = 1\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        assert!(err.to_string().contains("subscriptions.bogus"), "{err}");

        let f = file("[nope]\nx = 1\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownKey { key, .. } if key == "nope"),
            "{err}"
        );
    }

    #[test]
    fn unknown_env_var() {
        let err = load(None, env(&[("INFRASTREAM_LISTEN_PORT", "1")]), &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownEnv { name } if name == "INFRASTREAM_LISTEN_PORT")
        );
        assert!(err.to_string().contains("INFRASTREAM_LISTEN_PORT"));
        // Single underscore where the nested key needs a double one.
        let err = load(
            None,
            env(&[("INFRASTREAM_SUBSCRIPTIONS_INTERVAL_UNIT", "seconds")]),
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::UnknownEnv { .. }));
    }

    #[test]
    fn unknown_override() {
        let err = load(None, Vec::new(), &ov(&[("no.such", "1")])).unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "no.such"));
    }

    #[test]
    fn bad_value_type_names_key() {
        let f = file("fsync = \"yes\"\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "fsync"));
        assert!(err.to_string().contains("boolean"), "{err}");

        let err = load(None, env(&[("INFRASTREAM_MAX_BODY_BYTES", "lots")]), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("max_body_bytes") && msg.contains("INFRASTREAM_MAX_BODY_BYTES"),
            "{msg}"
        );

        let err = load(None, env(&[("INFRASTREAM_EVENT_PAGE_MAX", "-1")]), &[]).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "event_page_max"));
        let err = load(None, Vec::new(), &ov(&[("event_page_max", "4294967296")])).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "event_page_max"));

        let err = load(None, env(&[("INFRASTREAM_STORE", "mysql")]), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`store`") && msg.contains("sqlite"), "{msg}");

        let f = file("subscriptions = 3\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "subscriptions"));

        let f = file("initial_admin_token = 123\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        assert!(!err.to_string().contains("123"), "{err}");
    }

    #[test]
    fn syntax_error_reports_position_without_the_line() {
        let f =
            file("listen = \"127.0.0.1:8000\"\ninitial_admin_password = \"hunter2\nfsync = true\n");
        let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn missing_file() {
        let err = load(
            Some(Path::new("/nonexistent/infrastream.toml")),
            Vec::new(),
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/infrastream.toml"),
            "{err}"
        );
    }

    #[test]
    fn validation() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("event_page_default", "60")], "event_page_default"),
            (
                &[("subscriptions.min_interval_ms", "0")],
                "subscriptions.min_interval_ms",
            ),
            (&[("listen", "localhost")], "listen"),
            (&[("store", "postgres")], "database_url"),
            (
                &[("token_check_interval_ms", "0")],
                "token_check_interval_ms",
            ),
            (&[("initial_admin_token", "")], "initial_admin_token"),
            (
                &[("subscriptions.default_interval_ms", "50")],
                "subscriptions.default_interval_ms",
            ),
        ];
        for (o, expected_key) in cases {
            let err = load(None, Vec::new(), &ov(o)).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { key, .. } if key == expected_key),
                "{o:?}: {err}"
            );
        }
        // 0 means unlimited / off where documented.
        let s = load(
            None,
            Vec::new(),
            &ov(&[
                ("connection_rate_per_address", "0"),
                ("repository_sync_interval_secs", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(s.connection_rate_per_address, 0);
    }

    #[test]
    fn non_setting_env_vars_are_skipped() {
        // The allow-list is empty today; the check still must not reject unrelated variables.
        for name in NON_SETTING_ENV_VARS {
            load(None, env(&[(name, "x")]), &[]).unwrap();
        }
        load(
            None,
            env(&[("INFRASTREAMX", "1"), ("RUST_LOG", "debug")]),
            &[],
        )
        .unwrap();
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = Settings {
            initial_admin_token: Some("tok-SECRET-1".into()),
            initial_admin_password: Some("pw-SECRET-2".into()),
            database_url: Some("postgres://alice:db-SECRET-3@db.example:5432/x".into()),
            ..Settings::default()
        };
        let dbg = format!("{s:?}");
        for secret in ["SECRET", "tok-", "pw-"] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
        assert!(
            dbg.contains("postgres://alice:<redacted>@db.example:5432/x"),
            "{dbg}"
        );
        assert!(dbg.contains("max_query_depth: 24"), "{dbg}");
        let pretty = format!("{s:#?}");
        assert!(!pretty.contains("SECRET"));
    }

    #[test]
    fn redact_url_forms() {
        assert_eq!(
            redact_database_url("postgres://u:pw@h/db?sslmode=require"),
            "postgres://u:<redacted>@h/db?sslmode=require"
        );
        assert_eq!(
            redact_database_url("postgres://u@h/db"),
            "postgres://u@h/db"
        );
        assert_eq!(
            redact_database_url("postgres://h/db?user=u&password=pw&x=1"),
            "postgres://h/db?user=u&password=<redacted>&x=1"
        );
        assert_eq!(
            redact_database_url("host=h password=pw dbname=x"),
            "host=h password=<redacted> dbname=x"
        );
        assert_eq!(redact_database_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn errors_never_quote_secrets() {
        let err = load(
            None,
            Vec::new(),
            &ov(&[
                ("store", "postgres"),
                ("initial_admin_password", "SECRETPW"),
            ]),
        )
        .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("SECRETPW"));
    }

    /// Dotted keys of every leaf of `table`.
    fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) => leaf_keys(inner, &key, out),
                _ => {
                    out.insert(key);
                }
            }
        }
    }

    /// Every field of a fully populated `Settings`, as dotted keys.
    fn all_field_keys() -> BTreeSet<String> {
        let full = Settings {
            database_url: Some("x".into()),
            initial_admin_token: Some("x".into()),
            initial_admin_password: Some("x".into()),
            ..Settings::default()
        };
        let mut keys = BTreeSet::new();
        leaf_keys(&toml::Table::try_from(full).unwrap(), "", &mut keys);
        keys
    }

    #[test]
    fn specs_match_settings() {
        let fields = all_field_keys();
        let specs: BTreeSet<String> = SPECS.iter().map(|s| s.key.to_owned()).collect();
        assert_eq!(fields, specs, "SPECS and Settings disagree");
        // Each spec's type accepts its own default.
        let defaults = default_table();
        for spec in SPECS {
            if let Some(v) = get_path(&defaults, spec.key) {
                check_value(spec, v).unwrap_or_else(|e| panic!("{}: {e}", spec.key));
            }
        }
    }

    #[test]
    fn help_covers_every_key() {
        let help = settings_help();
        for key in all_field_keys() {
            assert!(
                help.contains(&format!("\n  {key} (default ")),
                "{key} missing from help"
            );
            assert!(
                help.contains(&env_var_name(&key)),
                "{key} env missing from help"
            );
        }
        assert!(help.contains("INFRASTREAM_SUBSCRIPTIONS__INTERVAL_UNIT"));
        assert!(
            help.contains("listen (default \"127.0.0.1:8000\")"),
            "{help}"
        );
        assert!(
            help.contains("refresh_token_lifetime_secs (default 2592000)"),
            "{help}"
        );
        assert!(help.contains("database_url (default unset)"), "{help}");
    }
}
