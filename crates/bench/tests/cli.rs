//! `infrastream-bench` is a binary of its own with the scenarios that used to be
//! `infrastream bench …`, and spawns the server binary it is told to (or the one next to it).

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infrastream-bench"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_scenarios_and_hides_the_idle_client() {
    let out = bench(&["--help"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for scenario in ["ingest", "fanout", "idle", "sustained", "query", "connect"] {
        assert!(
            stdout.contains(scenario),
            "{scenario} missing from:\n{stdout}"
        );
    }
    assert!(!stdout.contains("idle-client"), "{stdout}");
}

#[test]
fn websocket_scenarios_take_the_server_binary() {
    for scenario in ["fanout", "idle", "sustained", "query", "connect"] {
        let out = bench(&[scenario, "--help"]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        for flag in ["--server-bin", "--url", "--auth", "--set", "--runs"] {
            assert!(
                stdout.contains(flag),
                "{scenario}: {flag} missing from:\n{stdout}"
            );
        }
    }
}

#[test]
fn a_missing_server_binary_is_reported() {
    let out = bench(&[
        "fanout",
        "--server-bin",
        "/nonexistent/infrastream",
        "--subscribers",
        "1",
        "--events",
        "1",
        "--runs",
        "1",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--server-bin /nonexistent/infrastream: no such file"),
        "{stderr}"
    );
}

#[test]
fn scenarios_without_a_node_run_refuse_node_peer() {
    for scenario in ["idle", "sustained", "query", "connect"] {
        let out = bench(&[
            scenario,
            "--node-peer",
            "bench/node-reference",
            "--runs",
            "1",
        ]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{scenario}");
        assert!(
            stderr.contains(&format!("--node-peer is not supported by `{scenario}`")),
            "{scenario}: {stderr}"
        );
    }
}
