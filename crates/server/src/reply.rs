//! JSON error replies in the GraphQL envelope: `{"errors":[{"message", "extensions":{"code",
//! "http_status"}}]}`, the shape Infrahub's clients parse on every status; and
//! [`json_errors`], the router-level middleware that gives every other error answer (axum's
//! 405s, extractor rejections, body-limit 413s, WebSocket upgrade refusals) that same shape.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use infrastream_core::{Error, ErrorKind};

/// An error reply with the status of its kind.
pub(crate) fn error(e: &Error) -> Response {
    error_with_status(
        StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        e.code,
        &e.message,
    )
}

/// An error reply with an explicit status and code; logged at debug (SPEC §9). Messages are
/// fixed texts or name only what is safe to show (never a credential), so they may be logged.
pub(crate) fn error_with_status(status: StatusCode, code: &str, message: &str) -> Response {
    tracing::debug!(status = status.as_u16(), code, reason = %message, "request refused");
    error_body(status, code, message)
}

/// The envelope itself, not logged.
fn error_body(status: StatusCode, code: &str, message: &str) -> Response {
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

/// 413 with `PAYLOAD_TOO_LARGE`: a body over `max_body_bytes` (`limit`).
pub(crate) fn payload_too_large(limit: usize) -> Response {
    error_with_status(
        StatusCode::PAYLOAD_TOO_LARGE,
        infrastream_core::codes::PAYLOAD_TOO_LARGE.name,
        &format!("The request body is larger than {limit} bytes (setting max_body_bytes)"),
    )
}

/// 400 with `BAD_USER_INPUT`.
pub(crate) fn bad_request(message: &str) -> Response {
    error(&Error::new(ErrorKind::InvalidInput, message))
}

/// The `extensions.code` of an error answer with `status`: the codes of
/// [`ErrorKind::code`] where a kind has that status, otherwise the reason phrase in
/// upper snake case (`415` → `UNSUPPORTED_MEDIA_TYPE`).
pub(crate) fn code_for(status: StatusCode) -> String {
    match status.as_u16() {
        400 | 422 => ErrorKind::InvalidInput.code().into(),
        401 => ErrorKind::Unauthenticated.code().into(),
        403 => ErrorKind::Forbidden.code().into(),
        404 => ErrorKind::NotFound.code().into(),
        409 => ErrorKind::Conflict.code().into(),
        429 => ErrorKind::LimitExceeded.code().into(),
        507 => ErrorKind::StorageFull.code().into(),
        _ => match status.canonical_reason() {
            Some(reason) => reason
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect(),
            None if status.is_server_error() => ErrorKind::Internal.code().into(),
            None => "BAD_REQUEST".into(),
        },
    }
}

/// Whether a response already carries JSON (`application/json` or any `+json` type, e.g.
/// `application/graphql-response+json`).
fn is_json(headers: &HeaderMap) -> bool {
    header_text(headers, header::CONTENT_TYPE)
        .map(media_essence)
        .is_some_and(|essence| essence == "application/json" || essence.ends_with("+json"))
}

/// A header's value, if it is present and text.
pub(crate) fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A media type without its parameters, lowercased: `Text/HTML; charset=utf-8` → `text/html`.
pub(crate) fn media_essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Longest plain-text error body taken over as the message; axum's rejection texts are short.
const MAX_TEXT: usize = 4096;

/// Router-level middleware: an error answer (status 4xx or 5xx) that is not already JSON —
/// axum's `405 Method Not Allowed` with an empty body, an extractor's plain-text rejection
/// (body too large, missing or bad headers, WebSocket upgrade refusals), any empty-bodied
/// error — is rewritten into the error envelope. Status and every other header (`Allow` of a
/// 405 in particular) are kept; the message is the rejection's own text, or for a 405 the
/// method and the allowed ones, or for an empty body the status's reason phrase.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        method_not_allowed_message(&method, &parts.headers)
    } else if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("The request failed")
            .to_owned()
    } else {
        text
    };
    let code = code_for(status);
    // Not the message: a rejection's text may quote part of the request.
    tracing::debug!(status = status.as_u16(), code, "request refused");
    let envelope = error_body(status, &code, &message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let (envelope_parts, body) = envelope.into_parts();
    parts.headers.extend(envelope_parts.headers);
    Response::from_parts(parts, body)
}

/// "Method PUT is not allowed here; allowed: GET, HEAD, POST" from the 405's `Allow`.
fn method_not_allowed_message(method: &Method, headers: &HeaderMap) -> String {
    let allowed: Vec<&str> = headers
        .get_all(header::ALLOW)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    if allowed.is_empty() {
        format!("Method {method} is not allowed here")
    } else {
        format!(
            "Method {method} is not allowed here; allowed: {}",
            allowed.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_error_kinds_then_the_reason_phrase() {
        assert_eq!(code_for(StatusCode::BAD_REQUEST), "BAD_USER_INPUT");
        assert_eq!(code_for(StatusCode::NOT_FOUND), "NOT_FOUND");
        assert_eq!(code_for(StatusCode::UNAUTHORIZED), "UNAUTHENTICATED");
        assert_eq!(
            code_for(StatusCode::METHOD_NOT_ALLOWED),
            "METHOD_NOT_ALLOWED"
        );
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "PAYLOAD_TOO_LARGE");
        assert_eq!(code_for(StatusCode::INSUFFICIENT_STORAGE), "STORAGE_FULL");
        assert_eq!(
            code_for(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            "UNSUPPORTED_MEDIA_TYPE"
        );
        assert_eq!(code_for(StatusCode::UPGRADE_REQUIRED), "UPGRADE_REQUIRED");
        assert_eq!(
            code_for(StatusCode::INTERNAL_SERVER_ERROR),
            "INTERNAL_SERVER_ERROR"
        );
        assert_eq!(
            code_for(StatusCode::from_u16(599).unwrap()),
            "INTERNAL_SERVER_ERROR"
        );
        assert_eq!(code_for(StatusCode::from_u16(499).unwrap()), "BAD_REQUEST");
    }

    #[test]
    fn json_is_recognised_by_essence() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/graphql-response+json; charset=utf-8"),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON"),
        );
        assert!(is_json(&h));
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let mut h = HeaderMap::new();
        h.insert(header::ALLOW, HeaderValue::from_static("GET,HEAD,POST"));
        assert_eq!(
            method_not_allowed_message(&Method::PUT, &h),
            "Method PUT is not allowed here; allowed: GET, HEAD, POST"
        );
        assert_eq!(
            method_not_allowed_message(&Method::PUT, &HeaderMap::new()),
            "Method PUT is not allowed here"
        );
    }
}
