//! Durability (SPEC §10): several concurrent clients commit mutations against the real binary,
//! the server is killed with SIGKILL mid-stream, restarted on the same data directory, and every
//! acknowledged mutation and its event is found exactly once, with positions still gap-free.

use infrastream_testkit::http::try_graphql;
use infrastream_testkit::{ADMIN_TOKEN, Auth, Binary, WsClient, metric};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CLIENTS: u64 = 8;
/// Every this-many-th request of a client is a `BranchCreate`, the rest are `EventEmit`.
const BRANCH_EVERY: u64 = 8;
/// How long the clients load the server before it is killed.
const LOAD: Duration = Duration::from_millis(1000);

/// The binary with its default (durable) `fsync`: nothing of the test's environment, nor the
/// kit's `INFRASTREAM_FSYNC=false`.
fn start() -> Binary {
    Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
        .env_remove("INFRASTREAM_FSYNC")
        .spawn()
}

/// A mutation the server acknowledged (HTTP 200, no `errors`, `ok: true`, an object id).
#[derive(Debug, Clone)]
enum Ack {
    Event { id: String, client: u64, seq: u64 },
    Branch { name: String },
}

async fn graphql(http: &reqwest::Client, url: &str, query: &str) -> Result<Value, String> {
    try_graphql(
        http,
        &format!("{url}/graphql"),
        Auth::Token(ADMIN_TOKEN),
        query,
        Value::Null,
    )
    .await
}

/// Sends mutations until `stop`; returns the acknowledged ones.
async fn client(http: reqwest::Client, url: String, c: u64, stop: Arc<AtomicBool>) -> Vec<Ack> {
    let mut acks = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let branch = seq.is_multiple_of(BRANCH_EVERY);
        let (query, field) = if branch {
            (
                format!(
                    r#"mutation {{ BranchCreate(data: {{name: "dur-{c}-{seq}"}}) {{ ok object {{ id }} }} }}"#
                ),
                "BranchCreate",
            )
        } else {
            (
                format!(
                    r#"mutation {{ EventEmit(data: {{event: "durability.test", payload: {{client: {c}, seq: {seq}}}}}) {{ ok object {{ id }} }} }}"#
                ),
                "EventEmit",
            )
        };
        // Requests in flight when the server dies fail: only acknowledged ones count.
        let Ok(body) = graphql(&http, &url, &query).await else {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let result = &body["data"][field];
        let id = result["object"]["id"].as_str();
        if result["ok"] != json!(true) || id.is_none() {
            continue;
        }
        acks.push(if branch {
            Ack::Branch {
                name: format!("dur-{c}-{seq}"),
            }
        } else {
            Ack::Event {
                id: id.unwrap_or_default().to_string(),
                client: c,
                seq,
            }
        });
    }
    acks
}

/// One stored event as read back over GraphQL.
struct Stored {
    id: String,
    event: String,
    payload: Value,
    created_branch: Option<String>,
}

async fn read_all_events(http: &reqwest::Client, url: &str) -> (Vec<Stored>, u64) {
    let mut out = Vec::new();
    let mut count;
    loop {
        let query = format!(
            "query {{ InfrahubEvent(order: ASC, limit: 50, offset: {}) {{ count edges {{ node {{ \
             id event ... on StandardEvent {{ payload }} \
             ... on BranchCreatedEvent {{ created_branch }} }} }} }} }}",
            out.len()
        );
        let body = graphql(http, url, &query)
            .await
            .unwrap_or_else(|e| panic!("reading events after restart failed: {e}"));
        let page = &body["data"]["InfrahubEvent"];
        count = page["count"].as_u64().expect("count");
        let edges = page["edges"].as_array().expect("edges");
        if edges.is_empty() {
            break;
        }
        for edge in edges {
            let node = &edge["node"];
            out.push(Stored {
                id: node["id"].as_str().expect("event id").to_string(),
                event: node["event"].as_str().expect("event name").to_string(),
                payload: node["payload"].clone(),
                created_branch: node["created_branch"].as_str().map(str::to_string),
            });
        }
        if out.len() as u64 >= count {
            break;
        }
    }
    (out, count)
}

async fn scenario() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(CLIENTS as usize)
        .build()
        .unwrap();

    // 1. Load, then SIGKILL while the clients are still sending.
    let mut first = start();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(client(
                http.clone(),
                first.url.clone(),
                c,
                Arc::clone(&stop),
            ))
        })
        .collect();
    tokio::time::sleep(LOAD).await;
    first.kill();
    stop.store(true, Ordering::Relaxed);
    let mut acks = Vec::new();
    for t in tasks {
        let got = tokio::time::timeout(Duration::from_secs(15), t)
            .await
            .expect("a client did not stop after the server was killed")
            .expect("client task panicked");
        acks.extend(got);
    }
    assert!(
        acks.len() > 100,
        "only {} mutations were acknowledged before the kill; the test tested too little",
        acks.len()
    );

    // 2. Restart on the same data directory and read everything back.
    let mut second = first.restart();
    let (events, count) = read_all_events(&http, &second.url).await;
    assert_eq!(
        events.len() as u64,
        count,
        "paging returned a different number of events than count"
    );
    let body = graphql(&http, &second.url, "query { Branch { name } }")
        .await
        .expect("Branch query after restart");
    let branches: Vec<String> = body["data"]["Branch"]
        .as_array()
        .expect("Branch list")
        .iter()
        .map(|b| b["name"].as_str().expect("branch name").to_string())
        .collect();
    // Positions, through the API: the last committed position (a metric) is the event count,
    // and replaying the log after the oldest event delivers every other one in log order.
    let page = http
        .get(format!("{}/metrics", second.url))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics page");
    let last_position = metric(&page, "infrastream_events_appended_total");
    let mut ws = WsClient::connect(&second.ws_url(), Some("graphql-transport-ws")).await;
    ws.init(ADMIN_TOKEN).await;
    let oldest = events.first().map(|e| e.id.clone());
    ws.subscribe(
        "log",
        "subscription($after: String) { events(after: $after) { id } }",
        json!({ "after": oldest }),
    )
    .await;
    let mut replayed = oldest.into_iter().collect::<Vec<_>>();
    while replayed.len() < events.len() {
        let data = ws.next_data("log").await;
        let id = data["events"]["id"].as_str().expect("replayed event id");
        replayed.push(id.to_string());
    }
    ws.close().await;
    second.stop_or_kill(Duration::from_secs(10)).await;
    drop(second);

    // No event id twice.
    let mut by_id: HashMap<&str, &Stored> = HashMap::new();
    for e in &events {
        assert!(
            by_id.insert(e.id.as_str(), e).is_none(),
            "event {} appears twice",
            e.id
        );
    }
    // No emitted (client, seq) twice, acknowledged or not.
    let mut emitted = HashSet::new();
    for e in events.iter().filter(|e| e.event == "durability.test") {
        let data = &e.payload["data"];
        let key = (data["client"].as_u64(), data["seq"].as_u64());
        assert!(
            emitted.insert(key),
            "emitted event {key:?} stored twice (second copy {})",
            e.id
        );
    }
    // Branch-created events per branch name.
    let mut created: HashMap<&str, usize> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.event == "infrahub.branch.created")
    {
        let name = e
            .created_branch
            .as_deref()
            .unwrap_or_else(|| panic!("branch.created event {} has no created_branch", e.id));
        *created.entry(name).or_default() += 1;
    }
    let branch_set: HashSet<&str> = branches.iter().map(String::as_str).collect();
    assert_eq!(branch_set.len(), branches.len(), "a branch is listed twice");
    // State and event commit together: no test branch without its one event, nor the reverse.
    for name in branches.iter().filter(|n| n.starts_with("dur-")) {
        assert_eq!(
            created.get(name.as_str()).copied().unwrap_or(0),
            1,
            "branch {name} does not have exactly one infrahub.branch.created event"
        );
    }
    for name in created.keys().filter(|n| n.starts_with("dur-")) {
        assert!(
            branch_set.contains(name),
            "event for branch {name} but no branch"
        );
    }

    // Every acknowledged mutation is there, exactly once.
    let (mut acked_events, mut acked_branches) = (0, 0);
    for ack in &acks {
        match ack {
            Ack::Event { id, client, seq } => {
                acked_events += 1;
                let e = by_id
                    .get(id.as_str())
                    .unwrap_or_else(|| panic!("acknowledged event {id} ({client}/{seq}) is lost"));
                assert_eq!(e.event, "durability.test");
                assert_eq!(
                    e.payload["data"],
                    json!({"client": client, "seq": seq}),
                    "payload of acknowledged event {id}"
                );
            }
            Ack::Branch { name } => {
                acked_branches += 1;
                assert!(
                    branch_set.contains(name.as_str()),
                    "acknowledged branch {name} is lost"
                );
                assert_eq!(
                    created.get(name.as_str()).copied().unwrap_or(0),
                    1,
                    "acknowledged branch {name} does not have exactly one created event"
                );
            }
        }
    }
    assert!(acked_events > 0 && acked_branches > 0);

    // 3. Positions: exactly 1..=n. Positions are distinct and start at 1, so a last position
    // equal to the number of events leaves no room for a gap.
    let n = last_position;
    assert_eq!(n as u64, count, "last committed position vs GraphQL count");
    // The ASC order over GraphQL is the position order: the replay after the oldest event
    // (cursor by position) delivered every other event, in the same order.
    let graphql_ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        graphql_ids, replayed,
        "GraphQL ASC order differs from position order"
    );
    eprintln!(
        "durability: {} acknowledged ({acked_events} EventEmit, {acked_branches} BranchCreate), \
         {n} events stored, positions 1..={n}",
        acks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_mutations_survive_sigkill() {
    tokio::time::timeout(Duration::from_secs(120), scenario())
        .await
        .expect("the durability test timed out");
}
