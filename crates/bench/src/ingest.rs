//! Ingest: N concurrent HTTP clients send `EventEmit` mutations (optionally mixed with
//! `BranchCreate`) for a fixed time; the rate is the number of acknowledged (committed) events
//! per second. Each acknowledged mutation commits exactly one event.

use crate::{ProcessCpu, Target, median, percentile};
use clap::Args;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Args)]
pub(crate) struct IngestArgs {
    /// Server URL (e.g. http://127.0.0.1:8000); without it a server is started in-process.
    #[arg(long)]
    url: Option<String>,
    /// Admin API token for --url.
    #[arg(long)]
    token: Option<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// fsync on commit for the in-process server.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
    /// Make every N-th request of each client a `BranchCreate` (0 = only `EventEmit`).
    #[arg(long, default_value_t = 0)]
    branch_every: u64,
}

/// What one run measured.
pub(crate) struct RunResult {
    pub(crate) rate: f64,
    branches: u64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// CPU seconds this process used during the run (client and, in-process, server).
    cpu: Option<f64>,
    elapsed: f64,
}

pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        // A fresh server (and database) per run, so runs are independent.
        let target = Target::new(args.url.clone(), args.token.clone(), args.fsync).await?;
        let r = one_run(
            &target,
            args.clients,
            Duration::from_secs(args.seconds),
            args.branch_every,
            run,
        )
        .await?;
        let cpu = match r.cpu {
            Some(cpu) => format!(
                ", process CPU {:.0}% of {cores} cores",
                100.0 * cpu / (r.elapsed * cores as f64)
            ),
            None => String::new(),
        };
        let branches = if r.branches > 0 {
            format!(", {} of them BranchCreate", r.branches)
        } else {
            String::new()
        };
        println!(
            "run {run}: {:.0} events/s committed ({} clients, {} s{branches}); latency p50 {:.1} ms, p99 {:.1} ms{cpu}",
            r.rate,
            args.clients,
            args.seconds,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
        );
        rates.push(r.rate);
    }
    println!(
        "ingest median of {} runs: {:.0} events/s",
        rates.len(),
        median(&rates)
    );
    Ok(())
}

/// What each client sends.
#[derive(Clone, Copy)]
pub(crate) enum Workload {
    /// `EventEmit`, every `branch_every`-th request a `BranchCreate` (0: never).
    Emit { branch_every: u64 },
    /// `BenchDeviceCreate` of a new node (see `nodes`).
    CreateNodes,
}

fn emit_body(client: usize, seq: u64) -> String {
    let query = format!(
        r#"mutation {{ EventEmit(data: {{event: "bench.ingest", payload: {{client: {client}, seq: {seq}}}}}) {{ ok }} }}"#
    );
    serde_json::json!({ "query": query }).to_string()
}

fn branch_body(run: usize, client: usize, seq: u64) -> String {
    let query = format!(
        r#"mutation {{ BranchCreate(data: {{name: "bench-{run}-{client}-{seq}"}}) {{ ok }} }}"#
    );
    serde_json::json!({ "query": query }).to_string()
}

async fn one_run(
    target: &Target,
    clients: usize,
    duration: Duration,
    branch_every: u64,
    run: usize,
) -> anyhow::Result<RunResult> {
    let urls = [target.url.clone()];
    let workload = Workload::Emit { branch_every };
    run_against(&urls, &target.token, clients, duration, workload, run).await
}

/// One run of `clients` clients spread round-robin over the servers at `urls` (the same log
/// behind each: several instances on one database).
pub(crate) async fn run_against(
    urls: &[String],
    token: &str,
    clients: usize,
    duration: Duration,
    workload: Workload,
    run: usize,
) -> anyhow::Result<RunResult> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let failed = Arc::new(AtomicU64::new(0));
    let cpu = ProcessCpu::now();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let url = format!("{}/graphql", urls[client % urls.len()]);
        let (http, token) = (http.clone(), token.to_owned());
        let failed = failed.clone();
        tasks.push(tokio::spawn(async move {
            // Latencies (µs) of acknowledged requests, and how many were branches.
            let mut latencies: Vec<u32> = Vec::new();
            let mut branches = 0u64;
            let mut seq = 0u64;
            while Instant::now() < deadline {
                seq += 1;
                let (branch, body) = match workload {
                    Workload::Emit { branch_every }
                        if branch_every > 0 && seq.is_multiple_of(branch_every) =>
                    {
                        (true, branch_body(run, client, seq))
                    }
                    Workload::Emit { .. } => (false, emit_body(client, seq)),
                    Workload::CreateNodes => (false, crate::nodes::create_body(run, client, seq)),
                };
                let sent = Instant::now();
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-infrahub-key", &token)
                    .body(body)
                    .send()
                    .await;
                let good = match r {
                    Ok(resp) if resp.status().is_success() => {
                        let text = resp.text().await.unwrap_or_default();
                        text.contains(r#""ok":true"#) && !text.contains(r#""errors""#)
                    }
                    _ => false,
                };
                if good {
                    latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    branches += u64::from(branch);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            (latencies, branches)
        }));
    }
    let mut latencies = Vec::new();
    let mut branches = 0;
    for t in tasks {
        let (l, b) = t.await?;
        latencies.extend(l);
        branches += b;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.and_then(|c| c.elapsed());
    let failed = failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} requests failed during the run");
    latencies.sort_unstable();
    let micros = |q| Duration::from_micros(u64::from(percentile(&latencies, q)));
    Ok(RunResult {
        rate: latencies.len() as f64 / elapsed,
        branches,
        p50: micros(0.50),
        p99: micros(0.99),
        cpu,
        elapsed,
    })
}
