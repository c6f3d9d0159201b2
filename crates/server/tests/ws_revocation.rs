//! Revocation at scale: one API token shared by 1,000 subscribed sockets is revoked, and every
//! one of them is closed with 4403 within one second of the revoking mutation's answer —
//! checked by one credential watcher, not a timer per socket. Sockets on another token stay
//! open and keep receiving events.

use infrastream_testkit::{ADMIN_TOKEN, TestServer, WS_TIMEOUT, WsClient};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SOCKETS: usize = 1000;

async fn subscribed(url: &str, token: &str) -> WsClient {
    let mut ws = WsClient::connect(url, Some("graphql-transport-ws")).await;
    ws.init(token).await;
    ws.subscribe("1", "subscription { events { id } }", Value::Null)
        .await;
    ws
}

/// Waits for the close frame; returns its code and when it arrived.
async fn closed(mut ws: WsClient) -> (Option<u16>, Instant) {
    loop {
        let f = ws.recv_timeout(WS_TIMEOUT).await;
        match f {
            Some(f) if f.get("close").is_some() => {
                return (f["close"].as_u64().map(|c| c as u16), Instant::now());
            }
            Some(f) if f.get("closed").is_none() => continue,
            _ => return (None, Instant::now()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_closes_all_1000_of_its_sockets_within_a_second() {
    let s = TestServer::start().await;
    let created = s
        .admin(
            "mutation { InfrahubAccountTokenCreate(data: {name: \"shared\"}) { ok object { id token { value } } } }",
            json!({}),
        )
        .await;
    let object = &created["InfrahubAccountTokenCreate"]["object"];
    let (id, secret) = (
        object["id"].as_str().unwrap().to_owned(),
        object["token"]["value"].as_str().unwrap().to_owned(),
    );
    let url = s.ws_url();
    let mut sockets = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS {
        sockets.push(subscribed(&url, &secret).await);
    }
    let mut other = subscribed(&url, ADMIN_TOKEN).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(closed(ws)))
        .collect();

    let revoked: Value = s
        .admin(
            "mutation($id: String!) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
            json!({"id": id}),
        )
        .await;
    let answered = Instant::now();
    assert_eq!(revoked["InfrahubAccountTokenDelete"]["ok"], true);
    let mut slowest = Duration::ZERO;
    for w in waiting {
        let (code, at) = w.await.unwrap();
        assert_eq!(code, Some(4403), "closed with 4403 Forbidden");
        slowest = slowest.max(at.saturating_duration_since(answered));
    }
    println!("all {SOCKETS} sockets of the revoked token closed {slowest:?} after the answer");
    assert!(
        slowest <= Duration::from_secs(1),
        "the last socket closed {slowest:?} after the revocation"
    );

    // The admin's socket is unaffected.
    let emitted = s.emit("after.revocation", "").await;
    loop {
        let v = other.recv().await;
        if v["type"] == "next" && v["payload"]["data"]["events"]["id"] == emitted.as_str() {
            break;
        }
    }
    s.shutdown().await;
}
