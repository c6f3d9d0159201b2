//! Durability (SPEC §10): several concurrent clients commit mutations against the real binary,
//! the server is killed with SIGKILL mid-stream, restarted on the same data directory, and every
//! acknowledged mutation and its event is found exactly once, with positions still gap-free.

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const TOKEN: &str = "durability-admin-token-0123456789abcdef0123456789ab";
const CLIENTS: u64 = 8;
/// Every this-many-th request of a client is a `BranchCreate`, the rest are `EventEmit`.
const BRANCH_EVERY: u64 = 8;
/// How long the clients load the server before it is killed.
const LOAD: Duration = Duration::from_millis(1000);

/// The server process; killed (SIGKILL) and reaped when dropped, whatever happens in the test.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infrastream"));
        // Settings from the environment of whoever runs the tests must not leak in (fsync!).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("INFRASTREAM_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .env("INFRASTREAM_INITIAL_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the infrastream binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads stdout until the process exits, so the pipe never fills up.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("infrastream listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => server.url = format!("http://{addr}"),
            Err(_) => {
                let status = server.child.try_wait();
                panic!("the server did not print its address within 30 s (status {status:?})");
            }
        }
        server
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (graceful shutdown), falling back to SIGKILL after a few seconds.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A mutation the server acknowledged (HTTP 200, no `errors`, `ok: true`, an object id).
#[derive(Debug, Clone)]
enum Ack {
    Event { id: String, client: u64, seq: u64 },
    Branch { name: String },
}

async fn graphql(http: &reqwest::Client, url: &str, query: &str) -> Result<Value, String> {
    let resp = http
        .post(format!("{url}/graphql"))
        .header("content-type", "application/json")
        .header("x-infrahub-key", TOKEN)
        .json(&json!({ "query": query }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::OK || body.get("errors").is_some() {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
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
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(CLIENTS as usize)
        .build()
        .unwrap();

    // 1. Load, then SIGKILL while the clients are still sending.
    let mut first = Server::start(dir.path());
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
    drop(first);
    assert!(
        acks.len() > 100,
        "only {} mutations were acknowledged before the kill; the test tested too little",
        acks.len()
    );

    // 2. Restart on the same data directory and read everything back.
    let mut second = Server::start(dir.path());
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
    second.stop();
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

    // 3. Positions, straight from the database file: exactly 1..=n, matching the GraphQL count.
    let db = dir.path().join("infrastream.db");
    assert!(db.exists(), "no database file at {}", db.display());
    let mut conn: sqlx::SqliteConnection =
        sqlx::ConnectOptions::connect(&sqlx::sqlite::SqliteConnectOptions::new().filename(&db))
            .await
            .expect("open the database file");
    let positions: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&mut conn)
        .await
        .expect("read positions");
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM events ORDER BY position")
        .fetch_all(&mut conn)
        .await
        .expect("read ids");
    sqlx::Connection::close(conn).await.ok();
    let n = positions.len() as i64;
    assert_eq!(n as u64, count, "database rows vs GraphQL count");
    if let Some((i, p)) = positions
        .iter()
        .enumerate()
        .find(|&(i, &p)| p != i as i64 + 1)
    {
        panic!(
            "positions are not gap-free: index {i} holds position {p} (expected {}), {n} events",
            i + 1
        );
    }
    // The ASC order over GraphQL is the position order.
    let graphql_ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        graphql_ids, ids,
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
