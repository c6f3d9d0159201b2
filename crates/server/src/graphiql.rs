//! The GraphiQL page served to browsers on `GET /graphql` (`Accept: text/html`), wired for
//! subscriptions over graphql-transport-ws on the same path.

use axum::http::Uri;
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>infrastream GraphiQL</title>
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css" />
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const path = window.location.pathname;
    const ws = (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + path;
    const fetcher = GraphiQL.createFetcher({ url: path, subscriptionUrl: ws });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true })
    );
  </script>
</body>
</html>
"#;

/// The page; it talks to the path it was loaded from.
pub(crate) fn page(_uri: &Uri) -> Response {
    Html(PAGE).into_response()
}

/// `GET /graphiql/{file}`: one embedded asset, or 404.
pub(crate) async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let _ = file;
    crate::reply::error_with_status(
        axum::http::StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "No such endpoint",
    )
}
