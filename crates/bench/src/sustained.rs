//! Sustained delivery: N WebSocket connections with one `events` subscription each, and
//! `rate` events per second committed with `EventEmit` for S seconds on a fixed schedule
//! (each emission is its own request, so a slow answer does not delay the schedule). Reports
//! the event frames received per second during those S seconds, whether every frame arrived
//! in the end, and the p99 latency of each second's events, to show whether delivery keeps
//! up (flat) or falls behind (growing lag).

use crate::client::{Emitter, Group, histogram, ms};
use crate::median;
use crate::process::{CpuTimes, ServerArgs};
use clap::Args;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const QUERY: &str = r#"subscription { events(event_type: ["bench.fanout"]) { id occurred_at } }"#;

#[derive(Args)]
pub(crate) struct SustainedArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Subscribers (one connection and one subscription each).
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Events committed per second.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Seconds of emission per run.
    #[arg(long, default_value_t = 30)]
    seconds: u32,
    /// Runs (each with a fresh server and fresh connections); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Connection handshakes in flight at a time while opening (the server's listen backlog
    /// is 128: more at once can overflow it and cost a 1 s SYN retransmit).
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
}

/// Longest wait, after the emission window, for the last frames.
const DRAIN_SECS: u64 = 300;

struct RunResult {
    frames_per_sec: f64,
    /// Frames received in each second of the window.
    per_second_frames: Vec<u64>,
    /// Time after the window until every frame had arrived, or what was missing.
    drain: Result<Duration, String>,
    p50: f64,
    p99: f64,
    max: f64,
    per_second_p99: Vec<f64>,
    /// CPU used during the window, in cores: the server's and this (client) process's.
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
}

pub(crate) async fn run(args: SustainedArgs) -> anyhow::Result<()> {
    args.server.without_node_peer("sustained")?;
    let settings = crate::fanout::settings(args.subscribers);
    println!(
        "sustained: {} subscribers, {} events/s for {} s ({} frames/s offered), {} runs; {}",
        args.subscribers,
        args.rate,
        args.seconds,
        args.subscribers as u64 * u64::from(args.rate),
        args.runs,
        args.server.describe(&settings)
    );
    let (mut rates, mut growths) = (Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let r = one_run(&args, &settings).await?;
        let series: Vec<String> = r.per_second_p99.iter().map(|v| format!("{v:.1}")).collect();
        let third = (r.per_second_p99.len() / 3).max(1);
        let first = median(&r.per_second_p99[..third]);
        let last = median(&r.per_second_p99[r.per_second_p99.len() - third..]);
        println!(
            "run {run}: {:.0} frames/s delivered during the {} s; {}; latency p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms; p99 of the first / last third of the seconds \
             {first:.1} / {last:.1} ms; CPU during the window: server {}, bench client {}",
            r.frames_per_sec,
            args.seconds,
            match &r.drain {
                Ok(d) => format!(
                    "all frames received {:.0} ms after the window",
                    d.as_secs_f64() * 1e3
                ),
                Err(e) => format!("NOT ALL FRAMES RECEIVED: {e}"),
            },
            r.p50,
            r.p99,
            r.max,
            cores(r.server_cpu),
            cores(r.client_cpu),
        );
        println!("  p99 per second (ms): {}", series.join(" "));
        let frames: Vec<String> = r.per_second_frames.iter().map(u64::to_string).collect();
        println!("  frames received per second: {}", frames.join(" "));
        rates.push(r.frames_per_sec);
        growths.push(last - first);
    }
    println!(
        "sustained {} subscribers at {} events/s, median of {} runs: {:.0} frames/s; p99 growth \
         from the first to the last third of the seconds {:.1} ms",
        args.subscribers,
        args.rate,
        rates.len(),
        median(&rates),
        median(&growths)
    );
    Ok(())
}

/// "N% of one core".
fn cores(c: Option<f64>) -> String {
    c.map_or("?".into(), |c| format!("{:.0}% of one core", c * 100.0))
}

async fn one_run(args: &SustainedArgs, settings: &[(&str, String)]) -> anyhow::Result<RunResult> {
    let server = args.server.start(settings).await?;
    let n = args.subscribers as u64;
    let events = u64::from(args.rate) * u64::from(args.seconds);
    let opened = Group::open(
        &server,
        args.subscribers,
        QUERY,
        args.connect_concurrency,
        events as usize + 1,
    );
    let group = opened.await.map_err(|e| server.with_log_tail(e))?;
    let emitter = Emitter::new(&server);
    emitter.emit("bench.fanout").await?;
    group.wait_frames(n, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let cpu_before = server.cpu_seconds();
    let client_before = CpuTimes::of("/proc/self/stat");
    let frames_before = group.shared.frames.load(Ordering::SeqCst);
    let start = tokio::time::Instant::now();
    let seconds = u64::from(args.seconds);
    // The emitter: one request per tick, each in its own task.
    let emitting = {
        let emitter = emitter.clone();
        let period = Duration::from_secs(1) / args.rate.max(1);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(start, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sends = Vec::with_capacity(events as usize);
            for _ in 0..events {
                ticker.tick().await;
                let emitter = emitter.clone();
                sends.push(tokio::spawn(
                    async move { emitter.emit("bench.fanout").await },
                ));
            }
            for s in sends {
                s.await??;
            }
            anyhow::Ok(())
        })
    };
    // Frames received in each second of the window.
    let mut per_second_frames = Vec::with_capacity(seconds as usize);
    let mut last = frames_before;
    for s in 1..=seconds {
        tokio::time::sleep_until(start + Duration::from_secs(s)).await;
        let now = group.shared.frames.load(Ordering::SeqCst);
        per_second_frames.push(now - last);
        last = now;
    }
    let frames_in_window = last - frames_before;
    let cpu_after = server.cpu_seconds();
    let client_after = CpuTimes::of("/proc/self/stat");
    let window_end = Instant::now();
    emitting.await??;
    let expected = n * (events + 1);
    let drained = group
        .wait_frames(expected, Duration::from_secs(DRAIN_SECS))
        .await;
    let drain = match drained {
        Ok(()) => Ok(window_end.elapsed()),
        Err(e) => Err(format!(
            "{} of {} frames after {DRAIN_SECS} s ({e:#})",
            group.shared.frames.load(Ordering::SeqCst) - n,
            n * events
        )),
    };
    let latencies = group.finish_partial().await?;
    drop(server);

    let mut all = histogram();
    let mut per_second: Vec<_> = (0..args.seconds).map(|_| histogram()).collect();
    for sub in &latencies {
        for (i, &l) in sub.latencies.iter().skip(1).enumerate() {
            let l = u64::from(l.max(1));
            all.saturating_record(l);
            per_second[i / args.rate as usize].saturating_record(l);
        }
    }
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some((a - b) / f64::from(args.seconds)),
        _ => None,
    };
    let client_cpu = match (client_before, client_after) {
        (Some(b), Some(a)) => Some(a.since(b).total() / f64::from(args.seconds)),
        _ => None,
    };
    Ok(RunResult {
        frames_per_sec: frames_in_window as f64 / f64::from(args.seconds),
        drain,
        p50: ms(&all, 0.5),
        p99: ms(&all, 0.99),
        max: all.max() as f64 / 1e3,
        per_second_p99: per_second.iter().map(|h| ms(h, 0.99)).collect(),
        per_second_frames,
        server_cpu,
        client_cpu,
    })
}
