//! Revocation at scale: one API token shared by 1,000 subscribed sockets is revoked, and every
//! one of them is closed with 4403 within one second of the revoking mutation's answer —
//! checked by one credential watcher, not a timer per socket. Sockets on another token stay
//! open and keep receiving events.

mod common;

use common::{ADMIN_TOKEN, TestServer};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SOCKETS: usize = 1000;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribed(url: &str, token: &str) -> Ws {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": token}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert_eq!(ack.to_text().unwrap(), r#"{"type":"connection_ack"}"#);
    let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { events { id } }"}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    ws
}

/// Waits for the close frame; returns its code and when it arrived.
async fn closed(mut ws: Ws) -> (Option<u16>, Instant) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => {
                return (f.map(|f| u16::from(f.code)), Instant::now());
            }
            Ok(Some(Ok(_))) => continue,
            Ok(_) | Err(_) => return (None, Instant::now()),
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
    let url = s.url.replace("http://", "ws://") + "/graphql";
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
        let msg = tokio::time::timeout(Duration::from_secs(10), other.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "next" && v["payload"]["data"]["events"]["id"] == emitted.as_str() {
            break;
        }
    }
    s.shutdown().await;
}
