//! JSON error replies in the GraphQL envelope: `{"errors":[{"message", "extensions":{"code",
//! "http_status"}}]}`, the shape Infrahub's clients parse on every status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infrastream_core::{Error, ErrorKind};

/// An error reply with the status of its kind.
pub(crate) fn error(e: &Error) -> Response {
    error_with_status(
        StatusCode::from_u16(e.kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        e.kind.code(),
        &e.message,
    )
}

/// An error reply with an explicit status and code; logged at debug (SPEC §9). Messages are
/// fixed texts or name only what is safe to show (never a credential), so they may be logged.
pub(crate) fn error_with_status(status: StatusCode, code: &str, message: &str) -> Response {
    tracing::debug!(status = status.as_u16(), code, %message, "request refused");
    let body = serde_json::json!({
        "errors": [{"message": message, "extensions": {"code": code, "http_status": status.as_u16()}}]
    });
    json(status, body.to_string())
}

/// A JSON body with `application/json`.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// 400 with `BAD_USER_INPUT`.
pub(crate) fn bad_request(message: &str) -> Response {
    error(&Error::new(ErrorKind::InvalidInput, message))
}
