//! Several instances on one PostgreSQL database (docs/SCALING.md): durable ingest through 1, 3,
//! 5… instances at once. Each run creates a fresh database in the cluster at
//! `--database-url` (a role that may create databases), spawns the instances as child
//! processes (`store = postgres`, fsync as given; `synchronous_commit` stays on), and spreads
//! the clients round-robin over them; the rate is the number of acknowledged events per second
//! in total.

use crate::ingest::run_against;
use crate::median;
use crate::process::{server_binary, spawn_server};
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
                0,
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

/// A new, empty database in the cluster of `admin_url`; its URL.
async fn fresh_database(admin_url: &str) -> anyhow::Result<String> {
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
