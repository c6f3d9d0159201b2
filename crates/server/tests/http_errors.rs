//! Every error answer has the JSON error envelope
//! `{"errors":[{"message","extensions":{"code","http_status"}}]}`, including the ones axum
//! produces on its own: 405 (with `Allow`), unknown routes (404), wrong content type (415),
//! bodies over `max_body_bytes` (413) and refused WebSocket upgrades on `/graphql`. Success
//! answers and error answers that are already JSON are left as they are.

use infrastream_testkit::http::send;
use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use infrastream_testkit::{Resp, assert_error_reply};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Body limit of the servers under test.
const MAX_BODY: usize = 4096;

async fn server() -> TestServer {
    TestServer::start_with(&[("max_body_bytes", &MAX_BODY.to_string())]).await
}

/// The methods of an `Allow` header, sorted.
fn allowed(r: &Resp) -> Vec<String> {
    let mut m: Vec<String> = r
        .header("allow")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    m.sort();
    m
}

#[tokio::test]
async fn method_not_allowed_has_allow_and_the_json_envelope() {
    let s = server().await;
    let cases: &[(&str, &str, &[&str])] = &[
        ("PUT", "/graphql", &["GET", "HEAD", "POST"]),
        ("DELETE", "/graphql", &["GET", "HEAD", "POST"]),
        ("PATCH", "/graphql", &["GET", "HEAD", "POST"]),
        ("PUT", "/graphql/main", &["GET", "HEAD", "POST"]),
        ("GET", "/api/auth/login", &["POST"]),
        ("DELETE", "/api/auth/refresh", &["POST"]),
        ("POST", "/api/info", &["GET", "HEAD"]),
        ("PUT", "/health", &["GET", "HEAD"]),
        ("POST", "/ready", &["GET", "HEAD"]),
        ("POST", "/metrics", &["GET", "HEAD"]),
    ];
    for (method, path, allow) in cases {
        let what = format!("{method} {path}");
        let body = (*method != "GET").then(|| b"{}".to_vec());
        let r = send(
            &s.http,
            method,
            &format!("{}{path}", s.url),
            &[
                ("x-infrahub-key", ADMIN_TOKEN),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await;
        let message = assert_error_reply(&what, &r, 405, "METHOD_NOT_ALLOWED");
        assert_eq!(allowed(&r), *allow, "{what}: Allow header");
        assert!(
            message.contains(method),
            "{what}: message {message:?} does not name the method"
        );
        for m in *allow {
            assert!(
                message.contains(m),
                "{what}: message {message:?} does not name {m}"
            );
        }
        assert_eq!(
            r.header("content-length"),
            r.text.len().to_string(),
            "{what}: content length"
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let s = server().await;
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/api/nope"),
        ("PUT", "/api/auth"),
        ("GET", "/api/storage/object"),
    ] {
        let r = send(&s.http, method, &format!("{}{path}", s.url), &[], None).await;
        assert_error_reply(&format!("{method} {path}"), &r, 404, "NOT_FOUND");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn wrong_content_type_is_415_json() {
    let s = server().await;
    let body = json!({"query": "{ Branch { name } }"}).to_string();
    for content_type in ["text/plain", "application/graphql", "multipart/form-data"] {
        let r = send(
            &s.http,
            "POST",
            &format!("{}/graphql", s.url),
            &[
                ("x-infrahub-key", ADMIN_TOKEN),
                ("content-type", content_type),
            ],
            Some(body.clone().into_bytes()),
        )
        .await;
        assert_error_reply(content_type, &r, 415, "UNSUPPORTED_MEDIA_TYPE");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_json() {
    let s = server().await;
    let big = json!({"username": "admin", "password": "x".repeat(MAX_BODY)}).to_string();
    for path in ["/api/auth/login", "/graphql", "/api/storage/upload/content"] {
        let r = send(
            &s.http,
            "POST",
            &format!("{}{path}", s.url),
            &[
                ("x-infrahub-key", ADMIN_TOKEN),
                ("content-type", "application/json"),
            ],
            Some(big.clone().into_bytes()),
        )
        .await;
        assert_error_reply(path, &r, 413, "PAYLOAD_TOO_LARGE");
    }
    // Under the limit, the login body is read and judged as before.
    let r = send(
        &s.http,
        "POST",
        &format!("{}/api/auth/login", s.url),
        &[("content-type", "application/json")],
        Some(br#"{"username": "admin", "password": "wrong"}"#.to_vec()),
    )
    .await;
    assert_error_reply("wrong password", &r, 401, "UNAUTHENTICATED");
    s.shutdown().await;
}

/// A raw HTTP/1.1 exchange (reqwest manages `Connection` and `Upgrade` itself): sends
/// `request` on a fresh connection and reads one answer, its body by `Content-Length`.
async fn raw(url: &str, request: &str) -> Resp {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let read = async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&out[..end]).into_owned();
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
                if out.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&out[end + 4..end + 4 + length]);
                    return (head, body.into_owned());
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed mid-answer: {:?}",
                String::from_utf8_lossy(&out)
            );
            out.extend_from_slice(&buf[..n]);
        }
    };
    let (head, body) = tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .expect("a complete answer within 10 s");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    Resp {
        status,
        headers,
        json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        text: body,
    }
}

#[tokio::test]
async fn refused_websocket_upgrades_are_json() {
    let s = server().await;
    let host = s.url.trim_start_matches("http://").to_string();
    let cases = [
        (
            "no Sec-WebSocket-Key",
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        ),
        (
            "unsupported WebSocket version",
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
        (
            "Upgrade without Connection: Upgrade",
            "Connection: close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
    ];
    for (what, headers) in cases {
        let r = raw(
            &s.url,
            &format!("GET /graphql HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n"),
        )
        .await;
        // The status is the upgrade code's to choose (400, 426…); the shape is not.
        assert!((400..500).contains(&r.status), "{what}: {r:?}");
        let code = match r.status {
            400 => "BAD_USER_INPUT",
            426 => "UPGRADE_REQUIRED",
            other => panic!("{what}: unexpected status {other}: {r:?}"),
        };
        assert_error_reply(what, &r, r.status, code);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn successes_and_json_errors_are_left_alone() {
    let s = server().await;
    // Plain-text success: the Prometheus page.
    let r = send(&s.http, "GET", &format!("{}/metrics", s.url), &[], None).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/plain"));
    assert!(r.text.contains("infrastream_ws_connections"), "{}", r.text);
    // HTML success: GraphiQL.
    let r = send(
        &s.http,
        "GET",
        &format!("{}/graphql", s.url),
        &[("accept", "text/html")],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/html"));
    // A GraphQL request error with graphql-response+json keeps its GraphQL body.
    let r = send(
        &s.http,
        "POST",
        &format!("{}/graphql", s.url),
        &[
            ("x-infrahub-key", ADMIN_TOKEN),
            ("content-type", "application/json"),
            ("accept", "application/graphql-response+json"),
        ],
        Some(br#"{"query": "{ nope }"}"#.to_vec()),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.header("content-type")
            .starts_with("application/graphql-response+json")
    );
    assert_eq!(
        r.json["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{}",
        r.text
    );
    // The handler's own 405 (a mutation over GET) keeps its message and `Allow: POST`.
    let r = send(
        &s.http,
        "GET",
        &format!(
            "{}/graphql?query=mutation%20%7B%20BranchCreate(data%3A%20%7Bname%3A%20%22x%22%7D)%20%7B%20ok%20%7D%20%7D",
            s.url
        ),
        &[("x-infrahub-key", ADMIN_TOKEN)],
        None,
    )
    .await;
    let message = assert_error_reply("mutation over GET", &r, 405, "METHOD_NOT_ALLOWED");
    assert_eq!(message, "Mutations must be sent with POST");
    assert_eq!(r.header("allow"), "POST");
    s.shutdown().await;
}
