//! Polled `query` subscriptions at scale: N connections, each with one identical
//! `subscription { query(name: "bench_query", interval: I) }`. Over a window of S seconds the
//! scenario counts the frames received against those due (one per subscriber per tick), how
//! many times the saved query ran (`infrastream_stored_query_executions_total`: multiplexing
//! makes it one per tick), how long each tick took to reach every subscriber (first to last
//! frame of the tick), and the server's CPU.

use crate::client::{connect, now_micros, subscribe};
use crate::median;
use crate::process::{Server, ServerArgs};
use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

const SAVED: &str = "bench_query";

#[derive(Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Subscribers (one connection and one `query` subscription each).
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// `interval` of the subscriptions, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Seconds measured per run (after one warm-up interval).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Runs (each with a fresh server and fresh connections); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Connection handshakes in flight at a time while opening.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
}

struct RunResult {
    due: u64,
    received: u64,
    executions: u64,
    ticks: usize,
    spread_p50_ms: f64,
    spread_max_ms: f64,
    cpu_percent: Option<f64>,
}

pub(crate) async fn run(args: QueryArgs) -> anyhow::Result<()> {
    args.server.without_node_peer("query")?;
    let settings = crate::fanout::settings(args.subscribers);
    println!(
        "query: {} identical `query` subscriptions, interval {} ms, {} s measured per run, {} runs; {}",
        args.subscribers,
        args.interval_ms,
        args.seconds,
        args.runs,
        args.server.describe(&settings)
    );
    let (mut on_time, mut cpu, mut per_tick) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let server = args.server.start(&settings).await?;
        let r = one_run(&args, &server).await?;
        let share = r.received as f64 / r.due.max(1) as f64 * 100.0;
        let exec_per_tick = r.executions as f64 / r.ticks.max(1) as f64;
        println!(
            "run {run}: {} of {} frames due arrived in the window ({share:.1} %); {} stored-query \
             executions over {} ticks ({exec_per_tick:.2} per tick); a tick reached every \
             subscriber in p50 {:.1} ms, max {:.1} ms; server CPU {}",
            r.received,
            r.due,
            r.executions,
            r.ticks,
            r.spread_p50_ms,
            r.spread_max_ms,
            r.cpu_percent
                .map_or("?".into(), |c| format!("{c:.1} % of one core")),
        );
        on_time.push(share);
        per_tick.push(exec_per_tick);
        if let Some(c) = r.cpu_percent {
            cpu.push(c);
        }
    }
    println!(
        "query {} subscribers, median of {} runs: {:.1} % of due frames received, {:.2} executions per tick, server CPU {:.1} % of one core",
        args.subscribers,
        args.runs,
        median(&on_time),
        median(&per_tick),
        median(&cpu)
    );
    Ok(())
}

async fn executions(server: &Server) -> anyhow::Result<u64> {
    let body = reqwest::get(format!("http://{}/metrics", server.addr))
        .await?
        .text()
        .await?;
    body.lines()
        .find_map(|l| l.strip_prefix("infrastream_stored_query_executions_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no infrastream_stored_query_executions_total in /metrics")
}

async fn one_run(args: &QueryArgs, server: &Server) -> anyhow::Result<RunResult> {
    let create = serde_json::json!({"query": format!(
        "mutation {{ CoreGraphQLQueryCreate(data: {{name: {{value: \"{SAVED}\"}}, query: {{value: \"query {{ Branch {{ name }} }}\"}}}}) {{ ok }} }}"
    )});
    let answer: serde_json::Value = reqwest::Client::new()
        .post(server.http_url())
        .header("x-infrahub-key", &server.token)
        .header("content-type", "application/json")
        .body(create.to_string())
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(
        answer.get("errors").is_none(),
        "saving the query failed: {answer}"
    );
    let document = format!(
        "subscription {{ query(name: \"{SAVED}\", interval: {}) }}",
        args.interval_ms
    );
    let (stop, stopped) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(args.subscribers);
    for _ in 0..args.subscribers {
        let (gate, mut stopped, ready) = (gate.clone(), stopped.clone(), ready.clone());
        let (addr, init, document) = (server.addr, server.init.clone(), document.clone());
        tasks.push(tokio::spawn(async move {
            let mut ws = {
                let _permit = gate.acquire().await?;
                let mut ws = connect(addr, &init, None).await?;
                subscribe(&mut ws, "q", &document).await?;
                ws
            };
            // The first result comes at once: it proves the subscription is placed.
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str().contains(r#""type":"next""#) => break,
                    Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                    other => anyhow::bail!("no first result: {other:?}"),
                }
            }
            ready.fetch_add(1, Ordering::SeqCst);
            let mut received = Vec::new();
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) if t.as_str().contains(r#""type":"next""#) => {
                            received.push(now_micros());
                        }
                        Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                        other => anyhow::bail!("subscriber ended: {other:?}"),
                    },
                    _ = stopped.changed() => break,
                }
            }
            anyhow::Ok(received)
        }));
    }
    // Wait until every subscription is placed; a subscriber that failed ends the run.
    while ready.load(Ordering::SeqCst) < args.subscribers {
        if let Some(t) = tasks.iter_mut().find(|t| t.is_finished()) {
            t.await??;
            anyhow::bail!("a subscriber ended before the measurement");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    let window = Duration::from_secs(args.seconds);
    let cpu_before = server.cpu_seconds();
    let exec_before = executions(server).await?;
    let from = now_micros();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let to = now_micros();
    let cpu = server
        .cpu_seconds()
        .zip(cpu_before)
        .map(|(a, b)| (a - b) / started.elapsed().as_secs_f64() * 100.0);
    let executions = executions(server).await? - exec_before;
    // Frames still on their way at the end of the window belong to the next tick.
    tokio::time::sleep(Duration::from_millis(args.interval_ms / 2)).await;
    let _ = stop.send(true);
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??.into_iter().filter(|t| (from..to).contains(t)));
    }
    times.sort_unstable();
    // Ticks: frames closer than half an interval belong to the same tick.
    let gap = (args.interval_ms * 1000 / 2) as i64;
    let mut spreads = Vec::new();
    let mut start = 0;
    for i in 1..=times.len() {
        if i == times.len() || times[i] - times[i - 1] > gap {
            spreads.push((times[i - 1] - times[start]) as f64 / 1e3);
            start = i;
        }
    }
    let ticks = (window.as_millis() as u64 / args.interval_ms) as usize;
    let max = spreads.iter().copied().fold(0.0, f64::max);
    Ok(RunResult {
        due: (ticks * args.subscribers) as u64,
        received: times.len() as u64,
        executions,
        ticks,
        spread_p50_ms: median(&spreads),
        spread_max_ms: max,
        cpu_percent: cpu,
    })
}
