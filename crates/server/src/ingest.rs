//! `POST /api/ingest/infrahub`: companion mode, Infrahub's webhooks in. (Stub.)

use crate::{AppState, reply};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

/// Verifies, deduplicates, maps and commits one webhook request of a real Infrahub.
pub(crate) async fn infrahub(State(state): State<AppState>, request: Request) -> Response {
    let _ = (state, request);
    reply::error_with_status(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        "Not implemented yet",
    )
}
