//! Test harness: a real server on 127.0.0.1:0 with a fresh data directory, and a small GraphQL
//! client. Shared by the integration tests of this crate.
#![allow(dead_code, unreachable_pub)]

use serde_json::{Value, json};

/// The admin API token every test server is started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-00000000000000000000000000000000";
/// The admin password every test server is started with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A running server; stopped (gracefully) when dropped.
pub struct TestServer {
    pub url: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with the default settings plus `overrides` (dotted keys).
    pub async fn start_with(overrides: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![
            ("listen".to_string(), "127.0.0.1:0".to_string()),
            ("data_dir".to_string(), dir.path().display().to_string()),
            ("initial_admin_token".to_string(), ADMIN_TOKEN.to_string()),
            (
                "initial_admin_password".to_string(),
                ADMIN_PASSWORD.to_string(),
            ),
            ("fsync".to_string(), "false".to_string()),
        ];
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
        let url = format!("http://{}", server.local_addr().unwrap());
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
            http: reqwest::Client::new(),
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Starts a server with default settings.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
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
        let mut req = self
            .http
            .post(format!("{}{}", self.url, path))
            .header("content-type", "application/json")
            .body(json!({"query": query, "variables": variables}).to_string());
        if let Some(t) = token {
            req = req.header("x-infrahub-key", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Runs a query as admin on `/graphql`, asserting success; returns `data`.
    pub async fn admin(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post("/graphql", Some(ADMIN_TOKEN), query, variables)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs a query as admin and returns the first error message (panics if none).
    pub async fn admin_error(&self, query: &str, variables: Value) -> String {
        let (_, body) = self
            .post("/graphql", Some(ADMIN_TOKEN), query, variables)
            .await;
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error: {body}"))
            .to_string()
    }

    /// Emits a custom event as admin; returns the stored event's id.
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
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
