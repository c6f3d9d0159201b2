//! A third-party Rust GraphQL-over-WebSocket client against a real server: the
//! `graphql-ws-client` crate (graphql-transport-ws only), with the same scenario as the
//! conformance suites (conformance/gql, conformance/node-ws): `events` subscriptions by event
//! type and by branch plus a `query(name:)` subscription on one connection, events caused over
//! HTTP, exactly the matching events in order, then the frames on the wire.
//!
//! No graphql-ws-client release has a tokio-tungstenite 0.29 integration (0.13.0, the newest,
//! stops at tungstenite 0.28, and this workspace uses 0.29), so the connection goes through the
//! crate's own extension point, its `Connection` trait, implemented below over the workspace's
//! tokio-tungstenite 0.29: a frame-for-frame adapter (text, ping, pong, close) that also records
//! the text frames. Everything of the protocol (init, ack, subscribe, next, complete, ping/pong,
//! keep-alive) is the crate's.

use futures::{SinkExt, StreamExt};
use graphql_ws_client::graphql::GraphqlOperation;
use graphql_ws_client::{Client, ClientBuilder, Connection};
use infrastream_testkit::ws::Ws;
use infrastream_testkit::{ADMIN_TOKEN, TestServer, WsClient};
use serde_json::{Value, json};
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

const SETTLE: Duration = Duration::from_millis(300);
const QUIET: Duration = Duration::from_millis(500);
const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    In,
    Out,
}

type Frames = Arc<Mutex<Vec<(Dir, Value)>>>;

/// `graphql_ws_client::Connection` over tokio-tungstenite 0.29, recording every text frame.
struct Recorded {
    ws: Ws,
    frames: Frames,
}

impl Recorded {
    fn record(&self, dir: Dir, text: &str) {
        let v = serde_json::from_str(text).unwrap_or_else(|_| json!({"unparsable": text}));
        self.frames.lock().unwrap().push((dir, v));
    }
}

impl Connection for Recorded {
    async fn receive(&mut self) -> Option<graphql_ws_client::Message> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => {
                    self.record(Dir::In, &text);
                    return Some(graphql_ws_client::Message::Text(text.to_string()));
                }
                Ok(Message::Ping(_)) => return Some(graphql_ws_client::Message::Ping),
                Ok(Message::Pong(_)) => return Some(graphql_ws_client::Message::Pong),
                Ok(Message::Close(frame)) => {
                    return Some(graphql_ws_client::Message::Close {
                        code: frame.as_ref().map(|f| f.code.into()),
                        reason: frame.map(|f| f.reason.to_string()),
                    });
                }
                Ok(Message::Binary(_) | Message::Frame(_)) => continue,
                Err(_) => return None,
            }
        }
    }

    async fn send(
        &mut self,
        message: graphql_ws_client::Message,
    ) -> Result<(), graphql_ws_client::Error> {
        let message = match message {
            graphql_ws_client::Message::Text(text) => {
                self.record(Dir::Out, &text);
                Message::Text(text.into())
            }
            graphql_ws_client::Message::Close { code, reason } => {
                Message::Close(code.zip(reason).map(|(code, reason)| {
                    tungstenite::protocol::CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    }
                }))
            }
            graphql_ws_client::Message::Ping => Message::Ping(Default::default()),
            graphql_ws_client::Message::Pong => Message::Pong(Default::default()),
        };
        self.ws
            .send(message)
            .await
            .map_err(|e| graphql_ws_client::Error::Send(e.to_string()))
    }
}

/// An operation whose response is the raw `{data, errors}` payload.
#[derive(serde::Serialize)]
struct Op {
    query: String,
}

impl GraphqlOperation for Op {
    type Response = Value;
    type Error = serde_json::Error;

    fn decode(&self, data: Value) -> Result<Value, serde_json::Error> {
        Ok(data)
    }
}

/// Opens the socket: `offer` is the `Sec-WebSocket-Protocol` request header (None: no header).
/// Returns the recording connection and the echoed subprotocol.
async fn open(s: &TestServer, offer: Option<&str>) -> (Recorded, Frames, Option<String>) {
    let client = WsClient::connect(&s.ws_url(), offer).await;
    let echoed = client.protocol().map(str::to_owned);
    let frames = Frames::default();
    let conn = Recorded {
        ws: client.into_inner(),
        frames: frames.clone(),
    };
    (conn, frames, echoed)
}

/// Results of one subscription, collected by a task (so that the crate's bounded buffer never
/// stalls the connection); aborting the task drops the subscription, which sends `complete`.
struct Collected {
    results: Arc<Mutex<Vec<Value>>>,
    ended: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn collect(client: &Client, query: String) -> Collected {
    let mut sub = client.subscribe(Op { query }).await.unwrap();
    let results = Arc::new(Mutex::new(Vec::new()));
    let ended = Arc::new(Mutex::new(None));
    let (r, e) = (results.clone(), ended.clone());
    let task = tokio::spawn(async move {
        while let Some(item) = sub.next().await {
            match item {
                Ok(v) => r.lock().unwrap().push(v),
                Err(err) => {
                    *e.lock().unwrap() = Some(format!("error: {err}"));
                    return;
                }
            }
        }
        *e.lock().unwrap() = Some("completed by the server".into());
    });
    Collected {
        results,
        ended,
        task,
    }
}

impl Collected {
    fn len(&self) -> usize {
        self.results.lock().unwrap().len()
    }
    fn all(&self) -> Vec<Value> {
        self.results.lock().unwrap().clone()
    }
    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap().clone()
    }
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn branch_names(result: &Value) -> Vec<String> {
    assert!(result.get("errors").is_none(), "{result}");
    result["data"]["query"]["Branch"]
        .as_array()
        .unwrap_or_else(|| panic!("query subscription result: {result}"))
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect()
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The scenario on one connection built by `builder`; returns the recorded frames.
async fn scenario(s: &TestServer, builder: ClientBuilder, frames: Frames) -> Vec<(Dir, Value)> {
    let sx = suffix();
    let (b, d, conf, q) = (
        format!("b-{sx}"),
        format!("d-{sx}"),
        format!("conf.{sx}"),
        format!("q-{sx}"),
    );
    s.admin(
        "mutation($n: String!, $q: String!) { CoreGraphQLQueryCreate(data: \
         {name: {value: $n}, query: {value: $q}}) { ok } }",
        json!({"n": q, "q": "query { Branch { name } }"}),
    )
    .await;

    let (client, actor) = builder
        .payload(json!({"X-INFRAHUB-KEY": ADMIN_TOKEN}))
        .unwrap()
        .await
        .expect("connection_init acknowledged");
    let actor = tokio::spawn(actor.into_future());

    let a = collect(
        &client,
        format!(
            "subscription {{ events(event_type: [\"infrahub.branch.created\", \
             \"infrahub.branch.merged\", \"infrahub.branch.deleted\", \"{conf}\"]) \
             {{ __typename id event branch ... on BranchCreatedEvent {{ created_branch }} \
             ... on BranchMergedEvent {{ source_branch }} \
             ... on BranchDeletedEvent {{ deleted_branch }} }} }}"
        ),
    )
    .await;
    let bb = collect(
        &client,
        format!(
            "subscription {{ events(branches: [\"{b}\"]) {{ __typename id event branch \
             ... on BranchRebasedEvent {{ rebased_branch }} }} }}"
        ),
    )
    .await;
    let c = collect(
        &client,
        format!("subscription {{ query(name: \"{q}\", interval: 300) }}"),
    )
    .await;
    let subs = [&a, &bb, &c];
    let ended = || subs.iter().filter_map(|x| x.ended()).collect::<Vec<_>>();

    until("the first query(name:) result", || {
        c.len() > 0 || !ended().is_empty()
    })
    .await;
    assert_eq!(ended(), Vec::<String>::new());
    let first = branch_names(&c.all()[0]);
    assert!(
        first.contains(&"main".into()) && !first.contains(&b),
        "{first:?}"
    );
    tokio::time::sleep(SETTLE).await;
    assert_eq!((a.len(), bb.len()), (0, 0), "nothing before the events");

    // ---- cause events over HTTP ----
    let mutate = |q: &'static str, vars: Value| async move { s.admin(q, vars).await };
    mutate(
        "mutation($n: String!) { BranchCreate(data: {name: $n}) { ok } }",
        json!({"n": b}),
    )
    .await;
    let e1 = mutate(
        "mutation($e: String!, $b: String) { EventEmit(data: {event: $e, branch: $b}) \
         { ok object { id } } }",
        json!({"e": conf, "b": b}),
    )
    .await["EventEmit"]["object"]["id"]
        .clone();
    let e2 = mutate(
        "mutation($e: String!) { EventEmit(data: {event: $e}) { ok object { id } } }",
        json!({"e": conf}),
    )
    .await["EventEmit"]["object"]["id"]
        .clone();
    for (m, n) in [
        ("BranchRebase", &b),
        ("BranchMerge", &b),
        ("BranchCreate", &d),
        ("BranchDelete", &d),
    ] {
        let q = format!("mutation($n: String!) {{ {m}(data: {{name: $n}}) {{ ok }} }}");
        let data = s.admin(&q, json!({"n": n})).await;
        assert_eq!(data[m]["ok"], true, "{data}");
    }

    let expected_a = [
        json!({"__typename": "BranchCreatedEvent", "event": "infrahub.branch.created", "branch": null, "created_branch": b}),
        json!({"__typename": "StandardEvent", "event": conf, "branch": b, "id": e1}),
        json!({"__typename": "StandardEvent", "event": conf, "branch": null, "id": e2}),
        json!({"__typename": "BranchMergedEvent", "event": "infrahub.branch.merged", "branch": null, "source_branch": b}),
        json!({"__typename": "BranchCreatedEvent", "event": "infrahub.branch.created", "branch": null, "created_branch": d}),
        json!({"__typename": "BranchDeletedEvent", "event": "infrahub.branch.deleted", "branch": null, "deleted_branch": d}),
    ];
    let expected_b = [
        json!({"__typename": "StandardEvent", "event": conf, "branch": b, "id": e1}),
        json!({"__typename": "BranchRebasedEvent", "event": "infrahub.branch.rebased", "branch": b, "rebased_branch": b}),
    ];
    until("6 events on A and 2 on B", || {
        !ended().is_empty() || (a.len() >= expected_a.len() && bb.len() >= expected_b.len())
    })
    .await;
    tokio::time::sleep(QUIET).await;
    until("a query(name:) result listing the new branch", || {
        c.all().iter().any(|r| branch_names(r).contains(&b))
    })
    .await;
    assert_eq!(ended(), Vec::<String>::new());

    let check = |label: &str, got: Vec<Value>, want: &[Value]| -> Vec<Value> {
        let events: Vec<Value> = got
            .iter()
            .map(|r| {
                assert!(r.get("errors").is_none(), "{label}: {r}");
                r["data"]["events"].clone()
            })
            .collect();
        assert_eq!(events.len(), want.len(), "{label}: exactly: {events:#?}");
        for (i, (ev, w)) in events.iter().zip(want).enumerate() {
            let id = ev["id"].as_str().unwrap_or_default();
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{label}[{i}].id {ev}");
            for (k, v) in w.as_object().unwrap() {
                assert_eq!(&ev[k], v, "{label}[{i}].{k} in {events:#?}");
            }
        }
        events
    };
    let got_a = check("A", a.all(), &expected_a);
    let got_b = check("B", bb.all(), &expected_b);
    assert_eq!(got_a[1]["id"], got_b[0]["id"], "conf(b) is one event");
    let results_c = c.all();
    assert!(results_c.len() >= 3, "query(name:) ticked: {results_c:?}");
    for r in &results_c {
        assert!(branch_names(r).contains(&"main".into()), "{r}");
    }
    let last = branch_names(results_c.last().unwrap());
    assert!(last.contains(&b) && !last.contains(&d), "{last:?}");

    // Unsubscribe (dropping a subscription makes the client send `complete`), then close.
    for x in subs {
        x.task.abort();
    }
    tokio::time::sleep(QUIET).await;
    client.close(1000, "done").await;
    tokio::time::timeout(TIMEOUT, actor)
        .await
        .expect("the connection actor ends after close")
        .unwrap();
    frames.lock().unwrap().clone()
}

/// graphql-transport-ws on the wire: init with the payload, ack first, then only
/// next/ping/pong; each subscribe completed by the client, no complete echoed by the server.
fn check_frames(frames: &[(Dir, Value)]) {
    let types = |dir: Dir| -> Vec<String> {
        frames
            .iter()
            .filter(|(d, _)| *d == dir)
            .map(|(_, m)| m["type"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    let ids = |dir: Dir, ty: &str| -> Vec<String> {
        let mut v: Vec<String> = frames
            .iter()
            .filter(|(d, m)| *d == dir && m["type"] == ty)
            .map(|(_, m)| m["id"].as_str().unwrap_or("?").to_string())
            .collect();
        v.sort();
        v
    };
    let (inbound, outbound) = (types(Dir::In), types(Dir::Out));
    assert_eq!(outbound[0], "connection_init", "{outbound:?}");
    assert_eq!(
        frames[0].1["payload"],
        json!({"X-INFRAHUB-KEY": ADMIN_TOKEN})
    );
    assert_eq!(inbound[0], "connection_ack", "{inbound:?}");
    let unexpected: Vec<_> = inbound[1..]
        .iter()
        .filter(|t| !["next", "ping", "pong"].contains(&t.as_str()))
        .collect();
    assert!(unexpected.is_empty(), "after the ack: {inbound:?}");
    let started = ids(Dir::Out, "subscribe");
    assert_eq!(started.len(), 3, "{outbound:?}");
    assert_eq!(ids(Dir::Out, "complete"), started, "{outbound:?}");
}

/// The crate as its own tests and examples use it: `Sec-WebSocket-Protocol:
/// graphql-transport-ws` on the request, `Client::build(connection)` with the init payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_client_default() {
    let s = TestServer::start().await;
    let (conn, frames, echoed) = open(&s, Some("graphql-transport-ws")).await;
    assert_eq!(echoed.as_deref(), Some("graphql-transport-ws"));
    let frames = scenario(&s, Client::build(conn), frames).await;
    check_frames(&frames);
    s.shutdown().await;
}

/// No `Sec-WebSocket-Protocol` on the request: the server speaks graphql-transport-ws without
/// echoing one (a client that offered none must fail on an echo, RFC 6455 §4.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_client_without_subprotocol_header() {
    let s = TestServer::start().await;
    let (conn, frames, echoed) = open(&s, None).await;
    assert_eq!(echoed, None);
    let frames = scenario(&s, Client::build(conn), frames).await;
    check_frames(&frames);
    s.shutdown().await;
}

/// Explicit variant: the client's keep-alive pings (every 100 ms of silence; the `query`
/// subscription ticks every 300 ms) are answered with pongs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_ws_client_keep_alive() {
    let s = TestServer::start().await;
    let (conn, frames, echoed) = open(&s, Some("graphql-transport-ws")).await;
    assert_eq!(echoed.as_deref(), Some("graphql-transport-ws"));
    let builder = Client::build(conn)
        .keep_alive_interval(Duration::from_millis(100))
        .keep_alive_retries(50);
    let frames = scenario(&s, builder, frames).await;
    check_frames(&frames);
    let count = |dir: Dir, ty: &str| {
        frames
            .iter()
            .filter(|(d, m)| *d == dir && m["type"] == ty)
            .count()
    };
    let (pings, pongs) = (count(Dir::Out, "ping"), count(Dir::In, "pong"));
    assert!(pings >= 1, "the client pinged");
    assert!(pongs >= 1 && pongs <= pings, "{pings} pings, {pongs} pongs");
    s.shutdown().await;
}
