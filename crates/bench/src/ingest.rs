//! Ingest: N concurrent HTTP clients send `EventEmit` mutations for a fixed time; the rate is
//! the number of acknowledged (committed) events per second.

use crate::{Target, median};
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
}

const EMIT: &str =
    r#"mutation { EventEmit(data: {event: "bench.ingest", payload: {n: 1}}) { ok } }"#;

pub(crate) async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        // A fresh server (and database) per run, so runs are independent.
        let target = Target::new(args.url.clone(), args.token.clone(), args.fsync).await?;
        let rate = one_run(&target, args.clients, Duration::from_secs(args.seconds)).await?;
        println!(
            "run {run}: {rate:.0} events/s committed ({} clients, {} s)",
            args.clients, args.seconds
        );
        rates.push(rate);
    }
    println!(
        "ingest median of {} runs: {:.0} events/s",
        rates.len(),
        median(&rates)
    );
    Ok(())
}

async fn one_run(target: &Target, clients: usize, duration: Duration) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let url = format!("{}/graphql", target.url);
    let body = serde_json::json!({ "query": EMIT }).to_string();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, body, token) = (
            http.clone(),
            url.clone(),
            body.clone(),
            target.token.clone(),
        );
        let (ok, failed) = (ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-infrahub-key", &token)
                    .body(body.clone())
                    .send()
                    .await;
                let good = match r {
                    Ok(resp) if resp.status().is_success() => {
                        let text = resp.text().await.unwrap_or_default();
                        text.contains(r#""ok":true"#) && !text.contains(r#""errors""#)
                    }
                    _ => false,
                };
                if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    anyhow::ensure!(failed == 0, "{failed} requests failed during the run");
    Ok(ok.load(Ordering::Relaxed) as f64 / elapsed)
}
