//! Nodes: N concurrent HTTP clients create nodes of a schema-defined kind
//! (`BenchDeviceCreate`, a unique `name` and a `serial`) for a fixed time, each create
//! committed with its `infrahub.node.created` event; the rate is acknowledged creates per
//! second. A fresh server (fsync on) per run, loaded with the one-kind schema first.

use crate::ingest::{Workload, run_against};
use crate::{Target, median};
use anyhow::Context;
use clap::Args;
use std::time::Duration;

#[derive(Args)]
pub(crate) struct NodesArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// fsync on commit.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
}

/// The body of one create.
pub(crate) fn create_body(run: usize, client: usize, seq: u64) -> String {
    let query = format!(
        r#"mutation {{ BenchDeviceCreate(data: {{name: {{value: "r{run}-c{client}-{seq}"}}, serial: {{value: {seq}}}}}) {{ ok }} }}"#
    );
    serde_json::json!({ "query": query }).to_string()
}

const SCHEMA: &str = r#"{"schemas": [{"version": "1.0", "nodes": [
    {"name": "Device", "namespace": "Bench", "human_friendly_id": ["name__value"],
     "attributes": [{"name": "name", "kind": "Text", "unique": true},
                    {"name": "serial", "kind": "Number", "optional": true}]}]}]}"#;

pub(crate) async fn run(args: NodesArgs) -> anyhow::Result<()> {
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        let target = Target::new(None, None, args.fsync).await?;
        let resp = reqwest::Client::new()
            .post(format!("{}/api/schema/load", target.url))
            .header("content-type", "application/json")
            .header("x-infrahub-key", &target.token)
            .body(SCHEMA)
            .send()
            .await
            .context("loading the bench schema")?;
        anyhow::ensure!(
            resp.status().is_success(),
            "schema load: {}",
            resp.text().await?
        );
        let urls = [target.url.clone()];
        let r = run_against(
            &urls,
            &target.token,
            args.clients,
            Duration::from_secs(args.seconds),
            Workload::CreateNodes,
            run,
        )
        .await?;
        println!(
            "run {run}: {:.0} nodes/s created ({} clients, {} s, fsync {}); latency p50 {:.1} ms, p99 {:.1} ms",
            r.rate,
            args.clients,
            args.seconds,
            args.fsync,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
        );
        rates.push(r.rate);
    }
    println!(
        "nodes median of {} runs: {:.0} nodes/s",
        rates.len(),
        median(&rates)
    );
    Ok(())
}
