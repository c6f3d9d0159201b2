//! Resume from far back: a subscriber resumes with `after` an event 500,000 events old (far
//! beyond the in-memory tail and any lag threshold) while writers keep committing. It receives
//! every event after its cursor, in log order, with no gap and no duplicate, then the live
//! ones; the catch-up rate is printed. `RESUME_BACKLOG` changes the backlog size.

use infrastream_testkit::http::admin_data;
use infrastream_testkit::{TestServer, WsClient};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PER_REQUEST: usize = 250;

/// Commits `requests` × [`PER_REQUEST`] `resume.x` events; returns their ids in commit order
/// per request.
async fn emit_batches(url: String, requests: usize) -> Vec<String> {
    let fields: Vec<String> = (0..PER_REQUEST)
        .map(|i| format!("e{i}: EventEmit(data: {{event: \"resume.x\"}}) {{ object {{ id }} }}"))
        .collect();
    let mutation = format!("mutation {{ {} }}", fields.join(" "));
    let (http, url) = (reqwest::Client::new(), format!("{url}/graphql"));
    let mut ids = Vec::with_capacity(requests * PER_REQUEST);
    for _ in 0..requests {
        let data = admin_data(&http, &url, &mutation).await;
        for i in 0..PER_REQUEST {
            ids.push(
                data[format!("e{i}")]["object"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    ids
}

/// How long the catch-up may go without a frame (replay from far back under load).
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Appends the ids of `next` frames to `received` until it holds `total`.
async fn receive_until(ws: &mut WsClient, received: &mut Vec<String>, total: usize) {
    while received.len() < total {
        let v = ws.recv_within(FRAME_TIMEOUT).await;
        assert!(
            v.get("close").is_none() && v.get("closed").is_none(),
            "events keep coming: {v}"
        );
        if v["type"] == "next" {
            received.push(
                v["payload"]["data"]["events"]["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_500000_events_back_receives_all_in_order_while_writers_commit() {
    let backlog: usize = std::env::var("RESUME_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let s = TestServer::start().await;
    let first = s.emit("resume.x", "").await;
    let started = Instant::now();
    let writers: Vec<_> = (0..4)
        .map(|_| tokio::spawn(emit_batches(s.url.clone(), backlog / PER_REQUEST / 4)))
        .collect();
    let mut committed = 0;
    for w in writers {
        committed += w.await.unwrap().len();
    }
    println!("committed {committed} events in {:?}", started.elapsed());

    // Writers keep committing while the subscriber catches up.
    let keep_writing = Arc::new(AtomicBool::new(true));
    let live_writer = {
        let (url, go) = (s.url.clone(), keep_writing.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            while go.load(Ordering::Relaxed) {
                ids.extend(emit_batches(url.clone(), 1).await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ids
        })
    };

    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "r",
        "subscription($after: String) { events(event_type: [\"resume.x\"], after: $after) { id } }",
        json!({"after": first}),
    )
    .await;
    let replay = Instant::now();
    let mut received: Vec<String> = Vec::with_capacity(committed + 10_000);
    receive_until(&mut ws, &mut received, committed).await;
    let took = replay.elapsed();
    println!(
        "caught up {} events in {took:?}: {:.0} events/s",
        received.len(),
        received.len() as f64 / took.as_secs_f64()
    );
    keep_writing.store(false, Ordering::Relaxed);
    let live = live_writer.await.unwrap();
    // Everything committed during the replay arrives too, after the backlog.
    let total = committed + live.len();
    receive_until(&mut ws, &mut received, total).await;
    // In log order: UUIDv7 ids are not ordered across concurrent writers, so compare with the
    // log as InfrahubEvent pages it (ascending), and check the set and uniqueness.
    let mut unique = received.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), total, "no duplicates, nothing missing");
    let mut log = Vec::new();
    let page = "query($o: Int!) { InfrahubEvent(event_type: [\"resume.x\"], order: ASC, limit: 50, offset: $o) { edges { node { id } } } }";
    for offset in (1..=total).step_by(50) {
        if offset > 2_000 && offset + 2_000 < total {
            continue; // the head and the tail of the log are compared page by page
        }
        let data = s.admin(page, json!({"o": offset})).await;
        for e in data["InfrahubEvent"]["edges"].as_array().unwrap() {
            log.push((offset, e["node"]["id"].as_str().unwrap().to_owned()));
        }
    }
    for (k, (offset, id)) in log.iter().enumerate() {
        let at = offset - 1 + k % 50;
        assert_eq!(&received[at], id, "event {at} in log order");
    }
    s.shutdown().await;
}
