//! Retention of the event log (`retention_max_events`, `retention_max_age_secs`, pruned every
//! `retention_interval_secs`): pruned events disappear from `InfrahubEvent` (its count too); a
//! subscription resuming from a pruned event gets `CURSOR_PRUNED` (410) on both protocols, and
//! one whose replay reaches events pruned meanwhile ends with it after what it received; an id
//! that was never in the log is still `NOT_FOUND`; resuming from a kept event works with no gap.

use infrastream_testkit::ws::LEGACY_WS;
use infrastream_testkit::{ADMIN_TOKEN, TestServer, WsClient, metric};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RESUME: &str = "subscription($after: String) { events(after: $after) { id event } }";

/// Every event id in the log, newest first, and `InfrahubEvent`'s count.
async fn log(s: &TestServer) -> (Vec<String>, i64) {
    let data = s
        .admin(
            "{ InfrahubEvent(limit: 50) { count edges { node { id } } } }",
            json!({}),
        )
        .await;
    let ids = data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, data["InfrahubEvent"]["count"].as_i64().unwrap())
}

/// Waits (a few seconds at most) until the event `id` is pruned.
async fn wait_pruned(s: &TestServer, id: &str) {
    let started = Instant::now();
    loop {
        let data = s
            .admin(
                "query($id: String!) { InfrahubEvent(ids: [$id]) { count } }",
                json!({"id": id}),
            )
            .await;
        if data["InfrahubEvent"]["count"] == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "event {id} was not pruned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Subscribes `id` with `after` and returns the frame that answers (skipping keep-alives).
async fn resume(ws: &mut WsClient, id: &str, after: &str) -> Value {
    ws.subscribe(id, RESUME, json!({"after": after})).await;
    ws.recv_data().await
}

/// The one error of an `error` frame of operation `id` (an array on graphql-transport-ws, an
/// object on the legacy protocol).
fn error_of(frame: &Value, id: &str) -> Value {
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["id"], id, "{frame}");
    match &frame["payload"] {
        Value::Array(errors) => {
            assert_eq!(errors.len(), 1, "{frame}");
            errors[0].clone()
        }
        one => one.clone(),
    }
}

fn assert_cursor_pruned(error: &Value, pruned: &str, first_kept: &str) {
    assert_eq!(error["extensions"]["code"], "CURSOR_PRUNED", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(pruned), "names the event: {message}");
    assert!(message.contains("retention"), "says why: {message}");
    assert!(
        message.contains(&format!("the log now starts at event {first_kept}")),
        "says where the log starts: {message}"
    );
    assert!(
        message.contains("without `after`"),
        "says what to do: {message}"
    );
}

#[tokio::test]
async fn pruned_events_disappear_and_resuming_from_them_is_cursor_pruned() {
    let s = TestServer::start_with(&[
        ("retention_max_events", "5"),
        ("retention_interval_secs", "1"),
    ])
    .await;
    // A live subscriber is never disturbed by pruning: it receives every event.
    let mut watcher = s.ws_admin().await;
    watcher.subscribe("all", RESUME, Value::Null).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(s.emit("retention.e", "").await);
    }
    wait_pruned(&s, &ids[6]).await;
    // The five newest stay; InfrahubEvent's count is the log's.
    let (listed, count) = log(&s).await;
    let newest: Vec<String> = ids[7..].iter().rev().cloned().collect();
    assert_eq!((listed, count), (newest, 5));

    // Resuming from a pruned event: CURSOR_PRUNED, on both protocols, with HTTP semantics 410.
    let mut ws = s.ws_admin().await;
    let error = error_of(&resume(&mut ws, "old", &ids[0]).await, "old");
    assert_cursor_pruned(&error, &ids[0], &ids[7]);
    assert_eq!(error["extensions"]["http_status"], 410);
    let mut legacy = WsClient::connect(&s.ws_url(), Some(LEGACY_WS)).await;
    legacy.init(ADMIN_TOKEN).await;
    let error = error_of(&resume(&mut legacy, "old", &ids[6]).await, "old");
    assert_cursor_pruned(&error, &ids[6], &ids[7]);

    // An id that was never in the log is still NOT_FOUND (newer than the log, or not a v7).
    for never in [uuid::Uuid::now_v7(), uuid::Uuid::new_v4()] {
        let never = never.to_string();
        let error = error_of(&resume(&mut ws, "never", &never).await, "never");
        assert_eq!(error["extensions"]["code"], "NOT_FOUND", "{error}");
        assert_eq!(
            error["message"],
            format!("Event {never} not found (argument 'after')")
        );
    }

    // Positions 1 (the bootstrap's event) to 8 were pruned.
    let page = s.metrics().await;
    assert_eq!(metric(&page, "infrastream_events_pruned_through"), 8);
    assert_eq!(metric(&page, "infrastream_events_pruned_total"), 8);
    assert_eq!(metric(&page, "infrastream_events_appended_total"), 13);

    // Resuming from a kept event replays the rest, then goes live, with no gap.
    for client in [&mut ws, &mut legacy] {
        client
            .subscribe("kept", RESUME, json!({"after": ids[8]}))
            .await;
        for expected in &ids[9..] {
            assert_eq!(client.next_data("kept").await["events"]["id"], **expected);
        }
    }
    let live = s.emit("retention.e", "").await;
    for client in [&mut ws, &mut legacy] {
        assert_eq!(client.next_data("kept").await["events"]["id"], live);
    }
    for expected in ids.iter().chain([&live]) {
        assert_eq!(watcher.next_data("all").await["events"]["id"], **expected);
    }
    watcher.close().await;
    ws.close().await;
    legacy.close().await;
}

#[tokio::test]
async fn events_older_than_the_age_limit_are_pruned() {
    let s = TestServer::start_with(&[
        ("retention_max_age_secs", "1"),
        ("retention_interval_secs", "1"),
    ])
    .await;
    let old = s.emit("retention.old", "").await;
    wait_pruned(&s, &old).await;
    // Once everything older than a second is gone, a new event is the log's start.
    let fresh = s.emit("retention.fresh", "").await;
    let mut ws = s.ws_admin().await;
    let error = error_of(&resume(&mut ws, "old", &old).await, "old");
    assert_eq!(error["extensions"]["code"], "CURSOR_PRUNED", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("the log now starts at event {fresh}"))
            || message.contains("every event was pruned"),
        "{message}"
    );
    ws.close().await;
}

/// A replay that reaches events pruned while it was stalled (its client not reading) ends
/// with `CURSOR_PRUNED` after the events it could deliver, in order and without a gap: it is
/// never moved silently past the pruned ones.
#[tokio::test]
async fn a_replay_overtaken_by_pruning_ends_with_cursor_pruned() {
    const BIG: usize = 24;
    let s = TestServer::start_with(&[
        ("retention_max_events", "30"),
        ("retention_interval_secs", "1"),
        ("max_body_bytes", "2097152"),
        ("ws_write_timeout_ms", "60000"),
    ])
    .await;
    let start = s.emit("retention.start", "").await;
    // 24 events of 1 MB: far more than the socket buffers hold while the client reads nothing.
    let blob = "x".repeat(1 << 20);
    let mut big = Vec::new();
    for _ in 0..BIG {
        let data = s
            .admin(
                "mutation($p: GenericScalar) { EventEmit(data: {event: \"retention.big\", payload: $p}) { object { id } } }",
                json!({"p": {"blob": blob}}),
            )
            .await;
        big.push(
            data["EventEmit"]["object"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "r",
        "subscription($after: String) { events(after: $after) { id payload } }",
        json!({"after": start}),
    )
    .await;
    // While the replay is stalled on the socket, 40 more events push the big ones out of the
    // 30 the log keeps.
    let mut small = Vec::new();
    for _ in 0..40 {
        small.push(s.emit("retention.small", "").await);
    }
    wait_pruned(&s, &small[9]).await;
    // The replay delivers what it had read before the prune, in order, then the error.
    let mut received = Vec::new();
    let error = loop {
        let frame = ws.recv_data().await;
        if frame["type"] != "next" {
            break error_of(&frame, "r");
        }
        received.push(
            frame["payload"]["data"]["events"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    };
    // Loopback buffers may take the whole replay (and a live event or two) before the prune:
    // what arrived is still a gap-free prefix of the log from the cursor.
    let log: Vec<String> = big.iter().chain(&small).cloned().collect();
    assert!(
        log.starts_with(&received),
        "delivered in order from the cursor, no gap: {} of {BIG} big and {} small",
        received.len().min(BIG),
        received.len().saturating_sub(BIG)
    );
    assert_eq!(error["extensions"]["code"], "CURSOR_PRUNED", "{error}");
    assert_eq!(error["extensions"]["http_status"], 410, "{error}");
    assert!(error.get("locations").is_none(), "{error}");
    let last = received.last().unwrap_or(&start);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("The events after event {last} were pruned")),
        "{message}"
    );
    assert!(message.contains("without `after`"), "{message}");
    // The operation is over: nothing more comes for it, and the connection stays usable.
    ws.subscribe("live", RESUME, Value::Null).await;
    let next = s.emit("retention.after", "").await;
    let frame = ws.recv_data().await;
    assert_eq!(frame["id"], "live", "{frame}");
    assert_eq!(frame["payload"]["data"]["events"]["id"], next);
    ws.close().await;
}
