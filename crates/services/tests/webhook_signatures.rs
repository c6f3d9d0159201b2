//! Webhook signatures verified by the official Standard Webhooks libraries (the PyPI and npm
//! `standardwebhooks` packages) and by Infrahub's documented algorithm, outside Rust.
//!
//! Requests are signed with `webhooks::signing` over bodies from `webhooks::body` (and one
//! raw non-ASCII body), written as JSON lines (`{"name", "headers", "body_b64", "secret"}`)
//! into a temporary directory, and verified by the scripts of `conformance/webhooks/`
//! (set up by its `setup.sh`: a virtualenv and `npm ci`). Every request must verify; the
//! same requests with a tampered body, or checked with another key, must all be refused.
//! python3 and node are required: without them the tests fail, they are not skipped.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use infrastream_core::{Event, EventName, Position, RelatedNode, now};
use infrastream_services::webhooks::body::body;
use infrastream_services::webhooks::signing::{Scheme, headers, message_id, parse_keys};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use uuid::Uuid;

const KEY_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY_B: &str = "whsec_c2Vjb25kLWtleS1zZWNvbmQta2V5LTI0Ynl0ZXM=";
const NON_ASCII: &str = r#"{"name": "Zürich — 東京 ✓"}"#;
const INFRAHUB_KEY: &str = "supersecretkey";
const INFRAHUB_KEY_UTF8: &str = "clé secrète — 鍵";

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/webhooks")
}

/// Runs `setup.sh` once per test process; panics (fails the test) when it fails, e.g.
/// because python3 or node is missing.
fn setup() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        for tool in ["python3", "node", "npm"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            assert!(found, "{tool} is required by the webhook conformance tests");
        }
        let dir = conformance_dir();
        let out = Command::new("bash")
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
    })
}

fn event(name: &str, data: Value) -> Event {
    Event {
        position: Position(1),
        id: Uuid::now_v7(),
        name: name.into(),
        branch: Some("main".into()),
        account_id: Some("acc-1".into()),
        occurred_at: now(),
        level: 0,
        parent_id: None,
        has_children: false,
        primary_node: Some(RelatedNode {
            id: "n1".into(),
            kind: "LocationSite".into(),
        }),
        related_nodes: vec![],
        data,
        context: json!({}),
    }
}

/// One captured request.
struct Request {
    name: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    secret: String,
}

impl Request {
    fn line(&self) -> String {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        json!({
            "name": self.name,
            "headers": headers,
            "body_b64": STANDARD.encode(&self.body),
            "secret": self.secret,
        })
        .to_string()
    }
}

fn signed(
    scheme: Scheme,
    name: &str,
    shared_key: &str,
    verify_with: &str,
    body: Vec<u8>,
) -> Request {
    let keys = parse_keys(scheme, shared_key).unwrap();
    let ts = chrono::Utc::now().timestamp();
    let h = headers(scheme, &keys, &message_id(&Uuid::now_v7()), ts, &body);
    assert_eq!(h.len(), 3, "{name}: {h:?}");
    Request {
        name: name.into(),
        headers: h,
        body,
        secret: verify_with.into(),
    }
}

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "non-ASCII event body",
            body(&event(
                EventName::NODE_CREATED,
                json!({"node_id": "n1", "kind": "LocationSite", "action": "created",
                       "attributes": [{"name": "name", "kind": "Text", "action": "added",
                                       "value": "Zürich — 東京 ✓", "value_previous": null}],
                       "relationships": []}),
            )),
        ),
        (
            "custom event body",
            body(&event(
                "acme.deploy.started",
                json!({"build": 42, "ok": true}),
            )),
        ),
    ]
}

fn standard_requests() -> Vec<Request> {
    let mut reqs = Vec::new();
    for (what, b) in bodies() {
        reqs.push(signed(
            Scheme::Standard,
            &format!("single key, {what}"),
            KEY_A,
            KEY_A,
            b,
        ));
    }
    // Raw UTF-8 on the wire (not escaped): the libraries must sign bytes as we do.
    reqs.push(signed(
        Scheme::Standard,
        "single key, raw UTF-8 body",
        KEY_A,
        KEY_A,
        NON_ASCII.as_bytes().to_vec(),
    ));
    // A rotation: both keys sign; a receiver knowing either one verifies.
    let both = format!("{KEY_A} {KEY_B}");
    for (what, b) in bodies()
        .into_iter()
        .chain([("raw UTF-8 body", NON_ASCII.into())])
    {
        let r = signed(Scheme::Standard, "", &both, "", b);
        assert_eq!(
            r.headers[2].1.split(' ').count(),
            2,
            "two signatures: {:?}",
            r.headers
        );
        for (k, key) in [("first", KEY_A), ("second", KEY_B)] {
            reqs.push(Request {
                name: format!("rotation, verified with the {k} key, {what}"),
                secret: key.into(),
                headers: r.headers.clone(),
                body: r.body.clone(),
            });
        }
    }
    reqs
}

fn infrahub_requests() -> Vec<Request> {
    let mut reqs = Vec::new();
    for (what, b) in bodies() {
        for key in [INFRAHUB_KEY, INFRAHUB_KEY_UTF8] {
            let k = if key.is_ascii() {
                "ASCII key"
            } else {
                "UTF-8 key"
            };
            reqs.push(signed(
                Scheme::Infrahub,
                &format!("Infrahub scheme, {k}, {what}"),
                key,
                key,
                b.clone(),
            ));
        }
    }
    reqs
}

/// The same requests with one body byte changed (still valid JSON).
fn tampered(reqs: &[Request]) -> Vec<Request> {
    reqs.iter()
        .map(|r| {
            let mut body = r.body.clone();
            let text = String::from_utf8(body.clone()).unwrap();
            if let Some(i) = text.find("42") {
                body[i] = b'3';
            } else if let Some(i) = text.find("n1") {
                body[i + 1] = b'2';
            } else {
                let i = text.find("name").unwrap();
                body[i] = b'N';
            }
            assert_ne!(body, r.body);
            Request {
                name: format!("tampered: {}", r.name),
                headers: r.headers.clone(),
                body,
                secret: r.secret.clone(),
            }
        })
        .collect()
}

/// `reqs` with the secret of another key.
fn other_key(reqs: &[Request], key: &str) -> Vec<Request> {
    reqs.iter()
        .map(|r| Request {
            name: format!("other key: {}", r.name),
            headers: r.headers.clone(),
            body: r.body.clone(),
            secret: key.into(),
        })
        .collect()
}

/// Runs `program args… file` on `reqs` in the conformance directory: (success, stdout).
fn run(program: &Path, script: &str, reqs: &[Request]) -> (bool, String) {
    let dir = setup();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("requests.jsonl");
    let lines: Vec<String> = reqs.iter().map(Request::line).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = Command::new(program)
        .arg(dir.join(script))
        .arg(&file)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {} {script}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.lines().count() == reqs.len(),
        "{script}: one line per request expected\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// Every request verifies; every tampered or wrongly keyed one is refused.
fn conforms(program: &Path, script: &str, good: Vec<Request>, wrong_key: &str) {
    let (ok, out) = run(program, script, &good);
    println!("{script}:\n{out}");
    assert!(ok, "{script} refused a request:\n{out}");
    assert!(out.lines().all(|l| l.starts_with("ok ")), "{out}");

    let mut bad = tampered(&good);
    bad.extend(other_key(&good, wrong_key));
    let (ok, out) = run(program, script, &bad);
    println!("{script} (must refuse):\n{out}");
    assert!(!ok, "{script} accepted a tampered request:\n{out}");
    let fails = out.lines().filter(|l| l.starts_with("FAIL ")).count();
    assert_eq!(fails, bad.len(), "every bad request refused:\n{out}");
}

fn venv_python() -> PathBuf {
    setup().join(".venv/bin/python")
}

#[test]
fn official_python_library_verifies() {
    conforms(
        &venv_python(),
        "verify_standard.py",
        standard_requests(),
        "whsec_d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy0=",
    );
}

#[test]
fn official_node_library_verifies() {
    conforms(
        Path::new("node"),
        "verify_standard.mjs",
        standard_requests(),
        "whsec_d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy0=",
    );
}

#[test]
fn infrahub_documented_algorithm_verifies() {
    conforms(
        &venv_python(),
        "verify_infrahub.py",
        infrahub_requests(),
        "not-the-key",
    );
}

#[test]
fn our_verifiers_agree() {
    // The Rust verifiers accept what the conformance scripts accept, and refuse the rest.
    use infrastream_services::webhooks::signing::{verify, verify_infrahub};
    let t = chrono::Utc::now().timestamp();
    for r in standard_requests() {
        let keys = parse_keys(Scheme::Standard, &r.secret).unwrap();
        verify(&keys, &r.headers, &r.body, t).unwrap_or_else(|e| panic!("{}: {e}", r.name));
    }
    for r in tampered(&standard_requests()) {
        let keys = parse_keys(Scheme::Standard, &r.secret).unwrap();
        assert!(verify(&keys, &r.headers, &r.body, t).is_err(), "{}", r.name);
    }
    for r in infrahub_requests() {
        verify_infrahub(&r.secret, &r.headers, &r.body, t)
            .unwrap_or_else(|e| panic!("{}: {e}", r.name));
    }
    for r in tampered(&infrahub_requests()) {
        assert!(
            verify_infrahub(&r.secret, &r.headers, &r.body, t).is_err(),
            "{}",
            r.name
        );
    }
}
