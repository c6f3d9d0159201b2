//! The routes.

use crate::{AppState, auth, graphql_http, metrics, reply, storage, ws};
use axum::Router;
use axum::extract::State;
use axum::extract::{ConnectInfo, Path, Request};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use std::net::SocketAddr;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql).post(graphql_http::handle))
        .route(
            "/graphql/{*branch}",
            get(graphql).post(graphql_http::handle),
        )
        .route("/metrics", get(metrics::render))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/info", get(info))
        .route("/health", get(health))
        .route("/api/storage/upload/content", post(storage::upload_content))
        .route("/api/storage/object/{id}", get(storage::object))
        .route(
            "/api/artifact/generate/{definition}",
            post(storage::generate),
        )
        .route("/api/artifact/{id}", get(storage::artifact))
        .fallback(not_found)
        .with_state(state)
}

async fn info(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "deployment_id": state.services.deployment_id,
    });
    reply::json(StatusCode::OK, body.to_string())
}

async fn health() -> Response {
    reply::json(StatusCode::OK, r#"{"status":"ok"}"#.into())
}

async fn not_found() -> Response {
    reply::error_with_status(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint")
}

/// `GET /graphql[/{branch}]`: a WebSocket upgrade, GraphiQL, or GraphQL over HTTP.
async fn graphql(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    path: Option<Path<String>>,
    request: Request,
) -> Response {
    if !ws::is_upgrade(request.headers()) {
        return graphql_http::handle(State(state), path, request).await;
    }
    let (parts, _body) = request.into_parts();
    let branch = path
        .map(|Path(b)| b)
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".into());
    ws::upgrade(state, parts, peer, branch).await
}
