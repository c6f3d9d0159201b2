//! What operators plug in without writing anything: `/metrics` carries the process metrics,
//! HTTP request counts and durations by route pattern and status, passes `promtool check
//! metrics`, exports every metric the Grafana dashboard (docs/grafana-dashboard.json) reads,
//! and with `metrics_token` set answers only that token or an account credential.

use infrastream_testkit::http::{send, tamper_jwt};
use infrastream_testkit::{ADMIN_PASSWORD, ADMIN_TOKEN, TestServer, assert_error_reply};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const EVENTS: &str = "subscription { events(event_type: [\"obs.ping\"]) { id event } }";

/// Some traffic: GraphQL requests over HTTP (`graphql_posts` of them, all 200), a 404 from a
/// matched route (`GET /` without HTML), an unknown path (the fallback), an artifact id that
/// must not become a label, and a WebSocket subscription that receives an event.
async fn traffic(s: &TestServer, graphql_posts: usize) {
    for _ in 0..graphql_posts - 1 {
        s.admin("{ Branch { name } }", json!({})).await;
    }
    let mut ws = s.ws_admin().await;
    ws.subscribe("1", EVENTS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The last GraphQL POST.
    let id = s.emit("obs.ping", "").await;
    let frame = ws.next_data("1").await;
    assert_eq!(frame["events"]["id"], id, "{frame}");
    ws.close().await;
    let r = send(&s.http, "GET", &format!("{}/", s.url), &[], None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = send(
        &s.http,
        "GET",
        &format!("{}/no/such/path", s.url),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let key = [("x-infrahub-key", ADMIN_TOKEN)];
    let url = format!("{}/api/artifact/raw-artifact-id-0042", s.url);
    let r = send(&s.http, "GET", &url, &key, None).await;
    assert!(r.status >= 400, "{}: {}", r.status, r.text);
}

/// The value of one series (`name{labels}` exactly as rendered), as a float.
fn value(page: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    page.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no series {series} in the metrics:\n{page}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("series {series} is not a number ({e}):\n{page}"))
}

/// Every sample of the page whose name is `name`: its labels (`{…}` or empty) and value.
fn samples<'a>(page: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let labels = series.strip_prefix(name)?;
            (labels.is_empty() || labels.starts_with('{')).then(|| (labels, v.parse().unwrap()))
        })
        .collect()
}

async fn metrics(s: &TestServer) -> String {
    let r = send(&s.http, "GET", &format!("{}/metrics", s.url), &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.header("content-type").starts_with("text/plain"),
        "{:?}",
        r.header("content-type")
    );
    r.text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_process_and_http_series_after_traffic() {
    let s = TestServer::start().await;
    let posts = 5;
    traffic(&s, posts).await;
    let page = metrics(&s).await;

    // Process metrics, read from /proc/self: plausible values.
    assert!(
        value(&page, "process_resident_memory_bytes") > 1e6,
        "{page}"
    );
    let virt = value(&page, "process_virtual_memory_bytes");
    assert!(
        virt >= value(&page, "process_resident_memory_bytes"),
        "{page}"
    );
    let open = value(&page, "process_open_fds");
    assert!(open > 0.0, "{page}");
    assert!(value(&page, "process_max_fds") >= open, "{page}");
    let cpu = value(&page, "process_cpu_seconds_total");
    assert!(cpu > 0.0 && cpu < 1e6, "cpu {cpu}");
    let start = value(&page, "process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // The test process started at most a few hours ago (a slow machine building first).
    assert!(
        start <= now + 2.0 && start > now - 6.0 * 3600.0,
        "start {start}, now {now}"
    );

    // HTTP counters by method, route pattern and status.
    let requests = "infrastream_http_requests_total";
    let graphql_ok = format!("{requests}{{method=\"POST\",route=\"/graphql\",status=\"200\"}}");
    assert_eq!(value(&page, &graphql_ok), posts as f64, "{page}");
    // The WebSocket upgrade: once, as its 101.
    let upgrade = format!("{requests}{{method=\"GET\",route=\"/graphql\",status=\"101\"}}");
    assert_eq!(value(&page, &upgrade), 1.0, "{page}");
    let root = format!("{requests}{{method=\"GET\",route=\"/\",status=\"404\"}}");
    assert_eq!(value(&page, &root), 1.0, "{page}");
    let artifact: Vec<_> = samples(&page, requests)
        .into_iter()
        .filter(|(labels, _)| labels.contains("route=\"/api/artifact/{id}\""))
        .collect();
    assert_eq!(artifact.len(), 1, "{page}");
    assert!(artifact[0].0.contains("status=\"4"), "{artifact:?}");
    // Route patterns only: neither the raw path nor the unmatched one is a label.
    assert!(!page.contains("raw-artifact-id-0042"), "{page}");
    assert!(!page.contains("/no/such/path"), "{page}");
    let unmatched = format!("{requests}{{method=\"GET\",route=\"unmatched\",status=\"404\"}}");
    assert_eq!(
        value(&page, &unmatched),
        1.0,
        "unknown paths are counted: {page}"
    );

    // The duration histogram: cumulative buckets ending in +Inf = _count = the requests.
    let duration = "infrastream_http_request_duration_seconds";
    let labels = "method=\"POST\",route=\"/graphql\"";
    let buckets: Vec<(&str, f64)> = samples(&page, &format!("{duration}_bucket"))
        .into_iter()
        .filter(|(l, _)| l.starts_with(&format!("{{{labels},le=")))
        .collect();
    assert!(buckets.len() >= 2, "{page}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "buckets are cumulative: {buckets:?}"
    );
    let (last, inf) = buckets[buckets.len() - 1];
    assert!(last.ends_with("le=\"+Inf\"}"), "{last}");
    assert_eq!(inf, posts as f64);
    assert_eq!(value(&page, &format!("{duration}_count{{{labels}}}")), inf);
    let sum = value(&page, &format!("{duration}_sum{{{labels}}}"));
    assert!(sum > 0.0 && sum < 60.0, "sum {sum}");

    // The next scrape counts the previous one.
    let page = metrics(&s).await;
    let scraped = format!("{requests}{{method=\"GET\",route=\"/metrics\",status=\"200\"}}");
    assert_eq!(value(&page, &scraped), 1.0, "{page}");
    s.shutdown().await;
}

/// `promtool`, which must be installed (Debian's `prometheus` package).
fn promtool() -> std::path::PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "promtool is not installed: this test checks /metrics with `promtool check metrics`; \
             install it (Debian/Ubuntu: apt-get install prometheus) and run the test again"
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_check() {
    let promtool = promtool();
    let s = TestServer::start().await;
    traffic(&s, 3).await;
    let page = metrics(&s).await;
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics: {:?}\n{report}\n--- the page:\n{page}",
        out.status
    );
    s.shutdown().await;
}

/// Metric names in a PromQL expression: identifiers starting with `infrastream_` or
/// `process_` (not part of a longer word or of a `$variable`).
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !word(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && word(bytes[i]) {
            i += 1;
        }
        let preceded = start > 0 && matches!(bytes[start - 1], b'$' | b'.');
        let w = &expr[start..i];
        if !preceded && (w.starts_with("infrastream_") || w.starts_with("process_")) {
            names.push(w.to_owned());
        }
    }
    names
}

/// Every PromQL expression of the dashboard: targets' `expr` and template variables' queries.
fn expressions(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "definition" | "query", Value::String(s)) => out.push(s.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_of_the_dashboard_is_exported() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dashboard: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    // Importable with a Prometheus data source chosen at import.
    let inputs = dashboard["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    let charts: Vec<&Value> = panels.iter().filter(|p| p["type"] != "row").collect();
    assert!(charts.len() >= 10, "{} panels", charts.len());
    for p in &charts {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
        assert!(
            p["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "{}",
            p["title"]
        );
    }

    let s = TestServer::start().await;
    traffic(&s, 2).await;
    let page = metrics(&s).await;
    s.shutdown().await;
    // Families by their `# TYPE` lines, and the names that have samples.
    let families: BTreeMap<&str, &str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    let sampled: BTreeSet<&str> = page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();

    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    let names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for wanted in [
        "infrastream_ws_connections",
        "infrastream_subscriptions",
        "infrastream_events_appended_total",
        "infrastream_deliveries_total",
        "infrastream_delivery_latency_seconds_bucket",
        "infrastream_lagging_consumers",
        "infrastream_http_requests_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(names.contains(wanted), "the dashboard reads {wanted}");
    }
    for name in &names {
        // A histogram's series are its family's name with a suffix; anything else is a
        // family of its own.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (families.get(base) == Some(&"histogram")).then_some(base)
            })
            .unwrap_or(name);
        assert!(
            families.contains_key(family),
            "the dashboard reads {name}, but /metrics has no # TYPE {family}:\n{page}"
        );
        assert!(
            sampled.contains(name.as_str()),
            "the dashboard reads {name}, but /metrics has no sample of it:\n{page}"
        );
    }
    // `histogram_quantile` only over the buckets of histograms.
    for e in exprs.iter().filter(|e| e.contains("histogram_quantile")) {
        let buckets: Vec<String> = metric_names(e)
            .into_iter()
            .filter(|n| n.ends_with("_bucket"))
            .collect();
        assert!(!buckets.is_empty(), "{e}");
        for b in buckets {
            let family = b.strip_suffix("_bucket").unwrap();
            assert_eq!(families.get(family), Some(&"histogram"), "{e}");
        }
    }
}

const METRICS_TOKEN: &str = "scrape-me-7c1e9a44b0d2f8e6";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_guards_the_endpoint() {
    // Anonymous access is allowed elsewhere, but not enough for the metrics.
    let s = TestServer::start_with(&[
        ("metrics_token", METRICS_TOKEN),
        ("allow_anonymous_access", "true"),
    ])
    .await;
    let url = format!("{}/metrics", s.url);
    let get = |headers: Vec<(&'static str, String)>| {
        let (http, url) = (s.http.clone(), url.clone());
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&http, "GET", &url, &h, None).await
        }
    };
    let refused = |what: &str, r: &infrastream_testkit::Resp| {
        assert_error_reply(what, r, 401, "UNAUTHENTICATED");
        assert!(!r.text.contains(METRICS_TOKEN), "{what}: {}", r.text);
        assert!(!r.text.contains("# TYPE"), "{what}: {}", r.text);
    };
    refused("no credential", &get(vec![]).await);
    let bearer = |v: &str| vec![("authorization", format!("Bearer {v}"))];
    refused(
        "wrong bearer",
        &get(bearer("scrape-me-7c1e9a44b0d2f8e7")).await,
    );
    refused("a prefix of the token", &get(bearer("scrape-me")).await);
    refused(
        "the token with a suffix",
        &get(bearer(&format!("{METRICS_TOKEN}0"))).await,
    );
    refused(
        "the token as an API key",
        &get(vec![("x-infrahub-key", METRICS_TOKEN.to_owned())]).await,
    );
    refused(
        "unknown API key",
        &get(vec![("x-infrahub-key", "no-such-token".to_owned())]).await,
    );
    let (access, _) = s.login_ok("admin", ADMIN_PASSWORD).await;
    refused("tampered JWT", &get(bearer(&tamper_jwt(&access))).await);

    let allowed = |what: &str, r: &infrastream_testkit::Resp| {
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert!(
            r.text
                .contains("# TYPE infrastream_events_appended_total counter"),
            "{what}: {}",
            r.text
        );
    };
    allowed("the metrics token", &get(bearer(METRICS_TOKEN)).await);
    allowed(
        "scheme in lower case",
        &get(vec![("authorization", format!("bearer {METRICS_TOKEN}"))]).await,
    );
    allowed(
        "admin API token as X-INFRAHUB-KEY",
        &get(vec![("x-infrahub-key", ADMIN_TOKEN.to_owned())]).await,
    );
    allowed("admin API token as bearer", &get(bearer(ADMIN_TOKEN)).await);
    allowed("a JWT of a logged-in account", &get(bearer(&access)).await);

    // The refusals are counted like any answer of the route.
    let page = get(bearer(METRICS_TOKEN)).await.text;
    let refused_count = page
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "infrastream_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"} ",
            )
        })
        .unwrap_or_else(|| panic!("no 401 series for /metrics:\n{page}"));
    assert_eq!(refused_count, "7");
    s.shutdown().await;

    // The token is a secret: never in the settings' Debug output.
    let settings = infrastream_config::load(
        None,
        Vec::new(),
        &[("metrics_token".into(), METRICS_TOKEN.into())],
    )
    .unwrap();
    assert_eq!(settings.metrics_token.as_deref(), Some(METRICS_TOKEN));
    let debug = format!("{settings:?}");
    assert!(!debug.contains(METRICS_TOKEN), "{debug}");
    assert!(debug.contains("metrics_token"), "{debug}");
}

#[tokio::test]
async fn metrics_are_open_without_a_token() {
    let s = TestServer::start().await;
    let page = metrics(&s).await;
    assert!(page.contains("# TYPE infrastream_events_appended_total counter"));
    s.shutdown().await;
}

/// A subscription document with one *named* operation and no `operationName` (as graphql-ws
/// sends it when the caller names none) is the same `events` subscription as an anonymous
/// one: delivered by the shared fan-out, whose frames carry latency observations. (It used to
/// run on its session's own stream, slower and missing from the latency histogram.)
#[tokio::test]
async fn named_events_subscriptions_are_delivered_by_the_shared_fanout() {
    let s = TestServer::start().await;
    let count = "infrastream_delivery_latency_seconds_count";
    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "1",
        "subscription Named { events(event_type: [\"obs.named\"]) { id } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = value(&metrics(&s).await, count);
    for _ in 0..3 {
        let id = s.emit("obs.named", "").await;
        let frame = ws.next_data("1").await;
        assert_eq!(frame["events"]["id"], id, "{frame}");
    }
    let after = value(&metrics(&s).await, count);
    assert_eq!(
        after - before,
        3.0,
        "three fan-out deliveries with their latency"
    );
    ws.close().await;
    s.shutdown().await;
}
