//! The schema endpoints (Infrahub's paths and answers), over
//! [`infrastream_services::schema`]:
//!
//! - `POST /api/schema/load?branch=<b>` `{"schemas": [...]}` → 200 `{hash, previous_hash,
//!   diff, warnings, schema_updated}`; a body of the wrong shape → 422 `{"detail": [{type,
//!   loc, msg, input, ctx}]}`; a schema that breaks a rule → 422 `{"data": null, "errors":
//!   [{"message", "extensions": {"code": 422}}]}` (the messages joined by ", ");
//! - `GET /api/schema?branch=<b>` → `{main, nodes, generics, profiles, templates, namespaces}`;
//! - `GET /api/schema/summary?branch=<b>` → `{main, nodes, generics}` (kind → hash).
//!
//! The branch defaults to `main`; an unknown one is 400. Loading needs the write role,
//! reading any authenticated caller (or anonymous access when it is allowed), as `/graphql`.

use crate::storage::{caller, json_body};
use crate::{AppState, reply};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use infrastream_services::schema::{self, SchemaError};
use serde::Deserialize;
use serde_json::{Value, json};

/// `?branch=`.
#[derive(Deserialize)]
pub(crate) struct BranchParam {
    branch: Option<String>,
}

impl BranchParam {
    fn name(&self) -> &str {
        self.branch
            .as_deref()
            .filter(|b| !b.is_empty())
            .unwrap_or("main")
    }
}

fn failure(e: SchemaError) -> Response {
    match e {
        SchemaError::Contract(errors) => {
            let detail: Vec<Value> = errors.iter().map(|e| e.to_json()).collect();
            reply::json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"detail": detail}).to_string(),
            )
        }
        SchemaError::Invalid(messages) => reply::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"data": null, "errors": [{"message": messages.join(", "), "extensions": {"code": 422}}]})
                .to_string(),
        ),
        SchemaError::Refused(e) => reply::error(&e),
    }
}

fn answer(result: Result<Value, SchemaError>) -> Response {
    match result {
        Ok(body) => reply::json(StatusCode::OK, body.to_string()),
        Err(e) => failure(e),
    }
}

/// `POST /api/schema/load`.
pub(crate) async fn load(
    State(state): State<AppState>,
    Query(branch): Query<BranchParam>,
    request: Request,
) -> Response {
    let who = match caller(&state, request.headers()).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match json_body(&state, request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let services = &state.services.domain;
    answer(
        schema::load(services, &who, branch.name(), &body)
            .await
            .map(|l| l.to_json()),
    )
}

/// `GET /api/schema`.
pub(crate) async fn read(
    State(state): State<AppState>,
    Query(branch): Query<BranchParam>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = caller(&state, &headers).await {
        return r;
    }
    answer(schema::read(&state.services.domain, branch.name()).await)
}

/// `GET /api/schema/summary`.
pub(crate) async fn summary(
    State(state): State<AppState>,
    Query(branch): Query<BranchParam>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = caller(&state, &headers).await {
        return r;
    }
    answer(schema::summary(&state.services.domain, branch.name()).await)
}
