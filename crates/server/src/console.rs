//! The live event console served on `/console` (and `/` for browsers): a static page and its
//! assets, embedded in the binary at build time.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// `GET /console`.
pub(crate) async fn page() -> Response {
    Html("<!doctype html><title>infrastream console</title>").into_response()
}

/// `GET /console/{file}`: one embedded asset, or 404.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let _ = file;
    crate::reply::error_with_status(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint")
}
