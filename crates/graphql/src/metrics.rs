//! Counters and gauges updated by the GraphQL layer and the WebSocket sessions; `server`
//! renders them as Prometheus text on `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Commit → frame-written latency buckets, in seconds (Prometheus `le` bounds).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Process-wide metrics.
#[derive(Default)]
pub struct Metrics {
    /// Open WebSocket connections speaking graphql-transport-ws.
    pub ws_connections_transport: AtomicI64,
    /// Open WebSocket connections speaking the legacy graphql-ws.
    pub ws_connections_legacy: AtomicI64,
    /// Active `events` subscriptions.
    pub subscriptions_events: AtomicI64,
    /// Active `query` subscriptions.
    pub subscriptions_query: AtomicI64,
    /// Frames with subscription results written to sockets.
    pub deliveries: AtomicU64,
    /// Executions of saved queries by `query` subscriptions.
    pub stored_query_executions: AtomicU64,
    /// The last position pruned from the log by retention (0: nothing pruned).
    pub events_pruned_through: AtomicU64,
    /// Events this server pruned from the log since it started.
    pub events_pruned: AtomicU64,
    /// Subscriptions currently behind the head of the log by more than one read batch.
    pub lagging_consumers: AtomicI64,
    /// Histogram of commit → frame written, per bucket of [`LATENCY_BUCKETS`] (non-cumulative),
    /// plus one overflow bucket.
    pub latency_buckets: [AtomicU64; 13],
    /// Sum of observed latencies, in microseconds.
    pub latency_sum_micros: AtomicU64,
    /// Number of observed latencies.
    pub latency_count: AtomicU64,
}

impl Metrics {
    /// Records one commit → written latency.
    pub fn observe_latency(&self, seconds: f64) {
        self.observe_latencies(seconds, 1);
    }

    /// Records `frames` frames written `seconds` after their commit.
    pub fn observe_latencies(&self, seconds: f64, frames: u64) {
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[i].fetch_add(frames, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds.max(0.0) * 1e6) as u64 * frames, Ordering::Relaxed);
        self.latency_count.fetch_add(frames, Ordering::Relaxed);
    }
}
