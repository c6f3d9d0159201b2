//! Liveness and readiness, both unauthenticated (an orchestrator's probes carry no
//! credentials, and neither answer says anything a client could not learn by trying):
//!
//! - `GET /health`: liveness, 200 `{"status":"ok"}` while the process serves requests. It
//!   does not look at the store: a full disk is not a reason to restart the process.
//! - `GET /ready`: readiness, "can the store commit?". 200 `{"status":"ready"}`, or 503 with
//!   the error envelope naming the cause (`STORAGE_FULL` when the storage is full). Answered
//!   from the outcome of the last commit when it is recent, otherwise by one probe commit
//!   (`Store::ready`), so polling it is cheap: at most one probe per
//!   `ready_probe_interval_ms`, each rewriting one metadata row of `ready_probe_bytes` in
//!   place, so it cannot fill the disk. A probe of a typical change's size, not a tiny one:
//!   on a full disk a tiny commit can still fit in the room a refused change left behind.

use crate::{AppState, reply};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use infrastream_core::DomainError;

/// `GET /health`.
pub(crate) async fn health() -> Response {
    reply::json(StatusCode::OK, r#"{"status":"ok"}"#.into())
}

/// `GET /ready`.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.store().ready().await {
        Ok(()) => reply::json(StatusCode::OK, r#"{"status":"ready"}"#.into()),
        Err(e) => {
            // The cause was logged where it happened (the failed commit or the probe).
            let message = if e.is_storage_full() {
                "Not ready: the server's storage is full, so no change can be recorded. Free \
                 space in the data directory; the server becomes ready again by itself."
            } else {
                "Not ready: the store cannot commit; the cause is in the server's log."
            };
            reply::error_with_status(StatusCode::SERVICE_UNAVAILABLE, e.code().name, message)
        }
    }
}
