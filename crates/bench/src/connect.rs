//! Connection rate: N clients connect at once (C handshakes in flight), each doing the TCP
//! handshake, the WebSocket upgrade, `connection_init` → `connection_ack`, one `events`
//! subscription and a ping/pong barrier that proves the subscription is placed. Reported: the
//! rate of fully set-up connections per second, and the listen queue overflows and SYN drops
//! the kernel counted meanwhile (`ListenOverflows`, `ListenDrops` of `/proc/net/netstat`),
//! which must stay 0: a dropped SYN costs the client a 1 s retransmit.

use crate::client::{barrier, connect, subscribe};
use crate::median;
use crate::process::ServerArgs;
use clap::Args;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

const QUERY: &str = r#"subscription { events(event_type: ["bench.connect"]) { id } }"#;

#[derive(Args)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Connections opened per run (spread over source addresses 127.0.1.x, 1,000 each, a
    /// fresh range per run so that sockets in TIME_WAIT from the last run are not in the way).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Connection set-ups in flight at a time.
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Runs (each with a fresh server); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// `ListenOverflows` + `ListenDrops` from `/proc/net/netstat`.
fn listen_drops() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |n: &str| -> Option<u64> {
        let i = names.iter().position(|x| *x == n)?;
        values.get(i)?.parse().ok()
    };
    Some(get("ListenOverflows")? + get("ListenDrops")?)
}

pub(crate) async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    args.server.without_node_peer("connect")?;
    let settings = crate::fanout::settings(args.connections);
    println!(
        "connect: {} connections per run, {} set-ups in flight, {} runs; {}",
        args.connections,
        args.concurrency,
        args.runs,
        args.server.describe(&settings)
    );
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        let server = args.server.start(&settings).await?;
        let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
        let drops_before = listen_drops();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(args.connections);
        for i in 0..args.connections {
            let gate = gate.clone();
            let (addr, init) = (server.addr, server.init.clone());
            let block = (run - 1) * args.connections.div_ceil(1_000) + i / 1_000;
            let source = IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                1 + (block / 250) as u8,
                1 + (block % 250) as u8,
            ));
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await?;
                let mut ws = connect(addr, &init, Some(source)).await?;
                subscribe(&mut ws, "1", QUERY).await?;
                barrier(&mut ws).await?;
                anyhow::Ok(ws)
            }));
        }
        let mut sockets = Vec::with_capacity(args.connections);
        for t in tasks {
            sockets.push(t.await??);
        }
        let took = started.elapsed().as_secs_f64();
        let drops = listen_drops()
            .zip(drops_before)
            .map(|(a, b)| a.saturating_sub(b));
        let rate = args.connections as f64 / took;
        println!(
            "run {run}: {} connections connected, initialised and subscribed in {took:.2} s: \
             {rate:.0} per second; listen overflows + SYN drops: {}",
            args.connections,
            drops.map_or("?".into(), |d| d.to_string())
        );
        rates.push(rate);
        drop(sockets);
    }
    println!(
        "connect {} connections, median of {} runs: {:.0} per second",
        args.connections,
        args.runs,
        median(&rates)
    );
    Ok(())
}
