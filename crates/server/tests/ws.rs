//! GraphQL over WebSocket against a real server: both protocols, the `events` subscription
//! with filters and gap-free resume, `query` subscriptions, auth on the socket and limits.

use futures::StreamExt;
use infrastream_testkit::http::admin_data;
use infrastream_testkit::{ADMIN_TOKEN, TestServer, WsClient, metric};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const EVENTS: &str = "subscription($types: [String!], $after: String) { events(event_type: $types, after: $after) { id event branch } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_pushed_in_order_and_only_matching_ones() {
    let s = TestServer::start().await;
    let mut ws = WsClient::connect(&s.ws_url(), Some("graphql-transport-ws")).await;
    let echoed = ws.protocol().map(str::to_owned);
    assert_eq!(echoed.as_deref(), Some("graphql-transport-ws"));
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["acme.a", "acme.b"]}}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let a = s.emit("acme.a", "").await;
    s.emit("acme.other", "").await;
    let b = s.emit("acme.b", "").await;
    for expected in [(&a, "acme.a"), (&b, "acme.b")] {
        let f = ws.recv_data().await;
        assert_eq!(f["type"], "next", "{f}");
        assert_eq!(f["id"], "1");
        assert_eq!(f["payload"]["data"]["events"]["id"], *expected.0);
        assert_eq!(f["payload"]["data"]["events"]["event"], expected.1);
    }
    ws.assert_silent(200).await;
    // A client complete stops the operation and is not echoed.
    ws.send(json!({"id": "1", "type": "complete"})).await;
    s.emit("acme.a", "").await;
    ws.assert_silent(300).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_with_after_loses_nothing_while_writers_keep_committing() {
    let s = TestServer::start().await;
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"id": "a", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["resume.x"]}}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut committed = Vec::new();
    for _ in 0..5 {
        committed.push(s.emit("resume.x", "").await);
    }
    let mut received = Vec::new();
    for _ in 0..5 {
        received.push(
            ws.recv_data().await["payload"]["data"]["events"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    drop(ws);
    // Missed while disconnected.
    for _ in 0..300 {
        committed.push(s.emit("resume.x", "").await);
    }
    // Writers keep committing while the subscriber reconnects and replays.
    let writer = {
        let url = format!("{}/graphql", s.url);
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut ids = Vec::new();
            let emit = r#"mutation { EventEmit(data: {event: "resume.x"}) { object { id } } }"#;
            for _ in 0..700 {
                let data = admin_data(&http, &url, emit).await;
                ids.push(
                    data["EventEmit"]["object"]["id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            ids
        })
    };
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    let after = received.last().unwrap().clone();
    ws.send(json!({"id": "b", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["resume.x"], "after": after}}})).await;
    committed.extend(writer.await.unwrap());
    while received.len() < committed.len() {
        let f = ws.recv_data().await;
        assert_eq!(f["type"], "next", "{f}");
        received.push(
            f["payload"]["data"]["events"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        received, committed,
        "exactly the missed and new events, in order, no duplicate"
    );
    ws.assert_silent(200).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_close_codes() {
    let s = TestServer::start_with(&[("ws_init_timeout_ms", "300")]).await;
    // 4401: subscribe before connection_ack.
    let mut ws = s.ws().await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}}))
        .await;
    assert_eq!(ws.recv().await["close"], 4401);
    // 4400: invalid JSON.
    let mut ws = s.ws().await;
    ws.send_text("{not json").await;
    assert_eq!(ws.recv().await["close"], 4400);
    // 4400: an unknown message type, and a subscribe without an id.
    for bad in [
        json!({"type": "nonsense"}),
        json!({"type": "subscribe", "payload": {"query": "{ __typename }"}}),
    ] {
        let mut ws = s.ws().await;
        ws.init(ADMIN_TOKEN).await;
        ws.send(bad).await;
        assert_eq!(ws.recv().await["close"], 4400);
    }
    // 4403: bad credentials.
    let mut ws = s.ws().await;
    ws.send(json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": "wrong"}}))
        .await;
    assert_eq!(ws.recv().await["close"], 4403);
    // 4408: no init within the timeout.
    let mut ws = s.ws().await;
    assert_eq!(ws.recv().await["close"], 4408);
    // 4429: a second init.
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.recv().await["close"], 4429);
    // 4409: an active id reused; ping/pong echoes the payload; queries run over the socket.
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"type": "ping", "payload": {"k": 1}})).await;
    assert_eq!(
        ws.recv_data().await,
        json!({"type": "pong", "payload": {"k": 1}})
    );
    ws.send(json!({"id": "q", "type": "subscribe", "payload": {"query": "{ Branch { name } }"}}))
        .await;
    assert_eq!(
        ws.recv_data().await,
        json!({"id": "q", "type": "next", "payload": {"data": {"Branch": [{"name": "main"}]}}})
    );
    assert_eq!(ws.recv_data().await, json!({"id": "q", "type": "complete"}));
    ws.send(json!({"id": "m", "type": "subscribe", "payload": {"query": "mutation { EventEmit(data: {event: \"ws.mutation\"}) { ok } }"}})).await;
    assert_eq!(
        ws.recv_data().await,
        json!({"id": "m", "type": "next", "payload": {"data": {"EventEmit": {"ok": true}}}})
    );
    assert_eq!(ws.recv_data().await, json!({"id": "m", "type": "complete"}));
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    let f = ws.recv_data().await;
    assert_eq!(f["close"], 4409);
    assert_eq!(f["reason"], "Subscriber for 1 already exists");
    // A validation error is an `error` frame with an array payload and no complete.
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"id": "v", "type": "subscribe", "payload": {"query": "subscription { nope }"}}))
        .await;
    let f = ws.recv_data().await;
    assert_eq!(f["type"], "error");
    assert!(f["payload"].is_array(), "{f}");
    ws.assert_silent(200).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_negotiation() {
    let s = TestServer::start().await;
    let echoed = WsClient::connect(&s.ws_url(), Some("graphql-ws"))
        .await
        .protocol()
        .map(str::to_owned);
    assert_eq!(echoed.as_deref(), Some("graphql-ws"));
    // Both offered: the client's first choice wins (RFC 6455 §4.2.2).
    let echoed = WsClient::connect(&s.ws_url(), Some("graphql-ws, graphql-transport-ws"))
        .await
        .protocol()
        .map(str::to_owned);
    assert_eq!(echoed.as_deref(), Some("graphql-ws"));
    let echoed = WsClient::connect(&s.ws_url(), Some("graphql-transport-ws, graphql-ws"))
        .await
        .protocol()
        .map(str::to_owned);
    assert_eq!(echoed.as_deref(), Some("graphql-transport-ws"));
    let echoed = WsClient::connect(&s.ws_url(), Some("mqtt, graphql-transport-ws, graphql-ws"))
        .await
        .protocol()
        .map(str::to_owned);
    assert_eq!(echoed.as_deref(), Some("graphql-transport-ws"));
    // Strict clients abort a handshake without a subprotocol echo, so read the raw bytes.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let handshake = format!(
        "GET /graphql HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let (head_end, close) = loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed before the close frame");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let frame = &buf[end + 4..];
            if frame.len() >= 2 && frame.len() >= 2 + (frame[1] & 0x7f) as usize {
                break (end, frame.to_vec());
            }
        }
    };
    assert!(String::from_utf8_lossy(&buf[..head_end]).starts_with("HTTP/1.1 101"));
    assert_eq!(close[0], 0x88, "a close frame");
    let len = (close[1] & 0x7f) as usize;
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 4406);
    assert_eq!(&close[4..2 + len], b"Subprotocol not acceptable");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_protocol_start_stop_and_anonymous_start() {
    let s = TestServer::start_with(&[
        ("allow_anonymous_access", "true"),
        ("ws_keepalive_interval_ms", "200"),
    ])
    .await;
    let mut ws = WsClient::connect(&s.ws_url(), Some("graphql-ws")).await;
    ws.send(json!({"type": "connection_init", "payload": {"authToken": ADMIN_TOKEN}}))
        .await;
    assert_eq!(ws.recv().await, json!({"type": "connection_ack"}));
    assert_eq!(ws.recv().await, json!({"type": "ka"}));
    ws.send(json!({"id": "1", "type": "start", "payload": {"query": EVENTS, "variables": {"types": ["legacy.x"]}}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = s.emit("legacy.x", "").await;
    let f = ws.recv_data().await;
    assert_eq!(
        (
            f["type"].as_str(),
            f["payload"]["data"]["events"]["id"].as_str()
        ),
        (Some("data"), Some(id.as_str()))
    );
    ws.send(json!({"id": "1", "type": "stop"})).await;
    assert_eq!(ws.recv_data().await, json!({"id": "1", "type": "complete"}));
    // Legacy errors carry a single object (not an array).
    ws.send(json!({"id": "e", "type": "start", "payload": {"query": "subscription { nope }"}}))
        .await;
    let f = ws.recv_data().await;
    assert_eq!(f["type"], "error");
    assert!(
        f["payload"].is_object() && f["payload"]["message"].is_string(),
        "{f}"
    );
    ws.send(json!({"type": "connection_terminate"})).await;
    assert!(ws.recv_data().await.get("close").is_some());
    // A start without init is an anonymous (read-only) session where anonymous access is on.
    let mut ws = WsClient::connect(&s.ws_url(), Some("graphql-ws")).await;
    ws.send(json!({"id": "2", "type": "start", "payload": {"query": "{ Branch { name } }"}}))
        .await;
    assert_eq!(
        ws.recv_data().await["payload"]["data"]["Branch"][0]["name"],
        "main"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_connection_subscription_limit_rejects_only_the_extra_one() {
    let s = TestServer::start_with(&[("max_subscriptions_per_connection", "100")]).await;
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    for id in 1..=101 {
        ws.send(json!({"id": id.to_string(), "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["lim.x"]}}})).await;
    }
    let f = ws.recv_data().await;
    assert_eq!(
        (f["type"].as_str(), f["id"].as_str()),
        (Some("error"), Some("101"))
    );
    assert_eq!(
        f["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.emit("lim.x", "").await;
    let mut ids: Vec<u32> = Vec::new();
    for _ in 0..100 {
        let f = ws.recv_data().await;
        assert_eq!(f["type"], "next", "{f}");
        ids.push(f["id"].as_str().unwrap().parse().unwrap());
    }
    ids.sort();
    assert_eq!(
        ids,
        (1..=100).collect::<Vec<_>>(),
        "the first 100 keep receiving"
    );
    // The connection's other operations keep running: a query still works.
    ws.send(json!({"id": "q", "type": "subscribe", "payload": {"query": "{ Branch { name } }"}}))
        .await;
    assert_eq!(ws.recv_data().await["type"], "next");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_subscriptions_are_multiplexed_and_only_changes_suppresses_repeats() {
    let s = TestServer::start_with(&[
        ("subscriptions.min_interval_ms", "50"),
        ("max_subscriptions_per_connection", "1000"),
    ])
    .await;
    s.admin(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "branches"}, query: {value: "query { Branch { name } }"}}) { ok } }"#, json!({})).await;
    let executions = || async {
        metric(
            &s.metrics().await,
            "infrastream_stored_query_executions_total",
        )
    };
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    let n = 500;
    for i in 0..n {
        ws.send(json!({"id": format!("s{i}"), "type": "subscribe", "payload": {"query": "subscription { query(name: \"branches\", interval: 500) }"}})).await;
    }
    let mut first_results = std::collections::HashSet::new();
    while first_results.len() < n {
        let Ok(f) = tokio::time::timeout(Duration::from_secs(15), ws.recv_data()).await else {
            let m = s.metrics().await;
            panic!(
                "only {} of {n} subscriptions produced a result; metrics:\n{m}",
                first_results.len()
            );
        };
        assert_eq!(
            f["payload"]["data"]["query"]["Branch"][0]["name"], "main",
            "{f}"
        );
        first_results.insert(f["id"].as_str().unwrap().to_string());
    }
    let before = executions().await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let after = executions().await;
    assert!(
        (2..=4).contains(&(after - before)),
        "{n} identical subscriptions ran {} executions in 3 ticks",
        after - before
    );
    // Unknown names fail only that operation.
    ws.send(json!({"id": "bad", "type": "subscribe", "payload": {"query": "subscription { query(name: \"missing\") }"}})).await;
    loop {
        let f = ws.recv_data().await;
        if f["id"] == "bad" {
            assert_eq!(f["type"], "error");
            assert!(
                f["payload"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("missing")
            );
            break;
        }
    }
    // only_changes: one result, then silence while nothing changes.
    let mut ws2 = s.ws().await;
    ws2.init(ADMIN_TOKEN).await;
    ws2.send(json!({"id": "c", "type": "subscribe", "payload": {"query": "subscription { query(name: \"branches\", interval: 100, only_changes: true) }"}})).await;
    assert_eq!(
        ws2.recv_data().await["payload"]["data"]["query"]["Branch"][0]["name"],
        "main"
    );
    ws2.assert_silent(400).await;
    s.admin(
        r#"mutation { BranchCreate(data: {name: "zz"}) { ok } }"#,
        json!({}),
    )
    .await;
    let f = ws2.recv_data().await;
    assert_eq!(
        f["payload"]["data"]["query"]["Branch"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{f}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_revoked_tokens_close_the_socket() {
    let s = TestServer::start_with(&[("token_check_interval_ms", "100")]).await;
    let expiration = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let q = format!(
        r#"mutation {{ a: InfrahubAccountTokenCreate(data: {{name: "short", expiration: "{expiration}"}}) {{ object {{ token {{ value }} }} }} b: InfrahubAccountTokenCreate(data: {{name: "rev"}}) {{ object {{ id token {{ value }} }} }} }}"#
    );
    let data = s.admin(&q, json!({})).await;
    let short = data["a"]["object"]["token"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let revocable = data["b"]["object"]["token"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let revocable_id = data["b"]["object"]["id"].as_str().unwrap().to_string();

    let mut ws = s.ws().await;
    ws.init(&short).await;
    let timed = "subscription { events(event_type: [\"exp.x\"]) { id occurred_at } }";
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": timed}}))
        .await;
    let mut ws2 = s.ws().await;
    ws2.init(&revocable).await;
    ws2.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["exp.x"]}}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.emit("exp.x", "").await;
    assert_eq!(ws.recv_data().await["type"], "next");
    assert_eq!(ws2.recv_data().await["type"], "next");
    s.admin(
        &format!(
            r#"mutation {{ InfrahubAccountTokenDelete(data: {{id: "{revocable_id}"}}) {{ ok }} }}"#
        ),
        json!({}),
    )
    .await;
    let f = ws2.recv_data().await;
    assert_eq!(
        (f["close"].as_u64(), f["reason"].as_str()),
        (Some(4403), Some("Forbidden: credentials expired"))
    );
    // Until expiry events flow; after it, the socket closes within a second and nothing more.
    let expires = chrono::DateTime::parse_from_rfc3339(&expiration)
        .unwrap()
        .with_timezone(&chrono::Utc);
    let emitter = {
        let s_url = s.url.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..30 {
                let body =
                    json!({"query": "mutation { EventEmit(data: {event: \"exp.x\"}) { ok } }"});
                let _ = http
                    .post(format!("{s_url}/graphql"))
                    .header("x-infrahub-key", ADMIN_TOKEN)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    loop {
        let f = ws.recv_data().await;
        let at = chrono::Utc::now();
        if f["type"] == "next" {
            // Frames are only written under valid credentials, so nothing committed after the
            // expiry can arrive (judged by commit time: arrival time depends on the machine's load).
            let committed = f["payload"]["data"]["events"]["occurred_at"]
                .as_str()
                .unwrap();
            let committed = chrono::DateTime::parse_from_rfc3339(committed).unwrap();
            assert!(
                committed <= expires,
                "an event committed after expiry was delivered"
            );
            continue;
        }
        assert_eq!(
            (f["close"].as_u64(), f["reason"].as_str()),
            (Some(4403), Some("Forbidden: credentials expired"))
        );
        assert!(
            at <= expires + chrono::Duration::seconds(1),
            "closed {} ms after expiry",
            (at - expires).num_milliseconds()
        );
        break;
    }
    emitter.abort();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_1001() {
    let s = TestServer::start().await;
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    let stop = tokio::spawn(s.shutdown());
    assert_eq!(ws.recv_data().await["close"], 1001);
    stop.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_far_behind_replays_everything_then_goes_live() {
    // The threshold bounds unsent frames of live delivery; replay is never refused for it.
    let s = TestServer::start_with(&[("subscriptions.lag_close_threshold", "20")]).await;
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    let first = s.emit("lag.x", "").await;
    let mut expected = Vec::new();
    for _ in 0..300 {
        expected.push(s.emit("lag.x", "").await);
    }
    ws.send(json!({"id": "2", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["lag.x"], "after": first}}})).await;
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let f = ws.recv_data().await;
        assert_eq!(f["type"], "next", "{f}");
        got.push(
            f["payload"]["data"]["events"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(got, expected, "every event after `after`, in order");
    // Then live, with no gap or duplicate at the seam.
    let live = s.emit("lag.x", "").await;
    let f = ws.recv_data().await;
    assert_eq!(f["payload"]["data"]["events"]["id"], live.as_str(), "{f}");
    ws.assert_silent(200).await;
    s.shutdown().await;
}

const RICH_SELECTION: &str = "__typename id event branch account_id occurred_at level parent_id has_children \
    primary_node { id kind } related_nodes { id kind } payload alias: event \
    ... on BranchCreatedEvent { created_branch } ... on BranchDeletedEvent { deleted_branch proposed_change_id } \
    ... on BranchMergedEvent { source_branch } ... on BranchRebasedEvent { rebased_branch } \
    ... on ArtifactEvent { checksum storage_id } ... on StandardEvent { __typename }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_rendering_equals_full_execution_for_every_subscriber() {
    let s = TestServer::start().await;
    let query = format!("subscription {{ events {{ {RICH_SELECTION} }} }}");
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let mut ws = s.ws().await;
        ws.init(ADMIN_TOKEN).await;
        ws.send(json!({"id": "x", "type": "subscribe", "payload": {"query": query}}))
            .await;
        sockets.push(ws);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.admin(
        r#"mutation { BranchCreate(data: {name: "sh"}) { ok } }"#,
        json!({}),
    )
    .await;
    let parent = s.emit("share.parent", r#", branch: "sh", primary_node: {id: "n1", kind: "K"}, related_nodes: [{id: "n2", kind: "K"}], payload: {a: [1, 2]}"#).await;
    s.emit("share.child", &format!(r#", parent_id: "{parent}""#))
        .await;
    s.admin(
        r#"mutation { BranchRebase(data: {name: "sh"}) { ok } }"#,
        json!({}),
    )
    .await;
    s.admin(
        r#"mutation { BranchMerge(data: {name: "sh"}) { ok } }"#,
        json!({}),
    )
    .await;
    for _ in 0..5 {
        let frames: Vec<Value> = {
            let mut v = Vec::new();
            for ws in &mut sockets {
                v.push(ws.recv_data().await);
            }
            v
        };
        assert!(
            frames.iter().all(|f| *f == frames[0]),
            "every subscriber gets the same frame"
        );
        let pushed = &frames[0]["payload"]["data"]["events"];
        let id = pushed["id"].as_str().unwrap();
        let q = format!(
            "{{ InfrahubEvent(ids: [\"{id}\"]) {{ edges {{ node {{ {RICH_SELECTION} }} }} }} }}"
        );
        let stored = s.admin(&q, json!({})).await;
        let mut expected = stored["InfrahubEvent"]["edges"][0]["node"].clone();
        // has_children can change after delivery (a child arrives later); compare the rest.
        expected["has_children"] = pushed["has_children"].clone();
        assert_eq!(
            *pushed, expected,
            "shared rendering equals full GraphQL execution"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_subscription_errors_arrive_in_next_and_aliases_are_kept() {
    let s = TestServer::start_with(&[("subscriptions.min_interval_ms", "50")]).await;
    // Valid when saved, but refused when it runs: `limit` is over the page maximum.
    s.admin(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "too_big"}, query: {value: "query { InfrahubEvent(limit: 500) { count } }"}}) { ok } }"#, json!({})).await;
    s.admin(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "info"}, query: {value: "query { InfrahubInfo { version } }"}}) { ok } }"#, json!({})).await;
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"id": "e", "type": "subscribe", "payload": {"query": "subscription { query(name: \"too_big\", interval: 100) }"}})).await;
    let f = ws.recv_data().await;
    assert_eq!(f["type"], "next", "{f}");
    assert_eq!(f["id"], "e");
    let errors = f["payload"]["errors"]
        .as_array()
        .expect("errors in the payload");
    assert!(errors[0]["message"].as_str().unwrap().contains("50"), "{f}");
    assert_eq!(errors[0]["path"], json!(["query"]), "{f}");
    ws.send(json!({"id": "e", "type": "complete"})).await;
    // Two documents differing only by alias get their own response keys.
    ws.send(json!({"id": "a", "type": "subscribe", "payload": {"query": "subscription { mine: query(name: \"info\", interval: 100) }"}})).await;
    ws.send(json!({"id": "b", "type": "subscribe", "payload": {"query": "subscription { query(name: \"info\", interval: 100) }"}})).await;
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 {
        let f = ws.recv_data().await;
        if f["id"] == "e" {
            continue; // a tick already on its way when `complete` was sent
        }
        seen.insert(f["id"].as_str().unwrap().to_owned(), f["payload"].clone());
    }
    assert!(
        seen["a"]["data"]["mine"]["InfrahubInfo"]["version"].is_string(),
        "{seen:?}"
    );
    assert!(
        seen["b"]["data"]["query"]["InfrahubInfo"]["version"].is_string(),
        "{seen:?}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_query_document_for_two_accounts_shows_each_its_own_result() {
    let s = TestServer::start_with(&[("subscriptions.min_interval_ms", "50")]).await;
    s.admin(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "me"}, query: {value: "query { AccountProfile { ... on CoreAccount { name { value } } } }"}}) { ok } }"#, json!({})).await;
    s.admin(
        "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok } }",
        json!({"d": {"name": {"value": "bob"}, "password": {"value": "bob-password-1"}, "role": {"value": "read-only"}}}),
    )
    .await;
    let (bob, _) = s.login_ok("bob", "bob-password-1").await;
    // The same document for both: the groups differ (by account), the rendering must too.
    let doc = "subscription { query(name: \"me\", interval: 50) }";
    let mut admin_ws = s.ws().await;
    admin_ws.init(ADMIN_TOKEN).await;
    let mut bob_ws = s.ws().await;
    bob_ws.send(json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {bob}")}}),
    )
    .await;
    assert_eq!(bob_ws.recv().await, json!({"type": "connection_ack"}));
    admin_ws
        .send(json!({"id": "a", "type": "subscribe", "payload": {"query": doc}}))
        .await;
    bob_ws
        .send(json!({"id": "b", "type": "subscribe", "payload": {"query": doc}}))
        .await;
    for _ in 0..10 {
        let a = admin_ws.recv_data().await;
        let b = bob_ws.recv_data().await;
        let name =
            |f: &Value| f["payload"]["data"]["query"]["AccountProfile"]["name"]["value"].clone();
        assert_eq!(name(&a), "admin", "{a}");
        assert_eq!(name(&b), "bob", "{b}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_gauges_count_live_subscriptions() {
    let s = TestServer::start_with(&[("subscriptions.min_interval_ms", "50")]).await;
    s.admin(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "info"}, query: {value: "query { InfrahubInfo { version } }"}}) { ok } }"#, json!({})).await;
    let gauge = |field: &'static str| {
        let s = &s;
        async move {
            metric(
                &s.metrics().await,
                &format!("infrastream_subscriptions{{field=\"{field}\"}}"),
            )
        }
    };
    let mut ws = s.ws().await;
    ws.init(ADMIN_TOKEN).await;
    ws.send(json!({"id": "e", "type": "subscribe", "payload": {"query": EVENTS}}))
        .await;
    ws.send(json!({"id": "q", "type": "subscribe", "payload": {"query": "subscription { query(name: \"info\", interval: 50) }"}})).await;
    // Both are live once an event and two ticks arrived.
    s.emit("gauge.x", "").await;
    let (mut events, mut ticks) = (0, 0);
    while events < 1 || ticks < 2 {
        let f = ws.recv_data().await;
        match f["id"].as_str() {
            Some("e") => events += 1,
            Some("q") => ticks += 1,
            _ => panic!("{f}"),
        }
    }
    assert_eq!(gauge("events").await, 1);
    assert_eq!(gauge("query").await, 1);
    ws.send(json!({"id": "e", "type": "complete"})).await;
    ws.send(json!({"id": "q", "type": "complete"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gauge("events").await, 0);
    assert_eq!(gauge("query").await, 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_arrive_every_interval_on_both_protocols() {
    let s = TestServer::start_with(&[("ws_keepalive_interval_ms", "200")]).await;
    // Legacy: `ka` messages after the one that follows the ack.
    let mut legacy = WsClient::connect(&s.ws_url(), Some("graphql-ws")).await;
    legacy
        .send(json!({"type": "connection_init", "payload": {"authToken": ADMIN_TOKEN}}))
        .await;
    assert_eq!(legacy.recv().await, json!({"type": "connection_ack"}));
    assert_eq!(legacy.recv().await, json!({"type": "ka"}));
    for _ in 0..3 {
        let f = tokio::time::timeout(Duration::from_millis(1000), legacy.recv())
            .await
            .expect("a ka within 5 intervals");
        assert_eq!(f, json!({"type": "ka"}));
    }
    // graphql-transport-ws: WebSocket ping frames, and no protocol message.
    let mut modern = s.ws().await;
    modern.init(ADMIN_TOKEN).await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(1000);
    while let Ok(Some(msg)) = tokio::time::timeout_at(until, modern.inner().next()).await {
        match msg.unwrap() {
            Message::Ping(_) => pings += 1,
            Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pings >= 2,
        "{pings} ping frames in 1 s at a 200 ms interval"
    );
    s.shutdown().await;
}
