//! WebSocket and HTTP client pieces shared by the subscription scenarios: connect and
//! `connection_init` over graphql-transport-ws (optionally from a chosen 127.0.0.x source
//! address), subscribe, a ping/pong barrier, `EventEmit` over HTTP, and a group of
//! single-subscription connections that record commit → received latencies.
//!
//! The per-frame work of a subscriber is kept minimal because the client shares the machine's
//! cores with the server: one substring search for `"occurred_at":"`, a fixed-format timestamp
//! parse, one clock read, one push into a preallocated `Vec<u32>` and one atomic increment.

use crate::process::Server;
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Longest wait for any single handshake step.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens a graphql-transport-ws connection to `addr` (from `bind`, if given), sends the
/// `connection_init` message `init` and waits for `connection_ack`.
pub(crate) async fn connect(
    addr: SocketAddr,
    init: &str,
    bind: Option<IpAddr>,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = bind {
        // Lets bind() reuse local ports still in TIME_WAIT from an earlier run.
        socket.set_reuseaddr(true)?;
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("cannot bind to {ip}"))?;
    }
    let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr))
        .await
        .context("TCP connect timed out")??;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // Small buffers: the bench holds up to 10,000 connections per process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        client_async_with_config(request, stream, Some(config)),
    )
    .await
    .context("WebSocket upgrade timed out")?
    .context("WebSocket upgrade failed")?;
    ws.send(Message::text(init)).await?;
    let ack = wait_for(&mut ws, r#""connection_ack""#).await;
    ack.context("no connection_ack")?;
    Ok(ws)
}

/// Sends a `subscribe` with this id and document.
pub(crate) async fn subscribe(ws: &mut Ws, id: &str, query: &str) -> anyhow::Result<()> {
    let msg = serde_json::json!({"id": id, "type": "subscribe", "payload": {"query": query}});
    ws.send(Message::text(msg.to_string())).await?;
    Ok(())
}

/// Sends a protocol `ping` and waits for its `pong`. The server handles a connection's
/// messages in order, so after the pong every earlier `subscribe` has started (its cursor
/// is placed); an `error` frame before it (a refused subscription) is an error.
pub(crate) async fn barrier(ws: &mut Ws) -> anyhow::Result<()> {
    ws.send(Message::text(r#"{"type":"ping"}"#)).await?;
    wait_for(ws, r#""pong""#).await
}

/// Reads until a text frame containing `needle`; answers protocol pings; fails on anything
/// else that is not a control frame.
async fn wait_for(ws: &mut Ws, needle: &str) -> anyhow::Result<()> {
    let step = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str().contains(needle) => return Ok(()),
                Some(Ok(Message::Text(t))) if t.as_str().contains(r#""type":"ping""#) => {
                    ws.send(Message::text(r#"{"type":"pong"}"#)).await?;
                }
                Some(Ok(Message::Text(t))) => bail!("unexpected frame: {}", t.as_str()),
                Some(Ok(Message::Close(f))) => bail!("closed by the server: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => bail!("connection closed"),
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .with_context(|| format!("timed out waiting for {needle}"))?
}

/// Microseconds since the Unix epoch, from the wall clock (the clock the server stamps
/// `occurred_at` with).
pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `occurred_at` of an event frame (`…"occurred_at":"2024-01-01T12:00:00.123456Z"…`) in
/// microseconds since the Unix epoch, without parsing the JSON.
/// Fractions of a second with 1 to 6 digits are read (the Node reference server stamps
/// milliseconds).
pub(crate) fn occurred_at_micros(frame: &str) -> Option<i64> {
    const KEY: &str = "\"occurred_at\":\"";
    let start = frame.find(KEY)? + KEY.len();
    let s = frame.get(start..(start + 27).min(frame.len()))?.as_bytes();
    let z = s.iter().position(|&c| c == b'Z')?;
    if z < 21 || s[4] != b'-' || s[10] != b'T' || s[19] != b'.' {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<i64> {
        s[a..b].iter().try_fold(0i64, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0'))
        })
    };
    let days = days_from_civil(num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let secs = days * 86_400 + num(11, 13)? * 3600 + num(14, 16)? * 60 + num(17, 19)?;
    let fraction = num(20, z)? * 10i64.pow(26 - z as u32);
    Some(secs * 1_000_000 + fraction)
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Commits custom events with `EventEmit` over HTTP.
#[derive(Clone)]
pub(crate) struct Emitter {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Emitter {
    pub(crate) fn new(server: &Server) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: server.http_url(),
            token: server.token.clone(),
        }
    }

    /// Commits one event of type `event`; fails unless the mutation answered `ok`.
    pub(crate) async fn emit(&self, event: &str) -> anyhow::Result<()> {
        let query = format!(r#"mutation {{ EventEmit(data: {{event: "{event}"}}) {{ ok }} }}"#);
        let body = serde_json::json!({ "query": query }).to_string();
        let resp = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-infrahub-key", &self.token)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() || !text.contains(r#""ok":true"#) {
            bail!("EventEmit failed: {status} {text}");
        }
        Ok(())
    }
}

/// State shared by the subscribers of a [`Group`] and the scenario driving them.
pub(crate) struct Shared {
    n: u64,
    /// Event frames received by all subscribers together.
    pub(crate) frames: AtomicU64,
    /// Subscribers that finished their setup (successfully or not).
    set_up: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    notify: Notify,
}

impl Shared {
    fn fail(&self, error: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(error);
        drop(first);
        self.errors.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn check(&self) -> anyhow::Result<()> {
        let errors = self.errors.load(Ordering::SeqCst);
        if errors > 0 {
            let first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
            bail!(
                "{errors} subscriber(s) failed; first error: {}",
                first.as_deref().unwrap_or("?")
            );
        }
        Ok(())
    }
}

/// What one subscriber received: per event frame, in arrival order, the latency from the
/// event's `occurred_at` (µs) and the wall-clock time of arrival (µs since the epoch).
pub(crate) struct Received {
    pub(crate) latencies: Vec<u32>,
    pub(crate) at: Vec<i64>,
}

/// N connections with one `events` subscription each; every subscriber records the latency
/// (µs, receive wall-clock time − `occurred_at`) of each event frame, in arrival order.
pub(crate) struct Group {
    pub(crate) shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Received>>,
    /// How long opening and subscribing every connection took.
    pub(crate) setup: Duration,
}

impl Group {
    /// Opens `n` connections (at most `concurrency` handshakes at a time), subscribes each
    /// to `query` and waits until every subscription is placed (ping/pong barrier).
    pub(crate) async fn open(
        server: &Server,
        n: usize,
        query: &str,
        concurrency: usize,
        expected_frames: usize,
    ) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            n: n as u64,
            frames: AtomicU64::new(0),
            set_up: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
            notify: Notify::new(),
        });
        let (stop, stopped) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (shared, gate, mut stopped) = (shared.clone(), gate.clone(), stopped.clone());
            let (addr, init, query) = (server.addr, server.init.clone(), query.to_string());
            tasks.push(tokio::spawn(async move {
                let mut received = Received {
                    latencies: Vec::with_capacity(expected_frames),
                    at: Vec::with_capacity(expected_frames),
                };
                let setup = async {
                    let _permit = gate.acquire().await?;
                    let mut ws = connect(addr, &init, None).await?;
                    subscribe(&mut ws, "1", &query).await?;
                    barrier(&mut ws).await?;
                    anyhow::Ok(ws)
                };
                let ws = setup.await;
                let done = shared.set_up.fetch_add(1, Ordering::SeqCst) + 1;
                let mut ws = match ws {
                    Ok(ws) => ws,
                    Err(e) => {
                        shared.fail(format!("{e:#}"));
                        return received;
                    }
                };
                if done == shared.n {
                    shared.notify.notify_one();
                }
                loop {
                    tokio::select! {
                        biased;
                        msg = ws.next() => match msg {
                            Some(Ok(Message::Text(t))) => {
                                if let Some(at) = occurred_at_micros(t.as_str()) {
                                    let now = now_micros();
                                    let lat = (now - at).clamp(0, i64::from(u32::MAX));
                                    received.latencies.push(lat as u32);
                                    received.at.push(now);
                                    let total = shared.frames.fetch_add(1, Ordering::SeqCst) + 1;
                                    if total.is_multiple_of(shared.n) {
                                        shared.notify.notify_one();
                                    }
                                } else if t.as_str().contains(r#""type":"ping""#) {
                                    let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
                                } else {
                                    shared.fail(format!("unexpected frame: {}", t.as_str()));
                                }
                            }
                            Some(Ok(Message::Close(f))) => {
                                shared.fail(format!("closed by the server: {f:?}"));
                                break;
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                shared.fail(format!("read failed: {e}"));
                                break;
                            }
                            None => {
                                shared.fail("connection closed".into());
                                break;
                            }
                        },
                        _ = stopped.changed() => break,
                    }
                }
                received
            }));
        }
        let group = Self {
            shared,
            stop,
            tasks,
            setup: Duration::ZERO,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            group.shared.check()?;
            if group.shared.set_up.load(Ordering::SeqCst) == n as u64 {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "only {} of {n} subscribers were set up in 600 s",
                    group.shared.set_up.load(Ordering::SeqCst)
                );
            }
            let _ = tokio::time::timeout(left, group.shared.notify.notified()).await;
        }
        Ok(Self {
            setup: started.elapsed(),
            ..group
        })
    }

    /// Waits until the subscribers received `target` event frames in total.
    pub(crate) async fn wait_frames(&self, target: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.shared.check()?;
            let got = self.shared.frames.load(Ordering::SeqCst);
            if got >= target {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("only {got} of {target} event frames arrived within {timeout:?}");
            }
            let _ = tokio::time::timeout(left, self.shared.notify.notified()).await;
        }
    }

    /// Stops every subscriber and returns each one's latencies (µs, in arrival order);
    /// fails if any subscriber failed.
    pub(crate) async fn finish(self) -> anyhow::Result<Vec<Received>> {
        let shared = self.shared.clone();
        let all = self.finish_partial().await?;
        shared.check()?;
        Ok(all)
    }

    /// Stops every subscriber and returns what each one received, even if some failed.
    pub(crate) async fn finish_partial(self) -> anyhow::Result<Vec<Received>> {
        let _ = self.stop.send(true);
        let mut all = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            all.push(t.await?);
        }
        Ok(all)
    }
}

/// A latency histogram (µs) with 3 significant digits, from 1 µs to 10 minutes.
pub(crate) fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Milliseconds of a µs quantile of `h`.
pub(crate) fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_occurred_at() {
        let f = |s: &str| occurred_at_micros(&format!(r#"{{"occurred_at":"{s}","id":"x"}}"#));
        assert_eq!(f("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            f("2024-01-01T12:00:00.123456Z"),
            Some(1_704_110_400_123_456)
        );
        assert_eq!(f("2000-02-29T23:59:59.999999Z"), Some(951_868_799_999_999));
        assert_eq!(f("2024-01-01T12:00:00Z"), None);
        assert_eq!(f("2024-01-01T12:00:00.123Z"), Some(1_704_110_400_123_000));
        assert_eq!(occurred_at_micros(r#"{"type":"ping"}"#), None);
    }
}
