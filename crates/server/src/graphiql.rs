//! The GraphiQL page served to browsers on `GET /graphql` (`Accept: text/html`), wired for
//! subscriptions over graphql-transport-ws on the same path.
//!
//! Everything the page needs is embedded in the binary at build time and served on
//! `GET /graphiql/{file}` (see `assets/graphiql/README.md` for the vendored versions): the
//! page works with no network but the server, which its Content-Security-Policy enforces.
//! `assets/graphiql/infrastream-graphiql.js` is ours: the credential bar (API token, or a
//! login's access token, kept in `sessionStorage`) and the fetcher (HTTP POST for queries and
//! mutations, graphql-transport-ws for subscriptions, both on the page's own path).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

/// An embedded file: name under `/graphiql/`, content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "infrastream-graphiql.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graphiql/infrastream-graphiql.js"),
    },
    Asset {
        name: "LICENSE.graphiql",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/graphiql/LICENSE.graphiql"),
    },
    Asset {
        name: "LICENSE.react",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/graphiql/LICENSE.react"),
    },
    Asset {
        name: "LICENSE.react-dom",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../assets/graphiql/LICENSE.react-dom"),
    },
];

/// Assets are referenced as `/graphiql/<file>?v=<hash of its bytes>`, so a long cache lifetime
/// is safe: another build with other bytes asks for another URL.
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// Same origin only. GraphiQL and CodeMirror set inline styles, and the fonts of GraphiQL's
/// stylesheet are `data:` URLs.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   font-src 'self' data:; img-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>infrastream GraphiQL</title>
  <link rel="icon" href="data:," />
  <link rel="stylesheet" href="{graphiql.min.css}" />
  <style>
    html, body { margin: 0; height: 100%; }
    body { display: flex; flex-direction: column; font: 14px system-ui, sans-serif; }
    #infrastream-bar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 16px;
      padding: 6px 12px; border-bottom: 1px solid #d0d4dc; background: #f4f6f9; }
    #infrastream-bar form { display: flex; align-items: center; gap: 6px; margin: 0; }
    #infrastream-bar input { font: inherit; padding: 2px 6px; }
    #infrastream-bar button { font: inherit; padding: 2px 10px; cursor: pointer; }
    #infrastream-auth-status { color: #444; }
    #infrastream-auth-status.error { color: #b00020; }
    #graphiql { flex: 1; min-height: 0; }
  </style>
</head>
<body>
  <div id="infrastream-bar">
    <strong>infrastream</strong>
    <form id="infrastream-token-form" autocomplete="off">
      <label for="infrastream-token">API token or access token</label>
      <input id="infrastream-token" type="password" size="28" spellcheck="false" />
      <button id="infrastream-use-token" type="submit">Use</button>
    </form>
    <form id="infrastream-login-form">
      <input id="infrastream-username" placeholder="username" autocomplete="username" size="12" />
      <input id="infrastream-password" type="password" placeholder="password" autocomplete="current-password" size="12" />
      <button id="infrastream-login" type="submit">Log in</button>
    </form>
    <button id="infrastream-forget" type="button">Forget credential</button>
    <span id="infrastream-auth-status" role="status"></span>
  </div>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="{react.production.min.js}"></script>
  <script src="{react-dom.production.min.js}"></script>
  <script src="{graphiql.min.js}"></script>
  <script src="{infrastream-graphiql.js}"></script>
</body>
</html>
"#;

/// FNV-1a, 64 bits: a content version for asset URLs, computed at compile time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

static PAGE: LazyLock<String> = LazyLock::new(|| {
    ASSETS.iter().fold(PAGE_TEMPLATE.to_owned(), |page, a| {
        page.replace(
            &format!("{{{}}}", a.name),
            &format!("/graphiql/{}?v={:016x}", a.name, fnv1a(a.body)),
        )
    })
});

fn secure(r: &mut Response, content_type: &'static str, cache_control: &'static str) {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// The page; it talks to the path it was loaded from (`/graphql` or `/graphql/<branch>`).
pub(crate) fn page(_uri: &Uri) -> Response {
    let mut r = (StatusCode::OK, PAGE.as_str()).into_response();
    secure(&mut r, "text/html; charset=utf-8", "no-cache");
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r
}

/// `GET /graphiql/{file}`: one embedded asset, or 404.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(file: &str) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return crate::reply::error_with_status(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such endpoint",
        );
    };
    let mut r = (StatusCode::OK, a.body).into_response();
    secure(&mut r, a.content_type, ASSET_CACHE_CONTROL);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_and_unknown_files() {
        for a in ASSETS {
            let r = serve(a.name);
            assert_eq!(r.status(), StatusCode::OK, "{}", a.name);
            assert_eq!(r.headers()[header::CONTENT_TYPE], a.content_type);
            assert_eq!(r.headers()[header::CACHE_CONTROL], ASSET_CACHE_CONTROL);
        }
        for bad in ["nope.js", "../Cargo.toml", "graphiql.min.js.map", ""] {
            assert_eq!(serve(bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    /// Every asset the page names is embedded, versioned by content, and nothing comes from
    /// elsewhere.
    #[test]
    fn page_references_only_embedded_assets() {
        assert!(
            !PAGE.contains("=\"{"),
            "an unreplaced placeholder: {}",
            *PAGE
        );
        for needle in ["http://", "https://", "//cdn", "unpkg", "jsdelivr"] {
            assert!(!PAGE.contains(needle), "the page contains {needle}");
        }
        for a in ASSETS.iter().filter(|a| !a.name.starts_with("LICENSE")) {
            let url = format!("/graphiql/{}?v={:016x}", a.name, fnv1a(a.body));
            assert!(PAGE.contains(&url), "the page does not reference {url}");
        }
        let r = page(&Uri::from_static("/graphql"));
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
