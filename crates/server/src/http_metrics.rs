//! HTTP request metrics by route and status, rendered on `/metrics` beside the `infrastream_*`
//! names: `infrastream_http_requests_total{method,route,status}` and the histogram
//! `infrastream_http_request_duration_seconds{method,route}`.
//!
//! The route label is the route's pattern (axum's [`MatchedPath`], e.g. `/graphql/{*branch}`),
//! never the request's path, and methods outside the standard ones are counted as `OTHER`:
//! the number of series stays bounded whatever clients send. Requests that match no route
//! (the 404 fallback) never reach this route layer. A WebSocket upgrade is one request,
//! counted with its `101` when the upgrade is answered; the session that follows is not timed.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds (seconds) of the request duration histogram's buckets (`+Inf` follows).
pub(crate) const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters and histograms of one method and route.
#[derive(Clone, Default)]
struct Series {
    /// Requests answered, by status code.
    statuses: BTreeMap<u16, u64>,
    /// Requests per bucket of [`DURATION_BUCKETS`] (not cumulative), the last one `+Inf`.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    /// Sum of the durations, in seconds.
    sum: f64,
    /// Requests observed.
    count: u64,
}

/// Request counts and durations by `(method, route)`. One short lock per request: the map
/// is small (routes × methods) and each update is a few additions.
#[derive(Default)]
pub(crate) struct HttpMetrics {
    /// By route pattern, then method.
    series: Mutex<HashMap<String, BTreeMap<&'static str, Series>>>,
}

impl HttpMetrics {
    /// Records one answered request.
    fn observe(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let by_method = match series.get_mut(route) {
            Some(m) => m,
            None => series.entry(route.to_owned()).or_default(),
        };
        let s = by_method.entry(method).or_default();
        *s.statuses.entry(status).or_default() += 1;
        s.buckets[bucket] += 1;
        s.sum += seconds;
        s.count += 1;
    }

    /// Appends both metrics in the Prometheus text format, series sorted by route and method.
    pub(crate) fn render(&self, out: &mut String) {
        let mut series: Vec<((&'static str, String), Series)> = {
            let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .flat_map(|(route, by_method)| {
                    by_method
                        .iter()
                        .map(|(method, s)| ((*method, route.clone()), s.clone()))
                })
                .collect()
        };
        series.sort_by(|a, b| (&a.0.1, a.0.0).cmp(&(&b.0.1, b.0.0)));
        let name = "infrastream_http_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP requests answered, by method, route pattern and status code.\n\
             # TYPE {name} counter"
        );
        for ((method, route), s) in &series {
            let route = escape(route);
            for (status, n) in &s.statuses {
                let _ = writeln!(
                    out,
                    "{name}{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let name = "infrastream_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from receiving an HTTP request to its response headers, by \
             method and route pattern.\n# TYPE {name} histogram"
        );
        for ((method, route), s) in &series {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i];
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
            }
            cumulative += s.buckets[DURATION_BUCKETS.len()];
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.count);
        }
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The method label: the standard methods by name, any other as `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// Route layer: counts each request and observes its latency under its matched route.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // Set by the router for every route this layer wraps; never the raw path.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    state
        .http_metrics
        .observe(method, &route, response.status().as_u16(), seconds);
    response
}
