//! Settings of the infrastream server and how they are layered: built-in defaults, then a TOML
//! file, then `INFRASTREAM_*` environment variables, then command-line overrides. Unknown keys
//! are errors in every layer, values are checked against each setting's type before they are
//! merged so errors name the setting and where it came from, and the result is validated as a
//! whole. This crate reads no files other than the one it is given and no environment other
//! than the variables it is handed; the binary gathers them, and the server consumes
//! [`Settings`]. Secrets (initial admin credentials, the database password) never appear in
//! `Debug` output or in error messages.
//!
//! Every setting is declared once, in `settings.rs`: its documentation, key, Rust type,
//! default and flags. The struct fields, `Default`, the redacting `Debug`, the type checks of
//! the layers, the "at least 1" checks, [`settings_help`] and [`settings_markdown`] (the text
//! of docs/settings.md) all come from that declaration.
//!
//! Modules: `spec` (the declaration macro and the spec of a setting), `settings` (the
//! declarations), `layers` (parsing and layering), `validate`, `help` (`--help` and Markdown),
//! `redact`, `error`.

#[macro_use]
mod spec;
mod error;
mod help;
mod layers;
mod redact;
mod settings;
mod validate;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use help::{settings_help, settings_markdown};
pub use layers::{env_var_name, load};
pub use redact::redact_database_url;
pub use settings::{Settings, SubscriptionSettings, WebhookSettings};
pub use validate::{MAX_READY_PROBE_BYTES, MAX_RETENTION_AGE_SECS, MIN_JWT_SECRET_BYTES};

/// Prefix of every environment variable that sets a setting.
pub const ENV_PREFIX: &str = "INFRASTREAM_";

/// `INFRASTREAM_*` environment variables that are not settings and are therefore ignored by
/// [`load`] instead of being rejected as unknown (e.g. a variable read by the binary itself).
pub const NON_SETTING_ENV_VARS: &[&str] = &[
    // Read by the PostgreSQL tests (`scripts/test` exports them), which also start servers.
    "INFRASTREAM_TEST_DATABASE_URL",
    "INFRASTREAM_REQUIRE_POSTGRES",
];

/// Storage backend of the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded SQLite database in `data_dir`.
    Sqlite,
    /// The PostgreSQL database at `database_url`, shared by any number of servers.
    Postgres,
}

/// Format of the server's log lines on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
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
