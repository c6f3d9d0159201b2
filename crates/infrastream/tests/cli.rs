//! The command line: `serve` is the default subcommand, so its flags work without the word
//! (`infrastream --listen ADDR --data-dir DIR` serves exactly like `infrastream serve …`);
//! `serve --help` lists every setting under one `SETTINGS` heading; the load generator is not
//! part of this binary (it is `infrastream-bench`).

use infrastream_testkit::binary::run;
use infrastream_testkit::http::post_graphql;
use infrastream_testkit::{ADMIN_TOKEN, Auth, Binary};
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_infrastream");

/// What a client sees of a server: everything but the per-data-directory deployment id.
async fn observe(b: &Binary) -> Value {
    let http = reqwest::Client::new();
    let health = http.get(format!("{}/health", b.url)).send().await.unwrap();
    let health_status = health.status().as_u16();
    let health_body: Value = health.json().await.unwrap();

    let info = http
        .get(format!("{}/api/info", b.url))
        .send()
        .await
        .unwrap();
    let info_status = info.status().as_u16();
    let info_body: Value = info.json().await.unwrap();
    let deployment_id = info_body["deployment_id"].as_str().unwrap_or("");
    assert!(!deployment_id.is_empty(), "/api/info: {info_body}");

    let (graphql_status, graphql_body) = post_graphql(
        &http,
        &format!("{}/graphql", b.url),
        Auth::Token(ADMIN_TOKEN),
        "{ Branch { name } AccountProfile { name { value } } }",
        Value::Null,
    )
    .await;

    // `--set max_body_bytes=2048` (given to both) is honoured: a bigger body is refused.
    let big = json!({"query": format!("{{ Branch {{ name }} }}{}", " ".repeat(4096))});
    let too_big = http
        .post(format!("{}/graphql", b.url))
        .header("content-type", "application/json")
        .header("x-infrahub-key", ADMIN_TOKEN)
        .body(big.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();

    json!({
        "health": [health_status, health_body],
        "info": [info_status, info_body["version"]],
        "graphql": [graphql_status, graphql_body],
        "over_the_body_limit": too_big,
        "store_in_data_dir": b.data_dir().join("infrastream.db").exists(),
    })
}

#[tokio::test]
async fn serve_flags_work_without_the_subcommand() {
    let flags = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "{data_dir}",
        "--set",
        "max_body_bytes=2048",
    ];
    let implicit = Binary::start(EXE, &flags);
    let explicit = Binary::start(EXE, &[&["serve"][..], &flags].concat());
    let seen_implicit = observe(&implicit).await;
    let seen_explicit = observe(&explicit).await;
    assert_eq!(
        seen_implicit,
        json!({
            "health": [200, {"status": "ok"}],
            "info": [200, env!("CARGO_PKG_VERSION")],
            "graphql": [200, {"data": {
                "Branch": [{"name": "main"}],
                "AccountProfile": {"name": {"value": "admin"}},
            }}],
            "over_the_body_limit": 413,
            "store_in_data_dir": true,
        }),
        "infrastream --listen … --data-dir …"
    );
    assert_eq!(seen_implicit, seen_explicit, "with and without `serve`");
    for b in [&implicit, &explicit] {
        assert!(b.url.starts_with("http://127.0.0.1:"), "{}", b.url);
        let printed = b.stdout();
        assert!(
            printed
                .iter()
                .any(|l| l.contains(&format!("GraphQL (HTTP and WebSocket): {}/graphql", b.url))),
            "{printed:?}"
        );
    }
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn serve_help_lists_every_setting_under_one_heading() {
    let out = run(EXE, &["serve", "--help"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let headings = stdout.lines().filter(|l| l.starts_with("SETTINGS")).count();
    assert_eq!(headings, 1, "SETTINGS headings in:\n{stdout}");
    for flag in ["--listen", "--data-dir", "--config", "--set"] {
        assert!(stdout.contains(flag), "{flag} missing from:\n{stdout}");
    }
    // Every setting, as the settings module describes it, appears verbatim.
    for line in infrastream_config::settings_help().lines() {
        assert!(
            stdout.contains(line.trim_end()),
            "line {line:?} missing from serve --help:\n{stdout}"
        );
    }
    for key in [
        "listen",
        "data_dir",
        "max_body_bytes",
        "initial_admin_token",
        "subscriptions.interval_unit",
    ] {
        assert!(
            stdout.contains(&format!("\n  {key} (default")),
            "setting {key} missing from:\n{stdout}"
        );
    }
}

#[test]
fn top_level_help_shows_the_serve_flags_and_the_subcommands() {
    let out = run(EXE, &["--help"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for word in ["--listen", "--data-dir", "--config", "--set", "serve"] {
        assert!(stdout.contains(word), "{word} missing from:\n{stdout}");
    }
    assert!(stdout.contains("infrastream serve --help"), "{stdout}");
}

#[test]
fn bench_is_not_a_subcommand_and_unknown_flags_are_refused() {
    let out = run(EXE, &["bench", "--help"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unrecognized subcommand 'bench'"),
        "{stderr}"
    );

    let out = run(EXE, &["--no-such-flag"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unexpected argument '--no-such-flag'"),
        "{stderr}"
    );
}
