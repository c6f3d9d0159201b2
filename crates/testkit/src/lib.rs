//! The test kit of the integration tests of `infrastream-server`, `infrastream` and
//! `infrastream-protocol` (a dev-dependency only):
//!
//! - [`TestServer`]: the server in-process on `127.0.0.1:0` with a fresh data directory;
//! - [`Binary`]: the real binary (its path given by the caller, `env!("CARGO_BIN_EXE_infrastream")`),
//!   spawned with settings, arguments and environment, stopped with a signal, restarted on the
//!   same data directory;
//! - [`WsClient`]: one WebSocket client for `graphql-transport-ws` and the legacy `graphql-ws`,
//!   with one default timeout ([`WS_TIMEOUT`]) that each call may override;
//! - HTTP helpers ([`http`]): GraphQL POSTs with an API token or a JWT, login, raw requests and
//!   the Infrahub error-envelope assertions;
//! - [`Rng`]: the deterministic random numbers of the fuzz tests.
//!
//! Every server started through the kit (in-process or binary) has the same admin credentials,
//! [`ADMIN_TOKEN`] and [`ADMIN_PASSWORD`], unless a test sets its own.

pub mod binary;
pub mod http;
pub mod rng;
pub mod server;
pub mod ws;

pub use binary::{Binary, BinaryBuilder};
pub use http::{Auth, Resp, assert_error_entry, assert_error_reply};
pub use rng::Rng;
pub use server::TestServer;
pub use ws::{WS_TIMEOUT, WsClient};

/// The admin API token every server under test starts with.
pub const ADMIN_TOKEN: &str = "test-admin-token-00000000000000000000000000000000";
/// The admin password every server under test starts with (alphanumeric, like generated ones).
pub const ADMIN_PASSWORD: &str = "TestAdminPassword42";

/// The value of one Prometheus series (`name` or `name{labels}`) in a `/metrics` page.
///
/// # Panics
/// When the series is absent or its value is not an integer.
pub fn metric(page: &str, series: &str) -> i64 {
    let prefix = format!("{series} ");
    page.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no series {series} in the metrics:\n{page}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("series {series} is not an integer ({e}):\n{page}"))
}
