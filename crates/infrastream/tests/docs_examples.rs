//! The examples in `README.md` and `docs/*.md` run as written, against the real debug binary.
//!
//! # Marking convention
//!
//! The last non-blank line before an example's opening fence is an HTML comment (invisible
//! when the Markdown is rendered) that says whether the example is run:
//!
//! - `<!-- example: run -->`: this test runs it;
//! - `<!-- example: not run: <reason> -->`: it cannot run in a test (it starts a long-running
//!   server, builds in release mode, runs the whole suite, holds placeholders for the reader…);
//!   the reason is required.
//!
//! Every fenced block tagged `sh`, `bash`, `shell`, `console` or `graphql`, and every block
//! that contains a `curl` command, must carry one of the two; an unmarked one fails the test, so
//! no example goes untested silently. Untagged blocks (program output, tables) need no marker.
//!
//! # How examples run
//!
//! One server for all examples, started as `infrastream --listen 127.0.0.1:0 --data-dir DIR`
//! with a known admin password and API token. Examples run in document order (`README.md`,
//! then `docs/*.md` by name), so a later example may use what an earlier one created, as a
//! reader following along would.
//!
//! - `sh` / `bash` / `shell` / `console` blocks run with `bash -euo pipefail` in an empty
//!   directory, with the variables the README tells the reader to set: `INFRAHUB_ADDRESS`
//!   (the server's `http://127.0.0.1:PORT`), `INFRAHUB_API_TOKEN` (the admin API token) and
//!   `ADMIN_PASSWORD`, and the binary under test first on `PATH` (`infrastream tail`, …). `curl` is wrapped in a shell function that passes every argument on and
//!   records the HTTP status and body of each call. The block succeeds when bash exits 0, it
//!   made as many calls as the block has `curl` commands, every answer was 2xx, and no JSON
//!   answer has an `errors` key.
//! - `graphql` blocks: a query or mutation is POSTed to `/graphql` with the API token and must
//!   answer 200 without `errors`; a subscription is sent over WebSocket (graphql-transport-ws,
//!   the token in `connection_init`) and must deliver a result without errors. Declared
//!   variables take the values of [`graphql_variable`] (e.g. `$after`: the oldest event's id).
//!
//! Needs `bash`, `curl` and `python3` on `PATH`, as the README's tour does.

use infrastream_testkit::http::try_graphql;
use infrastream_testkit::ws::TRANSPORT_WS;
use infrastream_testkit::{ADMIN_PASSWORD, ADMIN_TOKEN, Auth, Binary, WsClient};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Fence info strings of examples that must be marked (and, when marked `run`, can be run).
const SHELL: &[&str] = &["sh", "bash", "shell", "console"];
const GRAPHQL: &str = "graphql";

/// Whether an example is run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mark {
    Run,
    NotRun(String),
}

/// A fenced block of a Markdown file.
#[derive(Debug)]
struct Example {
    /// `file:line` of the opening fence.
    place: String,
    lang: String,
    code: String,
    mark: Option<Mark>,
}

fn parse_mark(line: &str) -> Result<Option<Mark>, String> {
    let Some(inner) = line
        .trim()
        .strip_prefix("<!--")
        .and_then(|l| l.strip_suffix("-->"))
    else {
        return Ok(None);
    };
    let Some(rest) = inner.trim().strip_prefix("example:") else {
        return Ok(None);
    };
    let rest = rest.trim();
    if rest == "run" {
        return Ok(Some(Mark::Run));
    }
    match rest.strip_prefix("not run:").map(str::trim) {
        Some(reason) if !reason.is_empty() => Ok(Some(Mark::NotRun(reason.to_string()))),
        _ => Err(format!(
            "bad marker {line:?}: expected `<!-- example: run -->` or `<!-- example: not run: <reason> -->`"
        )),
    }
}

/// The fenced blocks of `text` with their markers; errors for bad or stray markers.
fn examples(name: &str, text: &str) -> Result<Vec<Example>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    // The marker waiting for its fence, with its line number.
    let mut pending: Option<(usize, Mark)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let fence: String = trimmed
            .chars()
            .take_while(|&c| c == '`' || c == '~')
            .collect();
        if fence.len() >= 3 && fence.chars().all(|c| c == fence.chars().next().unwrap()) {
            let lang = trimmed[fence.len()..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            let start = i;
            let mut code = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with(fence.as_str()) {
                code.push(lines[i]);
                i += 1;
            }
            if i == lines.len() {
                errors.push(format!("{name}:{}: unclosed fence", start + 1));
            }
            out.push(Example {
                place: format!("{name}:{}", start + 1),
                lang,
                code: code.join("\n") + "\n",
                mark: pending.take().map(|(_, m)| m),
            });
        } else if !line.trim().is_empty() {
            if let Some((at, _)) = pending.take() {
                errors.push(format!(
                    "{name}:{at}: marker not directly followed by a fenced block"
                ));
            }
            match parse_mark(line) {
                Ok(Some(m)) => pending = Some((i + 1, m)),
                Ok(None) => {}
                Err(e) => errors.push(format!("{name}:{}: {e}", i + 1)),
            }
        }
        i += 1;
    }
    if let Some((at, _)) = pending {
        errors.push(format!(
            "{name}:{at}: marker not directly followed by a fenced block"
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Lines of shell code that are not comments.
fn shell_lines(code: &str) -> impl Iterator<Item = &str> {
    code.lines().filter(|l| !l.trim_start().starts_with('#'))
}

/// How many `curl` commands a shell block holds.
fn curl_commands(code: &str) -> usize {
    shell_lines(code)
        .map(|line| {
            line.match_indices("curl ")
                // In command position: first on the line, or after `$(`, `|`, `;`, `&&`, `` ` ``.
                .filter(|(at, _)| {
                    line[..*at]
                        .trim_end()
                        .chars()
                        .last()
                        .is_none_or(|c| "(|;&`".contains(c))
                })
                .count()
        })
        .sum()
}

/// Whether a block must carry a marker.
fn needs_mark(e: &Example) -> bool {
    SHELL.contains(&e.lang.as_str()) || e.lang == GRAPHQL || curl_commands(&e.code) > 0
}

/// Every Markdown file with examples: `README.md`, then `docs/*.md` by name.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    let mut all = vec![root.join("README.md")];
    all.extend(docs);
    all
}

/// The function that stands in for `curl` in shell examples: the same call, plus a record of
/// its exit status, HTTP status and body in `$EXAMPLE_CALLS`.
const CURL_RECORDER: &str = r#"
curl() {
  local call status=0
  call="$EXAMPLE_CALLS/$(date +%s%N)-$RANDOM"
  command curl --max-time 30 "$@" --output "$call.body" --write-out '%{http_code}' >"$call.status" || status=$?
  echo "$status" >"$call.exit"
  if [ -f "$call.body" ]; then cat "$call.body"; fi
  return "$status"
}
"#;

/// `PATH` with the directory of the binary under test first, as the README has the reader put
/// `target/release` there: examples call `infrastream <subcommand>` as a reader would.
fn path_with_binary() -> std::ffi::OsString {
    let dir = Path::new(env!("CARGO_BIN_EXE_infrastream"))
        .parent()
        .unwrap();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_owned()).chain(std::env::split_paths(&rest)))
        .unwrap()
}

/// Runs a shell example; the problems found, if any.
fn run_shell(server: &Binary, e: &Example) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    std::fs::create_dir(&calls).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let script = dir.path().join("example.sh");
    std::fs::write(&script, format!("{CURL_RECORDER}\n{}", e.code)).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg(&script)
        .current_dir(&work)
        .env("PATH", path_with_binary())
        .env("INFRAHUB_ADDRESS", &server.url)
        .env("INFRAHUB_API_TOKEN", ADMIN_TOKEN)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("EXAMPLE_CALLS", &calls)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if !out.status.success() {
        problems.push(format!(
            "exited with {}; stdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        ));
    }
    let mut records: Vec<PathBuf> = std::fs::read_dir(&calls)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "status"))
        .collect();
    records.sort();
    let expected = curl_commands(&e.code);
    if records.len() != expected {
        problems.push(format!(
            "{} curl calls made, {expected} in the example",
            records.len()
        ));
    }
    for (n, record) in records.iter().enumerate() {
        let status = std::fs::read_to_string(record).unwrap_or_default();
        let body = std::fs::read_to_string(record.with_extension("body")).unwrap_or_default();
        let exit = std::fs::read_to_string(record.with_extension("exit")).unwrap_or_default();
        let call = n + 1;
        if exit.trim() != "0" {
            problems.push(format!("curl call {call}: exit status {}", exit.trim()));
        }
        if !status.trim().starts_with('2') {
            problems.push(format!(
                "curl call {call}: HTTP status {:?}; body {body}",
                status.trim()
            ));
        }
        if let Ok(json) = serde_json::from_str::<Value>(&body)
            && json.get("errors").is_some()
        {
            problems.push(format!("curl call {call}: answer with errors: {body}"));
        }
    }
    problems
}

/// The value of a variable a `graphql` example declares.
async fn graphql_variable(server: &Binary, name: &str) -> Result<Value, String> {
    match name {
        // The oldest event: a subscription resuming after it replays the rest of the log.
        "after" => {
            let data = post_graphql(
                server,
                "{ InfrahubEvent(order: ASC, limit: 1) { edges { node { id } } } }",
                &Map::new(),
            )
            .await?;
            data["InfrahubEvent"]["edges"][0]["node"]["id"]
                .as_str()
                .map(|id| Value::String(id.to_string()))
                .ok_or_else(|| format!("no event in the log: {data}"))
        }
        other => Err(format!(
            "no value for variable ${other}: add one to graphql_variable in this test"
        )),
    }
}

/// The names of the variables an operation declares (`query Q($a: Int, $b: String)`).
fn declared_variables(document: &str) -> Vec<String> {
    let header = document.split('{').next().unwrap_or("");
    header
        .split('$')
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

async fn post_graphql(
    server: &Binary,
    query: &str,
    variables: &Map<String, Value>,
) -> Result<Value, String> {
    let body = try_graphql(
        &reqwest::Client::new(),
        &format!("{}/graphql", server.url),
        Auth::Token(ADMIN_TOKEN),
        query,
        Value::Object(variables.clone()),
    )
    .await?;
    Ok(body["data"].clone())
}

/// Subscribes over WebSocket and waits for the first result.
async fn subscribe(
    server: &Binary,
    query: &str,
    variables: &Map<String, Value>,
) -> Result<Value, String> {
    let mut ws = WsClient::try_connect(&server.ws_url(), Some(TRANSPORT_WS)).await?;
    ws.try_send(json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": ADMIN_TOKEN}}))
        .await?;
    ws.try_send(json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
        .await?;
    let limit = Duration::from_secs(15);
    let deadline = tokio::time::Instant::now() + limit;
    let payload = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(frame) = ws.recv_timeout(left).await else {
            return Err(format!("no result within {limit:?}"));
        };
        match frame["type"].as_str() {
            Some("connection_ack" | "ping" | "pong") => {}
            Some("next") => break frame["payload"].clone(),
            _ if frame.get("close").is_some() || frame.get("closed").is_some() => {
                return Err("the socket closed before a result".to_string());
            }
            _ => return Err(format!("unexpected frame {frame}")),
        }
    };
    let _ = ws.try_send(json!({"id": "1", "type": "complete"})).await;
    ws.close().await;
    if payload.get("errors").is_some() {
        return Err(format!("result with errors: {payload}"));
    }
    match payload["data"].as_object() {
        Some(data) if !data.is_empty() && data.values().all(|v| !v.is_null()) => Ok(payload),
        _ => Err(format!("result without data: {payload}")),
    }
}

/// Runs a `graphql` example; the problems found, if any.
async fn run_graphql(server: &Binary, e: &Example) -> Vec<String> {
    let document = e.code.trim();
    let mut variables = Map::new();
    for name in declared_variables(document) {
        match graphql_variable(server, &name).await {
            Ok(v) => {
                variables.insert(name, v);
            }
            Err(problem) => return vec![problem],
        }
    }
    let result = if document.starts_with("subscription") {
        subscribe(server, document, &variables).await
    } else {
        post_graphql(server, document, &variables).await
    };
    match result {
        Ok(_) => Vec::new(),
        Err(problem) => vec![problem],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_and_docs_examples_run_as_written() {
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for path in documents() {
        let name = path
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .unwrap_or(&path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        match examples(&name, &text) {
            Ok(found) => all.extend(found),
            Err(errors) => problems.extend(errors),
        }
    }
    for e in &all {
        if e.mark.is_none() && needs_mark(e) {
            problems.push(format!(
                "{}: unmarked ```{} example: add `<!-- example: run -->` or `<!-- example: not run: <reason> -->`",
                e.place, e.lang
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let runnable: Vec<&Example> = all.iter().filter(|e| e.mark == Some(Mark::Run)).collect();
    assert!(
        runnable.iter().any(|e| e.place.starts_with("README.md")),
        "no runnable example found in README.md: {all:?}"
    );

    let server = Binary::start(
        env!("CARGO_BIN_EXE_infrastream"),
        &["--listen", "127.0.0.1:0", "--data-dir", "{data_dir}"],
    );
    for e in runnable {
        let found = if SHELL.contains(&e.lang.as_str()) {
            run_shell(&server, e)
        } else if e.lang == GRAPHQL {
            run_graphql(&server, e).await
        } else {
            vec![format!("cannot run ```{} examples", e.lang)]
        };
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", e.place)));
    }
    assert!(
        problems.is_empty(),
        "examples that do not run as written:\n{}",
        problems.join("\n")
    );
}

#[test]
fn markers_are_required_and_checked() {
    let doc = "text\n\n<!-- example: run -->\n```sh\ncurl -s x\n```\n\n```sh\necho unmarked\n```\n\n\
               ```\nplain output\n```\n\n<!-- example: not run: a server -->\n```graphql\n{ a }\n```\n";
    let found = examples("t.md", doc).unwrap();
    let marks: Vec<(&str, bool, Option<Mark>)> = found
        .iter()
        .map(|e| (e.lang.as_str(), needs_mark(e), e.mark.clone()))
        .collect();
    assert_eq!(
        marks,
        vec![
            ("sh", true, Some(Mark::Run)),
            ("sh", true, None),
            ("", false, None),
            ("graphql", true, Some(Mark::NotRun("a server".into()))),
        ]
    );
    // An untagged block with a curl command needs a marker too.
    let found = examples("t.md", "```\ncurl -s http://x\n```\n").unwrap();
    assert!(needs_mark(&found[0]));
    // A reason is required; a marker must precede a fence.
    assert!(examples("t.md", "<!-- example: not run -->\n```sh\nx\n```\n").is_err());
    assert!(examples("t.md", "<!-- example: run -->\ntext\n```sh\nx\n```\n").is_err());
    assert!(examples("t.md", "<!-- example: run -->\n").is_err());
}

#[test]
fn curl_commands_are_counted_outside_comments() {
    let code = "# curl is used below\nA=$(curl -s x | python3 -c 'print(1)')\ncurl -s y \\\n  -d 'no curl here'\necho done; curl z\n";
    assert_eq!(curl_commands(code), 3);
    assert_eq!(
        declared_variables(
            "subscription E($after: String, $n: Int) { events(after: $after) { id } }"
        ),
        vec!["after", "n"]
    );
    assert!(declared_variables("{ InfrahubEvent(limit: 1) { count } }").is_empty());
}
