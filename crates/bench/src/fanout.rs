//! Fan-out: N WebSocket connections, each with one
//! `subscription { events(event_type: ["bench.fanout"]) { id occurred_at } }`; events are
//! committed one at a time with `EventEmit` over HTTP, and the next one only after every
//! subscriber received the previous one (plus a short pause). Latency is the subscriber's
//! wall-clock receive time minus the event's `occurred_at`, which the server's store writer
//! stamps when it commits the event (same machine, same clock, microseconds), and also minus
//! the time the `EventEmit` request was sent: the measure used side by side with the Node
//! reference server (`--node-peer`), whose timestamps have millisecond precision.

use crate::client::{Emitter, Group, histogram, ms, now_micros};
use crate::median;
use crate::process::{CpuTimes, Server, ServerArgs};
use clap::Args;
use std::time::{Duration, Instant};

const QUERY: &str = r#"subscription { events(event_type: ["bench.fanout"]) { id occurred_at } }"#;

#[derive(Args)]
pub(crate) struct FanoutArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Subscribers (one connection and one subscription each).
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Measured events per run (one warm-up event before them is not counted).
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Runs (each with a fresh server and fresh connections); medians are reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Connection handshakes in flight at a time while opening (the server's listen backlog
    /// is 128: more at once can overflow it and cost a 1 s SYN retransmit).
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Pause after every subscriber received an event, before committing the next, in ms.
    #[arg(long, default_value_t = 50)]
    pause_ms: u64,
}

/// Settings the spawned server needs for this scenario.
pub(crate) fn settings(subscribers: usize) -> Vec<(&'static str, String)> {
    // The defaults (20,000 connections, 10,000 per account) fit up to 10,000 subscribers.
    if subscribers <= 10_000 {
        return Vec::new();
    }
    vec![
        ("max_connections", (subscribers + 100).to_string()),
        (
            "max_connections_per_account",
            (subscribers + 100).to_string(),
        ),
    ]
}

struct RunResult {
    /// From the event's commit (`occurred_at`, stamped by the server) to receipt.
    p50: f64,
    p99: f64,
    /// From sending the `EventEmit` request to receipt: the same measure for any server,
    /// whatever the precision of its timestamps.
    request_p50: f64,
    request_p99: f64,
    max: f64,
    samples: u64,
    /// Median over events of the time from sending `EventEmit` to the last subscriber's
    /// receipt, in ms.
    complete_ms: f64,
    setup: Duration,
    /// CPU µs per delivered frame during the measured events (pauses included).
    server_cpu_per_frame_us: Option<CpuTimes>,
    client_cpu_per_frame_us: Option<CpuTimes>,
}

/// Medians over runs of one server's results.
#[derive(Default)]
struct Series {
    p50: Vec<f64>,
    p99: Vec<f64>,
    request_p99: Vec<f64>,
    complete: Vec<f64>,
    cpu: Vec<f64>,
}

impl Series {
    fn push(&mut self, r: &RunResult) {
        self.p50.push(r.p50);
        self.p99.push(r.p99);
        self.request_p99.push(r.request_p99);
        self.complete.push(r.complete_ms);
        if let Some(c) = r.server_cpu_per_frame_us {
            self.cpu.push(c.total());
        }
    }

    fn summary(&self, name: &str, subscribers: usize) -> String {
        format!(
            "{name}: fanout {subscribers} subscribers, median of {} runs: commit → received p50 \
             {:.2} ms, p99 {:.2} ms; request → received p99 {:.2} ms; request to last subscriber \
             {:.2} ms, server CPU per frame {:.1} µs",
            self.p99.len(),
            median(&self.p50),
            median(&self.p99),
            median(&self.request_p99),
            median(&self.complete),
            median(&self.cpu),
        )
    }
}

fn report(name: &str, run: usize, subscribers: usize, r: &RunResult) {
    let cpu = |v: Option<CpuTimes>| {
        v.map_or("?".into(), |v| {
            format!(
                "{:.1} (user {:.1} + kernel {:.1})",
                v.total(),
                v.user,
                v.sys
            )
        })
    };
    println!(
        "{name} run {run}: commit → received p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples); \
         request → received p50 {:.2} ms, p99 {:.2} ms; request to last subscriber (median of \
         events) {:.2} ms; CPU per frame: server {} µs, client {} µs; {} connections opened and \
         subscribed in {:.1} s",
        r.p50,
        r.p99,
        r.max,
        r.samples,
        r.request_p50,
        r.request_p99,
        r.complete_ms,
        cpu(r.server_cpu_per_frame_us),
        cpu(r.client_cpu_per_frame_us),
        subscribers,
        r.setup.as_secs_f64(),
    );
}

pub(crate) async fn run(args: FanoutArgs) -> anyhow::Result<()> {
    let settings = settings(args.subscribers);
    println!(
        "fanout: {} subscribers, {} events per run, {} runs; {}{}",
        args.subscribers,
        args.events,
        args.runs,
        args.server.describe(&settings),
        if args.server.node_peer.is_some() {
            "; each run repeated against the Node reference server"
        } else {
            ""
        }
    );
    let (mut ours, mut node) = (Series::default(), Series::default());
    for run in 1..=args.runs {
        let server = args.server.start(&settings).await?;
        let r = one_run(&args, server).await?;
        report("infrastream", run, args.subscribers, &r);
        ours.push(&r);
        if args.server.node_peer.is_some() {
            let server = args.server.start_node_peer().await?;
            let r = one_run(&args, server).await?;
            report("node-reference", run, args.subscribers, &r);
            node.push(&r);
        }
    }
    println!("{}", ours.summary("infrastream", args.subscribers));
    if args.server.node_peer.is_some() {
        println!("{}", node.summary("node-reference", args.subscribers));
        let ratio = |a: &[f64], b: &[f64]| median(a) / median(b).max(f64::MIN_POSITIVE);
        println!(
            "ratio infrastream / node-reference: request → received p99 {:.3}, server CPU per frame {:.3}",
            ratio(&ours.request_p99, &node.request_p99),
            ratio(&ours.cpu, &node.cpu),
        );
    }
    Ok(())
}

async fn one_run(args: &FanoutArgs, server: Server) -> anyhow::Result<RunResult> {
    let n = args.subscribers as u64;
    let opened = Group::open(
        &server,
        args.subscribers,
        QUERY,
        args.connect_concurrency,
        args.events + 1,
    );
    let group = opened.await.map_err(|e| server.with_log_tail(e))?;
    let emitter = Emitter::new(&server);
    // Warm-up: one event every subscriber must receive (not measured).
    emitter.emit("bench.fanout").await?;
    group.wait_frames(n, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server_cpu = server.cpu_times();
    let client_cpu = CpuTimes::of("/proc/self/stat");
    let mut completes = Vec::with_capacity(args.events);
    let mut sent_at = Vec::with_capacity(args.events);
    for k in 1..=args.events as u64 {
        let sent = Instant::now();
        sent_at.push(now_micros());
        emitter.emit("bench.fanout").await?;
        group
            .wait_frames(n * (k + 1), Duration::from_secs(60))
            .await?;
        completes.push(sent.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
    }
    let frames = (n * args.events as u64) as f64;
    let per_frame = |before: Option<CpuTimes>, after: Option<CpuTimes>| {
        let used = after?.since(before?);
        Some(CpuTimes {
            user: used.user * 1e6 / frames,
            sys: used.sys * 1e6 / frames,
        })
    };
    let server_cpu = per_frame(server_cpu, server.cpu_times());
    let client_cpu = per_frame(client_cpu, CpuTimes::of("/proc/self/stat"));
    let setup = group.setup;
    let latencies = group.finish().await?;
    drop(server);
    let (mut h, mut from_request) = (histogram(), histogram());
    for sub in &latencies {
        anyhow::ensure!(
            sub.latencies.len() == args.events + 1,
            "a subscriber received {} events instead of {}",
            sub.latencies.len(),
            args.events + 1
        );
        for &l in &sub.latencies[1..] {
            h.saturating_record(u64::from(l.max(1)));
        }
        for (at, sent) in sub.at[1..].iter().zip(&sent_at) {
            from_request.saturating_record((at - sent).max(1) as u64);
        }
    }
    Ok(RunResult {
        p50: ms(&h, 0.50),
        p99: ms(&h, 0.99),
        request_p50: ms(&from_request, 0.50),
        request_p99: ms(&from_request, 0.99),
        max: h.max() as f64 / 1e3,
        samples: h.len(),
        complete_ms: median(&completes),
        setup,
        server_cpu_per_frame_us: server_cpu,
        client_cpu_per_frame_us: client_cpu,
    })
}
