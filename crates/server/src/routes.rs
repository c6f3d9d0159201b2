//! The routes.

use crate::{AppState, auth, graphql_http, reply};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql_http::handle).post(graphql_http::handle),
        )
        .route(
            "/graphql/{*branch}",
            get(graphql_http::handle).post(graphql_http::handle),
        )
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/info", get(info))
        .route("/health", get(health))
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
