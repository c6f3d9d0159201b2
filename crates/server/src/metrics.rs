//! `GET /metrics`: Prometheus text format with stable metric names (SPEC §11).

//!
//! With the setting `metrics_token`, the endpoint answers only requests that present it
//! (`Authorization: Bearer <metrics_token>`, compared in constant time) or any account
//! credential the rest of the API accepts (an API token, a JWT); others get 401.

use crate::auth::{authenticate, credential_from_headers, strip_bearer};
use crate::{AppState, reply};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use infrastream_core::{Error, ErrorKind};
use infrastream_graphql::LATENCY_BUCKETS;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering::Relaxed;

pub(crate) async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.settings().metrics_token
        && let Some(refusal) = refuse_access(&state, &headers, expected).await
    {
        return refusal;
    }
    let m = &state.services.metrics;
    let appended = state.services.domain.store.head().borrow().0;
    let mut out = String::with_capacity(2048);
    let o = &mut out;
    let name = "infrastream_ws_connections";
    describe(o, name, "gauge", "Open WebSocket connections.");
    let transport = m.ws_connections_transport.load(Relaxed);
    sample(o, name, "{protocol=\"graphql-transport-ws\"}", transport);
    let legacy = m.ws_connections_legacy.load(Relaxed);
    sample(o, name, "{protocol=\"graphql-ws\"}", legacy);
    let name = "infrastream_subscriptions";
    describe(o, name, "gauge", "Active subscriptions by field.");
    let events = m.subscriptions_events.load(Relaxed);
    sample(o, name, "{field=\"events\"}", events);
    let query = m.subscriptions_query.load(Relaxed);
    sample(o, name, "{field=\"query\"}", query);
    single(
        o,
        "infrastream_events_appended_total",
        "counter",
        "Events appended to the log (the last committed position; pruning does not lower it).",
        appended,
    );
    single(
        o,
        "infrastream_events_pruned_through",
        "gauge",
        "The last position pruned from the log by retention: the log holds the events after it.",
        m.events_pruned_through.load(Relaxed),
    );
    single(
        o,
        "infrastream_events_pruned_total",
        "counter",
        "Events pruned from the log by retention since the server started.",
        m.events_pruned.load(Relaxed),
    );
    single(
        o,
        "infrastream_deliveries_total",
        "counter",
        "Subscription result frames written.",
        m.deliveries.load(Relaxed),
    );
    single(
        o,
        "infrastream_lagging_consumers",
        "gauge",
        "Event subscriptions more than one read batch behind the log head.",
        m.lagging_consumers.load(Relaxed),
    );
    single(
        o,
        "infrastream_stored_query_executions_total",
        "counter",
        "Saved-query executions by query subscriptions.",
        m.stored_query_executions.load(Relaxed),
    );
    let name = "infrastream_delivery_latency_seconds";
    let help = "Commit to delivery of an event to its subscriber.";
    describe(o, name, "histogram", help);
    let bucket = "infrastream_delivery_latency_seconds_bucket";
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += m.latency_buckets[i].load(Relaxed);
        sample(o, bucket, &format!("{{le=\"{bound}\"}}"), cumulative);
    }
    cumulative += m.latency_buckets[LATENCY_BUCKETS.len()].load(Relaxed);
    sample(o, bucket, "{le=\"+Inf\"}", cumulative);
    let sum = m.latency_sum_micros.load(Relaxed) as f64 / 1e6;
    sample(o, "infrastream_delivery_latency_seconds_sum", "", sum);
    let count = m.latency_count.load(Relaxed);
    sample(o, "infrastream_delivery_latency_seconds_count", "", count);
    state.http_metrics.render(o);
    process::render(o);
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// A metric's `# HELP` and `# TYPE` lines.
fn describe(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample: `name`, its `labels` (`{…}`, or empty) and its value.
fn sample(out: &mut String, name: &str, labels: &str, value: impl Display) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// A metric of one unlabelled sample, described.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl Display) {
    describe(out, name, kind, help);
    sample(out, name, "", value);
}

/// Whether a request may read the metrics when `metrics_token` is `expected`: `None` for the
/// token as a bearer value or a valid account credential, else the 401 (or, if the store
/// failed while checking a credential, the 500) to answer.
async fn refuse_access(state: &AppState, headers: &HeaderMap, expected: &str) -> Option<Response> {
    let bearer = reply::header_text(headers, header::AUTHORIZATION).and_then(strip_bearer);
    // Compared through their SHA-256 digests: equal lengths, compared in constant time.
    if bearer.is_some_and(|presented| {
        infrastream_auth::constant_time_eq(
            infrastream_auth::hash_api_token(presented).as_bytes(),
            infrastream_auth::hash_api_token(expected).as_bytes(),
        )
    }) {
        return None;
    }
    // An account credential; anonymous access (no credential) is not enough.
    let refused = |message: &str| {
        let mut r = reply::error(&Error::new(ErrorKind::Unauthenticated, message));
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        Some(r)
    };
    let Some(credential) = credential_from_headers(headers) else {
        return refused("Authentication is required (metrics_token or an account credential)");
    };
    match authenticate(state, Some(credential)).await {
        Ok(a) if a.caller.account.is_some() => None,
        Ok(_) => refused("Authentication is required (metrics_token or an account credential)"),
        Err(e) if e.kind == ErrorKind::Internal => Some(reply::error(&e)),
        Err(_) => refused("Invalid credential for /metrics"),
    }
}

/// The `process_*` metrics of the standard Prometheus process collector, read from
/// `/proc/self` (Linux). Where `/proc` is missing or unreadable, the metrics that cannot be
/// read are left out.
mod process {
    use super::{describe, sample, single};

    /// Clock ticks per second of the times in `/proc/self/stat` (`USER_HZ`): 100 on every
    /// Linux architecture Rust supports (fixed by the kernel's user-space ABI; the Prometheus
    /// Go collector assumes the same).
    const USER_HZ: f64 = 100.0;

    /// Appends every process metric that can be read.
    pub(super) fn render(out: &mut String) {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        // The fields after the command name, which is in parentheses and may hold spaces:
        // `[0]` is field 3 of proc(5) (state), so field N is `[N - 3]`.
        let fields: Vec<&str> = stat
            .as_deref()
            .and_then(|s| s.rsplit_once(')'))
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            single(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (utime + stime) as f64 / USER_HZ,
            );
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(key)?.strip_prefix(':')?;
                let kib = value
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<u64>()
                    .ok()?;
                Some(kib * 1024)
            })
        };
        if let Some(rss) = kib("VmRSS") {
            single(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss,
            );
        }
        if let Some(vsz) = kib("VmSize") {
            single(
                out,
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                vsz,
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle being read is one of the entries; it is not counted.
            let open = dir.count().saturating_sub(1);
            single(
                out,
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open,
            );
        }
        if let Some(max) = max_open_files() {
            single(
                out,
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max,
            );
        }
        if let (Some(start_ticks), Some(boot)) = (field(22), boot_time()) {
            let name = "process_start_time_seconds";
            describe(
                out,
                name,
                "gauge",
                "Start time of the process since unix epoch in seconds.",
            );
            sample(out, name, "", boot as f64 + start_ticks as f64 / USER_HZ);
        }
    }

    /// The soft limit on open files (`Max open files` in `/proc/self/limits`); `None` when
    /// unreadable or unlimited.
    fn max_open_files() -> Option<u64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.strip_prefix("Max open files")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// When the system booted, in seconds since the Unix epoch (`btime` of `/proc/stat`).
    fn boot_time() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()
    }
}
