//! Several instances on one PostgreSQL database (docs/SCALING.md). Each run creates a fresh
//! database in the cluster at `--database-url` (a role that may create databases) and spawns
//! the instances as child processes (`store = postgres`; `synchronous_commit` stays on).
//!
//! - `cluster-ingest`: durable ingest through 1, 3, 5… instances at once, the clients spread
//!   round-robin over them; the rate is the number of acknowledged events per second in total.
//! - `cluster-fanout`: subscribers spread over the instances, events committed one at a time
//!   through the first; latency from the commit (`occurred_at`, stamped by the first
//!   instance) to receipt, reported for the subscribers of the other instances apart.

use crate::client::{Emitter, Group, histogram, ms};
use crate::ingest::run_against;
use crate::median;
use crate::process::{Server, server_binary, spawn_server};
use anyhow::Context;
use clap::Args;
use sqlx::Connection;
use std::time::Duration;

#[derive(Args)]
pub(crate) struct ClusterIngestArgs {
    /// URL of a database of the PostgreSQL cluster whose role may create databases
    /// (e.g. what `scripts/postgres start DIR` prints).
    #[arg(long)]
    database_url: String,
    /// Instance counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5")]
    instances: Vec<usize>,
    /// Concurrent clients in total.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Runs per instance count (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// fsync on commit (of the instances' own files; PostgreSQL keeps its own settings).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
    /// The server binary to spawn; by default the one next to this executable.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<std::path::PathBuf>,
}

pub(crate) async fn run(args: ClusterIngestArgs) -> anyhow::Result<()> {
    let exe = server_binary(args.server_bin.as_ref())?;
    let mut summary = Vec::new();
    for &n in &args.instances {
        anyhow::ensure!(n > 0, "--instances: counts must be positive");
        let mut rates = Vec::new();
        for run in 1..=args.runs {
            let url = fresh_database(&args.database_url).await?;
            let settings = ["store=postgres".to_string(), format!("database_url={url}")];
            let servers = (0..n)
                .map(|_| spawn_server(&exe, args.fsync, &settings))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let urls: Vec<String> = servers
                .iter()
                .map(|s| format!("http://{}", s.addr))
                .collect();
            let r = run_against(
                &urls,
                &servers[0].token,
                args.clients,
                Duration::from_secs(args.seconds),
                crate::ingest::Workload::Emit { branch_every: 0 },
                run,
            )
            .await
            .map_err(|e| servers[0].with_log_tail(e))?;
            println!(
                "{n} instance(s), run {run}: {:.0} events/s committed ({} clients); latency p50 {:.1} ms, p99 {:.1} ms",
                r.rate,
                args.clients,
                r.p50.as_secs_f64() * 1e3,
                r.p99.as_secs_f64() * 1e3,
            );
            rates.push(r.rate);
        }
        summary.push((n, median(&rates)));
    }
    for (n, rate) in summary {
        println!(
            "cluster-ingest {n} instance(s), median of {} runs: {rate:.0} events/s",
            args.runs
        );
    }
    Ok(())
}

#[derive(Args)]
pub(crate) struct ClusterFanoutArgs {
    /// URL of a database of the PostgreSQL cluster whose role may create databases.
    #[arg(long)]
    database_url: String,
    /// Instances.
    #[arg(long, default_value_t = 5)]
    instances: usize,
    /// Subscribers in total, spread evenly over the instances.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Measured events per run (one warm-up event before them is not counted).
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Pause after every subscriber received an event, before committing the next, in ms.
    #[arg(long, default_value_t = 50)]
    pause_ms: u64,
    /// The server binary to spawn; by default the one next to this executable.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<std::path::PathBuf>,
}

const FANOUT_QUERY: &str =
    r#"subscription { events(event_type: ["bench.cluster"]) { id occurred_at } }"#;

pub(crate) async fn fanout(args: ClusterFanoutArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.instances > 0, "--instances must be positive");
    let exe = server_binary(args.server_bin.as_ref())?;
    let (mut all_p99, mut other_p99) = (Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let url = fresh_database(&args.database_url).await?;
        let settings = ["store=postgres".to_string(), format!("database_url={url}")];
        let servers = (0..args.instances)
            .map(|_| spawn_server(&exe, false, &settings))
            .collect::<anyhow::Result<Vec<Server>>>()?;
        let per = args.subscribers / args.instances;
        let mut groups = Vec::new();
        for s in &servers {
            let g = Group::open(s, per, FANOUT_QUERY, 100, args.events + 1).await;
            groups.push(g.map_err(|e| s.with_log_tail(e))?);
        }
        let emitter = Emitter::new(&servers[0]);
        emitter.emit("bench.cluster").await?;
        for g in &groups {
            g.wait_frames(per as u64, Duration::from_secs(60)).await?;
        }
        for k in 1..=args.events as u64 {
            emitter.emit("bench.cluster").await?;
            for g in &groups {
                g.wait_frames(per as u64 * (k + 1), Duration::from_secs(60))
                    .await?;
            }
            tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        }
        let (mut all, mut others) = (histogram(), histogram());
        for (i, g) in groups.into_iter().enumerate() {
            for sub in g.finish().await? {
                anyhow::ensure!(
                    sub.latencies.len() == args.events + 1,
                    "a subscriber of instance {i} received {} events instead of {}",
                    sub.latencies.len(),
                    args.events + 1
                );
                for &l in &sub.latencies[1..] {
                    all.saturating_record(u64::from(l.max(1)));
                    if i > 0 {
                        others.saturating_record(u64::from(l.max(1)));
                    }
                }
            }
        }
        println!(
            "run {run}: {} subscribers on {} instances, commit on the first → received: p50 {:.2} ms, p99 {:.2} ms (all); on the other instances p50 {:.2} ms, p99 {:.2} ms",
            per * args.instances,
            args.instances,
            ms(&all, 0.5),
            ms(&all, 0.99),
            ms(&others, 0.5),
            ms(&others, 0.99),
        );
        all_p99.push(ms(&all, 0.99));
        other_p99.push(ms(&others, 0.99));
    }
    println!(
        "cluster-fanout {} subscribers over {} instances, median of {} runs: p99 {:.2} ms (all), {:.2} ms (other instances)",
        args.subscribers / args.instances * args.instances,
        args.instances,
        args.runs,
        median(&all_p99),
        median(&other_p99),
    );
    Ok(())
}

/// A new, empty database in the cluster of `admin_url`; its URL.
pub(crate) async fn fresh_database(admin_url: &str) -> anyhow::Result<String> {
    let name = format!("bench_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .context("cannot connect to --database-url")?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    let _ = conn.close().await;
    let base = admin_url.split('?').next().unwrap_or(admin_url);
    let base = &base[..base.rfind('/').context("--database-url has no database")?];
    Ok(format!("{base}/{name}"))
}

/// A name part unique to this process and moment (only letters and digits).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}_{nanos}", std::process::id())
}
