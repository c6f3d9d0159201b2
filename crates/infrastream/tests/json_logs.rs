//! `log_format = json` against the real binary: every line it writes on stderr, from start to
//! shutdown (with `RUST_LOG=debug`, the dependencies' lines too), is one JSON object with a
//! timestamp, level, target and message; a start that fails is logged the same way. The
//! default stays text.

use infrastream_testkit::binary::command;
use infrastream_testkit::http::send;
use infrastream_testkit::{ADMIN_TOKEN, Binary};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

const EXE: &str = env!("CARGO_BIN_EXE_infrastream");

/// Parses every stderr line as a JSON object with the fields of a log record; returns them.
#[track_caller]
fn records(stderr: &str) -> Vec<Value> {
    assert!(!stderr.trim().is_empty(), "nothing was logged");
    stderr
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {line:?}"));
            assert!(v.is_object(), "not a JSON object: {line}");
            for key in ["timestamp", "level", "target"] {
                assert!(
                    v[key].as_str().is_some_and(|s| !s.is_empty()),
                    "no {key}: {line}"
                );
            }
            assert!(
                ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&v["level"].as_str().unwrap()),
                "{line}"
            );
            let message = v["message"].as_str().or(v["fields"]["message"].as_str());
            assert!(message.is_some(), "no message: {line}");
            v
        })
        .collect()
}

fn message(v: &Value) -> &str {
    v["message"]
        .as_str()
        .or(v["fields"]["message"].as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn every_stderr_line_is_a_json_object() {
    let mut server = Binary::builder(EXE)
        .set("fsync", "false")
        .env("INFRASTREAM_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .capture_stderr()
        .spawn();
    let http = reqwest::Client::new();
    let key = [
        ("x-infrahub-key", ADMIN_TOKEN),
        ("content-type", "application/json"),
    ];
    let graphql = format!("{}/graphql", server.url);
    for query in [
        "{ Branch { name } }",
        "mutation { EventEmit(data: {event: \"logs.json\"}) { ok } }",
        "{ NoSuchField }",
    ] {
        let body = json!({"query": query}).to_string().into_bytes();
        let r = send(&http, "POST", &graphql, &key, Some(body)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Refusals, logged at debug with fields of their own.
    let bad = [("x-infrahub-key", "not-a-token")];
    let r = send(
        &http,
        "GET",
        &format!("{}/api/schema", server.url),
        &bad,
        None,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = send(&http, "GET", &format!("{}/nowhere", server.url), &[], None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = send(&http, "GET", &format!("{}/metrics", server.url), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let status = server.stop(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let stderr = server.stderr();
    let all = records(&stderr);
    // The server's own lines are among them, with their event fields.
    let messages: Vec<&str> = all.iter().map(message).collect();
    assert!(messages.contains(&"shutdown requested"), "{stderr}");
    assert!(messages.contains(&"server stopped"), "{stderr}");
    let refused = all
        .iter()
        .find(|v| v["fields"]["status"] == 401 && v["fields"]["code"] == "UNAUTHENTICATED")
        .unwrap_or_else(|| panic!("no refusal logged with its fields:\n{stderr}"));
    assert_eq!(refused["level"], "DEBUG");
    assert!(
        refused["target"]
            .as_str()
            .unwrap()
            .starts_with("infrastream_server"),
        "{refused}"
    );
    assert!(!stderr.contains("not-a-token"), "{stderr}");
}

#[tokio::test]
async fn the_flag_selects_json_and_a_failed_start_is_logged_as_json() {
    // Taken: the server cannot listen there.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = command(EXE)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .args(["--set", "log_format=json"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = records(&stderr);
    let error = all
        .iter()
        .find(|v| v["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR line:\n{stderr}"));
    let text = error["fields"]["error"].as_str().unwrap_or_default();
    assert!(text.contains(&addr), "{error}");
}

#[tokio::test]
async fn text_stays_the_default() {
    let mut server = Binary::builder(EXE)
        .set("fsync", "false")
        .env("RUST_LOG", "info")
        .capture_stderr()
        .spawn();
    let status = server.stop(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let stderr = server.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("server stopped"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    assert!(line.contains("INFO"), "{line}");
}
