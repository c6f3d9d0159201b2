//! The server in-process: on `127.0.0.1:0` with a fresh data directory, the kit's admin
//! credentials and `fsync = false`, plus any settings a test overrides; over TLS with
//! [`TestServer::start_tls`], where every helper speaks `https://` and `wss://`.
//!
//! The backend is the embedded store, unless `INFRASTREAM_TEST_STORE=postgres`: then every
//! server gets a fresh database of the test cluster (`INFRASTREAM_TEST_DATABASE_URL`), so a
//! whole suite runs against PostgreSQL unchanged (`scripts/test` runs the WebSocket and
//! events-query suites both ways). A test that sets `store` itself is left alone.

use crate::http::{self, Auth};
use crate::tls::TestCertificate;
use crate::ws::{TRANSPORT_WS, WsClient};
use crate::{ADMIN_PASSWORD, ADMIN_TOKEN};
use serde_json::{Value, json};

/// A running server; stopped (gracefully) when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` (`https://…` over TLS).
    pub url: String,
    /// A client for the test's own requests (trusting the server's certificate over TLS).
    pub http: reqwest::Client,
    /// The client side of TLS, when the server speaks it.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    dir: tempfile::TempDir,
    /// The server's PostgreSQL database, when it runs on one.
    database_url: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server with the default settings plus `overrides` (dotted keys, e.g.
    /// `("subscriptions.min_interval_ms", "50")`).
    ///
    /// # Panics
    /// When the settings are refused or the server cannot start.
    pub async fn start_with(overrides: &[(&str, &str)]) -> Self {
        Self::start_inner(overrides, None).await
    }

    /// Starts a server speaking TLS with `cert`, with the default settings plus `overrides`.
    ///
    /// # Panics
    /// When the settings are refused or the server cannot start.
    pub async fn start_tls(cert: &TestCertificate, overrides: &[(&str, &str)]) -> Self {
        Self::start_inner(overrides, Some(cert)).await
    }

    async fn start_inner(overrides: &[(&str, &str)], cert: Option<&TestCertificate>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend_overrides(overrides).await;
        let database_url = backend
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(overrides.iter().copied())
            .find(|(k, _)| *k == "database_url")
            .map(|(_, v)| v.to_string());
        let mut all = vec![
            ("listen".to_string(), "127.0.0.1:0".to_string()),
            // A directory the server creates itself (private, as it requires).
            (
                "data_dir".to_string(),
                dir.path().join("data").display().to_string(),
            ),
            ("initial_admin_token".to_string(), ADMIN_TOKEN.to_string()),
            (
                "initial_admin_password".to_string(),
                ADMIN_PASSWORD.to_string(),
            ),
            ("fsync".to_string(), "false".to_string()),
        ];
        all.extend(cert.iter().flat_map(|c| c.settings()));
        all.extend(backend);
        all.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let settings = infrastream_config::load(None, Vec::new(), &all).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = infrastream_server::Server::start(settings, listener)
            .await
            .unwrap();
        let url = format!("{}://{}", server.scheme(), server.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url,
            http: cert.map_or_else(reqwest::Client::new, TestCertificate::http_client),
            tls: cert.map(TestCertificate::client_config),
            dir,
            database_url,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it to finish.
    ///
    /// # Panics
    /// When the server stopped with an error.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// The server's PostgreSQL database (`store = postgres`), if it runs on one.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, addr)| addr)
    }

    /// `ws://127.0.0.1:PORT/graphql` (`wss://…` over TLS).
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/graphql", self.addr())
    }

    /// A WebSocket on `/graphql` offering `graphql-transport-ws`, not initialised yet.
    pub async fn ws(&self) -> WsClient {
        match &self.tls {
            Some(config) => {
                WsClient::connect_tls(&self.ws_url(), Some(TRANSPORT_WS), config.clone()).await
            }
            None => WsClient::connect(&self.ws_url(), Some(TRANSPORT_WS)).await,
        }
    }

    /// A WebSocket on `/graphql` offering `graphql-transport-ws`, initialised as admin.
    pub async fn ws_admin(&self) -> WsClient {
        let mut ws = self.ws().await;
        ws.init(ADMIN_TOKEN).await;
        ws
    }

    /// POSTs a GraphQL request to `path` (e.g. `/graphql`) with an API token (or none); returns
    /// status and JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        self.post_as(path, token.into(), query, variables).await
    }

    /// POSTs a GraphQL request to `path` with any credential; returns status and JSON body.
    pub async fn post_as(
        &self,
        path: &str,
        auth: Auth<'_>,
        query: &str,
        variables: Value,
    ) -> (u16, Value) {
        http::post_graphql(
            &self.http,
            &format!("{}{path}", self.url),
            auth,
            query,
            variables,
        )
        .await
    }

    /// Runs a query on `/graphql` with `auth`, asserting success (200, no `errors`); returns
    /// `data`.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn run_as(&self, auth: Auth<'_>, query: &str, variables: Value) -> Value {
        let (status, body) = self.post_as("/graphql", auth, query, variables).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }

    /// Runs a query as admin on `/graphql`, asserting success; returns `data`.
    ///
    /// # Panics
    /// When the request fails.
    pub async fn admin(&self, query: &str, variables: Value) -> Value {
        self.run_as(Auth::Token(ADMIN_TOKEN), query, variables)
            .await
    }

    /// Runs a query as admin and returns the first error message.
    ///
    /// # Panics
    /// When there is no error.
    pub async fn admin_error(&self, query: &str, variables: Value) -> String {
        let (_, body) = self
            .post("/graphql", Some(ADMIN_TOKEN), query, variables)
            .await;
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {body}"))
            .to_string()
    }

    /// Emits a custom event as admin (`extra`: more `EventEmit` input fields, starting with a
    /// comma); returns the stored event's id.
    pub async fn emit(&self, event: &str, extra: &str) -> String {
        let q = format!(
            "mutation {{ EventEmit(data: {{event: \"{event}\" {extra}}}) {{ ok object {{ id }} }} }}"
        );
        let data = self.admin(&q, json!({})).await;
        data["EventEmit"]["object"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> http::Resp {
        http::login(&self.http, &self.url, username, password).await
    }

    /// Logs in, asserting success; returns `(access token, refresh token)`.
    pub async fn login_ok(&self, username: &str, password: &str) -> (String, String) {
        http::login_ok(&self.http, &self.url, username, password).await
    }

    /// The `/metrics` page.
    ///
    /// # Panics
    /// When it cannot be read.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The variable that runs servers of the kit on PostgreSQL (`postgres`) instead of the
/// embedded store.
pub const STORE_VAR: &str = "INFRASTREAM_TEST_STORE";

/// `store` and `database_url` for a fresh PostgreSQL database when `INFRASTREAM_TEST_STORE`
/// is `postgres` and the test does not choose its store; nothing otherwise.
///
/// # Panics
/// When PostgreSQL is asked for but no test cluster is configured.
async fn backend_overrides(overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    if std::env::var(STORE_VAR).as_deref() != Ok("postgres")
        || overrides.iter().any(|(k, _)| *k == "store")
    {
        return Vec::new();
    }
    let url = infrastream_store::conformance::postgres::fresh_database_url("TestServer")
        .await
        .unwrap_or_else(|| panic!("{STORE_VAR}=postgres needs a test cluster"));
    vec![
        ("store".to_string(), "postgres".to_string()),
        ("database_url".to_string(), url),
    ]
}
