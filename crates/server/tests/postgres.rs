//! Servers on PostgreSQL (`store = "postgres"`): two servers started together on one new
//! database are one deployment — each sees the other's commits, and a subscriber on one
//! receives the events committed through the other.
//!
//! Needs `INFRASTREAM_TEST_DATABASE_URL` (see `conformance::postgres`); skipped without it
//! unless `INFRASTREAM_REQUIRE_POSTGRES=1`.

use infrastream_store::conformance::postgres::fresh_database_url;
use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

const EVENTS: &str =
    "subscription($types: [String!]) { events(event_type: $types) { id event branch } }";

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let r = s.http.get(format!("{}{path}", s.url)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_share_the_event_log() {
    let Some(url) = fresh_database_url("two_servers_on_one_database_share_the_event_log").await
    else {
        return;
    };
    let settings = [("store", "postgres"), ("database_url", url.as_str())];
    // Started together on an empty database: one first start between them.
    let (a, b) = tokio::join!(
        TestServer::start_with(&settings),
        TestServer::start_with(&settings)
    );
    for s in [&a, &b] {
        assert_eq!(get(s, "/ready").await, (200, json!({"status": "ready"})));
    }
    let (_, info_a) = get(&a, "/api/info").await;
    let (_, info_b) = get(&b, "/api/info").await;
    assert_eq!(info_a["deployment_id"], info_b["deployment_id"]);

    // A subscriber on b, a branch created through a.
    let mut on_b = b.ws().await;
    on_b.init(ADMIN_TOKEN).await;
    on_b.send(json!({"id": "1", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["infrahub.branch.created"]}}}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let created = a
        .admin(
            r#"mutation { BranchCreate(data: {name: "feature/pg"}) { ok object { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(created["BranchCreate"]["object"]["name"], "feature/pg");
    let f = on_b.recv_data_within(Duration::from_secs(10)).await;
    assert_eq!(f["id"], "1", "{f}");
    assert_eq!(
        f["payload"]["data"]["events"]["event"],
        "infrahub.branch.created"
    );
    let branches = b.admin("{ Branch { name } }", json!({})).await;
    let names: Vec<&str> = branches["Branch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["feature/pg", "main"]);

    // And the other way round, in commit order.
    let mut on_a = a.ws().await;
    on_a.init(ADMIN_TOKEN).await;
    on_a.send(json!({"id": "2", "type": "subscribe", "payload": {"query": EVENTS, "variables": {"types": ["pg.x"]}}}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut emitted = Vec::new();
    for i in 0..6 {
        let through = if i % 2 == 0 { &a } else { &b };
        emitted.push(through.emit("pg.x", "").await);
    }
    for id in emitted {
        let f = on_a.recv_data_within(Duration::from_secs(10)).await;
        assert_eq!(f["payload"]["data"]["events"]["id"], id.as_str(), "{f}");
    }
    on_a.assert_silent(300).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// Waits for the close frame of `ws`; its code.
async fn close_code(ws: &mut infrastream_testkit::WsClient) -> Option<u64> {
    loop {
        match ws.recv_timeout(Duration::from_secs(10)).await {
            Some(f) if f.get("close").is_some() => return f["close"].as_u64(),
            Some(f) if f.get("closed").is_none() => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_server_closes_its_sockets_on_the_other() {
    let Some(url) =
        fresh_database_url("a_token_revoked_through_one_server_closes_its_sockets_on_the_other")
            .await
    else {
        return;
    };
    let settings = [("store", "postgres"), ("database_url", url.as_str())];
    let a = TestServer::start_with(&settings).await;
    let b = TestServer::start_with(&settings).await;
    let created = a
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
    // The token works on b, over HTTP and on a socket.
    let mut on_b = b.ws().await;
    on_b.init(&secret).await;
    on_b.subscribe("1", "subscription { events { id } }", Value::Null)
        .await;
    let mut admin_on_b = b.ws().await;
    admin_on_b.init(ADMIN_TOKEN).await;
    admin_on_b
        .subscribe("1", "subscription { events { id } }", Value::Null)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let revoked = a
        .admin(
            "mutation($id: String!) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(revoked["InfrahubAccountTokenDelete"]["ok"], true);
    assert_eq!(close_code(&mut on_b).await, Some(4403), "closed on b");
    // b refuses the token over HTTP at once, and the admin's socket on b lives on.
    let r = b
        .http
        .post(format!("{}/graphql", b.url))
        .header("X-INFRAHUB-KEY", &secret)
        .json(&json!({"query": "{ Branch { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let id = a.emit("pg.after", "").await;
    let f = admin_on_b.recv_data_within(Duration::from_secs(10)).await;
    assert_eq!(f["payload"]["data"]["events"]["id"], id.as_str(), "{f}");
    a.shutdown().await;
    b.shutdown().await;
}
