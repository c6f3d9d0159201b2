//! A full disk (issue 10, acceptance f), on a real file system: the data directory on a small
//! tmpfs mounted by the test (as root; otherwise the test prints why on stderr and returns).
//! A filler file eats the free space; then writes are refused with `STORAGE_FULL` (HTTP 507
//! over REST, `extensions.code` and `http_status` over GraphQL and WebSocket), `/ready` says
//! 503 while `/health` says 200; once the filler is deleted the server is ready again by
//! itself and accepts writes. Every acknowledged write is in the log, in order, with
//! gap-free positions, and a subscriber connected before the fault received exactly those.

use infrastream_core::storage_full;
use infrastream_testkit::{ADMIN_TOKEN, Resp, TestServer, WsClient, assert_error_reply, http};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Size of the tmpfs: room for the database and the filler, small enough to fill at once.
const TMPFS_SIZE: &str = "24m";
/// Most writes tried before the store must have reported the full disk.
const MAX_WRITES: usize = 5000;
/// Longest wait for `/ready` to change its answer.
const READY_WAIT: Duration = Duration::from_secs(15);
/// Writes acknowledged before the fault.
const PRE_FAULT_WRITES: usize = 20;
/// Bytes freed from the filler after the first refusal, for writes at the edge.
const EDGE_BYTES: u64 = 512 << 10;
/// Name of the event that ends the subscriber's collection.
const END: &str = "test.end";

/// A tmpfs mounted on a fresh directory; unmounted when dropped (lazily if the server still
/// holds a file, e.g. when the test panicked), also on panic.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it, or says why it cannot.
    fn mount() -> Result<Self, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("cannot run `id -u`: {e}"))?;
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
        if uid != "0" {
            return Err(format!("not running as root (uid {uid})"));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run `mount`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`mount -t tmpfs -o size={TMPFS_SIZE} tmpfs {}` failed: {}",
                dir.path().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// Writes zeros to `path` until the file system has no byte left (ever smaller writes, down
/// to one byte, each until `ENOSPC`); returns how many bytes it took.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut written = 0;
    for chunk in [1 << 20, 64 << 10, 4096, 512, 1] {
        let zeros = vec![0u8; chunk];
        loop {
            match f.write(&zeros) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if storage_full::is_storage_full(&e) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

/// `EventEmit` with a padded payload: `Ok(event id)`, or `Err(the error entry's body)`.
async fn emit(s: &TestServer, name: &str, i: usize) -> Result<String, Value> {
    let (status, body) = s
        .post(
            "/graphql",
            Some(ADMIN_TOKEN),
            "mutation($e: String!, $p: GenericScalar) { EventEmit(data: {event: $e, payload: $p}) { ok object { id } } }",
            json!({"e": name, "p": {"i": i, "padding": "x".repeat(2000)}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    match body["data"]["EventEmit"]["object"]["id"].as_str() {
        Some(id) => Ok(id.to_owned()),
        None => Err(body),
    }
}

/// Asserts a GraphQL error body is the full storage: code, status and message.
#[track_caller]
fn assert_storage_full(what: &str, body: &Value) {
    let message = infrastream_testkit::assert_error_entry(what, body, "STORAGE_FULL", 507);
    assert_eq!(message, storage_full::MESSAGE, "{what}");
}

async fn get(s: &TestServer, path: &str) -> Resp {
    http::send(&s.http, "GET", &format!("{}{path}", s.url), &[], None).await
}

async fn upload(s: &TestServer, content: &str) -> Resp {
    http::send(
        &s.http,
        "POST",
        &format!("{}/api/storage/upload/content", s.url),
        &[
            ("x-infrahub-key", ADMIN_TOKEN),
            ("content-type", "application/json"),
        ],
        Some(json!({ "content": content }).to_string().into_bytes()),
    )
    .await
}

/// Polls `/ready` until it answers `status`, within [`READY_WAIT`]; returns that answer.
async fn ready_becomes(s: &TestServer, status: u16) -> Resp {
    let start = Instant::now();
    loop {
        let r = get(s, "/ready").await;
        if r.status == status {
            return r;
        }
        assert!(
            start.elapsed() < READY_WAIT,
            "/ready still answers {} after {READY_WAIT:?} (waiting for {status}): {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every event id of the log, oldest first.
async fn log_ids(s: &TestServer) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let data = s
            .admin(
                "query($o: Int) { InfrahubEvent(limit: 50, offset: $o, order: ASC) { count edges { node { id } } } }",
                json!({"o": ids.len()}),
            )
            .await;
        let edges = data["InfrahubEvent"]["edges"].as_array().unwrap().clone();
        if edges.is_empty() {
            assert_eq!(data["InfrahubEvent"]["count"], ids.len(), "count");
            return ids;
        }
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
    }
}

/// Collects the ids of the `events` subscription `live` until the event named [`END`].
async fn collect(mut ws: WsClient) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let data = ws.next_data("live").await;
        let event = &data["events"];
        if event["event"] == END {
            return ids;
        }
        ids.push(event["id"].as_str().unwrap().to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_loses_nothing_and_recovers_by_itself() {
    let tmpfs = match Tmpfs::mount() {
        Ok(t) => t,
        Err(reason) => {
            eprintln!(
                "disk_full: SKIPPED — the test mounts a {TMPFS_SIZE} tmpfs, which needs root and \
                 mount permission: {reason}"
            );
            return;
        }
    };
    let data_dir = tmpfs.path().join("data");
    let s = TestServer::start_with(&[
        ("data_dir", &data_dir.display().to_string()),
        ("ready_probe_interval_ms", "200"),
    ])
    .await;
    let r = get(&s, "/health").await;
    assert_eq!((r.status, r.json.clone()), (200, json!({"status": "ok"})));
    let r = get(&s, "/ready").await;
    assert_eq!(
        (r.status, r.json.clone()),
        (200, json!({"status": "ready"}))
    );

    // A subscriber from before the fault, from a known event on (so it cannot miss the
    // first write), read by a task meanwhile; then writes before the fault.
    let start = emit(&s, "test.start", 0).await.unwrap();
    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "live",
        "subscription($after: String) { events(after: $after) { id event } }",
        json!({"after": start}),
    )
    .await;
    let subscriber = tokio::spawn(collect(ws));
    let mut acknowledged = Vec::new();
    for i in 0..PRE_FAULT_WRITES {
        acknowledged.push(emit(&s, "test.before", i).await.unwrap());
    }

    // The fault: nothing left on the file system.
    let filler: PathBuf = tmpfs.path().join("filler");
    let eaten = fill(&filler);
    assert!(eaten > 1 << 20, "the filler took only {eaten} bytes");

    // Content for the object store cannot be stored: 507 with the code and the message.
    let r = upload(&s, &"c".repeat(64 << 10)).await;
    let message = assert_error_reply("upload on a full disk", &r, 507, "STORAGE_FULL");
    assert_eq!(message, storage_full::MESSAGE);
    let objects = data_dir.join("objects");
    let leftovers: Vec<_> = std::fs::read_dir(&objects)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "a refused upload left {leftovers:?}");

    // Some space back: writes are accepted up to the edge, until the store cannot commit
    // one.
    let len = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - EDGE_BYTES)
        .unwrap();
    let before_edge = acknowledged.len();
    let mut refusal = None;
    for i in 0..MAX_WRITES {
        match emit(&s, "test.edge", i).await {
            Ok(id) => acknowledged.push(id),
            Err(body) => {
                refusal = Some(body);
                break;
            }
        }
    }
    let refusal =
        refusal.unwrap_or_else(|| panic!("{MAX_WRITES} writes on a full disk all succeeded"));
    assert_storage_full("EventEmit on a full disk", &refusal);
    let at_edge = acknowledged.len() - before_edge;
    eprintln!(
        "disk_full: the filler took {eaten} bytes; with {EDGE_BYTES} bytes freed, {at_edge} \
         writes were acknowledged before the store refused one"
    );
    assert!(at_edge > 0, "no write fit in {EDGE_BYTES} bytes");
    // Readiness fails — at once from the failed commit, then from its probes (a commit of
    // `ready_probe_bytes` does not fit in what the refused one left) — and liveness holds.
    let r = ready_becomes(&s, 503).await;
    let message = assert_error_reply("/ready on a full disk", &r, 503, "STORAGE_FULL");
    assert!(message.contains("storage is full"), "{message}");
    for _ in 0..3 {
        let r = get(&s, "/ready").await;
        assert_eq!(r.status, 503, "/ready while the disk is full: {}", r.text);
        let r = get(&s, "/health").await;
        assert_eq!((r.status, r.json.clone()), (200, json!({"status": "ok"})));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // A change with its event, over HTTP and over WebSocket, is refused the same way.
    let (status, body) = s
        .post(
            "/graphql",
            Some(ADMIN_TOKEN),
            "mutation { BranchCreate(data: {name: \"refused\"}) { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_storage_full("BranchCreate on a full disk", &body);
    let mut writer = s.ws_admin().await;
    writer
        .subscribe(
            "m",
            "mutation { EventEmit(data: {event: \"test.ws\"}) { ok } }",
            Value::Null,
        )
        .await;
    let frame = writer.recv_data().await;
    let entry = match frame["type"].as_str() {
        Some("next") => json!({"errors": frame["payload"]["errors"]}),
        Some("error") => json!({"errors": frame["payload"]}),
        _ => panic!("expected the mutation's result: {frame}"),
    };
    assert_storage_full("EventEmit over WebSocket on a full disk", &entry);
    let data = s.admin("{ Branch { name } }", json!({})).await.to_string();
    assert!(!data.contains("refused"), "a refused branch exists: {data}");

    // Space returns: the server is ready again by itself, and writes are accepted.
    std::fs::remove_file(&filler).unwrap();
    let r = ready_becomes(&s, 200).await;
    assert_eq!(r.json, json!({"status": "ready"}));
    for i in 0..5 {
        acknowledged.push(emit(&s, "test.after", i).await.unwrap());
    }
    let (_, body) = s
        .post(
            "/graphql",
            Some(ADMIN_TOKEN),
            "mutation { BranchCreate(data: {name: \"after-the-fault\"}) { ok } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["BranchCreate"]["ok"], true, "{body}");
    let r = upload(&s, "content after the fault").await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Nothing acknowledged was lost: after the start, the log holds exactly the acknowledged
    // events, in order, then the branch's event…
    let log = log_ids(&s).await;
    let from = log.iter().position(|id| *id == start).unwrap() + 1;
    assert_eq!(
        log.len(),
        from + acknowledged.len() + 1,
        "events after the start"
    );
    assert_eq!(
        log[from..log.len() - 1],
        acknowledged[..],
        "the log after the start"
    );
    // … and the subscriber connected before the fault received exactly those.
    let end = emit(&s, END, 0).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(30), subscriber)
        .await
        .expect("the subscriber received the end")
        .unwrap();
    assert_eq!(received[..], log[from..]);

    // Positions are gap-free: read the database itself once the server stopped.
    s.shutdown().await;
    let store = infrastream_store::sqlite::SqliteStore::open(
        infrastream_store::sqlite::SqliteOptions::new(data_dir.join("infrastream.db")),
    )
    .await
    .unwrap();
    let events =
        infrastream_store::Store::read_after(&store, infrastream_core::Position(0), 1_000_000)
            .await
            .unwrap();
    infrastream_store::Store::close(&store).await;
    let positions: Vec<u64> = events.iter().map(|e| e.position.0).collect();
    assert_eq!(positions, (1..=events.len() as u64).collect::<Vec<_>>());
    let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, [log, vec![end]].concat(), "the database holds the log");
    drop(tmpfs);
}
