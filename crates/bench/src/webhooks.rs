//! Webhooks: one standard webhook for every event, pointing at a receiver in this process
//! (loopback, answering 200 at once); `--events` custom events are committed by 32 concurrent
//! clients, as fast as they can or at `--rate` events per second. Reported: deliveries per second (events delivered ÷ time from the first commit to
//! the last delivery) and the delay from an event's commit (`occurred_at` in the body, the
//! server's clock, which is this machine's) to the receiver reading its request, p50 and p99.
//! The server runs in this process (fsync on by default), a fresh one per run.

use crate::{Target, median, percentile};
use clap::Args;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

#[derive(Args)]
pub(crate) struct WebhooksArgs {
    /// Events committed (each delivered once).
    #[arg(long, default_value_t = 5000)]
    events: usize,
    /// Runs (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Events per second committed (0: as fast as 32 clients can). At a rate the receiver
    /// keeps up with, the delay is the delivery path's own; above it, it includes the queue.
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// fsync on commit.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fsync: bool,
}

/// A 32-byte key, as Standard Webhooks secrets are (`whsec_` + base64).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver saw: when, and the body.
type Received = (SystemTime, Vec<u8>);

/// Starts the receiver; its URL, and the stream of what it receives.
async fn receiver() -> anyhow::Result<(String, mpsc::UnboundedReceiver<Received>)> {
    let (tx, rx) = mpsc::unbounded_channel::<Received>();
    let tx = Arc::new(tx);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((SystemTime::now(), body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

async fn graphql(
    http: &reqwest::Client,
    target: &Target,
    query: &str,
    vars: Value,
) -> anyhow::Result<Value> {
    let body: Value = http
        .post(format!("{}/graphql", target.url))
        .header("x-infrahub-key", &target.token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(body.get("errors").is_none(), "{query}: {body}");
    Ok(body["data"].clone())
}

/// One run: (deliveries per second, commit → delivery delays in microseconds, sorted).
async fn one_run(args: &WebhooksArgs) -> anyhow::Result<(f64, Vec<u32>)> {
    let target = Target::local(
        args.fsync,
        &[("webhooks.allow_private_destinations", "true")],
    )
    .await?;
    let http = reqwest::Client::new();
    let (url, mut received) = receiver().await?;
    graphql(
        &http,
        &target,
        "mutation($d: CoreStandardWebhookCreateInput!) { CoreStandardWebhookCreate(data: $d) { ok } }",
        json!({"d": {
            "name": {"value": "bench"},
            "url": {"value": url},
            "shared_key": {"value": SECRET},
            "event_type": {"value": "bench.webhook"},
            "branch_scope": {"value": "all_branches"},
        }}),
    )
    .await?;
    let started = Instant::now();
    let emit = "mutation { EventEmit(data: {event: \"bench.webhook\"}) { ok } }";
    let per_client = args.events.div_ceil(32);
    let mut clients = Vec::new();
    for c in 0..32 {
        let n = per_client.min(args.events.saturating_sub(c * per_client));
        let (http, url, token) = (http.clone(), target.url.clone(), target.token.clone());
        // Each of the 32 clients commits one event every 32 / rate seconds, staggered.
        let every = (args.rate > 0).then(|| Duration::from_secs_f64(32.0 / f64::from(args.rate)));
        let offset = every.map(|e| e.mul_f64(c as f64 / 32.0));
        clients.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now() + offset.unwrap_or_default();
            for i in 0..n {
                if let Some(every) = every {
                    tokio::time::sleep_until(start + every * i as u32).await;
                }
                let r = http
                    .post(format!("{url}/graphql"))
                    .header("x-infrahub-key", &token)
                    .json(&json!({"query": emit}))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "emit: {}", r.status());
            }
            Ok(())
        }));
    }
    let mut delays = Vec::with_capacity(args.events);
    let mut ids = std::collections::HashSet::new();
    let deadline = Duration::from_secs(120);
    while ids.len() < args.events {
        let (at, body) = tokio::time::timeout(deadline, received.recv())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} of {} events delivered after {deadline:?}",
                    ids.len(),
                    args.events
                )
            })?
            .ok_or_else(|| anyhow::anyhow!("the receiver stopped"))?;
        let body: Value = serde_json::from_slice(&body)?;
        let occurred = body["occurred_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| anyhow::anyhow!("no occurred_at in {body}"))?;
        let committed = SystemTime::from(occurred);
        let delay = at.duration_since(committed).unwrap_or_default();
        if ids.insert(body["id"].as_str().unwrap_or_default().to_owned()) {
            delays.push(delay.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    for c in clients {
        c.await??;
    }
    delays.sort_unstable();
    Ok((args.events as f64 / elapsed, delays))
}

pub(crate) async fn run(args: WebhooksArgs) -> anyhow::Result<()> {
    let (mut rates, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let (rate, delays) = one_run(&args).await?;
        let (p50, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
        println!(
            "run {run}: {} events delivered ({}), {rate:.0} deliveries/s, commit → delivery p50 {:.1} ms, p99 {:.1} ms (fsync {})",
            args.events,
            if args.rate > 0 {
                format!("{} events/s committed", args.rate)
            } else {
                "committed as fast as possible".into()
            },
            f64::from(p50) / 1e3,
            f64::from(p99) / 1e3,
            args.fsync
        );
        rates.push(rate);
        p50s.push(f64::from(p50) / 1e3);
        p99s.push(f64::from(p99) / 1e3);
    }
    println!(
        "webhooks median of {} runs: {:.0} deliveries/s, commit → delivery p50 {:.1} ms, p99 {:.1} ms",
        rates.len(),
        median(&rates),
        median(&p50s),
        median(&p99s)
    );
    Ok(())
}
