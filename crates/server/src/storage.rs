//! Content storage and artifact REST endpoints (Infrahub's paths):
//!
//! - `POST /api/storage/upload/content` `{"content": "…"}` → `{"identifier", "checksum"}`
//!   (write role; the body is limited by `max_body_bytes`);
//! - `GET /api/storage/object/{identifier}` → the stored bytes (`application/octet-stream`);
//! - `GET /api/artifact/{id}` → the artifact's current content with its content type, 409 when
//!   the stored bytes no longer match the recorded checksum;
//! - `POST /api/artifact/generate/{definition}` `{"nodes": [...]}` (optional; `?branch=`,
//!   default `main`) → generates like the `ArtifactGenerate` mutation.
//!
//! Every endpoint authenticates like `/graphql`.

use crate::auth::{authenticate, credential_from_headers};
use crate::{AppState, reply};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infrastream_core::error::DomainError;
use infrastream_core::{Error, ErrorKind};
use infrastream_services::Caller;
use infrastream_services::artifacts::{self, ArtifactError, GenerateOutcome};
use infrastream_services::object_store::{ObjectStore, md5_hex};
use serde_json::{Value, json};

pub(crate) async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    authenticate(state, credential_from_headers(headers))
        .await
        .map(|a| a.caller)
        .map_err(|e| reply::error(&e))
}

/// The 403 reply for a caller that may not write.
fn refuse_read_only(caller: &Caller) -> Option<Response> {
    (!caller.role.can_write()).then(|| {
        reply::error(&Error::new(
            ErrorKind::Forbidden,
            "You do not have permission to store content (read-only access)",
        ))
    })
}

/// The body as JSON (an empty body is `null`), within `max_body_bytes`.
pub(crate) async fn json_body(state: &AppState, request: Request) -> Result<Value, Response> {
    let limit = state.settings().max_body_bytes;
    let bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| reply::payload_too_large(limit))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| reply::bad_request(&format!("The request body is not valid JSON: {e}")))
}

fn objects(state: &AppState) -> ObjectStore {
    state.services.domain.objects.clone()
}

fn storage_failure(e: std::io::Error) -> Response {
    reply::error(&ArtifactError::Objects(e).user_error())
}

/// `POST /api/storage/upload/content`.
pub(crate) async fn upload_content(State(state): State<AppState>, request: Request) -> Response {
    let caller = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = refuse_read_only(&caller) {
        return r;
    }
    let body = match json_body(&state, request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(content) = body.get("content").and_then(Value::as_str) else {
        return reply::bad_request("Expected a JSON object {\"content\": \"<text>\"}");
    };
    let bytes = content.as_bytes().to_vec();
    let checksum = md5_hex(&bytes);
    match objects(&state).put(bytes).await {
        Ok(identifier) => reply::json(
            StatusCode::OK,
            json!({"identifier": identifier, "checksum": checksum}).to_string(),
        ),
        Err(e) => storage_failure(e),
    }
}

fn invalid_identifier() -> Response {
    reply::bad_request("Invalid object identifier: expected 64 lowercase hexadecimal characters")
}

/// `GET /api/storage/object/{identifier}`.
pub(crate) async fn object(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = caller(&state, &headers).await {
        return r;
    }
    if !ObjectStore::is_valid_id(&id) {
        return invalid_identifier();
    }
    match objects(&state).get(&id).await {
        Ok(Some(bytes)) => bytes_reply(bytes, "application/octet-stream"),
        Ok(None) => reply::error(&Error::not_found(format!("Object {id} not found"))),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => invalid_identifier(),
        Err(e) => storage_failure(e),
    }
}

fn bytes_reply(bytes: Vec<u8>, content_type: &str) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    r
}

/// `GET /api/artifact/{id}`.
pub(crate) async fn artifact(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = caller(&state, &headers).await {
        return r;
    }
    match artifacts::content(&state.services.domain, &id).await {
        Ok(c) => bytes_reply(c.bytes, &c.content_type),
        Err(e) => reply::error(&e.user_error()),
    }
}

/// `POST /api/artifact/generate/{definition}`.
pub(crate) async fn generate(
    State(state): State<AppState>,
    Path(definition): Path<String>,
    request: Request,
) -> Response {
    let caller = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let branch = request
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "branch")
                .map(|(_, v)| v)
        })
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| infrastream_core::branch::DEFAULT_BRANCH.to_owned());
    if let Some(refusal) = state.refuse_unknown_branch(&branch).await {
        return refusal;
    }
    let body = match json_body(&state, request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !matches!(body, Value::Null | Value::Object(_)) {
        return reply::bad_request("Expected a JSON object {\"nodes\": [...]}");
    }
    let nodes = match body.get("nodes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut nodes = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => nodes.push(s.to_owned()),
                    None => {
                        return reply::bad_request(
                            "'nodes' must be a list of node ids (or Kind:id strings)",
                        );
                    }
                }
            }
            Some(nodes)
        }
        Some(_) => {
            return reply::bad_request("'nodes' must be a list of node ids (or Kind:id strings)");
        }
    };
    let done =
        match artifacts::generate(&state.services.domain, &caller, &branch, &definition, nodes)
            .await
        {
            Ok(d) => d,
            Err(e) => return reply::error(&e.user_error()),
        };
    let artifacts: Vec<Value> = done
        .iter()
        .map(|g| {
            let d = &g.artifact.data;
            json!({
                "id": g.artifact.id,
                "name": d.name,
                "status": d.status,
                "result": g.outcome.as_str(),
                "event_id": g.event_id,
                "checksum": d.checksum,
                "storage_id": d.storage_id,
                "target": {"id": d.target.id, "kind": d.target.kind},
                "branch": d.branch,
                "error": d.error,
            })
        })
        .collect();
    let ok = done.iter().all(|g| g.outcome != GenerateOutcome::Error);
    reply::json(
        StatusCode::OK,
        json!({"ok": ok, "count": artifacts.len(), "artifacts": artifacts}).to_string(),
    )
}
