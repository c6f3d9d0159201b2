//! Login flood: N connections send wrong-password `POST /api/auth/login` back to back for T
//! seconds (from 127.0.0.1, or spread over `--sources` addresses 127.0.5.x, 127.0.6.x, … to
//! stand for a distributed flood that per-address throttling does not stop), next to S
//! `events` subscribers authenticated with the API token. Meanwhile the account's owner, who
//! logged in from 127.0.0.2 once before the flood, logs in there with the right password every
//! `--owner-interval-ms`, `/health` is probed every 100 ms, and an event is committed every
//! `--event-interval-ms`.
//!
//! Reported per run: the server's RSS idle and peak (`VmHWM`), the flood's answers (401:
//! password checked; 429: refused, backing off or hashing pool full) with the 429 latency
//! p50/p99, the owner's logins (all must succeed) with their latency, `/health` p99, and the
//! commit → delivered p99 of the events to the subscribers during the flood.

use crate::client::{Emitter, Group, histogram, ms};
use crate::median;
use crate::process::{CpuTimes, Server, ServerArgs};
use anyhow::{Context, bail};
use clap::Args;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const QUERY: &str =
    r#"subscription { events(event_type: ["bench.login_flood"]) { id occurred_at } }"#;
const OWNER_PASSWORD: &str = "bench-owner-password-1";
/// Longest wait for any single request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Args)]
pub(crate) struct LoginFloodArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Flooding connections, each sending wrong-password logins back to back.
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Seconds of flood per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Source addresses of the flood: 1 = all from 127.0.0.1; more = connection i comes from
    /// the (i mod N)-th address of 127.0.5.1, 127.0.5.2, … (250 per /24).
    #[arg(long, default_value_t = 1)]
    sources: usize,
    /// `events` subscribers (API token), one connection each.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Milliseconds between the owner's logins from 127.0.0.2 during the flood.
    #[arg(long, default_value_t = 500)]
    owner_interval_ms: u64,
    /// Milliseconds between events committed during the flood.
    #[arg(long, default_value_t = 200)]
    event_interval_ms: u64,
    /// Runs (each with a fresh server); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// What the flood's connections saw.
struct Flood {
    unauthorized: u64,
    refused: u64,
    other: u64,
    /// Latencies of the 429s, µs.
    refusals: hdrhistogram::Histogram<u64>,
    /// Latencies of the 401s, µs.
    checked: hdrhistogram::Histogram<u64>,
    /// 429s without a whole-seconds `Retry-After`.
    without_retry_after: u64,
}

struct RunResult {
    flood: Flood,
    idle_kib: u64,
    peak_kib: u64,
    owner_ok: usize,
    owner_failed: Vec<String>,
    owner: hdrhistogram::Histogram<u64>,
    health: hdrhistogram::Histogram<u64>,
    events: u64,
    delivery_p50: f64,
    delivery_p99: f64,
    delivered: u64,
    server_cpu: Option<f64>,
}

pub(crate) async fn run(args: LoginFloodArgs) -> anyhow::Result<()> {
    args.server.without_node_peer("login-flood")?;
    if args.connections == 0 || args.seconds == 0 || !(1..=10_000).contains(&args.sources) {
        bail!("--connections and --seconds must be positive, --sources between 1 and 10000");
    }
    println!(
        "login-flood: {} connections of wrong-password logins from {} for {} s, {} subscribers, \
         owner login every {} ms from 127.0.0.2, an event every {} ms, {} runs; {}",
        args.connections,
        if args.sources == 1 {
            "127.0.0.1".to_string()
        } else {
            format!("{} addresses (127.0.5.1 …)", args.sources)
        },
        args.seconds,
        args.subscribers,
        args.owner_interval_ms,
        args.event_interval_ms,
        args.runs,
        args.server.describe(&[])
    );
    let mut peaks = Vec::new();
    let (mut refusal_p99s, mut owner_p99s, mut health_p99s, mut delivery_p99s) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let r = one_run(&args, run).await?;
        let f = &r.flood;
        println!(
            "run {run}: server RSS idle {:.1} MiB, peak {:.1} MiB (+{:.1} MiB); flood: {} × 401 \
             (p50 {:.1} ms), {} × 429 (p50 {:.2} ms, p99 {:.2} ms, {} without Retry-After), {} \
             other; owner logins from 127.0.0.2: {} ok, {} failed (p50 {:.1} ms, p99 {:.1} ms, \
             max {:.1} ms); /health p99 {:.1} ms; {} events delivered {} times of {} \
             (commit → delivered p50 {:.1} ms, p99 {:.1} ms); server CPU during the flood {}",
            mib(r.idle_kib),
            mib(r.peak_kib),
            mib(r.peak_kib.saturating_sub(r.idle_kib)),
            f.unauthorized,
            ms(&f.checked, 0.5),
            f.refused,
            ms(&f.refusals, 0.5),
            ms(&f.refusals, 0.99),
            f.without_retry_after,
            f.other,
            r.owner_ok,
            r.owner_failed.len(),
            ms(&r.owner, 0.5),
            ms(&r.owner, 0.99),
            r.owner.max() as f64 / 1e3,
            ms(&r.health, 0.99),
            r.events,
            r.delivered,
            r.events * args.subscribers as u64,
            r.delivery_p50,
            r.delivery_p99,
            r.server_cpu
                .map_or("?".into(), |c| format!("{:.0}% of one core", c * 100.0)),
        );
        if let Some(first) = r.owner_failed.first() {
            println!("  first failed owner login: {first}");
        }
        peaks.push(mib(r.peak_kib));
        refusal_p99s.push(ms(&f.refusals, 0.99));
        owner_p99s.push(ms(&r.owner, 0.99));
        health_p99s.push(ms(&r.health, 0.99));
        delivery_p99s.push(r.delivery_p99);
    }
    println!(
        "login-flood {} connections × {} s, median of {} runs: peak RSS {:.1} MiB; 429 p99 \
         {:.2} ms; owner login p99 {:.1} ms; /health p99 {:.1} ms; event delivery p99 {:.1} ms",
        args.connections,
        args.seconds,
        args.runs,
        median(&peaks),
        median(&refusal_p99s),
        median(&owner_p99s),
        median(&health_p99s),
        median(&delivery_p99s),
    );
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The source address of flooding connection `i`.
fn source(i: usize, sources: usize) -> IpAddr {
    if sources == 1 {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    }
    let k = i % sources;
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        5 + (k / 250) as u8,
        1 + (k % 250) as u8,
    ))
}

fn client_from(ip: IpAddr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(ip)
        .pool_max_idle_per_host(1)
        .timeout(REQUEST_TIMEOUT)
        .build()?)
}

/// `POST /api/auth/login`; the status and `Retry-After` (whole seconds), if any.
async fn login(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<(u16, Option<u64>)> {
    let body = serde_json::json!({"username": user, "password": password});
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    resp.bytes().await?;
    Ok((status, retry_after))
}

/// Creates a read-only account named `name` with [`OWNER_PASSWORD`].
async fn create_owner(server: &Server, name: &str) -> anyhow::Result<()> {
    let query = format!(
        r#"mutation {{ CoreAccountCreate(data: {{name: {{value: "{name}"}}, password: {{value: "{OWNER_PASSWORD}"}}, role: {{value: "read-only"}}}}) {{ ok }} }}"#
    );
    let resp = reqwest::Client::new()
        .post(server.http_url())
        .header("content-type", "application/json")
        .header("x-infrahub-key", &server.token)
        .body(serde_json::json!({ "query": query }).to_string())
        .send()
        .await?;
    let text = resp.text().await?;
    if !text.contains(r#""ok":true"#) {
        bail!("creating the account {name} failed: {text}");
    }
    Ok(())
}

/// One flooding connection: wrong-password logins for `user` until `until`.
async fn flood_connection(
    http: reqwest::Client,
    url: Arc<str>,
    user: Arc<str>,
    until: Instant,
) -> anyhow::Result<Flood> {
    let mut f = Flood {
        unauthorized: 0,
        refused: 0,
        other: 0,
        refusals: histogram(),
        checked: histogram(),
        without_retry_after: 0,
    };
    while Instant::now() < until {
        let started = Instant::now();
        let (status, retry_after) = login(&http, &url, &user, "not-the-password").await?;
        let us = started.elapsed().as_micros().max(1) as u64;
        match status {
            401 => {
                f.unauthorized += 1;
                f.checked.saturating_record(us);
            }
            429 => {
                f.refused += 1;
                f.refusals.saturating_record(us);
                if retry_after.is_none_or(|s| s < 1) {
                    f.without_retry_after += 1;
                }
            }
            _ => f.other += 1,
        }
    }
    Ok(f)
}

async fn one_run(args: &LoginFloodArgs, run: usize) -> anyhow::Result<RunResult> {
    let server = args.server.start(&[]).await?;
    let owner: Arc<str> = format!("bench-owner-{}-{run}", std::process::id()).into();
    create_owner(&server, &owner)
        .await
        .map_err(|e| server.with_log_tail(e))?;
    let login_url: Arc<str> = format!("http://{}/api/auth/login", server.addr).into();
    // The owner has logged in from 127.0.0.2 before the flood, as users do from where they
    // work: the server trusts that address.
    let owner_address = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    match login(
        &client_from(owner_address)?,
        &login_url,
        &owner,
        OWNER_PASSWORD,
    )
    .await?
    {
        (200, _) => {}
        (status, _) => bail!("the owner's login before the flood answered {status}"),
    }
    let seconds = Duration::from_secs(args.seconds);
    let events_expected = (args.seconds * 1000 / args.event_interval_ms.max(1)) as usize + 1;
    let group = Group::open(&server, args.subscribers, QUERY, 100, events_expected)
        .await
        .map_err(|e| server.with_log_tail(e))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = server.rss_kib()?;
    let cpu_before = server.cpu_times();

    let until = Instant::now() + seconds;
    let mut flooders = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let http = client_from(source(i, args.sources))?;
        flooders.push(tokio::spawn(flood_connection(
            http,
            login_url.clone(),
            owner.clone(),
            until,
        )));
    }
    let owner_logins = {
        let (url, owner) = (login_url.clone(), owner.clone());
        let http = client_from(owner_address)?;
        let period = Duration::from_millis(args.owner_interval_ms.max(1));
        tokio::spawn(async move {
            let mut latencies = histogram();
            let (mut ok, mut failed) = (0, Vec::new());
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            while Instant::now() + period / 2 < until {
                tick.tick().await;
                let started = Instant::now();
                match login(&http, &url, &owner, OWNER_PASSWORD).await {
                    Ok((200, _)) => ok += 1,
                    Ok((status, _)) => failed.push(format!("status {status}")),
                    Err(e) => failed.push(format!("{e:#}")),
                }
                latencies.saturating_record(started.elapsed().as_micros().max(1) as u64);
            }
            (ok, failed, latencies)
        })
    };
    let health = {
        let url = format!("http://{}/health", server.addr);
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?;
            let mut latencies = histogram();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while Instant::now() < until {
                tick.tick().await;
                let started = Instant::now();
                let status = http.get(&url).send().await?.status();
                if !status.is_success() {
                    bail!("/health answered {status} during the flood");
                }
                latencies.saturating_record(started.elapsed().as_micros().max(1) as u64);
            }
            anyhow::Ok(latencies)
        })
    };
    let emitter = Emitter::new(&server);
    let mut events = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(args.event_interval_ms.max(1)));
    while Instant::now() < until {
        tick.tick().await;
        emitter.emit("bench.login_flood").await?;
        events += 1;
    }

    let mut flood = Flood {
        unauthorized: 0,
        refused: 0,
        other: 0,
        refusals: histogram(),
        checked: histogram(),
        without_retry_after: 0,
    };
    for f in flooders {
        let f = f.await?.context("a flooding connection failed")?;
        flood.unauthorized += f.unauthorized;
        flood.refused += f.refused;
        flood.other += f.other;
        flood.without_retry_after += f.without_retry_after;
        flood.refusals.add(&f.refusals)?;
        flood.checked.add(&f.checked)?;
    }
    let cpu_after = server.cpu_times();
    let peak_kib = server.peak_rss_kib()?;
    let (owner_ok, owner_failed, owner) = owner_logins.await?;
    let health = health.await??;
    let expected = events * args.subscribers as u64;
    let arrived = group.wait_frames(expected, Duration::from_secs(60)).await;
    let delivered = group
        .shared
        .frames
        .load(std::sync::atomic::Ordering::SeqCst);
    let received = group.finish_partial().await?;
    arrived.map_err(|e| server.with_log_tail(e))?;
    let mut delivery = histogram();
    for r in &received {
        for &l in &r.latencies {
            delivery.saturating_record(u64::from(l.max(1)));
        }
    }
    let flood_secs = seconds.as_secs_f64();
    Ok(RunResult {
        flood,
        idle_kib,
        peak_kib,
        owner_ok,
        owner_failed,
        owner,
        health,
        events,
        delivery_p50: ms(&delivery, 0.5),
        delivery_p99: ms(&delivery, 0.99),
        delivered,
        server_cpu: cpu_before
            .zip(cpu_after)
            .map(|(b, a): (CpuTimes, CpuTimes)| a.since(b).total() / flood_secs),
    })
}
