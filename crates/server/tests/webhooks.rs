//! Outgoing webhooks against a receiver under the test's control: a real HTTP server on
//! 127.0.0.1 that records every request and answers from a script (500, a timeout, 429 with
//! `Retry-After`, 410, then 200). Every event arrives at least once, in log order, with a
//! `webhook-id` stable across retries and replays and a signature over the bytes sent; the
//! dead letter, the 410 deactivation, both replays, the filters (event types, node kinds,
//! branch scope), configuration changes and the private-destination refusal are checked
//! through the delivery history (`InfrahubWebhookDelivery`).
//!
//! Run with `cargo test -p infrastream-server --test webhooks`; with
//! `INFRASTREAM_TEST_STORE=postgres` against PostgreSQL.

use infrastream_services::webhooks::signing::{Scheme, message_id, parse_keys, verify};
use infrastream_testkit::TestServer;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any condition is waited for.
const DEADLINE: Duration = Duration::from_secs(20);

/// What the receiver answers.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Sleeps this long (past `webhooks.timeout_ms`), then 200.
    Slow(u64),
    /// 429 with `Retry-After: 1`.
    TooMany,
}

/// A recorded request.
#[derive(Clone, Debug)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
    fn msg_id(&self) -> String {
        self.header("webhook-id").to_owned()
    }
}

#[derive(Default)]
struct Script {
    next: VecDeque<Reply>,
    default: Option<Reply>,
}

/// The receiver: a minimal HTTP/1.1 server (one request per connection).
#[derive(Clone)]
struct Receiver {
    base: String,
    log: Arc<Mutex<Vec<Request>>>,
    scripts: Arc<Mutex<HashMap<String, Script>>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            base: format!("http://{}", listener.local_addr().unwrap()),
            log: Arc::default(),
            scripts: Arc::default(),
        };
        let me = r.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let me = me.clone();
                tokio::spawn(async move { me.serve(sock).await });
            }
        });
        r
    }

    async fn serve(&self, mut sock: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let Ok(n) = sock.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("")
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let Ok(n) = sock.read(&mut chunk).await else {
                return;
            };
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        let reply = {
            let mut scripts = self.scripts.lock().unwrap();
            let s = scripts.entry(path.clone()).or_default();
            s.next
                .pop_front()
                .or(s.default)
                .unwrap_or(Reply::Status(200))
        };
        self.log.lock().unwrap().push(Request {
            path,
            headers,
            body,
        });
        let (status, extra) = match reply {
            Reply::Status(s) => (s, ""),
            Reply::Slow(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                (200, "")
            }
            Reply::TooMany => (429, "retry-after: 1\r\n"),
        };
        let answer =
            format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n{extra}connection: close\r\n\r\n");
        let _ = sock.write_all(answer.as_bytes()).await;
        let _ = sock.shutdown().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn script(&self, path: &str, next: &[Reply], default: Option<Reply>) {
        let mut scripts = self.scripts.lock().unwrap();
        let s = scripts.entry(path.to_owned()).or_default();
        s.next = next.iter().copied().collect();
        s.default = default;
    }

    /// The requests to `path`, in arrival order.
    fn requests(&self, path: &str) -> Vec<Request> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The `webhook-id`s received on `path`, in arrival order.
    fn ids(&self, path: &str) -> Vec<String> {
        self.requests(path).iter().map(Request::msg_id).collect()
    }
}

/// The message id of event `id` (a UUID string).
fn msg(id: &str) -> String {
    message_id(&uuid::Uuid::parse_str(id).unwrap())
}

/// Waits until `check` holds, polling; panics with `what` at the deadline.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn settings(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut s = vec![
        ("webhooks.allow_private_destinations", "true"),
        ("webhooks.timeout_ms", "300"),
        ("webhooks.retry_base_ms", "30"),
        ("webhooks.retry_max_ms", "200"),
        ("webhooks.max_attempts", "4"),
    ];
    s.extend_from_slice(extra);
    s
}

/// Creates a webhook from `attrs` (attribute name → value); returns its id.
async fn create_webhook(server: &TestServer, name: &str, url: &str, attrs: Value) -> String {
    let mut data = json!({"name": {"value": name}, "url": {"value": url}});
    for (k, v) in attrs.as_object().unwrap() {
        data[k] = json!({ "value": v });
    }
    let d = server
        .admin(
            "mutation($d: CoreStandardWebhookCreateInput!) { CoreStandardWebhookCreate(data: $d) { ok object { id } } }",
            json!({ "d": data }),
        )
        .await;
    d["CoreStandardWebhookCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The webhook's attributes as listed.
async fn webhook(server: &TestServer, id: &str) -> Value {
    let d = server
        .admin(
            "query($i: [ID]) { CoreStandardWebhook(ids: $i) { edges { node { id active { value } shared_key { value } signature_scheme { value } branch_scope { value } } } } }",
            json!({ "i": [id] }),
        )
        .await;
    d["CoreStandardWebhook"]["edges"][0]["node"].clone()
}

/// The deliveries of webhook `id` (newest first).
async fn deliveries(server: &TestServer, id: &str) -> Vec<Value> {
    let d = server
        .admin(
            "query($i: [String!]) { InfrahubWebhookDelivery(webhook__ids: $i) { count edges { node { id webhook_id event_id status attempts last_status_code last_error next_attempt_at history { at status_code latency_ms error } } } } }",
            json!({ "i": [id] }),
        )
        .await;
    d["InfrahubWebhookDelivery"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The delivery of event `event` to webhook `hook`, if recorded.
async fn delivery(server: &TestServer, hook: &str, event: &str) -> Option<Value> {
    deliveries(server, hook)
        .await
        .into_iter()
        .find(|d| d["event_id"] == event)
}

async fn status_of(server: &TestServer, hook: &str, event: &str) -> String {
    delivery(server, hook, event)
        .await
        .map(|d| d["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Emits `name` with primary node (`node`, `kind`), optionally on `branch` and under `parent`.
async fn emit(
    server: &TestServer,
    name: &str,
    node: &str,
    kind: &str,
    branch: Option<&str>,
    parent: Option<&str>,
) -> String {
    let mut extra = format!(", primary_node: {{id: \"{node}\", kind: \"{kind}\"}}");
    if let Some(b) = branch {
        extra.push_str(&format!(", branch: \"{b}\""));
    }
    if let Some(p) = parent {
        extra.push_str(&format!(", parent_id: \"{p}\""));
    }
    server.emit(name, &extra).await
}

#[tokio::test]
async fn deliveries_survive_failures_in_order_with_dead_letter_gone_and_replays() {
    let rx = Receiver::start().await;
    // The first event: a 500, a timeout, a 429, then 200 (the default for /a).
    rx.script(
        "/a",
        &[Reply::Status(500), Reply::Slow(1000), Reply::TooMany],
        None,
    );
    rx.script("/dead", &[], Some(Reply::Status(500)));
    rx.script("/gone", &[], Some(Reply::Status(410)));
    let server = TestServer::start_with(&settings(&[])).await;
    let a = create_webhook(
        &server,
        "a",
        &rx.url("/a"),
        json!({"branch_scope": "all_branches"}),
    )
    .await;
    let dead = create_webhook(
        &server,
        "dead",
        &rx.url("/dead"),
        json!({"branch_scope": "all_branches", "event_types": ["acme.dead"]}),
    )
    .await;
    let gone = create_webhook(
        &server,
        "gone",
        &rx.url("/gone"),
        json!({"branch_scope": "all_branches", "event_types": ["acme.gone"]}),
    )
    .await;
    let shared_key = webhook(&server, &a).await["shared_key"]["value"]
        .as_str()
        .expect("admins read the generated shared key")
        .to_owned();
    assert!(shared_key.starts_with("whsec_"), "{shared_key}");

    // A parent and its child, two more events of one node, then one for each other webhook.
    let parent = emit(&server, "acme.thing", "n1", "AcmeThing", None, None).await;
    let child = emit(
        &server,
        "acme.thing",
        "n2",
        "AcmeThing",
        None,
        Some(&parent),
    )
    .await;
    let e3 = emit(&server, "acme.thing", "n1", "AcmeThing", None, None).await;
    let e4 = emit(&server, "acme.thing", "n1", "AcmeThing", None, None).await;
    let d1 = emit(&server, "acme.dead", "n3", "AcmeThing", None, None).await;
    let g1 = emit(&server, "acme.gone", "n4", "AcmeThing", None, None).await;
    let order = [&parent, &child, &e3, &e4, &d1, &g1];

    until("every event delivered to /a", || async {
        let mut all = true;
        for e in order {
            all &= status_of(&server, &a, e).await == "delivered";
        }
        all
    })
    .await;
    let got = rx.requests("/a");
    // The first event was tried four times with one webhook-id; the rest once each.
    let ids: Vec<String> = got.iter().map(Request::msg_id).collect();
    assert_eq!(
        ids[..4],
        vec![msg(&parent); 4][..],
        "retries keep the webhook-id"
    );
    let mut first_arrivals: Vec<String> = Vec::new();
    for id in &ids {
        if !first_arrivals.contains(id) {
            first_arrivals.push(id.clone());
        }
    }
    let want: Vec<String> = order.iter().map(|e| msg(e)).collect();
    assert_eq!(
        first_arrivals, want,
        "log order (parent before child, then per node)"
    );
    // Every request is signed over exactly the bytes sent, and shaped as documented.
    let keys = parse_keys(Scheme::Standard, &shared_key).unwrap();
    let now = infrastream_core::now().timestamp();
    for r in &got {
        verify(&keys, &r.headers, &r.body, now).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        assert_eq!(r.header("content-type"), "application/json");
        assert!(r.header("user-agent").starts_with("infrastream/"), "{r:?}");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body.is_object(), "{body}");
    }
    let first = delivery(&server, &a, &parent).await.unwrap();
    assert_eq!(first["attempts"], 4, "{first}");
    let codes: Vec<Value> = first["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status_code"].clone())
        .collect();
    assert_eq!(codes, vec![json!(500), Value::Null, json!(429), json!(200)]);
    assert!(
        first["history"][1]["error"]
            .as_str()
            .unwrap()
            .contains("300 ms")
    );

    // The dead letter: four attempts, then `dead` with its history.
    until("the dead letter", || async {
        status_of(&server, &dead, &d1).await == "dead"
    })
    .await;
    let d = delivery(&server, &dead, &d1).await.unwrap();
    assert_eq!(d["attempts"], 4, "{d}");
    assert_eq!(d["last_status_code"], 500, "{d}");
    let history = d["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{d}");
    assert!(history.iter().all(|h| h["status_code"] == 500
        && h["latency_ms"].as_i64().unwrap() >= 0
        && h["at"].as_str().is_some()));
    assert_eq!(rx.ids("/dead"), vec![msg(&d1); 4]);
    let dead_only = server
        .admin(
            "query($i: [String!]) { InfrahubWebhookDelivery(webhook__ids: $i, status: [\"dead\"], limit: 1) { count edges { node { id } } } }",
            json!({"i": [dead]}),
        )
        .await;
    assert_eq!(dead_only["InfrahubWebhookDelivery"]["count"], 1);

    // Replaying it once the receiver recovered: the same webhook-id, delivered.
    rx.script("/dead", &[], Some(Reply::Status(200)));
    let r = server
        .admin(
            "mutation($i: String!) { WebhookDeliveryReplay(data: {id: $i}) { ok } }",
            json!({"i": d["id"]}),
        )
        .await;
    assert_eq!(r["WebhookDeliveryReplay"]["ok"], true);
    until("the replayed delivery", || async {
        status_of(&server, &dead, &d1).await == "delivered"
    })
    .await;
    assert_eq!(rx.ids("/dead"), vec![msg(&d1); 5]);
    let d = delivery(&server, &dead, &d1).await.unwrap();
    assert_eq!(d["attempts"], 1, "attempts reset by the replay: {d}");
    assert_eq!(
        d["history"].as_array().unwrap().len(),
        5,
        "history kept: {d}"
    );

    // 410: the webhook is deactivated and later events are not sent to it.
    until("the 410", || async {
        status_of(&server, &gone, &g1).await == "dead"
    })
    .await;
    assert_eq!(webhook(&server, &gone).await["active"]["value"], false);
    let g2 = emit(&server, "acme.gone", "n4", "AcmeThing", None, None).await;
    until("the next event delivered to /a", || async {
        status_of(&server, &a, &g2).await == "delivered"
    })
    .await;
    assert!(delivery(&server, &gone, &g2).await.is_none());
    assert_eq!(rx.ids("/gone"), vec![msg(&g1)]);

    // Replay of a log range: (parent, e4] again to /a, with the same webhook-ids.
    let r = server
        .admin(
            "mutation($w: String!, $a: String, $u: String) { WebhookReplay(data: {webhook_id: $w, after: $a, until: $u}) { ok count } }",
            json!({"w": a, "a": parent, "u": e4}),
        )
        .await;
    assert_eq!(r["WebhookReplay"]["count"], 3, "{r}");
    until("the replayed range", || async {
        let ids = rx.ids("/a");
        [&child, &e3, &e4]
            .iter()
            .all(|e| ids.iter().filter(|i| **i == msg(e)).count() == 2)
    })
    .await;
    let tail: Vec<String> = rx.ids("/a").split_off(ids.len() + 1);
    assert_eq!(tail, vec![msg(&child), msg(&e3), msg(&e4)], "in log order");
    server.shutdown().await;
}

#[tokio::test]
async fn filters_scope_and_configuration_changes_apply_from_the_next_event() {
    let rx = Receiver::start().await;
    let server = TestServer::start_with(&settings(&[])).await;
    server
        .admin(
            "mutation { BranchCreate(data: {name: \"feat\"}) { ok } }",
            json!({}),
        )
        .await;
    let hooks = [
        ("/default", json!({"branch_scope": "default_branch"})),
        ("/other", json!({"branch_scope": "other_branches"})),
        (
            "/kinds",
            json!({"branch_scope": "all_branches", "node_kinds": ["AcmeA"]}),
        ),
        (
            "/kind",
            json!({"branch_scope": "all_branches", "node_kind": "AcmeB"}),
        ),
        (
            "/types",
            json!({"branch_scope": "all_branches", "event_type": "acme.x", "event_types": ["acme.y"]}),
        ),
        (
            "/every",
            json!({"branch_scope": "all_branches", "event_type": "all"}),
        ),
    ];
    let mut ids = HashMap::new();
    for (path, attrs) in &hooks {
        ids.insert(
            *path,
            create_webhook(&server, &path[1..], &rx.url(path), attrs.clone()).await,
        );
    }
    let global = emit(&server, "acme.x", "n1", "AcmeA", None, None).await;
    let main = emit(&server, "acme.y", "n2", "AcmeB", Some("main"), None).await;
    let feat = emit(&server, "acme.z", "n3", "AcmeA", Some("feat"), None).await;
    let settled = |events: Vec<String>| {
        let server = &server;
        let every = ids["/every"].clone();
        async move {
            for e in &events {
                if status_of(server, &every, e).await != "delivered" {
                    return false;
                }
            }
            let pending = server
                .admin(
                    "{ InfrahubWebhookDelivery(status: [\"pending\"]) { count } }",
                    json!({}),
                )
                .await;
            pending["InfrahubWebhookDelivery"]["count"] == 0
        }
    };
    let three = vec![global.clone(), main.clone(), feat.clone()];
    until("the three events settled", || settled(three.clone())).await;
    let received = |path: &str, among: &[&String]| -> Vec<String> {
        let wanted: Vec<String> = among.iter().map(|e| msg(e)).collect();
        rx.ids(path)
            .into_iter()
            .filter(|i| wanted.contains(i))
            .collect()
    };
    let among = [&global, &main, &feat];
    assert_eq!(
        received("/default", &among),
        vec![msg(&global), msg(&main)],
        "global events count as on the default branch"
    );
    assert_eq!(received("/other", &among), vec![msg(&feat)]);
    assert_eq!(received("/kinds", &among), vec![msg(&global), msg(&feat)]);
    assert_eq!(received("/kind", &among), vec![msg(&main)]);
    assert_eq!(received("/types", &among), vec![msg(&global), msg(&main)]);
    assert_eq!(
        received("/every", &among),
        vec![msg(&global), msg(&main), msg(&feat)]
    );

    // A changed configuration applies from the next event.
    let types = ids["/types"].clone();
    server
        .admin(
            "mutation($i: String!) { CoreStandardWebhookUpdate(data: {id: $i, event_type: {value: \"\"}, event_types: {value: [\"acme.w\"]}}) { ok } }",
            json!({"i": types}),
        )
        .await;
    let x = emit(&server, "acme.x", "n1", "AcmeA", None, None).await;
    let w = emit(&server, "acme.w", "n1", "AcmeA", None, None).await;
    until("the next events settled", || {
        settled(vec![x.clone(), w.clone()])
    })
    .await;
    assert_eq!(received("/types", &[&x, &w]), vec![msg(&w)]);
    server.shutdown().await;
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed_and_bad_configuration_is_refused() {
    let rx = Receiver::start().await;
    let server = TestServer::start_with(&[("webhooks.max_attempts", "1")]).await;
    for (attrs, message) in [
        (json!({"url": "ftp://example.com/x"}), "Invalid url"),
        (
            json!({"branch_scope": "some_branches"}),
            "Invalid branch_scope",
        ),
        (json!({"shared_key": "not-a-secret"}), "Invalid shared_key"),
        (
            json!({"signature_scheme": "md5"}),
            "Invalid signature_scheme",
        ),
    ] {
        let mut data = json!({"name": {"value": "bad"}, "url": {"value": "https://example.com/"}});
        for (k, v) in attrs.as_object().unwrap() {
            data[k] = json!({ "value": v });
        }
        let e = server
            .admin_error(
                "mutation($d: CoreStandardWebhookCreateInput!) { CoreStandardWebhookCreate(data: $d) { ok } }",
                json!({"d": data}),
            )
            .await;
        assert!(e.contains(message), "{attrs}: {e}");
    }
    let hook = create_webhook(
        &server,
        "local",
        &rx.url("/local"),
        json!({"branch_scope": "all_branches", "signature_scheme": "infrahub", "shared_key": "raw key"}),
    )
    .await;
    let e = emit(&server, "acme.x", "n1", "AcmeA", None, None).await;
    until("the refused delivery", || async {
        status_of(&server, &hook, &e).await == "dead"
    })
    .await;
    let d = delivery(&server, &hook, &e).await.unwrap();
    assert!(
        d["last_error"].as_str().is_some_and(|m| !m.is_empty()),
        "{d}"
    );
    assert_eq!(d["last_status_code"], Value::Null, "{d}");
    assert!(rx.requests("/local").is_empty(), "nothing was sent");
    server.shutdown().await;
}

/// Runs `conformance/webhooks/setup.sh` (a virtualenv with the PyPI `standardwebhooks`, the npm
/// one with `npm ci`); fails the test when it fails (python3, node or npm missing).
fn official_verifiers() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/webhooks");
    let out = std::process::Command::new("bash")
        .arg(dir.join("setup.sh"))
        .output()
        .expect("run conformance/webhooks/setup.sh");
    assert!(
        out.status.success(),
        "conformance/webhooks/setup.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The official libraries' verdicts on `requests`, each checked with its secret: every one
/// must verify, with the Python package and with the npm package.
fn official_libraries_accept(requests: &[(Request, String)]) {
    use base64::Engine;
    let dir = official_verifiers();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("captured.jsonl");
    let lines: Vec<String> = requests
        .iter()
        .map(|(r, secret)| {
            let headers: serde_json::Map<String, Value> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({
                "name": r.msg_id(),
                "headers": headers,
                "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
                "secret": secret,
            })
            .to_string()
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let python = dir.join(".venv/bin/python");
    for (program, script) in [
        (python.as_os_str(), "verify_standard.py"),
        (std::ffi::OsStr::new("node"), "verify_standard.mjs"),
    ] {
        let out = std::process::Command::new(program)
            .arg(dir.join(script))
            .arg(&file)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("run {script}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{script} refused a request the server sent:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("ok ")).count(),
            requests.len(),
            "{script}: every request verified:\n{stdout}"
        );
    }
}

/// What the server really sends verifies with the official Standard Webhooks libraries: a
/// non-ASCII payload, and after a key rotation (two secrets at once) with each key alone.
#[tokio::test]
async fn sent_requests_verify_with_the_official_libraries() {
    let rx = Receiver::start().await;
    let server = TestServer::start_with(&settings(&[])).await;
    let hook = create_webhook(
        &server,
        "official",
        &rx.url("/official"),
        json!({"branch_scope": "all_branches", "event_types": ["acme.official"]}),
    )
    .await;
    let old = webhook(&server, &hook).await["shared_key"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let unicode = ", payload: {city: \"Zürich — 東京 ✓\"}";
    server.emit("acme.official", unicode).await;
    until("the first request", || async {
        rx.requests("/official").len() == 1
    })
    .await;
    // A rotation: the new secret and the old one sign together.
    let new = infrastream_services::webhooks::signing::generate_secret().unwrap();
    server
        .admin(
            "mutation($i: String!, $k: String!) { CoreStandardWebhookUpdate(data: {id: $i, shared_key: {value: $k}}) { ok } }",
            json!({"i": hook, "k": format!("{new} {old}")}),
        )
        .await;
    server.emit("acme.official", unicode).await;
    until("the second request", || async {
        rx.requests("/official").len() == 2
    })
    .await;
    let got = rx.requests("/official");
    assert!(
        String::from_utf8_lossy(&got[0].body).contains("\\u00fc"),
        "non-ASCII text is sent escaped: {}",
        String::from_utf8_lossy(&got[0].body)
    );
    assert_eq!(
        got[1].header("webhook-signature").split(' ').count(),
        2,
        "two signatures during the rotation"
    );
    official_libraries_accept(&[
        (got[0].clone(), old.clone()),
        (got[1].clone(), new),
        (got[1].clone(), old),
    ]);
}
