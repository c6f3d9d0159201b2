//! The routes. Every error answer has the JSON error envelope of [`reply`]: handlers build it
//! themselves, and the router-level [`reply::json_errors`] layer rewrites what axum answers on
//! its own (405 with `Allow`, extractor rejections, 413 from the body limit).

use crate::{
    AppState, auth, console, graphiql, graphql_http, http_metrics, ingest, metrics, probes, reply,
    schema, storage, ws,
};
use axum::Router;
use axum::extract::State;
use axum::extract::{ConnectInfo, Path, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;

pub(crate) fn router(state: AppState) -> Router {
    // Extractors that buffer a body (`Bytes`) stop at `max_body_bytes`, like the handlers that
    // read bodies themselves.
    let body_limit = axum::extract::DefaultBodyLimit::max(state.settings().max_body_bytes);
    let routes = Router::new()
        .route("/graphql", get(graphql).post(graphql_http::handle))
        .route(
            "/graphql/{*branch}",
            get(graphql).post(graphql_http::handle),
        )
        .route("/", get(root))
        .route("/console", get(console::page))
        .route("/console/{file}", get(console::asset))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/metrics", get(metrics::render))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/refresh", post(auth::refresh))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/info", get(info))
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .route("/api/storage/upload/content", post(storage::upload_content))
        .route("/api/storage/object/{id}", get(storage::object))
        .route(
            "/api/artifact/generate/{definition}",
            post(storage::generate),
        )
        .route("/api/artifact/{id}", get(storage::artifact))
        .route("/api/schema", get(schema::read))
        .route("/api/schema/load", post(schema::load))
        .route("/api/schema/summary", get(schema::summary))
        .route("/api/ingest/infrahub", post(ingest::infrahub))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http_metrics::track,
        ))
        // Unknown paths are counted too, under the route `unmatched`.
        .fallback(axum::handler::Handler::layer(
            not_found,
            axum::middleware::from_fn_with_state(state.clone(), http_metrics::track),
        ))
        .layer(body_limit)
        .with_state(state);
    // Outside the routes, not `routes.layer(…)`: a route's `405` gets its `Allow` header only
    // on the way out of the route, and the envelope names the allowed methods.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(reply::json_errors))
}

async fn info(State(state): State<AppState>) -> Response {
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "deployment_id": state.services.domain.deployment_id,
    });
    reply::json(StatusCode::OK, body.to_string())
}

/// `GET /`: browsers are sent to the console; anything else gets the 404 of an unknown route.
async fn root(request: Request) -> Response {
    if graphql_http::wants_html(request.headers()) {
        return axum::response::Redirect::temporary("/console").into_response();
    }
    not_found().await
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
