//! A client of a running server, for the command line: GraphQL over HTTP for one-shot
//! commands ([`Client::graphql`]), the `events` subscription over WebSocket for following the
//! log ([`tail`]). Errors are one line with the server's own message ([`ClientError`]).
//!
//! `https://` servers are verified against a CA file ([`tls`]); `wss://` follows `https://`.

pub mod output;
pub mod tail;
mod tls;

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why a command failed: one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server answered with an error (its message).
    #[error("{0}")]
    Server(String),
    /// The command was given something it cannot use.
    #[error("{0}")]
    Usage(String),
}

/// A server and the API token to use with it.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// For `https://` (and so `wss://`).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    /// A client of the server at `url` (`http://host:port` or `https://host:port`; an
    /// `https://` server is verified against `ca_file`, see [`tls`]).
    pub fn new(
        url: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let base = url.trim_end_matches('/').to_owned();
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(300));
        let tls = if base.starts_with("https://") {
            let config = tls::config(ca_file)?;
            http = http.use_preconfigured_tls((*config).clone());
            Some(config)
        } else if base.starts_with("http://") {
            None
        } else {
            return Err(ClientError::Usage(format!(
                "--url must start with http:// or https:// (got '{url}')"
            )));
        };
        let http = http
            .build()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        Ok(Self {
            http,
            base,
            token,
            tls,
        })
    }

    /// The server's address, as given.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The WebSocket address of `/graphql`: `ws://` or `wss://` as the server's scheme says.
    pub fn graphql_ws_url(&self) -> String {
        match self.base.strip_prefix("https") {
            Some(rest) => format!("wss{rest}/graphql"),
            None => format!("ws{}/graphql", &self.base["http".len()..]),
        }
    }

    /// How `wss://` connections are made (`None`: plain `ws://`).
    pub(crate) fn ws_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.tls
            .as_ref()
            .map(|c| tokio_tungstenite::Connector::Rustls(c.clone()))
    }

    /// The API token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Runs `query` with `variables` on `branch` (default: the server's default); its `data`.
    pub async fn graphql(
        &self,
        branch: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, ClientError> {
        let url = match branch {
            Some(b) => format!("{}/graphql/{b}", self.base),
            None => format!("{}/graphql", self.base),
        };
        let mut req = self
            .http
            .post(&url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = &self.token {
            req = req.header("X-INFRAHUB-KEY", t);
        }
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if let Some(message) = body["errors"][0]["message"].as_str() {
            return Err(if status == 401 {
                ClientError::Auth(message.to_owned())
            } else {
                ClientError::Server(message.to_owned())
            });
        }
        if !status.is_success() {
            return Err(ClientError::Server(format!("the server answered {status}")));
        }
        Ok(body["data"].clone())
    }
}

/// The innermost cause of an error, for a short message.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Every field of an event the command line shows.
pub const EVENT_FIELDS: &str = "id event branch occurred_at level parent_id account_id primary_node { id kind } related_nodes { id kind } payload";
