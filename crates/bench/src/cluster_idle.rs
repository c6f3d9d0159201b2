//! `cluster-idle`: N instances on one PostgreSQL database, each holding C acknowledged
//! graphql-transport-ws connections (each instance its own process and file-descriptor
//! budget), with K `events` subscriptions on each; the instances' resident memory and CPU
//! while they hold them, and one event committed through the first instance that every
//! subscription on every instance must receive.
//!
//! One `idle-client` process per instance opens its connections, one instance after the
//! other, from its own source address 127.0.R.2, 127.0.R.3, … in run R (so no process needs
//! more than its 20,000 file descriptors, and no run waits for the ports of the last one).

use crate::client::Emitter;
use crate::cluster::fresh_database;
use crate::idle::{
    ClientProc, ClientSpec, PHASE_TIMEOUT, VERIFY_TIMEOUT, command_all, expect_all, idle_cpu,
    quit_all, settings,
};
use crate::median;
use crate::process::{Server, server_binary, spawn_server};
use clap::Args;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Args)]
pub(crate) struct ClusterIdleArgs {
    /// URL of a database of the PostgreSQL cluster whose role may create databases.
    #[arg(long)]
    database_url: String,
    /// Instances.
    #[arg(long, default_value_t = 5)]
    instances: usize,
    /// Connections held by each instance (at most 19,500: each instance and each client
    /// process has 20,000 file descriptors).
    #[arg(long, default_value_t = 19_000)]
    connections: usize,
    /// `events` subscriptions added on every connection once all are open.
    #[arg(long, default_value_t = 1)]
    subs: usize,
    /// Runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds over which the instances' CPU is measured while they hold the connections.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Handshakes in flight at a time per client process.
    #[arg(long, default_value_t = 50)]
    connect_concurrency: usize,
    /// The server binary to spawn; by default the one next to this executable.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<std::path::PathBuf>,
}

struct RunResult {
    /// Connections held by every instance at once.
    held: usize,
    connect_secs: f64,
    /// Mean KiB of RSS each connection added, per instance.
    per_conn: f64,
    /// Sum of the instances' RSS with every connection and subscription, KiB.
    rss_total: u64,
    /// Sum of the instances' CPU while idle, in cores.
    cpu: f64,
    /// Milliseconds until the event committed through the first instance reached every
    /// subscription on every instance.
    delivered_ms: f64,
}

pub(crate) async fn run(args: ClusterIdleArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=250).contains(&args.instances), "--instances: 1 to 250");
    anyhow::ensure!(
        (1..=19_500).contains(&args.connections),
        "--connections: 1 to 19,500 per instance"
    );
    let exe = server_binary(args.server_bin.as_ref())?;
    let settings: Vec<String> = settings(args.connections, args.subs)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "cluster-idle: {} instances × {} connections × {} subscriptions, {} runs; sockets \
         authenticated with the API token; settings per instance: store=postgres {}",
        args.instances,
        args.connections,
        args.subs,
        args.runs,
        settings.join(" ")
    );
    let mut results = Vec::new();
    for run in 1..=args.runs {
        let url = fresh_database(&args.database_url).await?;
        let mut all = vec!["store=postgres".to_string(), format!("database_url={url}")];
        all.extend(settings.iter().cloned());
        let servers = (0..args.instances)
            .map(|_| spawn_server(&exe, false, &all))
            .collect::<anyhow::Result<Vec<Server>>>()?;
        let r = one_run(&args, &servers, run).await?;
        println!(
            "run {run}: {} connections held at once ({} per instance, opened in {:.1} s), \
             +{:.2} KiB RSS each, {:.0} MiB RSS over all instances; instances' CPU while \
             idle {:.0}% of one core in total; one event committed through the first \
             instance reached all {} subscriptions in {:.0} ms",
            r.held,
            args.connections,
            r.connect_secs,
            r.per_conn,
            r.rss_total as f64 / 1024.0,
            r.cpu * 100.0,
            r.held * args.subs,
            r.delivered_ms,
        );
        results.push(r);
    }
    let m = |f: fn(&RunResult) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
    println!(
        "cluster-idle {} × {}, median of {} runs: {:.0} connections held, {:.2} KiB per \
         connection, {:.0} MiB RSS in total, {:.0}% CPU while idle, event to every \
         subscription in {:.0} ms",
        args.instances,
        args.connections,
        results.len(),
        m(|r| r.held as f64),
        m(|r| r.per_conn),
        m(|r| r.rss_total as f64) / 1024.0,
        m(|r| r.cpu) * 100.0,
        m(|r| r.delivered_ms),
    );
    Ok(())
}

async fn one_run(
    args: &ClusterIdleArgs,
    servers: &[Server],
    run: usize,
) -> anyhow::Result<RunResult> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0: Vec<u64> = servers
        .iter()
        .map(Server::rss_kib)
        .collect::<anyhow::Result<_>>()?;
    let exe = std::env::current_exe()?;
    let mut procs = Vec::new();
    let started = Instant::now();
    // One instance at a time: 2 cores opening every instance's connections at once can
    // starve a handshake past the server's `connection_init` timeout.
    for (i, server) in servers.iter().enumerate() {
        let spec = ClientSpec {
            addr: server.addr,
            init: &server.init,
            connections: args.connections,
            subs: args.subs,
            // Each run its own addresses: the previous run's closed sockets linger in
            // TIME_WAIT, holding its source ports.
            bind: Ipv4Addr::new(127, 0, run as u8, 2 + i as u8),
            concurrency: args.connect_concurrency,
        };
        let mut client = ClientProc::spawn(&exe, &spec)?;
        expect_all(
            std::slice::from_mut(&mut client),
            "connected",
            PHASE_TIMEOUT,
        )
        .await?;
        procs.push(client);
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1: Vec<u64> = servers
        .iter()
        .map(Server::rss_kib)
        .collect::<anyhow::Result<_>>()?;
    let added: i64 = rss1
        .iter()
        .zip(&rss0)
        .map(|(a, b)| *a as i64 - *b as i64)
        .sum();
    let held = args.connections * servers.len();
    command_all(&mut procs, "subscribe").await?;
    expect_all(&mut procs, "subscribed", PHASE_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_total = servers
        .iter()
        .map(Server::rss_kib)
        .sum::<anyhow::Result<u64>>()?;
    let cpus =
        futures::future::join_all(servers.iter().map(|s| idle_cpu(s, args.idle_seconds))).await;
    let cpu = cpus.into_iter().map(|c| c.unwrap_or(0.0)).sum();
    let started = Instant::now();
    Emitter::new(&servers[0]).emit("bench.idle").await?;
    expect_all(&mut procs, "received", VERIFY_TIMEOUT).await?;
    let delivered_ms = started.elapsed().as_secs_f64() * 1e3;
    quit_all(&mut procs).await;
    Ok(RunResult {
        held,
        connect_secs,
        per_conn: added as f64 / held as f64,
        rss_total,
        cpu,
        delivered_ms,
    })
}
