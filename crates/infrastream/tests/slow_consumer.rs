//! A subscriber that stops reading while 100,000 events are committed: the server's memory
//! stays within a stated bound (measured RSS of the real binary), and when the subscriber
//! reads again it receives every event, in order, with nothing skipped.
//!
//! Bound: RSS growth ≤ 160 MiB. What legitimately grows: the in-memory tail of recent events
//! (`event_tail_capacity`, 65,536 events here), SQLite's page caches and allocator slack. The
//! slow subscriber itself holds a cursor and at most one read batch (512 events); the kernel
//! socket buffers hold the frames already written.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TOKEN: &str = "slow-consumer-token-0123456789abcdef0123456789abcdef";
const EVENTS: usize = 100_000;
const PER_REQUEST: usize = 100;
const BOUND_MIB: u64 = 160;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_bounded_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_infrastream"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--set", "fsync=false"])
        .env("INFRASTREAM_INITIAL_ADMIN_TOKEN", TOKEN)
        .env(
            "INFRASTREAM_INITIAL_ADMIN_PASSWORD",
            "slow-consumer-password",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find_map(|l| {
            l.strip_prefix("infrastream listening on http://")
                .map(str::to_owned)
        })
        .expect("the server prints its address");
    std::thread::spawn(move || lines.for_each(drop));
    let pid = server.0.id();

    let mut req = format!("ws://{addr}/graphql")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": TOKEN}})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"));
    let sub = json!({"id": "s", "type": "subscribe", "payload": {"query": "subscription { events(event_type: [\"slow.x\"]) { id } }"}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_kib(pid);

    // Commit 100,000 events from 4 concurrent writers while the subscriber reads nothing.
    let mutation = {
        let fields: Vec<String> = (0..PER_REQUEST)
            .map(|i| format!("e{i}: EventEmit(data: {{event: \"slow.x\"}}) {{ object {{ id }} }}"))
            .collect();
        json!({"query": format!("mutation {{ {} }}", fields.join(" "))}).to_string()
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, body) = (addr.clone(), mutation.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut ids = Vec::new();
                for _ in 0..EVENTS / PER_REQUEST / 4 {
                    let r: Value = http
                        .post(format!("http://{addr}/graphql"))
                        .header("x-infrahub-key", TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert!(r.get("errors").is_none(), "{r}");
                    for i in 0..PER_REQUEST {
                        ids.push(
                            r["data"][format!("e{i}")]["object"]["id"]
                                .as_str()
                                .unwrap()
                                .to_string(),
                        );
                    }
                }
                ids
            })
        })
        .collect();
    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    assert_eq!(committed.len(), EVENTS);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    let growth_mib = after.saturating_sub(before) / 1024;
    println!(
        "server RSS before {before} KiB, after {after} KiB, growth {growth_mib} MiB (bound {BOUND_MIB} MiB)"
    );
    assert!(
        growth_mib <= BOUND_MIB,
        "RSS grew by {growth_mib} MiB, more than {BOUND_MIB} MiB"
    );

    // Reading again, the subscriber gets every event exactly once, in commit order.
    let mut received = Vec::with_capacity(EVENTS);
    while received.len() < EVENTS {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("events keep coming")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["type"] == "next" {
            received.push(
                v["payload"]["data"]["events"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        } else {
            assert_eq!(v["type"], "ping", "unexpected frame {v}");
        }
    }
    // Concurrent writers interleave, so compare as the server ordered them: by event id (UUIDv7
    // ids grow with commit order within this run) is not guaranteed across writers; compare sets
    // and check there are no duplicates, then check order against the log itself.
    let mut sorted_received = received.clone();
    sorted_received.sort();
    sorted_received.dedup();
    assert_eq!(sorted_received.len(), EVENTS, "no duplicates");
    let mut sorted_committed = committed.clone();
    sorted_committed.sort();
    assert_eq!(
        sorted_received, sorted_committed,
        "every committed event was delivered"
    );
    drop(server);
    let log_order = read_log_order(&dir.path().join("infrastream.db")).await;
    assert_eq!(received, log_order, "delivered in log position order");
}

async fn read_log_order(db: &std::path::Path) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query_scalar::<_, String>("SELECT id FROM events WHERE name = 'slow.x' ORDER BY position")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}
