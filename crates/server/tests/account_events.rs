//! Account events as Infrahub 1.11 emits them, against a real server: a password login
//! records `infrahub.account.logged_in` and `POST /api/auth/logout` records
//! `infrahub.account.logged_out` (`AccountLoggedInEventType`, `AccountLoggedOutEventType`, with
//! Infrahub's fields) and ends the session — its refresh and access tokens are refused and the
//! sockets it authenticated are closed. Only callers allowed to manage accounts (admins) see
//! account events, in `InfrahubEvent` and on the `events` subscription (live and replayed);
//! anyone else does not, and naming them in `event_type` is FORBIDDEN.

use base64::Engine;
use infrastream_testkit::http::send;
use infrastream_testkit::{
    ADMIN_PASSWORD, ADMIN_TOKEN, Auth, Resp, TestServer, WsClient, assert_error_entry,
    assert_error_reply,
};
use serde_json::{Value, json};
use std::time::Duration;

const PROBE: &str = "{ InfrahubInfo { version } }";
const READER_PASSWORD: &str = "reader-password";
const WRITER_PASSWORD: &str = "writer-password";

/// Every field of both account event types, and of the interface.
const NODE: &str = "__typename id event branch account_id occurred_at level parent_id \
    has_children primary_node { id kind } related_nodes { id kind } payload \
    ... on AccountLoggedInEventType { account_name account_type auth_method client_ip groups \
        identity_source kind roles session_id timestamp user_agent } \
    ... on AccountLoggedOutEventType { account_name client_ip kind logout_type session_id \
        timestamp user_agent }";

/// Creates an account through the API; returns its id.
async fn create_account(s: &TestServer, name: &str, password: &str, role: &str) -> String {
    let data = s
        .admin(
            "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok object { id } } }",
            json!({"d": {"name": {"value": name}, "password": {"value": password}, "role": {"value": role}}}),
        )
        .await;
    data["CoreAccountCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `POST /api/auth/login` with a `User-Agent`; returns (access, refresh).
async fn login(s: &TestServer, name: &str, password: &str, agent: &str) -> (String, String) {
    let body = json!({"username": name, "password": password}).to_string();
    let r = send(
        &s.http,
        "POST",
        &format!("{}/api/auth/login", s.url),
        &[("content-type", "application/json"), ("user-agent", agent)],
        Some(body.into_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "login {name}: {}", r.text);
    let token = |k: &str| r.json[k].as_str().unwrap().to_owned();
    (token("access_token"), token("refresh_token"))
}

/// `POST /api/auth/logout` with `headers`.
async fn logout(s: &TestServer, headers: &[(&str, &str)]) -> Resp {
    send(
        &s.http,
        "POST",
        &format!("{}/api/auth/logout", s.url),
        headers,
        None,
    )
    .await
}

async fn refresh(s: &TestServer, refresh_token: &str) -> Resp {
    let bearer = format!("Bearer {refresh_token}");
    send(
        &s.http,
        "POST",
        &format!("{}/api/auth/refresh", s.url),
        &[("authorization", bearer.as_str())],
        None,
    )
    .await
}

/// The `session_id` claim of a JWT.
fn session_of(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["session_id"].as_str().unwrap().to_owned()
}

/// `InfrahubEvent(<args>)` as `auth`: (status, body).
async fn events_as(s: &TestServer, auth: Auth<'_>, args: &str) -> (u16, Value) {
    let q = format!("{{ InfrahubEvent({args}) {{ count edges {{ node {{ {NODE} }} }} }} }}");
    s.post_as("/graphql", auth, &q, json!({})).await
}

/// The nodes of `InfrahubEvent(<args>)` as `auth`, asserting success; and the count.
async fn nodes_as(s: &TestServer, auth: Auth<'_>, args: &str) -> (Vec<Value>, i64) {
    let (status, body) = events_as(s, auth, args).await;
    assert_eq!(status, 200, "{args}: {body}");
    assert!(body.get("errors").is_none(), "{args}: {body}");
    let page = &body["data"]["InfrahubEvent"];
    let nodes = page["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    (nodes, page["count"].as_i64().unwrap())
}

fn names(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n["event"].as_str().unwrap().to_owned())
        .collect()
}

fn timestamp(v: &Value) -> chrono::DateTime<chrono::Utc> {
    infrastream_core::parse_timestamp(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn login_and_logout_record_the_events_with_infrahubs_fields() {
    let s = TestServer::start().await;
    let reader = create_account(&s, "reader", READER_PASSWORD, "read-only").await;
    let before = infrastream_core::now();
    let (access, refresh_token) = login(&s, "reader", READER_PASSWORD, "login-agent/1.0").await;
    let after = infrastream_core::now();
    let session = session_of(&access);
    assert_eq!(session_of(&refresh_token), session);

    let (nodes, count) = nodes_as(
        &s,
        Auth::Token(ADMIN_TOKEN),
        r#"event_type: ["infrahub.account.logged_in"]"#,
    )
    .await;
    assert_eq!(count, 1);
    let n = &nodes[0];
    let login_at = timestamp(&n["timestamp"]);
    assert!(before <= login_at && login_at <= after, "{n}");
    assert!(timestamp(&n["occurred_at"]) >= login_at, "{n}");
    let data = json!({
        "kind": "CoreAccount",
        "account_id": reader,
        "account_name": "reader",
        "account_type": "User",
        "auth_method": "password",
        "session_id": session,
        "groups": [],
        "roles": ["read-only"],
        "identity_source": null,
        "client_ip": "127.0.0.1",
        "user_agent": "login-agent/1.0",
        "timestamp": n["timestamp"],
    });
    let want = json!({
        "__typename": "AccountLoggedInEventType",
        "id": n["id"],
        "event": "infrahub.account.logged_in",
        "branch": "main",
        "account_id": reader,
        "occurred_at": n["occurred_at"],
        "level": 0,
        "parent_id": null,
        "has_children": false,
        "primary_node": {"id": reader, "kind": "CoreAccount"},
        "related_nodes": [],
        "payload": {"data": data, "context": {"account_id": reader, "branch": "main"}},
        "account_name": "reader",
        "account_type": "User",
        "auth_method": "password",
        "client_ip": "127.0.0.1",
        "groups": [],
        "identity_source": null,
        "kind": "CoreAccount",
        "roles": ["read-only"],
        "session_id": session,
        "timestamp": n["timestamp"],
        "user_agent": "login-agent/1.0",
    });
    assert_eq!(n, &want);

    // Logout with the session's access token: `null`, the token cookies cleared.
    let bearer = format!("Bearer {access}");
    let before = infrastream_core::now();
    let r = logout(
        &s,
        &[
            ("authorization", bearer.as_str()),
            ("user-agent", "logout-agent/2.0"),
        ],
    )
    .await;
    let after = infrastream_core::now();
    assert_eq!((r.status, r.text.as_str()), (200, "null"), "logout");
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    for name in ["access_token", "refresh_token"] {
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with(&format!("{name}=")) && c.contains("Max-Age=0")),
            "{name} cleared: {cookies:?}"
        );
    }
    let (nodes, count) = nodes_as(
        &s,
        Auth::Token(ADMIN_TOKEN),
        r#"event_type: ["infrahub.account.logged_out"]"#,
    )
    .await;
    assert_eq!(count, 1);
    let n = &nodes[0];
    let logout_at = timestamp(&n["timestamp"]);
    assert!(before <= logout_at && logout_at <= after, "{n}");
    let data = json!({
        "kind": "CoreAccount",
        "account_id": reader,
        "account_name": "reader",
        "session_id": session,
        "logout_type": "user_initiated",
        "client_ip": "127.0.0.1",
        "user_agent": "logout-agent/2.0",
        "timestamp": n["timestamp"],
    });
    let want = json!({
        "__typename": "AccountLoggedOutEventType",
        "id": n["id"],
        "event": "infrahub.account.logged_out",
        "branch": "main",
        "account_id": reader,
        "occurred_at": n["occurred_at"],
        "level": 0,
        "parent_id": null,
        "has_children": false,
        "primary_node": {"id": reader, "kind": "CoreAccount"},
        "related_nodes": [],
        "payload": {"data": data, "context": {"account_id": reader, "branch": "main"}},
        "account_name": "reader",
        "client_ip": "127.0.0.1",
        "kind": "CoreAccount",
        "logout_type": "user_initiated",
        "session_id": session,
        "timestamp": n["timestamp"],
        "user_agent": "logout-agent/2.0",
    });
    assert_eq!(n, &want);

    // The session is over: its refresh token and its access token are refused.
    let m = assert_error_reply(
        "refresh after logout",
        &refresh(&s, &refresh_token).await,
        401,
        "UNAUTHENTICATED",
    );
    assert_eq!(
        m,
        "The refresh token has been invalidated: its session was logged out"
    );
    let (status, body) = s
        .post_as("/graphql", Auth::Bearer(&access), PROBE, json!({}))
        .await;
    assert_eq!(status, 401, "{body}");
    let m = assert_error_entry("access token after logout", &body, "UNAUTHENTICATED", 401);
    assert_eq!(
        m,
        "The access token has been invalidated: its session was logged out"
    );
    // Logging out again is refused, and records nothing.
    let r = logout(&s, &[("authorization", bearer.as_str())]).await;
    assert_error_reply("second logout", &r, 401, "UNAUTHENTICATED");

    // Logout needs a valid JWT access token: none, an API token, a refresh token, garbage.
    let r = logout(&s, &[]).await;
    let m = assert_error_reply("logout without a token", &r, 401, "UNAUTHENTICATED");
    assert_eq!(
        m,
        "A JWT access token is required to perform this operation."
    );
    let r = logout(&s, &[("x-infrahub-key", ADMIN_TOKEN)]).await;
    assert_error_reply("logout with an API token", &r, 401, "UNAUTHENTICATED");
    let (_, other_refresh) = login(&s, "reader", READER_PASSWORD, "x").await;
    let other_bearer = format!("Bearer {other_refresh}");
    let r = logout(&s, &[("authorization", other_bearer.as_str())]).await;
    assert_error_reply("logout with a refresh token", &r, 401, "UNAUTHENTICATED");
    let r = logout(&s, &[("authorization", "Bearer not-a-jwt")]).await;
    assert_error_reply("logout with garbage", &r, 401, "UNAUTHENTICATED");
    assert!(
        refresh(&s, &other_refresh).await.status == 200,
        "a refused logout ends nothing"
    );
    let (_, count) = nodes_as(
        &s,
        Auth::Token(ADMIN_TOKEN),
        r#"event_type: ["infrahub.account.logged_out"]"#,
    )
    .await;
    assert_eq!(count, 1, "refused logouts record nothing");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_ends_one_session_and_closes_its_sockets() {
    let s = TestServer::start().await;
    create_account(&s, "reader", READER_PASSWORD, "read-only").await;
    let (access_a, refresh_a) = login(&s, "reader", READER_PASSWORD, "a").await;
    let (access_b, refresh_b) = login(&s, "reader", READER_PASSWORD, "b").await;
    let mut socket_a = s.ws().await;
    socket_a
        .init_with(json!({"Authorization": format!("Bearer {access_a}")}))
        .await;
    socket_a
        .subscribe("1", "subscription { events { id } }", Value::Null)
        .await;
    let mut socket_b = s.ws().await;
    socket_b
        .init_with(json!({"Authorization": format!("Bearer {access_b}")}))
        .await;
    socket_b
        .subscribe("1", "subscription { events { id } }", Value::Null)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Logout of session A with its cookie.
    let cookie = format!("access_token={access_a}");
    let r = logout(&s, &[("cookie", cookie.as_str())]).await;
    assert_eq!(r.status, 200, "cookie logout: {}", r.text);
    let closed = loop {
        let f = socket_a.recv_within(Duration::from_secs(2)).await;
        if f.get("close").is_some() || f.get("closed").is_some() {
            break f;
        }
    };
    assert_eq!(closed["close"], 4403, "{closed}");
    assert_eq!(refresh(&s, &refresh_a).await.status, 401);

    // Session B goes on: its socket, its access token, its refresh token.
    let id = s.emit("acme.after_logout", "").await;
    assert_eq!(socket_b.next_data("1").await["events"]["id"], id.as_str());
    s.run_as(Auth::Bearer(&access_b), PROBE, json!({})).await;
    assert_eq!(refresh(&s, &refresh_b).await.status, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn account_events_in_infrahub_event_only_for_admins() {
    let s = TestServer::start().await;
    create_account(&s, "reader", READER_PASSWORD, "read-only").await;
    create_account(&s, "writer", WRITER_PASSWORD, "read-write").await;
    let marker = s.emit("acme.marker", "").await;
    let (reader, _) = login(&s, "reader", READER_PASSWORD, "r").await;
    let (writer, _) = login(&s, "writer", WRITER_PASSWORD, "w").await;
    let (admin_jwt, _) = login(&s, "admin", ADMIN_PASSWORD, "a").await;
    let (old_writer, _) = login(&s, "writer", WRITER_PASSWORD, "w").await;
    let bearer = format!("Bearer {old_writer}");
    assert_eq!(
        logout(&s, &[("authorization", bearer.as_str())])
            .await
            .status,
        200
    );

    // An admin sees them, by API token and by JWT.
    let (all, count) = nodes_as(&s, Auth::Token(ADMIN_TOKEN), "limit: 50").await;
    let account_events: Vec<&Value> = all
        .iter()
        .filter(|n| {
            n["event"]
                .as_str()
                .unwrap()
                .starts_with("infrahub.account.")
        })
        .collect();
    assert_eq!(account_events.len(), 5, "{:?}", names(&all));
    assert_eq!(count as usize, all.len());
    let (by_jwt, _) = nodes_as(&s, Auth::Bearer(&admin_jwt), "limit: 50").await;
    assert_eq!(by_jwt, all);
    let login_id = account_events
        .iter()
        .find(|n| n["event"] == "infrahub.account.logged_in")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Read-only and read-write accounts do not, whatever they ask, and the count agrees.
    for (who, jwt) in [("read-only", &reader), ("read-write", &writer)] {
        let (nodes, count) = nodes_as(&s, Auth::Bearer(jwt), "limit: 50").await;
        let want: Vec<&Value> = all
            .iter()
            .filter(|n| {
                !n["event"]
                    .as_str()
                    .unwrap()
                    .starts_with("infrahub.account.")
            })
            .collect();
        assert_eq!(nodes.iter().collect::<Vec<_>>(), want, "{who}");
        assert_eq!(count as usize, want.len(), "{who}: count");
        let (nodes, count) =
            nodes_as(&s, Auth::Bearer(jwt), &format!(r#"ids: ["{login_id}"]"#)).await;
        assert_eq!((nodes.len(), count), (0, 0), "{who}: by id");
        let (nodes, _) = nodes_as(&s, Auth::Bearer(jwt), r#"event_type: ["acme.marker"]"#).await;
        assert_eq!(nodes[0]["id"], marker.as_str(), "{who}: other types");
        for asked in [
            r#"event_type: ["infrahub.account.logged_in"]"#,
            r#"event_type: ["acme.marker", "infrahub.account.logged_out"]"#,
            r#"event_type: ["infrahub.account.anything"]"#,
        ] {
            let (status, body) = events_as(&s, Auth::Bearer(jwt), asked).await;
            assert_eq!(status, 200, "{who} {asked}: {body}");
            assert!(body["data"]["InfrahubEvent"].is_null(), "{body}");
            let m = assert_error_entry(&format!("{who} {asked}"), &body, "FORBIDDEN", 403);
            assert_eq!(
                m,
                "Account events (infrahub.account.*) are visible only to accounts allowed to \
                 manage accounts (the admin role); remove them from event_type"
            );
        }
    }
    s.shutdown().await;
}

/// A socket initialised with `init` and subscribed to `query` as operation `1`.
async fn subscribed(s: &TestServer, init: Value, query: &str) -> WsClient {
    let mut ws = s.ws().await;
    ws.init_with(init).await;
    ws.subscribe("1", query, Value::Null).await;
    ws
}

const SUB: &str = "subscription($after: String, $types: [String!]) { events(after: $after, event_type: $types) { \
    __typename id event ... on AccountLoggedInEventType { session_id account_name } } }";

async fn subscribed_to(s: &TestServer, init: &Value, after: Option<&str>) -> WsClient {
    let mut ws = s.ws().await;
    ws.init_with(init.clone()).await;
    ws.subscribe("1", SUB, json!({"after": after})).await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_events_on_the_subscription_only_for_admins() {
    let s = TestServer::start().await;
    create_account(&s, "reader", READER_PASSWORD, "read-only").await;
    let (reader_jwt, _) = login(&s, "reader", READER_PASSWORD, "r").await;
    let admin = json!({"X-INFRAHUB-KEY": ADMIN_TOKEN});
    let reader = json!({"Authorization": format!("Bearer {reader_jwt}")});
    let start = s.emit("acme.start", "").await;

    // Live subscriptions, before the login.
    let mut admin_live = subscribed_to(&s, &admin, None).await;
    let mut reader_live = subscribed_to(&s, &reader, None).await;
    let mut admin_named = subscribed(
        &s,
        admin.clone(),
        r#"subscription { events(event_type: ["infrahub.account.logged_in"]) { id event } }"#,
    )
    .await;
    // Asking for account events explicitly: this operation fails, the socket goes on.
    let mut reader_named = subscribed(
        &s,
        reader.clone(),
        r#"subscription { events(event_type: ["infrahub.account.logged_in"]) { id } }"#,
    )
    .await;
    let f = reader_named.recv_data().await;
    assert_eq!(
        (f["type"].as_str(), f["id"].as_str()),
        (Some("error"), Some("1")),
        "{f}"
    );
    assert_eq!(f["payload"][0]["extensions"]["code"], "FORBIDDEN", "{f}");
    assert!(
        f["payload"][0]["message"]
            .as_str()
            .unwrap()
            .contains("infrahub.account.*"),
        "{f}"
    );
    reader_named
        .subscribe("2", "subscription { events { id } }", Value::Null)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (second, _) = login(&s, "reader", READER_PASSWORD, "r2").await;
    let marker = s.emit("acme.marker", "").await;
    let session = session_of(&second);

    let f = admin_live.next_data("1").await;
    assert_eq!(f["events"]["__typename"], "AccountLoggedInEventType", "{f}");
    assert_eq!(f["events"]["session_id"], session.as_str());
    assert_eq!(f["events"]["account_name"], "reader");
    let login_id = f["events"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin_live.next_data("1").await["events"]["id"],
        marker.as_str()
    );
    assert_eq!(
        admin_named.next_data("1").await["events"]["id"],
        login_id.as_str()
    );
    // The reader's next event is the marker: the login was left out, not delayed.
    assert_eq!(
        reader_live.next_data("1").await["events"]["id"],
        marker.as_str()
    );
    assert_eq!(
        reader_named.next_data("2").await["events"]["id"],
        marker.as_str()
    );

    // Replay from before the login (`after`): the same rule.
    let mut admin_replay = subscribed_to(&s, &admin, Some(&start)).await;
    assert_eq!(
        admin_replay.next_data("1").await["events"]["id"],
        login_id.as_str()
    );
    assert_eq!(
        admin_replay.next_data("1").await["events"]["id"],
        marker.as_str()
    );
    let mut reader_replay = subscribed_to(&s, &reader, Some(&start)).await;
    assert_eq!(
        reader_replay.next_data("1").await["events"]["id"],
        marker.as_str()
    );
    // Resuming after the login itself, for the reader, skips to the marker too.
    let mut reader_resume = subscribed_to(&s, &reader, Some(&login_id)).await;
    assert_eq!(
        reader_resume.next_data("1").await["events"]["id"],
        marker.as_str()
    );

    // Explicitly, with variables, on a fresh socket: refused.
    let mut ws = s.ws().await;
    ws.init_with(reader.clone()).await;
    ws.subscribe(
        "x",
        SUB,
        json!({"types": ["acme.marker", "infrahub.account.logged_out"]}),
    )
    .await;
    let f = ws.recv_data().await;
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(f["payload"][0]["extensions"]["code"], "FORBIDDEN", "{f}");
    s.shutdown().await;
}
