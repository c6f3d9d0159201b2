//! `POST /api/ingest/infrahub`: companion mode, the webhooks of a real Infrahub in (see
//! docs/companion.md).
//!
//! In order: refused (403) unless `ingest_infrahub_key` is set; the body read within
//! `max_body_bytes` (413); Infrahub's signature checked with that key — `webhook-id`,
//! `webhook-timestamp` within 5 minutes, `webhook-signature`, checked by
//! `signing::verify_infrahub` (401 `UNAUTHENTICATED`); the body
//! parsed and mapped to infrastream's event (422 `BAD_USER_INPUT` naming the field); the
//! event committed once per Infrahub event id, the answer sent after the commit returned:
//! `200 {"ok": true, "id": <our event id>, "infrahub_event_id", "duplicate"}` — a replay
//! answers the already-stored event's id with `duplicate: true`. Nothing is stored on any
//! refusal.

use crate::{AppState, reply};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use infrastream_core::ErrorKind;
use infrastream_services::ingest;
use infrastream_services::webhooks::signing;
use serde_json::{Value, json};

/// Verifies, deduplicates, maps and commits one webhook request of a real Infrahub.
pub(crate) async fn infrahub(State(state): State<AppState>, request: Request) -> Response {
    let Some(key) = state
        .settings()
        .ingest_infrahub_key
        .clone()
        .filter(|k| !k.is_empty())
    else {
        return reply::error_with_status(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden.code(),
            "Ingesting Infrahub's webhooks is disabled: set ingest_infrahub_key to the webhook's shared_key",
        );
    };
    let headers = request.headers().clone();
    let limit = state.settings().max_body_bytes;
    let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
        return reply::payload_too_large(limit);
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(reason) = signing::verify_infrahub(&key, &header_pairs(&headers), &body, now) {
        return reply::error_with_status(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Unauthenticated.code(),
            &format!("The request is not signed with ingest_infrahub_key: {reason}"),
        );
    }
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return unprocessable(&format!("The request body is not valid JSON: {e}")),
    };
    let ingested = match ingest::map(&value) {
        Ok(i) => i,
        Err(e) => return unprocessable(&e.message),
    };
    let infrahub_id = ingested.infrahub_id.clone();
    match ingest::ingest(&state.services.domain, ingested).await {
        Ok(outcome) => reply::json(
            StatusCode::OK,
            json!({
                "ok": true,
                "id": outcome.event_id,
                "infrahub_event_id": infrahub_id,
                "duplicate": outcome.duplicate,
            })
            .to_string(),
        ),
        Err(e) => reply::error(&e),
    }
}

/// The signature headers as (name, value) pairs (other headers, and values that are not
/// text, are left out).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    [
        signing::HEADER_ID,
        signing::HEADER_TIMESTAMP,
        signing::HEADER_SIGNATURE,
    ]
    .into_iter()
    .filter_map(|name| {
        let value = headers.get(name)?.to_str().ok()?;
        Some((name.to_owned(), value.to_owned()))
    })
    .collect()
}

/// 422 with `BAD_USER_INPUT`.
fn unprocessable(message: &str) -> Response {
    reply::error_with_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::InvalidInput.code(),
        message,
    )
}
