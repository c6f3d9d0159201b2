//! `GET /metrics`: Prometheus text format with stable metric names (SPEC §11).

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use infrastream_graphql::LATENCY_BUCKETS;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering::Relaxed;

pub(crate) async fn render(State(state): State<AppState>) -> Response {
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
