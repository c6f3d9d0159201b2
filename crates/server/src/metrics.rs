//! `GET /metrics`: Prometheus text format with stable metric names (SPEC §11).

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use infrastream_graphql::LATENCY_BUCKETS;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

pub(crate) async fn render(State(state): State<AppState>) -> Response {
    let m = &state.services.metrics;
    let appended = state.services.domain.store.head().borrow().0;
    let mut out = String::with_capacity(2048);
    let _ = writeln!(
        out,
        "# HELP infrastream_ws_connections Open WebSocket connections.\n# TYPE infrastream_ws_connections gauge"
    );
    let _ = writeln!(
        out,
        "infrastream_ws_connections{{protocol=\"graphql-transport-ws\"}} {}",
        m.ws_connections_transport.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "infrastream_ws_connections{{protocol=\"graphql-ws\"}} {}",
        m.ws_connections_legacy.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP infrastream_subscriptions Active subscriptions by field.\n# TYPE infrastream_subscriptions gauge"
    );
    let _ = writeln!(
        out,
        "infrastream_subscriptions{{field=\"events\"}} {}",
        m.subscriptions_events.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "infrastream_subscriptions{{field=\"query\"}} {}",
        m.subscriptions_query.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP infrastream_events_appended_total Events in the log (the last committed position).\n# TYPE infrastream_events_appended_total counter\ninfrastream_events_appended_total {appended}"
    );
    let _ = writeln!(
        out,
        "# HELP infrastream_deliveries_total Subscription result frames written.\n# TYPE infrastream_deliveries_total counter\ninfrastream_deliveries_total {}",
        m.deliveries.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP infrastream_lagging_consumers Event subscriptions more than one read batch behind the log head.\n# TYPE infrastream_lagging_consumers gauge\ninfrastream_lagging_consumers {}",
        m.lagging_consumers.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP infrastream_stored_query_executions_total Saved-query executions by query subscriptions.\n# TYPE infrastream_stored_query_executions_total counter\ninfrastream_stored_query_executions_total {}",
        m.stored_query_executions.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP infrastream_delivery_latency_seconds Commit to delivery of an event to its subscriber.\n# TYPE infrastream_delivery_latency_seconds histogram"
    );
    let mut cumulative = 0;
    for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
        cumulative += m.latency_buckets[i].load(Relaxed);
        let _ = writeln!(
            out,
            "infrastream_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
        );
    }
    cumulative += m.latency_buckets[LATENCY_BUCKETS.len()].load(Relaxed);
    let _ = writeln!(
        out,
        "infrastream_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
    );
    let _ = writeln!(
        out,
        "infrastream_delivery_latency_seconds_sum {}",
        m.latency_sum_micros.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "infrastream_delivery_latency_seconds_count {}",
        m.latency_count.load(Relaxed)
    );
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
