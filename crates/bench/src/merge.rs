//! Merge: a branch with N changed nodes (half of them nodes of the default branch updated on
//! the branch, half created there) is merged; the time is the `BranchMerge` request's, from
//! send to answer, which covers reading the branch's data, the diff, and committing every
//! node with its child event in one transaction (fsync on). A fresh server per run.

use crate::{Target, median};
use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Args)]
pub(crate) struct MergeArgs {
    /// Changed nodes on the branch.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// fsync on commit.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
}

const SCHEMA: &str = r#"{"schemas": [{"version": "1.0", "nodes": [
    {"name": "Device", "namespace": "Bench", "human_friendly_id": ["name__value"],
     "attributes": [{"name": "name", "kind": "Text", "unique": true},
                    {"name": "serial", "kind": "Number", "optional": true}]}]}]}"#;

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    async fn graphql(&self, branch: &str, query: &str, vars: Value) -> anyhow::Result<Value> {
        let body: Value = self
            .http
            .post(format!("{}/graphql/{branch}", self.url))
            .header("x-infrahub-key", &self.token)
            .json(&json!({"query": query, "variables": vars}))
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(body.get("errors").is_none(), "{query}: {body}");
        Ok(body["data"].clone())
    }

    /// Runs `queries` on `branch`, 64 at a time.
    async fn all(&self, branch: &str, queries: Vec<String>) -> anyhow::Result<()> {
        for chunk in queries.chunks(64) {
            let runs = chunk.iter().map(|q| self.graphql(branch, q, Value::Null));
            for r in futures::future::join_all(runs).await {
                r?;
            }
        }
        Ok(())
    }
}

fn create(name: &str, serial: usize) -> String {
    format!(
        r#"mutation {{ BenchDeviceCreate(data: {{name: {{value: "{name}"}}, serial: {{value: {serial}}}}}) {{ object {{ id }} }} }}"#
    )
}

async fn one_run(args: &MergeArgs) -> anyhow::Result<Duration> {
    let target = Target::new(None, None, args.fsync).await?;
    let c = Client {
        http: reqwest::Client::new(),
        url: target.url.clone(),
        token: target.token.clone(),
    };
    let resp = c
        .http
        .post(format!("{}/api/schema/load", c.url))
        .header("content-type", "application/json")
        .header("x-infrahub-key", &c.token)
        .body(SCHEMA)
        .send()
        .await
        .context("loading the bench schema")?;
    anyhow::ensure!(
        resp.status().is_success(),
        "schema load: {}",
        resp.text().await?
    );
    let updated = args.nodes / 2;
    c.all(
        "main",
        (0..updated).map(|i| create(&format!("d{i}"), 0)).collect(),
    )
    .await?;
    c.graphql(
        "main",
        "mutation { BranchCreate(data: {name: \"bench\"}) { ok } }",
        Value::Null,
    )
    .await?;
    let updates = (0..updated)
        .map(|i| {
            format!(
                r#"mutation {{ BenchDeviceUpdate(data: {{hfid: ["d{i}"], serial: {{value: 1}}}}) {{ ok }} }}"#
            )
        })
        .collect();
    c.all("bench", updates).await?;
    let creates = (updated..args.nodes)
        .map(|i| create(&format!("n{i}"), 1))
        .collect();
    c.all("bench", creates).await?;
    let started = Instant::now();
    c.graphql(
        "main",
        "mutation { BranchMerge(data: {name: \"bench\"}) { ok } }",
        Value::Null,
    )
    .await?;
    let took = started.elapsed();
    let check = c
        .graphql(
            "main",
            "{ BenchDevice(serial__value: 1) { count } }",
            Value::Null,
        )
        .await?;
    anyhow::ensure!(
        check["BenchDevice"]["count"] == args.nodes,
        "after the merge main has {check} changed nodes, not {}",
        args.nodes
    );
    Ok(took)
}

pub(crate) async fn run(args: MergeArgs) -> anyhow::Result<()> {
    let mut times = Vec::new();
    for run in 1..=args.runs {
        let took = one_run(&args).await?;
        println!(
            "run {run}: merged {} changed nodes ({} updated, {} created) in {:.0} ms (fsync {})",
            args.nodes,
            args.nodes / 2,
            args.nodes - args.nodes / 2,
            took.as_secs_f64() * 1e3,
            args.fsync
        );
        times.push(took.as_secs_f64() * 1e3);
    }
    println!(
        "merge median of {} runs: {:.0} ms for {} changed nodes",
        times.len(),
        median(&times),
        args.nodes
    );
    Ok(())
}
