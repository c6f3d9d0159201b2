//! Companion mode (`POST /api/ingest/infrahub`): bodies in Infrahub's format
//! (tests/fixtures/infrahub_webhooks, see its README), signed as Infrahub signs them, are
//! stored once and shown by `InfrahubEvent` and the `events` subscription exactly like the
//! events infrastream records itself, but for `context.origin`; a replay is not stored again;
//! a bad or stale signature, an unset key and a malformed body store nothing.

use infrastream_services::webhooks::signing::{self, Scheme};
use infrastream_testkit::http::send;
use infrastream_testkit::{ADMIN_TOKEN, Resp, TestServer, assert_error_reply};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const KEY: &str = "infrahub-shared-key: not base64, used raw";
const FIXTURES: [&str; 7] = [
    "node_created",
    "node_updated",
    "node_deleted",
    "branch_created",
    "branch_merged",
    "artifact_updated",
    "group_member_added",
];

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/infrahub_webhooks/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Posts `body` (raw bytes) with Infrahub's headers, signed over `signed` at `ts` with `key`.
async fn post_raw(s: &TestServer, key: &str, body: &[u8], signed: &[u8], ts: i64) -> Resp {
    let msg_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let keys = signing::parse_keys(Scheme::Infrahub, key).unwrap();
    let signature = signing::sign(Scheme::Infrahub, &keys, &msg_id, ts, signed);
    let ts = ts.to_string();
    send(
        &s.http,
        "POST",
        &format!("{}/api/ingest/infrahub", s.url),
        &[
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("webhook-id", &msg_id),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &signature),
        ],
        Some(body.to_vec()),
    )
    .await
}

/// What Infrahub signs for the body it sends: `json.dumps(body, separators=(",", ":"))`.
fn python_compact(sent: &[u8]) -> Vec<u8> {
    signing::python_json(sent, b",", b":").unwrap()
}

/// Posts `body` as Infrahub does: compact JSON as its HTTP client sends it, the signature over
/// its own `json.dumps(body, separators=(",", ":"))` (non-ASCII escaped).
async fn post(s: &TestServer, body: &Value) -> Resp {
    let sent = serde_json::to_vec(body).unwrap();
    let signed = python_compact(&sent);
    post_raw(s, KEY, &sent, &signed, now()).await
}

async fn post_ok(s: &TestServer, body: &Value) -> (String, bool) {
    let r = post(s, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["ok"], true, "{}", r.text);
    assert_eq!(r.json["infrahub_event_id"], body["id"]);
    (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["duplicate"].as_bool().unwrap(),
    )
}

async fn total(s: &TestServer) -> u64 {
    s.admin("{ InfrahubEvent(limit: 1) { count } }", json!({}))
        .await["InfrahubEvent"]["count"]
        .as_u64()
        .unwrap()
}

async fn with_origin(s: &TestServer, infrahub_id: &str) -> u64 {
    events(s, &[])
        .await
        .iter()
        .filter(|e| e["payload"]["context"]["origin"]["event_id"] == infrahub_id)
        .count() as u64
}

const EVENTS: &str = r#"query($t: [String!], $o: Int) { InfrahubEvent(event_type: $t, order: ASC, limit: 50, offset: $o) { edges { node {
  __typename id event branch account_id level has_children parent_id primary_node { id kind } related_nodes { id kind } payload
  ... on NodeMutatedEvent { attributes { name kind action value value_previous } relationships { name action peer { id kind } } }
  ... on BranchCreatedEvent { created_branch }
  ... on BranchMergedEvent { source_branch }
  ... on ArtifactEvent { artifact_definition_id checksum checksum_previous storage_id storage_id_previous }
  ... on GroupEvent { members { id kind } ancestors { id kind } }
} } } }"#;

async fn events(s: &TestServer, types: &[&str]) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let mut vars = json!({ "o": all.len() });
        if !types.is_empty() {
            vars["t"] = json!(types);
        }
        let page = s.admin(EVENTS, vars).await["InfrahubEvent"]["edges"]
            .as_array()
            .unwrap()
            .clone();
        let n = page.len();
        all.extend(page.into_iter().map(|e| e["node"].clone()));
        if n < 50 {
            return all;
        }
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// An ingested event has the fields — and field types — of the native event `native`.
#[track_caller]
fn assert_same_shape(what: &str, native: &Value, ingested: &Value) {
    for field in ["__typename", "event", "level", "has_children", "parent_id"] {
        assert_eq!(native[field], ingested[field], "{what}: {field}");
    }
    assert_eq!(
        native["branch"].is_null(),
        ingested["branch"].is_null(),
        "{what}: branch {} vs {}",
        native["branch"],
        ingested["branch"]
    );
    assert_eq!(
        native["primary_node"]["kind"], ingested["primary_node"]["kind"],
        "{what}: primary_node"
    );
    let (nd, id) = (&native["payload"]["data"], &ingested["payload"]["data"]);
    assert_eq!(keys(nd), keys(id), "{what}: payload.data keys\n{nd}\n{id}");
    for list in ["attributes", "relationships", "members"] {
        if let (Some(n), Some(i)) = (native[list].as_array(), ingested[list].as_array()) {
            if n.is_empty() || i.is_empty() {
                continue;
            }
            assert_eq!(keys(&n[0]), keys(&i[0]), "{what}: {list} entry");
            assert_eq!(
                keys(&nd[list][0]),
                keys(&id[list][0]),
                "{what}: data.{list} entry"
            );
        }
    }
    let mut context = keys(&native["payload"]["context"]);
    context.insert("origin".into());
    assert_eq!(
        context,
        keys(&ingested["payload"]["context"]),
        "{what}: context"
    );
    assert!(
        native["payload"]["context"].get("origin").is_none(),
        "{what}: a native event has no origin"
    );
}

async fn gql(s: &TestServer, query: &str, vars: Value) -> Value {
    s.admin(query, vars).await
}

/// Records infrastream's own events of every type the fixtures hold.
async fn native_events(s: &TestServer) {
    let resp = s
        .http
        .post(format!("{}/api/schema/load", s.url))
        .header("x-infrahub-key", ADMIN_TOKEN)
        .json(&json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "Site", "namespace": "Infra", "human_friendly_id": ["name__value"],
             "attributes": [{"name": "name", "kind": "Text", "unique": true}]},
            {"name": "Tag", "namespace": "Infra", "attributes": [{"name": "name", "kind": "Text"}]},
            {"name": "Device", "namespace": "Infra", "human_friendly_id": ["name__value"],
             "attributes": [{"name": "name", "kind": "Text"}],
             "relationships": [
                 {"name": "site", "peer": "InfraSite", "cardinality": "one", "optional": false},
                 {"name": "tags", "peer": "InfraTag", "cardinality": "many"}]}
        ]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let id = |v: &Value, f: &str| v[f]["object"]["id"].as_str().unwrap().to_owned();
    let paris = id(
        &gql(
            s,
            r#"mutation { InfraSiteCreate(data: {name: {value: "paris"}}) { object { id } } }"#,
            json!({}),
        )
        .await,
        "InfraSiteCreate",
    );
    let zurich = id(
        &gql(
            s,
            r#"mutation { InfraSiteCreate(data: {name: {value: "zurich"}}) { object { id } } }"#,
            json!({}),
        )
        .await,
        "InfraSiteCreate",
    );
    let tag = id(
        &gql(
            s,
            r#"mutation { InfraTagCreate(data: {name: {value: "red"}}) { object { id } } }"#,
            json!({}),
        )
        .await,
        "InfraTagCreate",
    );
    let device = id(
        &gql(
            s,
            r#"mutation($s: String, $t: String) { InfraDeviceCreate(data: {name: {value: "r1"}, site: {id: $s}, tags: [{id: $t}]}) { object { id } } }"#,
            json!({"s": paris, "t": tag}),
        )
        .await,
        "InfraDeviceCreate",
    );
    gql(
        s,
        r#"mutation($d: String!, $s: String) { InfraDeviceUpdate(data: {id: $d, name: {value: "r2"}, site: {id: $s}}) { ok } }"#,
        json!({"d": device, "s": zurich}),
    )
    .await;
    let group = id(
        &gql(s, r#"mutation { CoreStandardGroupCreate(data: {name: {value: "all"}}) { object { id } } }"#, json!({})).await,
        "CoreStandardGroupCreate",
    );
    gql(
        s,
        r#"mutation($g: String!, $n: String!) { RelationshipAdd(data: {id: $g, name: "members", nodes: [{id: $n}]}) { ok } }"#,
        json!({"g": group, "n": paris}),
    )
    .await;
    gql(
        s,
        r#"mutation($d: String!) { InfraDeviceDelete(data: {id: $d}) { ok } }"#,
        json!({"d": device}),
    )
    .await;
    gql(
        s,
        r#"mutation { BranchCreate(data: {name: "native-1"}) { ok } }"#,
        json!({}),
    )
    .await;
    gql(
        s,
        r#"mutation { BranchMerge(data: {name: "native-1"}) { ok } }"#,
        json!({}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infrahub_webhooks_become_events_like_native_ones() {
    let s = TestServer::start_with(&[("ingest_infrahub_key", KEY)]).await;
    native_events(&s).await;
    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "e",
        "subscription { events { __typename id event branch account_id primary_node { id kind } related_nodes { id kind } payload } }",
        Value::Null,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;

    let mut stored = Vec::new();
    for name in FIXTURES {
        let body = fixture(name);
        let (id, duplicate) = post_ok(&s, &body).await;
        assert!(!duplicate, "{name}");
        stored.push((name, body, id));
    }
    let all = events(&s, &[]).await;
    for (name, body, id) in &stored {
        let ingested = all
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{name}: event {id} not found"));
        let origin =
            json!({"source": "infrahub", "event_id": body["id"], "occured_at": body["occured_at"]});
        assert_eq!(ingested["payload"]["context"]["origin"], origin, "{name}");
        assert_eq!(ingested["event"], body["event"], "{name}");
        assert_eq!(ingested["account_id"], body["account_id"], "{name}");
        let data = &body["data"];
        // The same fields as the native event of that type.
        // The latest: the first `infrahub.branch.created` is `main`'s, made at startup.
        let native = all.iter().rev().find(|e| {
            e["event"] == body["event"]
                && e["primary_node"]["kind"] == ingested["primary_node"]["kind"]
                && e["payload"]["context"].get("origin").is_none()
        });
        match native {
            Some(native) => assert_same_shape(name, native, ingested),
            None => assert_eq!(
                *name, "artifact_updated",
                "no native {name} event to compare"
            ),
        }
        match *name {
            "node_created" | "node_updated" | "node_deleted" => {
                assert_eq!(ingested["__typename"], "NodeMutatedEvent");
                assert_eq!(ingested["branch"], body["branch"]);
                assert_eq!(
                    ingested["primary_node"],
                    json!({"id": data["node_id"], "kind": "InfraDevice"})
                );
                assert_eq!(ingested["payload"]["data"]["action"], data["action"]);
            }
            "branch_created" | "branch_merged" => {
                assert_eq!(ingested["branch"], Value::Null, "{name}: a global event");
                assert_eq!(
                    ingested["primary_node"],
                    json!({"id": data["branch_id"], "kind": "Branch"})
                );
            }
            "artifact_updated" => {
                assert_eq!(ingested["__typename"], "ArtifactEvent");
                assert_eq!(ingested["branch"], "main");
                assert_eq!(
                    ingested["primary_node"],
                    json!({"id": data["node_id"], "kind": "CoreArtifact"})
                );
                assert_eq!(
                    ingested["related_nodes"],
                    json!([{"id": data["target_id"], "kind": data["target_kind"]}])
                );
                for f in [
                    "artifact_definition_id",
                    "checksum",
                    "checksum_previous",
                    "storage_id",
                    "storage_id_previous",
                ] {
                    assert_eq!(ingested[f], data[f], "{name}: {f}");
                }
                assert_eq!(
                    keys(&ingested["payload"]["data"]),
                    [
                        "artifact_definition_id",
                        "checksum",
                        "checksum_previous",
                        "storage_id",
                        "storage_id_previous",
                        "target_id",
                        "target_kind"
                    ]
                    .map(String::from)
                    .into()
                );
            }
            "group_member_added" => {
                assert_eq!(ingested["__typename"], "GroupEvent");
                assert_eq!(ingested["members"], data["members"]);
                assert_eq!(ingested["related_nodes"], data["members"]);
            }
            _ => unreachable!(),
        }
    }
    // Typed fields, as a client reads them.
    let by = |n: &str| -> &Value {
        let id = &stored.iter().find(|s| s.0 == n).unwrap().2;
        all.iter().find(|e| e["id"] == id.as_str()).unwrap()
    };
    assert_eq!(by("branch_created")["created_branch"], "feature-1");
    assert_eq!(by("branch_merged")["source_branch"], "feature-1");
    let updated = by("node_updated");
    assert_eq!(
        updated["attributes"],
        json!([{"name": "name", "kind": "Text", "action": "UPDATED", "value": "edge-zürich-1", "value_previous": "edge-paris-1"}])
    );
    assert_eq!(
        updated["relationships"],
        json!([
            {"name": "site", "action": "ADDED", "peer": {"id": "18342a1d-9a10-4b52-3f5a-c51a9c1e2b02", "kind": "InfraSite"}},
            {"name": "site", "action": "REMOVED", "peer": {"id": "18342a1d-83f2-d2d7-3f55-c51e2b5b1a01", "kind": "InfraSite"}}
        ])
    );
    assert_eq!(updated["payload"]["data"]["display_label"], "edge-zürich-1");
    assert_eq!(
        updated["payload"]["data"]["human_friendly_id"],
        json!(["edge-zürich-1"])
    );
    let deleted = by("node_deleted");
    assert_eq!(
        deleted["relationships"],
        json!([{"name": "tags", "action": "REMOVED", "peer": {"id": "18342a1e-0f17-7e3c-3f53-c518a5b2d003", "kind": "InfraTag"}}])
    );
    // Found by the filters a client uses.
    let node_events = events(&s, &["infrahub.node.updated"]).await;
    assert!(node_events.iter().any(|e| e["id"] == stored[1].2.as_str()));

    // Pushed on the subscription, in commit order, as the query shows them.
    for (name, _, id) in &stored {
        let pushed = ws.next_data("e").await["events"].clone();
        assert_eq!(pushed["id"], id.as_str(), "{name}");
        let queried = all.iter().find(|e| e["id"] == id.as_str()).unwrap();
        for f in [
            "__typename",
            "event",
            "branch",
            "account_id",
            "primary_node",
            "related_nodes",
            "payload",
        ] {
            assert_eq!(pushed[f], queried[f], "{name}: {f}");
        }
    }
    ws.assert_silent(200).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_stored_once() {
    let s = TestServer::start_with(&[("ingest_infrahub_key", KEY)]).await;
    let before = total(&s).await;
    let body = fixture("node_created");
    let (first, duplicate) = post_ok(&s, &body).await;
    assert!(!duplicate);
    // Infrahub's retry: a new webhook-id and timestamp, the same body.
    let (again, duplicate) = post_ok(&s, &body).await;
    assert!(duplicate);
    assert_eq!(again, first);
    assert_eq!(total(&s).await, before + 1);
    assert_eq!(with_origin(&s, body["id"].as_str().unwrap()).await, 1);

    // Two identical requests at once: one event, both answered with its id.
    let body = fixture("group_member_added");
    let (a, b) = tokio::join!(post_ok(&s, &body), post_ok(&s, &body));
    assert_eq!(a.0, b.0);
    assert!(a.1 != b.1, "exactly one is the first: {a:?} {b:?}");
    // And a burst of them.
    let body = fixture("artifact_updated");
    let answers = futures::future::join_all((0..8).map(|_| post_ok(&s, &body))).await;
    assert_eq!(answers.iter().filter(|(_, dup)| !dup).count(), 1);
    assert!(answers.iter().all(|(id, _)| *id == answers[0].0));
    assert_eq!(total(&s).await, before + 3);
    assert_eq!(with_origin(&s, body["id"].as_str().unwrap()).await, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn refused_requests_store_nothing() {
    let s =
        TestServer::start_with(&[("ingest_infrahub_key", KEY), ("max_body_bytes", "8192")]).await;
    let before = total(&s).await;
    let body = fixture("branch_created");
    let sent = serde_json::to_vec(&body).unwrap();
    let signed = python_compact(&sent);

    let r = post_raw(&s, "another key", &sent, &signed, now()).await;
    let m = assert_error_reply("wrong key", &r, 401, "UNAUTHENTICATED");
    assert!(m.contains("webhook-signature"), "{m}");
    let mut tampered = body.clone();
    tampered["data"]["branch_name"] = json!("feature-2");
    let r = post_raw(
        &s,
        KEY,
        &serde_json::to_vec(&tampered).unwrap(),
        &signed,
        now(),
    )
    .await;
    assert_error_reply("body changed after signing", &r, 401, "UNAUTHENTICATED");
    for (what, ts) in [("stale", now() - 301), ("future", now() + 400)] {
        let r = post_raw(&s, KEY, &sent, &signed, ts).await;
        let m = assert_error_reply(what, &r, 401, "UNAUTHENTICATED");
        assert!(m.contains("webhook-timestamp"), "{what}: {m}");
    }
    let url = format!("{}/api/ingest/infrahub", s.url);
    let r = send(
        &s.http,
        "POST",
        &url,
        &[("content-type", "application/json")],
        Some(sent.clone()),
    )
    .await;
    let m = assert_error_reply("unsigned", &r, 401, "UNAUTHENTICATED");
    assert!(m.contains("webhook-id"), "{m}");
    let r = send(
        &s.http,
        "POST",
        &url,
        &[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &now().to_string()),
            ("webhook-signature", "v1,!!!not base64"),
        ],
        Some(sent.clone()),
    )
    .await;
    assert_error_reply("garbage signature", &r, 401, "UNAUTHENTICATED");

    // Signed, but not what Infrahub sends.
    let bad = b"{\"data\": {\"branch_name\": ";
    let r = post_raw(&s, KEY, bad, bad, now()).await;
    let m = assert_error_reply("malformed JSON", &r, 422, "BAD_USER_INPUT");
    assert!(m.contains("not valid JSON"), "{m}");
    let mut missing = body.clone();
    missing["data"].as_object_mut().unwrap().remove("branch_id");
    let r = post(&s, &missing).await;
    let m = assert_error_reply("missing field", &r, 422, "BAD_USER_INPUT");
    assert_eq!(m, "The field 'data.branch_id' is required");
    let mut no_event = body.clone();
    no_event.as_object_mut().unwrap().remove("event");
    let r = post(&s, &no_event).await;
    assert_eq!(
        assert_error_reply("no event", &r, 422, "BAD_USER_INPUT"),
        "The field 'event' is required"
    );
    let r = post(&s, &json!(["not", "an", "object"])).await;
    assert_error_reply("not an object", &r, 422, "BAD_USER_INPUT");
    let mut repo = body.clone();
    repo["event"] = json!("infrahub.repository.sync_started");
    let r = post(&s, &repo).await;
    assert_error_reply(
        "a type infrastream records itself",
        &r,
        422,
        "BAD_USER_INPUT",
    );
    // Over max_body_bytes.
    let mut big = body.clone();
    big["data"]["padding"] = json!("x".repeat(10_000));
    let r = post(&s, &big).await;
    assert_error_reply("too large", &r, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(
        total(&s).await,
        before,
        "a refused request stored something"
    );

    // A timestamp a little off is fine.
    let r = post_raw(&s, KEY, &sent, &signed, now() - 200).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(total(&s).await, before + 1);
    s.shutdown().await;
}

#[tokio::test]
async fn without_a_key_every_request_is_refused() {
    let s = TestServer::start().await;
    let before = total(&s).await;
    let body = fixture("node_created");
    let r = post(&s, &body).await;
    let m = assert_error_reply("no key", &r, 403, "FORBIDDEN");
    assert!(m.contains("ingest_infrahub_key"), "{m}");
    let url = format!("{}/api/ingest/infrahub", s.url);
    let r = send(&s.http, "POST", &url, &[], Some(b"{}".to_vec())).await;
    assert_error_reply("no key, unsigned", &r, 403, "FORBIDDEN");
    assert_eq!(total(&s).await, before);
    s.shutdown().await;
}
