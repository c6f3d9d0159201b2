//! The live event console served on `/console` (and `/` for browsers): a static page and its
//! assets, embedded in the binary at build time.
//!
//! The page is plain HTML, CSS and JavaScript ES modules with no dependency and no build step
//! (see the header of `assets/console/console.js`): nothing is fetched from anywhere but this
//! server, which the Content-Security-Policy sent with every asset enforces.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The embedded files: name under `/console/`, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/console/index.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console/console.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console/api.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console/charts.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/console/console.css"),
    ),
];

/// Same-origin only: scripts, styles, fetches and the WebSocket (`'self'` covers `ws:`/`wss:`
/// to the same host in CSP 3).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// `GET /console`.
pub(crate) async fn page() -> Response {
    serve("index.html")
}

/// `GET /console/{file}`: one embedded asset, or 404.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(file: &str) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return crate::reply::error_with_status(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such endpoint",
        );
    };
    let mut r = (StatusCode::OK, *body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_and_unknown_files() {
        for (name, ty, _) in ASSETS {
            let r = serve(name);
            assert_eq!(r.status(), StatusCode::OK, "{name}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], *ty);
        }
        assert_eq!(serve("nope.js").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
    }

    /// The page loads nothing from another origin.
    #[test]
    fn no_external_urls() {
        for (name, _, body) in ASSETS {
            let text = std::str::from_utf8(body).unwrap();
            for needle in ["http://", "https://", "//cdn", "unpkg", "jsdelivr"] {
                assert!(!text.contains(needle), "{name} contains {needle}");
            }
        }
    }
}
