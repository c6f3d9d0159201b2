//! The command-line client against the real binary: `tail` follows the log across a server
//! restart with every event exactly once; `--json` lines parse; `tail | head -1` ends quietly
//! with exit code 0; a bad token is one line on stderr and exit code 1; each subcommand's
//! happy path and one error path; and `https://` with `--ca-file`.
//!
//! Every command runs under a deadline ([`run`]): a command that does not end is a failure
//! naming it, never a hung test.

use infrastream_testkit::binary::DATA_DIR;
use infrastream_testkit::{ADMIN_TOKEN, Binary};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_infrastream");

/// The CLI pointed at `url` with the admin token.
fn cli(url: &str) -> Command {
    let mut c = Command::new(EXE);
    c.env("INFRASTREAM_URL", url)
        .env("INFRASTREAM_TOKEN", ADMIN_TOKEN);
    c
}

/// How long one command may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

fn run(url: &str, args: &[&str]) -> Output {
    run_command(cli(url).args(args), &format!("{args:?}"))
}

/// Runs `command` to its end with stdin closed; panics naming `what` when it takes longer than
/// [`COMMAND_DEADLINE`] (after killing it).
fn run_command(command: &mut Command, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the CLI");
    let pid = child.id();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match result.recv_timeout(COMMAND_DEADLINE) {
        Ok(output) => output.expect("wait for the CLI"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{what} did not end within {COMMAND_DEADLINE:?}");
        }
    }
}

/// Asserts failure with exit code 1 and exactly one line on stderr; that line.
fn fails(url: &str, args: &[&str]) -> String {
    let o = run(url, args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{args:?}: exit code; stdout {}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: one line on stderr: {err:?}"
    );
    assert!(err.starts_with("error: "), "{args:?}: {err:?}");
    err.trim().to_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success; the trimmed stdout.
fn ok(url: &str, args: &[&str]) -> String {
    let o = run(url, args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o).trim().to_owned()
}

/// A port free now, for a server that must come back on the same address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follows_across_a_restart_with_every_event_once() {
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let server = Binary::builder(EXE)
        .args(&["serve", "--listen", &listen, "--data-dir", DATA_DIR])
        .spawn();
    let url = server.url.clone();
    let mut tail = cli(&url)
        .args(["tail", "--json", "--from-start", "--type", "cli.test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut emitted = Vec::new();
    for i in 0..5 {
        emitted.push(ok(
            &url,
            &["emit", "cli.test", "--payload", &format!("{{\"i\": {i}}}")],
        ));
    }
    let server = server.restart();
    assert_eq!(server.url, url, "the server came back on the same address");
    for i in 5..10 {
        emitted.push(ok(
            &url,
            &["emit", "cli.test", "--payload", &format!("{{\"i\": {i}}}")],
        ));
    }
    // Read what tail printed: every emitted event, once, in order.
    let out = tail.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let event: Value = serde_json::from_str(&line).expect("a JSON line");
            assert_eq!(event["event"], "cli.test", "{line}");
            ids.push(event["id"].as_str().unwrap().to_owned());
            if ids.len() == 10 {
                break;
            }
        }
        ids
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tail.kill();
    let _ = tail.wait();
    let ids = reader.join().unwrap();
    assert_eq!(
        ids, emitted,
        "every event exactly once, in order, across the restart"
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut tail.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("reconnecting"),
        "tail said it reconnected: {err:?}"
    );
    drop(server);
}

#[tokio::test]
async fn json_lines_parse_and_a_closed_pipe_ends_tail_quietly() {
    let server = Binary::builder(EXE).spawn();
    let url = server.url.clone();
    ok(&url, &["emit", "cli.one"]);
    ok(&url, &["emit", "cli.two"]);
    let piped = run_command(
        Command::new("sh")
            .arg("-c")
            .arg(format!("'{EXE}' tail --json --from-start | head -1"))
            .env("INFRASTREAM_URL", &url)
            .env("INFRASTREAM_TOKEN", ADMIN_TOKEN),
        "tail --json | head -1",
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(
        stderr(&piped),
        "",
        "no error message when the reader goes away"
    );
    let line = stdout(&piped);
    let event: Value = serde_json::from_str(line.trim()).expect("one JSON line");
    assert_eq!(
        event["event"], "infrahub.branch.created",
        "the oldest event first"
    );
    // `events --json`: one object per line, newest first unless --asc.
    let lines = ok(&url, &["events", "--json", "--limit", "2"]);
    let names: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["cli.two", "cli.one"]);
    // And a readable table by default.
    let table = ok(&url, &["events", "--type", "cli.one"]);
    assert!(table.starts_with("OCCURRED_AT"), "{table}");
    assert!(
        table.contains("cli.one") && !table.contains("cli.two"),
        "{table}"
    );
    // Human-readable tail lines.
    let human = run_command(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "'{EXE}' tail --from-start --type cli.two | head -1"
            ))
            .env("INFRASTREAM_URL", &url)
            .env("INFRASTREAM_TOKEN", ADMIN_TOKEN),
        "tail | head -1",
    );
    let text = stdout(&human);
    assert!(
        text.contains("  cli.two  ") && text.contains("id="),
        "{text}"
    );
}

/// POSTs a GraphQL document as admin (for what the CLI does not do: saved queries,
/// repositories, artifact definitions); the whole answer.
fn admin_graphql(url: &str, query: &str, variables: Value) -> Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/graphql"))
            .header("x-infrahub-key", ADMIN_TOKEN)
            .json(&serde_json::json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

/// `git -C dir args…`, with no user or system configuration.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let o = run_command(
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null"),
        &format!("git {args:?}"),
    );
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    stdout(&o).trim().to_owned()
}

/// `args` with another token instead of the admin's.
fn run_as(url: &str, token: &str, args: &[&str]) -> Output {
    run_command(
        cli(url).env("INFRASTREAM_TOKEN", token).args(args),
        &format!("{args:?} with another token"),
    )
}

#[test]
fn each_subcommand_works_and_fails_with_one_line() {
    let server = Binary::builder(EXE).spawn();
    let url = server.url.clone();

    // A bad token: one line, exit code 1, for a one-shot command and for tail.
    for args in [&["events"][..], &["tail"][..], &["branch", "list"][..]] {
        let o = run_as(&url, "not-a-token", args);
        assert_eq!(o.status.code(), Some(1), "{args:?} with a bad token");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
        assert!(
            err.starts_with("error: authentication failed: "),
            "{args:?}: {err:?}"
        );
    }
    // An unreachable server.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let err = fails(&gone, &["events"]);
    assert!(err.contains("cannot reach"), "{err}");
    let err = fails("ftp://example", &["events"]);
    assert!(
        err.contains("--url must start with http:// or https://"),
        "{err}"
    );

    // emit: the new event's id; a payload that is not JSON is refused before anything is sent.
    let id = ok(&url, &["emit", "cli.emitted", "--payload", r#"{"n": 1}"#]);
    let listed = ok(&url, &["events", "--json", "--type", "cli.emitted"]);
    let event: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["payload"]["data"]["n"], 1, "{event}");
    let err = fails(&url, &["emit", "cli.emitted", "--payload", "{nope"]);
    assert!(err.contains("--payload is not valid JSON"), "{err}");
    let err = fails(&url, &["emit", "infrahub.branch.created"]);
    assert!(err.contains("infrahub."), "the server's own message: {err}");

    // events: paging, and a filter the server refuses.
    let page = ok(
        &url,
        &["events", "--json", "--asc", "--limit", "1", "--offset", "1"],
    );
    assert_eq!(page.lines().count(), 1, "{page}");
    let err = fails(&url, &["events", "--limit", "100000"]);
    assert!(err.contains("limit"), "{err}");

    // branch create, list, rebase, merge, delete; and their errors.
    let created = ok(
        &url,
        &["branch", "create", "cli-b", "--description", "from the CLI"],
    );
    assert_eq!(created, "created branch cli-b");
    let err = fails(&url, &["branch", "create", "cli-b"]);
    assert!(err.contains("cli-b"), "{err}");
    let list = ok(&url, &["branch", "list"]);
    assert!(list.lines().any(|l| l.starts_with("cli-b  OPEN")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("main  ")), "{list}");
    assert!(ok(&url, &["branch", "rebase", "cli-b"]).starts_with("rebased branch cli-b in "));
    let merged = run(&url, &["branch", "merge", "cli-b"]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    assert!(stdout(&merged).starts_with("merged branch cli-b in "));
    assert_eq!(
        stderr(&merged),
        "",
        "no progress line for a merge that took less than a second"
    );
    ok(&url, &["branch", "create", "cli-c"]);
    assert!(ok(&url, &["branch", "delete", "cli-c"]).starts_with("deleted branch cli-c"));
    assert!(!ok(&url, &["branch", "list"]).contains("cli-c"));
    let err = fails(&url, &["branch", "merge", "no-such-branch"]);
    assert!(err.contains("no-such-branch"), "{err}");

    // token create (the secret on stdout, its id on stderr), list, revoke.
    let made = run(&url, &["token", "create", "--name", "cli-token"]);
    assert!(made.status.success(), "{}", stderr(&made));
    let secret = stdout(&made).trim().to_owned();
    let token_id = stderr(&made)
        .split_whitespace()
        .nth(2)
        .expect("token id <id> (shown once …)")
        .to_owned();
    let listed = ok(&url, &["token", "list", "--json"]);
    let mine: Vec<Value> = listed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        mine.iter()
            .any(|t| t["id"] == token_id.as_str() && t["name"] == "cli-token"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "a secret is never listed");
    let table = ok(&url, &["token", "list"]);
    assert!(
        table.contains(&format!("{token_id}  cli-token  expires=never")),
        "{table}"
    );
    let o = run_as(&url, &secret, &["branch", "list"]);
    assert!(o.status.success(), "the new token works: {}", stderr(&o));
    assert_eq!(
        ok(&url, &["token", "revoke", &token_id]),
        format!("revoked token {token_id}")
    );
    assert!(!ok(&url, &["token", "list"]).contains(&token_id));
    let o = run_as(&url, &secret, &["branch", "list"]);
    assert_eq!(o.status.code(), Some(1), "a revoked token is refused");
    let err = fails(
        &url,
        &["token", "revoke", "01a22f6f-0000-7000-8000-000000000000"],
    );
    assert!(err.to_lowercase().contains("not found"), "{err}");
    let err = fails(
        &url,
        &["token", "create", "--expiration", "2001-01-01T00:00:00Z"],
    );
    assert!(err.contains("past") || err.contains("expir"), "{err}");

    // query run: a saved query by name, with its variables; an unknown name.
    let saved = admin_graphql(
        &url,
        "mutation($d: CoreGraphQLQueryCreateInput!) { CoreGraphQLQueryCreate(data: $d) { ok } }",
        serde_json::json!({"d": {
            "name": {"value": "branch_names"},
            "query": {"value": "query($n: String) { Branch(name: $n) { name } }"}
        }}),
    );
    assert_eq!(
        saved["data"]["CoreGraphQLQueryCreate"]["ok"], true,
        "{saved}"
    );
    let result = ok(
        &url,
        &[
            "query",
            "run",
            "branch_names",
            "--params",
            r#"{"n": "main"}"#,
        ],
    );
    let data: Value = serde_json::from_str(&result).unwrap();
    assert_eq!(data["Branch"][0]["name"], "main", "{data}");
    let err = fails(&url, &["query", "run", "no_such_query"]);
    assert!(
        err.contains("Saved query 'no_such_query' not found"),
        "{err}"
    );
    let err = fails(&url, &["query", "run", "branch_names", "--params", "[1"]);
    assert!(err.contains("--params is not valid JSON"), "{err}");
}

#[test]
fn https_servers_are_verified_with_the_ca_file() {
    let cert = infrastream_testkit::tls::TestCertificate::generate();
    let server = Binary::builder(EXE)
        .set("tls_cert", &cert.cert_path().display().to_string())
        .set("tls_key", &cert.key_path().display().to_string())
        .spawn();
    let url = server.url.clone();
    assert!(url.starts_with("https://"), "{url}");
    let ca = cert.cert_path().display().to_string();
    let id = ok(&url, &["emit", "cli.tls", "--ca-file", &ca]);
    // tail over wss:// with the same CA.
    let piped = run_command(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "'{EXE}' tail --json --from-start --type cli.tls --ca-file '{ca}' | head -1"
            ))
            .env("INFRASTREAM_URL", &url)
            .env("INFRASTREAM_TOKEN", ADMIN_TOKEN),
        "tail over wss:// | head -1",
    );
    assert!(piped.status.success(), "{}", stderr(&piped));
    let event: Value = serde_json::from_str(stdout(&piped).trim()).expect("one JSON line");
    assert_eq!(event["id"], id.as_str());
    // Without the CA (a bundle that does not hold it), the server is not trusted.
    let other = infrastream_testkit::tls::TestCertificate::generate();
    let err = fails(
        &url,
        &[
            "events",
            "--ca-file",
            &other.cert_path().display().to_string(),
        ],
    );
    assert!(err.contains("cannot reach"), "{err}");
    let err = fails(&url, &["events", "--ca-file", "/nonexistent/ca.pem"]);
    assert!(
        err.contains("cannot read CA file /nonexistent/ca.pem"),
        "{err}"
    );
}

#[test]
fn repository_sync_and_artifact_generation_report_their_outcome() {
    let server = Binary::builder(EXE).spawn();
    let url = server.url.clone();

    // repository sync: a local Git repository, by name and by id; then one whose path is gone.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    git(&source, &["init", "-q", "-b", "main"]);
    std::fs::write(source.join("README"), "hello").unwrap();
    git(&source, &["add", "."]);
    git(
        &source,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "first",
        ],
    );
    let head = git(&source, &["rev-parse", "HEAD"]);
    let register = |name: &str, location: &str| {
        let r = admin_graphql(
            &url,
            "mutation($n: String!, $l: String!) { CoreRepositoryCreate(data: {name: {value: $n}, location: {value: $l}}) { ok object { id } } }",
            serde_json::json!({"n": name, "l": location}),
        );
        assert_eq!(r["data"]["CoreRepositoryCreate"]["ok"], true, "{r}");
        r["data"]["CoreRepositoryCreate"]["object"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let id = register("cli-repo", &source.display().to_string());
    let synced = ok(&url, &["repository", "sync", "cli-repo"]);
    assert!(
        synced.starts_with(&format!("synced repository cli-repo at {head} in ")),
        "{synced}"
    );
    assert!(ok(&url, &["repository", "sync", &id]).contains(&head));
    register(
        "cli-gone",
        &dir.path().join("nowhere").display().to_string(),
    );
    let err = fails(&url, &["repository", "sync", "cli-gone"]);
    assert!(err.contains("the sync of 'cli-gone' failed: "), "{err}");
    let err = fails(&url, &["repository", "sync", "no-such-repo"]);
    assert!(err.contains("Repository 'no-such-repo' not found"), "{err}");

    // artifact generate: a definition rendering the branch names, for main; a failing one.
    let saved = admin_graphql(
        &url,
        "mutation { CoreGraphQLQueryCreate(data: {name: {value: \"names\"}, query: {value: \"query { Branch { name } }\"}}) { ok } }",
        serde_json::json!({}),
    );
    assert_eq!(
        saved["data"]["CoreGraphQLQueryCreate"]["ok"], true,
        "{saved}"
    );
    let define = |name: &str, template: &str| {
        let r = admin_graphql(
            &url,
            "mutation($d: CoreArtifactDefinitionCreateInput!) { CoreArtifactDefinitionCreate(data: $d) { ok } }",
            serde_json::json!({"d": {
                "name": {"value": name},
                "artifact_name": {"value": format!("{name}-artifact")},
                "content_type": {"value": "text/plain"},
                "query": {"value": "names"},
                "template": {"value": template},
            }}),
        );
        assert_eq!(r["data"]["CoreArtifactDefinitionCreate"]["ok"], true, "{r}");
    };
    define(
        "cli-names",
        "{% for b in Branch %}{{ b.name }} {% endfor %}",
    );
    define("cli-broken", "{{ data.Nope.name }}");
    let main = admin_graphql(
        &url,
        "{ Branch(name: \"main\") { id } }",
        serde_json::json!({}),
    );
    let main = main["data"]["Branch"][0]["id"].as_str().unwrap().to_owned();
    let generated = ok(
        &url,
        &["artifact", "generate", "cli-names", "--target", &main],
    );
    assert!(
        generated.starts_with("generated 1 artifacts of cli-names in ")
            && generated.ends_with(": 1 created"),
        "{generated}"
    );
    let again = ok(&url, &["artifact", "generate", "cli-names"]);
    assert!(
        again.ends_with(": 1 unchanged"),
        "every existing artifact again: {again}"
    );
    let o = run(
        &url,
        &["artifact", "generate", "cli-broken", "--target", &main],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).ends_with(": 1 error\n"), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: some artifacts failed; the first: artifact "),
        "{err}"
    );
    let err = fails(&url, &["artifact", "generate", "no-such-definition"]);
    assert!(err.contains("no-such-definition"), "{err}");
}
