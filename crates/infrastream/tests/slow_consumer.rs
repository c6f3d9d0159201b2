//! Slow consumers against the real binary: 100 sockets stop reading (with small receive
//! buffers, so the kernel cannot hide it) while 10,000 events are committed.
//!
//! - a subscriber that keeps reading receives every event in order, with its latency reported;
//! - the server's memory stays within a stated bound: each stalled connection holds at most
//!   `subscriptions.lag_close_threshold` unsent frames (256 here) before it is closed;
//! - each stalled socket, when it reads again, finds a gap-free prefix of the log and then the
//!   close code 1013; resuming with `after` = the last event it received delivers the rest,
//!   with nothing lost or repeated;
//! - a socket that never reads does not hold up shutdown.

use futures::SinkExt;
use infrastream_testkit::http::admin_data;
use infrastream_testkit::ws::TRANSPORT_WS;
use infrastream_testkit::{ADMIN_TOKEN, Binary, WsClient};
use serde_json::json;
use std::time::{Duration, Instant};

const EVENTS: usize = 10_000;
const PER_REQUEST: usize = 100;
const STALLED: usize = 100;
const MAX_UNSENT_FRAMES: usize = 256;
/// RSS growth allowed: 100 stalled connections × 256 unsent frames of ~1.2 KB (≈ 30 MiB),
/// the in-memory tail of recent events (10,000 here), SQLite's caches and allocator slack.
const BOUND_MIB: u64 = 96;
const SUBSCRIPTION: &str = "subscription($after: String) { events(event_type: [\"slow.x\"], after: $after) { id occurred_at payload } }";
/// Padding in every event's payload: 10,000 frames of ~1.2 KB are more than the kernel's
/// socket buffers hold, so the server itself must hold (and bound) what a stalled client
/// does not read.
const PAD: usize = 1000;

/// How long a socket may go without a frame while it is read.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A subscribed connection; `small_buffer` shrinks its receive buffer to 4 KiB.
async fn subscribe(addr: &str, small_buffer: bool, after: Option<&str>) -> WsClient {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if small_buffer {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let url = format!("ws://{addr}/graphql");
    let mut ws = WsClient::connect_on(stream, &url, Some(TRANSPORT_WS)).await;
    ws.init(ADMIN_TOKEN).await;
    ws.subscribe("s", SUBSCRIPTION, json!({"after": after}))
        .await;
    ws
}

/// What a socket delivers until it closes or `want` events arrived: the event ids (with their
/// latency in ms) and the close code, if it closed.
async fn read(ws: &mut WsClient, want: usize) -> (Vec<(String, f64)>, Option<u16>) {
    let mut got = Vec::new();
    while got.len() < want {
        let v = ws.recv_within(FRAME_TIMEOUT).await;
        if v.get("close").is_some() {
            return (got, v["close"].as_u64().map(|c| c as u16));
        }
        if let Some(end) = v.get("closed") {
            if end != "None" {
                eprintln!("read ended with an error after {} events: {end}", got.len());
            }
            return (got, None);
        }
        if v["type"] == "ping" {
            continue;
        }
        assert_eq!(v["type"], "next", "unexpected frame {v}");
        let e = &v["payload"]["data"]["events"];
        let committed =
            chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap()).unwrap();
        let ms = (chrono::Utc::now() - committed.to_utc())
            .num_microseconds()
            .unwrap() as f64
            / 1e3;
        got.push((e["id"].as_str().unwrap().to_owned(), ms));
    }
    (got, None)
}

async fn commit_events(addr: &str) -> Vec<String> {
    let mutation = {
        let fields: Vec<String> = (0..PER_REQUEST)
            .map(|i| {
                format!(
                    "e{i}: EventEmit(data: {{event: \"slow.x\", payload: {{pad: \"{}\"}}}}) {{ object {{ id }} }}",
                    "x".repeat(PAD)
                )
            })
            .collect();
        format!("mutation {{ {} }}", fields.join(" "))
    };
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (url, mutation) = (format!("http://{addr}/graphql"), mutation.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut ids = Vec::new();
                for _ in 0..EVENTS / PER_REQUEST / 4 {
                    let data = admin_data(&http, &url, &mutation).await;
                    for i in 0..PER_REQUEST {
                        let id = data[format!("e{i}")]["object"]["id"].as_str();
                        ids.push(id.unwrap().to_string());
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
    committed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_sockets_are_bounded_closed_with_1013_and_resume_without_loss() {
    let mut server = Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
        .set("fsync", "false")
        .set(
            "subscriptions.lag_close_threshold",
            &MAX_UNSENT_FRAMES.to_string(),
        )
        .set("ws_write_timeout_ms", "60000")
        .quiet()
        .spawn();
    let addr = server.addr().to_owned();
    let pid = server.pid();

    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        stalled.push(subscribe(&addr, true, None).await);
    }
    let mut reader = subscribe(&addr, false, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid);

    let reading = tokio::spawn(async move {
        let (got, close) = read(&mut reader, EVENTS).await;
        (got, close, reader)
    });
    let committed = commit_events(&addr).await;
    assert_eq!(committed.len(), EVENTS);
    let (log, close, _reader) = reading.await.unwrap();
    assert_eq!(close, None, "the reading subscriber stays open");
    let after = rss_kib(pid);
    let growth_mib = after.saturating_sub(before) / 1024;
    let mut latencies: Vec<f64> = log.iter().map(|(_, ms)| *ms).collect();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "reading subscriber next to {STALLED} stalled sockets: p50 {:.1} ms, p99 {p99:.1} ms over {EVENTS} events; \
         server RSS {before} → {after} KiB (+{growth_mib} MiB, bound {BOUND_MIB} MiB)",
        latencies[latencies.len() / 2]
    );
    assert!(
        growth_mib <= BOUND_MIB,
        "RSS grew by {growth_mib} MiB, more than {BOUND_MIB} MiB"
    );
    // The reading subscriber got everything, each event once: the log order.
    let log: Vec<String> = log.into_iter().map(|(id, _)| id).collect();
    let (mut a, mut b) = (log.clone(), committed.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "every committed event, exactly once");

    // Stalled sockets read again: a prefix of the log, then 1013. A few resume with `after`.
    let mut closed_1013 = 0;
    for (i, ws) in stalled.iter_mut().enumerate() {
        let (got, close) = read(ws, EVENTS).await;
        let got: Vec<String> = got.into_iter().map(|(id, _)| id).collect();
        assert_eq!(got, log[..got.len()], "a gap-free prefix of the log");
        if got.len() == EVENTS {
            continue;
        }
        assert_eq!(close, Some(1013), "socket {i} closed as a slow consumer");
        closed_1013 += 1;
        if i % 20 == 0 && !got.is_empty() {
            let last = got.last().map(String::as_str);
            let mut again = subscribe(&addr, false, last).await;
            let (rest, close) = read(&mut again, EVENTS - got.len()).await;
            assert_eq!(close, None);
            let rest: Vec<String> = rest.into_iter().map(|(id, _)| id).collect();
            assert_eq!(
                rest,
                log[got.len()..],
                "resumed with after: the rest, in order"
            );
        }
    }
    println!("{closed_1013} of {STALLED} stalled sockets were closed with 1013");
    assert!(
        closed_1013 >= STALLED / 2,
        "stalled sockets overflow their unsent-frame limit"
    );

    // A socket that never reads again does not hold up shutdown.
    let mut never = subscribe(&addr, true, None).await;
    let _ = never.inner().flush().await;
    commit_events(&addr).await;
    let stop = Instant::now();
    let exited = server.stop(Duration::from_secs(15)).await;
    println!("shutdown with a stalled socket took {:?}", stop.elapsed());
    assert!(exited.success(), "{exited}");
    drop(never);
}
