//! One WebSocket client for both GraphQL-over-WebSocket subprotocols, on tokio-tungstenite.
//!
//! Frames are JSON values; a close frame reads as `{"close": code, "reason": …}` and the end of
//! the stream (or an error) as `{"closed": "…"}`, so tests can assert on close codes like on
//! any other frame. Every wait is bounded by [`WS_TIMEOUT`] unless the call says otherwise
//! (`*_within`): a failure detector, frames normally arrive within milliseconds.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The default bound on every wait for a frame.
pub const WS_TIMEOUT: Duration = Duration::from_secs(20);
/// The `graphql-transport-ws` subprotocol.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// The legacy `graphql-ws` subprotocol (subscriptions-transport-ws).
pub const LEGACY_WS: &str = "graphql-ws";

/// The socket under the client.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking JSON frames.
pub struct WsClient {
    ws: Ws,
    protocol: Option<String>,
    /// The stream has ended (reported once as `{"closed": …}`).
    ended: bool,
}

impl WsClient {
    /// Connects to `url` (`ws://…/graphql`) offering `offer` as `Sec-WebSocket-Protocol` (the
    /// header's whole value, e.g. `"graphql-ws, graphql-transport-ws"`; `None`: no header).
    ///
    /// # Panics
    /// When the handshake fails.
    pub async fn connect(url: &str, offer: Option<&str>) -> Self {
        Self::try_connect(url, offer)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"))
    }

    /// Like [`WsClient::connect`], with the failure as an `Err`.
    pub async fn try_connect(url: &str, offer: Option<&str>) -> Result<Self, String> {
        let req = request(url, offer)?;
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        Ok(Self::new(ws, &resp))
    }

    /// Connects to `url` (`wss://…/graphql`) over TLS with `config` (e.g.
    /// [`TestCertificate::client_config`](crate::TestCertificate::client_config)).
    pub async fn try_connect_tls(
        url: &str,
        offer: Option<&str>,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Result<Self, String> {
        let req = request(url, offer)?;
        let connector = tokio_tungstenite::Connector::Rustls(config);
        let (ws, resp) =
            tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector))
                .await
                .map_err(|e| format!("connect: {e}"))?;
        Ok(Self::new(ws, &resp))
    }

    /// Like [`WsClient::try_connect_tls`].
    ///
    /// # Panics
    /// When the handshake fails.
    pub async fn connect_tls(
        url: &str,
        offer: Option<&str>,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Self {
        Self::try_connect_tls(url, offer, config)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"))
    }

    /// Connects over TLS with `config` on a TCP stream the test made itself (e.g. with a
    /// small receive buffer).
    ///
    /// # Panics
    /// When the handshake fails.
    pub async fn connect_tls_on(
        stream: tokio::net::TcpStream,
        url: &str,
        offer: Option<&str>,
        config: std::sync::Arc<rustls::ClientConfig>,
    ) -> Self {
        let req = request(url, offer).unwrap();
        let connector = tokio_tungstenite::Connector::Rustls(config);
        let (ws, resp) =
            tokio_tungstenite::client_async_tls_with_config(req, stream, None, Some(connector))
                .await
                .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
        Self::new(ws, &resp)
    }

    /// Connects over a TCP stream the test made itself (e.g. with a small receive buffer).
    ///
    /// # Panics
    /// When the handshake fails.
    pub async fn connect_on(stream: tokio::net::TcpStream, url: &str, offer: Option<&str>) -> Self {
        let req = request(url, offer).unwrap();
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (ws, resp) = tokio_tungstenite::client_async(req, stream)
            .await
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
        Self::new(ws, &resp)
    }

    fn new(ws: Ws, resp: &tokio_tungstenite::tungstenite::handshake::client::Response) -> Self {
        let protocol = resp
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        Self {
            ws,
            protocol,
            ended: false,
        }
    }

    /// The subprotocol the server echoed, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    fn legacy(&self) -> bool {
        self.protocol.as_deref() == Some(LEGACY_WS)
    }

    /// The socket itself, for what the JSON helpers do not cover (ping frames, raw reads).
    pub fn inner(&mut self) -> &mut Ws {
        &mut self.ws
    }

    /// The socket itself, consuming the client.
    pub fn into_inner(self) -> Ws {
        self.ws
    }

    /// Sends a JSON text frame.
    ///
    /// # Panics
    /// When the socket is gone.
    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends a text frame as is (e.g. broken JSON).
    ///
    /// # Panics
    /// When the socket is gone.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// Like [`WsClient::send`], with the failure as an `Err`.
    pub async fn try_send(&mut self, v: Value) -> Result<(), String> {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .map_err(|e| e.to_string())
    }

    /// The next text frame as JSON, or the close frame as `{"close": code, "reason": …}`,
    /// within [`WS_TIMEOUT`].
    ///
    /// # Panics
    /// When nothing arrives in time or a text frame is not JSON.
    pub async fn recv(&mut self) -> Value {
        self.recv_within(WS_TIMEOUT).await
    }

    /// [`WsClient::recv`] with its own bound.
    ///
    /// # Panics
    /// When nothing arrives within `limit`.
    pub async fn recv_within(&mut self, limit: Duration) -> Value {
        self.recv_timeout(limit).await.unwrap_or_else(|| {
            panic!(
                "no frame within {limit:?} (a failure detector; frames normally arrive in milliseconds)"
            )
        })
    }

    /// [`WsClient::recv`], `None` when nothing arrived within `limit`.
    pub async fn recv_timeout(&mut self, limit: Duration) -> Option<Value> {
        tokio::time::timeout(limit, self.recv_frame()).await.ok()
    }

    async fn recv_frame(&mut self) -> Value {
        assert!(
            !self.ended,
            "reading a WebSocket whose stream has ended (its end was returned already)"
        );
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("a text frame that is not JSON ({e}): {t}"));
                }
                Some(Ok(Message::Close(f))) => {
                    return json!({"close": f.as_ref().map(|f| u16::from(f.code)), "reason": f.map(|f| f.reason.to_string())});
                }
                Some(Ok(_)) => continue,
                other => {
                    self.ended = true;
                    return json!({"closed": format!("{other:?}")});
                }
            }
        }
    }

    /// The next frame that is not a keep-alive (`ka`, `ping`), within [`WS_TIMEOUT`].
    pub async fn recv_data(&mut self) -> Value {
        self.recv_data_within(WS_TIMEOUT).await
    }

    /// [`WsClient::recv_data`] with its own bound (for each frame).
    pub async fn recv_data_within(&mut self, limit: Duration) -> Value {
        loop {
            let v = self.recv_within(limit).await;
            if v["type"] != "ka" && v["type"] != "ping" {
                return v;
            }
        }
    }

    /// Asserts that the next data frame is a close frame with `code`; returns its reason.
    #[track_caller]
    pub fn expect_close(&mut self, code: u16) -> impl Future<Output = String> + '_ {
        let caller = std::panic::Location::caller();
        async move {
            let f = self.recv_data().await;
            assert_eq!(f["close"], code, "expected close {code} at {caller}: {f}");
            f["reason"].as_str().unwrap_or_default().to_string()
        }
    }

    /// Asserts that no text frame arrives within `ms` milliseconds (keep-alives included).
    pub async fn assert_silent(&mut self, ms: u64) {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_millis(ms), self.ws.next()).await
        {
            panic!("unexpected frame {t}");
        }
    }

    /// Sends `connection_init` with an API token — `{"X-INFRAHUB-KEY": token}`, or
    /// `{"authToken": token}` on the legacy protocol — and asserts the `connection_ack`.
    pub async fn init(&mut self, token: &str) {
        let payload = if self.legacy() {
            json!({"authToken": token})
        } else {
            json!({"X-INFRAHUB-KEY": token})
        };
        self.init_with(payload).await;
    }

    /// Sends `connection_init` with `payload` and asserts the `connection_ack`.
    pub async fn init_with(&mut self, payload: Value) {
        self.send(json!({"type": "connection_init", "payload": payload}))
            .await;
        assert_eq!(self.recv().await, json!({"type": "connection_ack"}));
    }

    /// Starts operation `id`: `subscribe` (or `start` on the legacy protocol) with `query` and
    /// `variables` (`Value::Null`: none).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy() { "start" } else { "subscribe" };
        let mut payload = json!({"query": query});
        if !variables.is_null() {
            payload["variables"] = variables;
        }
        self.send(json!({"id": id, "type": kind, "payload": payload}))
            .await;
    }

    /// Stops operation `id`: `complete` (or `stop` on the legacy protocol).
    pub async fn complete(&mut self, id: &str) {
        let kind = if self.legacy() { "stop" } else { "complete" };
        self.send(json!({"id": id, "type": kind})).await;
    }

    /// The `data` of the next result frame (`next`, or `data` on the legacy protocol) of
    /// operation `id`, skipping keep-alives and other operations' frames.
    ///
    /// # Panics
    /// On an `error`, a `complete` or a close for `id`, or when nothing arrives in time.
    pub async fn next_data(&mut self, id: &str) -> Value {
        loop {
            let f = self.recv_data().await;
            if f.get("close").is_some() || f.get("closed").is_some() {
                panic!("the socket closed while waiting for a result of {id}: {f}");
            }
            if f["id"] != id {
                continue;
            }
            assert!(
                f["type"] == "next" || f["type"] == "data",
                "expected a result of {id}: {f}"
            );
            return f["payload"]["data"].clone();
        }
    }

    /// Closes the socket (close frame 1000), ignoring a socket already gone.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

fn request(
    url: &str,
    offer: Option<&str>,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(p) = offer {
        req.headers_mut().insert(
            "sec-websocket-protocol",
            p.parse().map_err(|e| format!("{e}"))?,
        );
    }
    Ok(req)
}
