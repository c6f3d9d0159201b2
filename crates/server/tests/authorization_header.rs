//! One rule for `Authorization: Bearer <value>` over HTTP and WebSocket: a value shaped like a
//! JWT (three dot-separated base64url parts) is verified as a JWT, anything else is an API
//! token. The same values get the same outcome on a GraphQL POST (served or 401) and on a
//! socket (`connection_ack` or a 4403 close), whether the socket carries the value in its
//! `connection_init` payload or in the upgrade request's header.

use futures::{SinkExt, StreamExt};
use infrastream_testkit::http::tamper_jwt;
use infrastream_testkit::{ADMIN_PASSWORD, ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PROBE: &str = "{ InfrahubInfo { version } }";

/// A real server on 127.0.0.1:0 (the test kit's), probed three ways.
struct Server(TestServer);

impl Server {
    async fn start(overrides: &[(&str, &str)]) -> Self {
        Self(TestServer::start_with(overrides).await)
    }

    /// A JWT access token of admin, from `POST /api/auth/login`.
    async fn login(&self) -> String {
        self.0.login_ok("admin", ADMIN_PASSWORD).await.0
    }

    /// Served or not over HTTP: a GraphQL POST with `Authorization: <authorization>`.
    async fn http(&self, authorization: &str) -> Outcome {
        let resp = self
            .0
            .http
            .post(format!("{}/graphql", self.0.url))
            .header("content-type", "application/json")
            .header("authorization", authorization)
            .body(json!({"query": PROBE}).to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        match status {
            200 => {
                assert!(body.get("errors").is_none(), "{body}");
                assert!(
                    body["data"]["InfrahubInfo"]["version"].is_string(),
                    "{body}"
                );
                Outcome::Served
            }
            401 => Outcome::Refused,
            other => panic!("unexpected HTTP {other}: {body}"),
        }
    }

    /// Served or not over WebSocket (graphql-transport-ws): the value in the
    /// `connection_init` payload, or in the upgrade request's `Authorization` header.
    async fn ws(&self, authorization: &str, in_header: bool) -> Outcome {
        let url = self.0.ws_url();
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let payload = if in_header {
            req.headers_mut()
                .insert("authorization", authorization.parse().unwrap());
            json!({})
        } else {
            json!({"Authorization": authorization})
        };
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let init = json!({"type": "connection_init", "payload": payload});
        ws.send(Message::Text(init.to_string().into()))
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("no answer to connection_init within 20 s")
                .expect("socket ended without a close frame")
                .unwrap();
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(v["type"], "connection_ack", "{v}");
                    return Outcome::Served;
                }
                Message::Close(Some(frame)) => {
                    let code = u16::from(frame.code);
                    assert!(
                        code == 4403 || code == 4401,
                        "close {code} {}",
                        frame.reason
                    );
                    return Outcome::Refused;
                }
                Message::Close(None) => panic!("close frame without a code"),
                _ => continue,
            }
        }
    }

    /// The outcome of `authorization` on all three paths, which must agree.
    async fn outcome(&self, what: &str, authorization: &str) -> Outcome {
        let http = self.http(authorization).await;
        let ws_payload = self.ws(authorization, false).await;
        let ws_header = self.ws(authorization, true).await;
        assert_eq!(
            (http, ws_payload, ws_header),
            (http, http, http),
            "{what}: HTTP, WebSocket init payload, WebSocket upgrade header disagree"
        );
        http
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Served,
    Refused,
}

#[tokio::test]
async fn the_same_authorization_value_means_the_same_over_http_and_websocket() {
    let s = Server::start(&[]).await;
    let jwt = s.login().await;
    let cases = [
        ("valid JWT", format!("Bearer {jwt}"), Outcome::Served),
        (
            "valid JWT, lower-case scheme",
            format!("bearer {jwt}"),
            Outcome::Served,
        ),
        (
            "valid API token as bearer",
            format!("Bearer {ADMIN_TOKEN}"),
            Outcome::Served,
        ),
        (
            "unknown API token as bearer",
            "Bearer 0123456789abcdef0123456789abcdef".to_string(),
            Outcome::Refused,
        ),
        ("garbage", "Bearer garbage!".to_string(), Outcome::Refused),
        (
            "JWT-shaped garbage",
            "Bearer aaa.bbb.ccc".to_string(),
            Outcome::Refused,
        ),
        (
            "tampered JWT",
            format!("Bearer {}", tamper_jwt(&jwt)),
            Outcome::Refused,
        ),
    ];
    for (what, authorization, expected) in &cases {
        assert_eq!(s.outcome(what, authorization).await, *expected, "{what}");
    }
}

#[tokio::test]
async fn an_expired_jwt_is_refused_over_http_and_websocket() {
    let s = Server::start(&[("access_token_lifetime_secs", "1")]).await;
    let jwt = s.login().await;
    let authorization = format!("Bearer {jwt}");
    // A token is refused from its `exp` second on: at most 1 s after it was issued.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        s.outcome("expired JWT", &authorization).await,
        Outcome::Refused
    );
    // The API token still works as a bearer on the same server.
    assert_eq!(
        s.outcome("API token", &format!("Bearer {ADMIN_TOKEN}"))
            .await,
        Outcome::Served
    );
}
