//! Webhook deliveries survive a crash: the real binary delivers events to a slow receiver, is
//! killed with SIGKILL while deliveries are in flight, and restarted on the same data
//! directory; every event is delivered at least once, in log order of first arrival, none
//! lost.

use infrastream_testkit::http::try_graphql;
use infrastream_testkit::{ADMIN_TOKEN, Auth, Binary};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EVENTS: usize = 20;
/// How long the receiver takes to answer each request.
const SLOW_MS: u64 = 100;

/// A receiver recording the `webhook-id` of every request (one request per connection),
/// answering 200 after [`SLOW_MS`].
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                let id = head
                    .lines()
                    .find_map(|l| l.strip_prefix("webhook-id:"))
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                seen.lock().unwrap().push(id);
                tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, log)
}

async fn graphql(http: &reqwest::Client, url: &str, query: &str, vars: Value) -> Value {
    try_graphql(
        http,
        &format!("{url}/graphql"),
        Auth::Token(ADMIN_TOKEN),
        query,
        vars,
    )
    .await
    .unwrap_or_else(|e| panic!("{query}: {e}"))["data"]
        .clone()
}

fn msg(id: &str) -> String {
    format!("msg_{}", id.replace('-', ""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_flight_at_a_sigkill_are_made_after_the_restart() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (hook_url, received) = receiver().await;
    let mut server = Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
        .env_remove("INFRASTREAM_FSYNC")
        .set("webhooks.allow_private_destinations", "true")
        .set("webhooks.timeout_ms", "5000")
        .set("webhooks.retry_base_ms", "50")
        .set("webhooks.retry_max_ms", "200")
        .spawn();
    graphql(
        &http,
        &server.url,
        "mutation($u: String) { CoreStandardWebhookCreate(data: {name: {value: \"crash\"}, url: {value: $u}, branch_scope: {value: \"all_branches\"}}) { ok } }",
        json!({"u": hook_url}),
    )
    .await;
    let mut events = Vec::new();
    for i in 0..EVENTS {
        let d = graphql(
            &http,
            &server.url,
            "mutation($p: GenericScalar) { EventEmit(data: {event: \"acme.crash\", payload: $p}) { object { id } } }",
            json!({"p": {"i": i}}),
        )
        .await;
        events.push(msg(d["EventEmit"]["object"]["id"].as_str().unwrap()));
    }
    // Killed while the receiver is still answering the first deliveries.
    let start = Instant::now();
    while received.lock().unwrap().len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no delivery started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let before = received.lock().unwrap().len();
    assert!(before < EVENTS, "the kill came after every delivery");
    let server = server.restart();
    let start = Instant::now();
    loop {
        let got = received.lock().unwrap().clone();
        if events.iter().all(|e| got.contains(e)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lost after the restart: {:?}",
            events
                .iter()
                .filter(|e| !got.contains(e))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first_arrivals: Vec<String> = Vec::new();
    for id in received.lock().unwrap().iter() {
        if events.contains(id) && !first_arrivals.contains(id) {
            first_arrivals.push(id.clone());
        }
    }
    assert_eq!(first_arrivals, events, "first arrivals in log order");
    drop(server);
}
