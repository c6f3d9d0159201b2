//! Artifacts against a real server (issue 4, acceptance a and c for artifacts): definitions,
//! generation from a saved query and a minijinja template, content storage, the artifact
//! events in `InfrahubEvent` and on the `events` subscription, and bad input.

use futures::StreamExt;
use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const CREATED: &str = "infrahub.artifact.created";
const UPDATED: &str = "infrahub.artifact.updated";

const GENERATE: &str = "mutation($d: String!, $t: [String!]) { ArtifactGenerate(definition: $d, targets: $t) { ok count artifacts { result event_id object { id name { value } status { value } content_type { value } checksum { value } storage_id { value } parameters { value } error_message { value } branch target { id kind } definition { id node { name { value } } } } } } }";

const DEFINITION_CREATE: &str = "mutation($d: CoreArtifactDefinitionCreateInput!) { CoreArtifactDefinitionCreate(data: $d) { ok object { id name { value } artifact_name { value } content_type { value } parameters { value } query { value } template { value } } } }";

const ARTIFACT_EVENTS: &str = "query($ids: [String!], $related: [String!]) { InfrahubEvent(event_type: [\"infrahub.artifact.created\", \"infrahub.artifact.updated\"], primary_node__ids: $ids, related_node__ids: $related, order: ASC) { count edges { node { id event branch primary_node { id kind } related_nodes { id kind } ... on ArtifactEvent { artifact_definition_id checksum checksum_previous storage_id storage_id_previous } } } } }";

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn save_query(s: &TestServer, name: &str, query: &str) {
    let data = s
        .admin(
            "mutation($d: CoreGraphQLQueryCreateInput!) { CoreGraphQLQueryCreate(data: $d) { ok } }",
            json!({"d": {"name": {"value": name}, "query": {"value": query}}}),
        )
        .await;
    assert_eq!(data["CoreGraphQLQueryCreate"]["ok"], true);
}

/// Creates a definition; returns its id.
async fn create_definition(
    s: &TestServer,
    name: &str,
    query: &str,
    template: &str,
    parameters: Value,
) -> String {
    let data = s
        .admin(
            DEFINITION_CREATE,
            json!({"d": {
                "name": {"value": name},
                "artifact_name": {"value": format!("{name}-artifact")},
                "content_type": {"value": "text/plain"},
                "parameters": {"value": parameters},
                "query": {"value": query},
                "template": {"value": template},
            }}),
        )
        .await;
    let object = &data["CoreArtifactDefinitionCreate"]["object"];
    assert_eq!(object["content_type"]["value"], "text/plain");
    assert_eq!(object["query"]["value"], query);
    object["id"].as_str().unwrap().to_string()
}

async fn branch_id(s: &TestServer, name: &str) -> String {
    let data = s
        .admin(
            "query($n: String) { Branch(name: $n) { id } }",
            json!({"n": name}),
        )
        .await;
    data["Branch"][0]["id"].as_str().unwrap().to_string()
}

async fn create_branch(s: &TestServer, name: &str) -> String {
    let data = s
        .admin(
            "mutation($n: String!) { BranchCreate(data: {name: $n}) { ok object { id } } }",
            json!({"n": name}),
        )
        .await;
    data["BranchCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs `ArtifactGenerate` as admin; returns its result object.
async fn generate(s: &TestServer, definition: &str, targets: Value) -> Value {
    let data = s
        .admin(GENERATE, json!({"d": definition, "t": targets}))
        .await;
    data["ArtifactGenerate"].clone()
}

/// The single artifact of a generation.
fn only(result: &Value) -> &Value {
    assert_eq!(result["count"], 1, "{result}");
    &result["artifacts"][0]
}

async fn artifact_events(s: &TestServer, ids: Value, related: Value) -> Value {
    s.admin(ARTIFACT_EVENTS, json!({"ids": ids, "related": related}))
        .await["InfrahubEvent"]
        .clone()
}

/// The count of artifact events whose primary node is `artifact`.
async fn artifact_event_count(s: &TestServer, artifact: &str) -> Value {
    artifact_events(s, json!([artifact]), Value::Null).await["count"].clone()
}

/// `GET /api/artifact/{id}` as admin.
async fn get_artifact(s: &TestServer, id: &str) -> reqwest::Response {
    get(s, &format!("/api/artifact/{id}"), Some(ADMIN_TOKEN)).await
}

async fn get(s: &TestServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = s.http.get(format!("{}{path}", s.url));
    if let Some(t) = token {
        req = req.header("x-infrahub-key", t);
    }
    req.send().await.unwrap()
}

async fn post_json(s: &TestServer, path: &str, token: Option<&str>, body: String) -> (u16, Value) {
    let mut req = s
        .http
        .post(format!("{}{path}", s.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.header("x-infrahub-key", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn error_message(body: &Value) -> &str {
    body["errors"][0]["message"].as_str().unwrap_or_default()
}

/// The stored objects' ids: files in the data directory, or rows of the `objects` table when
/// the server runs on PostgreSQL.
async fn object_files(s: &TestServer) -> Vec<String> {
    if let Some(url) = s.database_url() {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        return sqlx::query_scalar("SELECT id FROM objects ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    }
    match std::fs::read_dir(s.data_dir().join("objects")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Replaces the stored bytes of object `id` (`None`: removes it), behind the server's back.
async fn tamper_object(s: &TestServer, id: &str, bytes: Option<&[u8]>) {
    if let Some(url) = s.database_url() {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let q = match bytes {
            Some(b) => sqlx::query("UPDATE objects SET content = $2 WHERE id = $1")
                .bind(id)
                .bind(b.to_vec()),
            None => sqlx::query("DELETE FROM objects WHERE id = $1").bind(id),
        };
        assert_eq!(q.execute(&pool).await.unwrap().rows_affected(), 1);
        return;
    }
    let path = s.data_dir().join("objects").join(id);
    match bytes {
        Some(b) => std::fs::write(path, b).unwrap(),
        None => std::fs::remove_file(path).unwrap(),
    }
}

const BRANCH_NAMES: &str = "query { Branch { name } }";
const BRANCH_TEMPLATE: &str =
    "{% for b in data.Branch | sort(attribute=\"name\") %}\n{{ b.name }}\n{% endfor %}";

/// Acceptance (a): unchanged data → one `created` event; changed data → one `updated` event
/// carrying the first generation's checksum and storage id; the checksum is the MD5 of the
/// served content; tampering with the stored object answers 409.
#[tokio::test]
async fn regeneration_emits_created_once_then_updated_and_content_is_verified() {
    let s = TestServer::start().await;
    save_query(&s, "branch_names", BRANCH_NAMES).await;
    let def = create_definition(&s, "branches", "branch_names", BRANCH_TEMPLATE, json!({})).await;
    let target = branch_id(&s, "main").await;

    let first = generate(&s, &def, json!([target])).await;
    assert_eq!(first["ok"], true, "{first}");
    let a = only(&first);
    assert_eq!(a["result"], "created", "{a}");
    let obj = &a["object"];
    let artifact_id = obj["id"].as_str().unwrap().to_string();
    let checksum1 = obj["checksum"]["value"].as_str().unwrap().to_string();
    let storage1 = obj["storage_id"]["value"].as_str().unwrap().to_string();
    assert_eq!(obj["status"]["value"], "Ready");
    assert_eq!(obj["name"]["value"], "branches-artifact");
    assert_eq!(obj["content_type"]["value"], "text/plain");
    assert_eq!(obj["branch"], "main");
    assert_eq!(obj["target"], json!({"id": target, "kind": "Branch"}));
    assert_eq!(obj["definition"]["id"], def.as_str());
    assert_eq!(obj["definition"]["node"]["name"]["value"], "branches");
    assert!(obj["error_message"]["value"].is_null());
    assert_eq!(checksum1, md5_hex(b"main\n"));
    assert_eq!(object_files(&s).await, vec![storage1.clone()]);

    // Same data: no event, no new object, same artifact.
    let second = generate(&s, &def, json!([target])).await;
    let a = only(&second);
    assert_eq!(a["result"], "unchanged", "{a}");
    assert!(a["event_id"].is_null());
    assert_eq!(a["object"]["id"], artifact_id.as_str());
    assert_eq!(a["object"]["checksum"]["value"], checksum1.as_str());
    assert_eq!(object_files(&s).await, vec![storage1.clone()]);
    let events = artifact_events(&s, json!([artifact_id]), Value::Null).await;
    assert_eq!(events["count"], 1, "{events}");
    let created = &events["edges"][0]["node"];
    assert_eq!(created["event"], CREATED);
    assert_eq!(created["branch"], "main");
    assert_eq!(
        created["primary_node"],
        json!({"id": artifact_id, "kind": "CoreArtifact"})
    );
    assert_eq!(
        created["related_nodes"],
        json!([{"id": target, "kind": "Branch"}])
    );
    assert_eq!(created["artifact_definition_id"], def.as_str());
    assert_eq!(created["checksum"], checksum1.as_str());
    assert_eq!(created["storage_id"], storage1.as_str());
    assert!(created["checksum_previous"].is_null());
    assert!(created["storage_id_previous"].is_null());

    // The saved query's data changes: one `updated` event with the previous values.
    create_branch(&s, "feature-x").await;
    let third = generate(&s, &def, json!([target])).await;
    let a = only(&third);
    assert_eq!(a["result"], "updated", "{a}");
    let checksum2 = a["object"]["checksum"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let storage2 = a["object"]["storage_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(checksum2, checksum1);
    assert_ne!(storage2, storage1);
    let events = artifact_events(&s, json!([artifact_id]), Value::Null).await;
    assert_eq!(events["count"], 2, "{events}");
    let updated = &events["edges"][1]["node"];
    assert_eq!(updated["event"], UPDATED);
    assert_eq!(updated["id"], a["event_id"]);
    assert_eq!(updated["checksum"], checksum2.as_str());
    assert_eq!(updated["storage_id"], storage2.as_str());
    assert_eq!(updated["checksum_previous"], checksum1.as_str());
    assert_eq!(updated["storage_id_previous"], storage1.as_str());
    assert_eq!(
        updated["primary_node"],
        json!({"id": artifact_id, "kind": "CoreArtifact"})
    );
    // Regenerating again changes nothing.
    let fourth = generate(&s, &def, json!([target])).await;
    assert_eq!(only(&fourth)["result"], "unchanged");
    assert_eq!(artifact_event_count(&s, &artifact_id).await, 2);

    // The served content: the artifact's content type, and an MD5 equal to the checksum.
    let resp = get_artifact(&s, &artifact_id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..], b"feature-x\nmain\n");
    assert_eq!(md5_hex(&bytes), checksum2);
    // The object itself, by storage id.
    let resp = get(
        &s,
        &format!("/api/storage/object/{storage2}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), bytes);

    // Tampering with the stored file: 409 with a clear error.
    tamper_object(&s, &storage2, Some(b"tampered\n")).await;
    let resp = get_artifact(&s, &artifact_id).await;
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "CONFLICT",
        "{body}"
    );
    assert!(
        error_message(&body).contains("does not match its checksum"),
        "{body}"
    );
    // A missing file is refused the same way.
    tamper_object(&s, &storage2, None).await;
    let resp = get_artifact(&s, &artifact_id).await;
    assert_eq!(resp.status(), 409);
    // Regeneration with the same checksum restores the object, without an event.
    let fifth = generate(&s, &def, json!([target])).await;
    assert_eq!(only(&fifth)["result"], "unchanged");
    let resp = get_artifact(&s, &artifact_id).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
    assert_eq!(artifact_event_count(&s, &artifact_id).await, 2);

    // The list query.
    let list = s
        .admin(
            "query($ids: [ID]) { CoreArtifact(ids: $ids) { count edges { node { id status { value } checksum { value } } } } }",
            json!({"ids": [artifact_id]}),
        )
        .await;
    assert_eq!(list["CoreArtifact"]["count"], 1);
    assert_eq!(
        list["CoreArtifact"]["edges"][0]["node"]["checksum"]["value"],
        checksum2.as_str()
    );
    s.shutdown().await;
}

/// The target id is passed as `$id`, the definition's parameters as the other variables; a
/// parameter change that changes the content gives an `updated` event.
#[tokio::test]
async fn target_id_and_parameters_are_query_variables() {
    let s = TestServer::start().await;
    let feature = create_branch(&s, "feature-y").await;
    save_query(
        &s,
        "by_id",
        "query($id: ID) { Branch(ids: [$id]) { name } }",
    )
    .await;
    // Parameters the query does not declare are ignored.
    let def = create_definition(
        &s,
        "by-id",
        "by_id",
        "{{ Branch[0].name }}",
        json!({"greeting": "hello"}),
    )
    .await;
    let result = generate(&s, "by-id", json!([feature])).await;
    let a = only(&result);
    assert_eq!(a["result"], "created", "{a}");
    assert_eq!(
        a["object"]["parameters"]["value"],
        json!({"greeting": "hello"})
    );
    let id = a["object"]["id"].as_str().unwrap().to_string();
    let body = get_artifact(&s, &id).await.text().await.unwrap();
    assert_eq!(body, "feature-y");

    // A definition whose parameter selects the data.
    save_query(
        &s,
        "by_name",
        "query($name: String) { Branch(name: $name) { name } }",
    )
    .await;
    let def2 = create_definition(
        &s,
        "by-name",
        "by_name",
        "{% for b in Branch %}{{ b.name }}{% endfor %}",
        json!({"name": "main"}),
    )
    .await;
    let r = generate(&s, &def2, json!([format!("InfraDevice:device-1")])).await;
    let a = only(&r);
    assert_eq!(a["result"], "created", "{a}");
    assert_eq!(
        a["object"]["target"],
        json!({"id": "device-1", "kind": "InfraDevice"})
    );
    let artifact = a["object"]["id"].as_str().unwrap().to_string();
    let checksum1 = a["object"]["checksum"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let storage1 = a["object"]["storage_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(checksum1, md5_hex(b"main"));
    s.admin(
        "mutation($d: CoreArtifactDefinitionUpdateInput!) { CoreArtifactDefinitionUpdate(data: $d) { ok } }",
        json!({"d": {"id": def2, "parameters": {"value": {"name": "feature-y"}}}}),
    )
    .await;
    // No targets: every existing artifact of the definition is regenerated.
    let r = generate(&s, &def2, Value::Null).await;
    let a = only(&r);
    assert_eq!(a["result"], "updated", "{a}");
    assert_eq!(a["object"]["id"], artifact.as_str());
    let events = artifact_events(&s, json!([artifact]), json!(["device-1"])).await;
    assert_eq!(events["count"], 2, "{events}");
    let updated = &events["edges"][1]["node"];
    assert_eq!(updated["checksum"], md5_hex(b"feature-y").as_str());
    assert_eq!(updated["checksum_previous"], checksum1.as_str());
    assert_eq!(updated["storage_id_previous"], storage1.as_str());
    assert_eq!(
        updated["related_nodes"],
        json!([{"id": "device-1", "kind": "InfraDevice"}])
    );
    let _ = def;
    s.shutdown().await;
}

/// A render error (or a query error) sets status `Error` with the message and emits no event;
/// the last good content stays served.
#[tokio::test]
async fn render_and_query_errors_set_status_error_without_events() {
    let s = TestServer::start().await;
    save_query(&s, "branch_names", BRANCH_NAMES).await;
    let target = branch_id(&s, "main").await;

    // A template that fails on the data: the artifact is created in status Error.
    let bad = create_definition(&s, "bad", "branch_names", "{{ data.Nope.name }}", json!({})).await;
    let r = generate(&s, &bad, json!([target])).await;
    assert_eq!(r["ok"], false);
    let a = only(&r);
    assert_eq!(a["result"], "error");
    assert!(a["event_id"].is_null());
    assert_eq!(a["object"]["status"]["value"], "Error");
    assert!(a["object"]["checksum"]["value"].is_null());
    let message = a["object"]["error_message"]["value"].as_str().unwrap();
    assert!(
        message.starts_with("Template rendering failed"),
        "{message}"
    );
    let bad_artifact = a["object"]["id"].as_str().unwrap().to_string();
    assert_eq!(artifact_event_count(&s, &bad_artifact).await, 0);
    let resp = get_artifact(&s, &bad_artifact).await;
    assert_eq!(resp.status(), 404);

    // Good content first, then a failing template: status Error, no event, content kept.
    let def = create_definition(&s, "good", "branch_names", BRANCH_TEMPLATE, json!({})).await;
    let r = generate(&s, &def, json!([target])).await;
    let a = only(&r);
    assert_eq!(a["result"], "created");
    let id = a["object"]["id"].as_str().unwrap().to_string();
    let checksum = a["object"]["checksum"]["value"].clone();
    s.admin(
        "mutation($d: CoreArtifactDefinitionUpdateInput!) { CoreArtifactDefinitionUpdate(data: $d) { ok } }",
        json!({"d": {"id": def, "template": {"value": "{{ Branch | nosuchfilter }}"}}}),
    )
    .await;
    let r = generate(&s, &def, json!([target])).await;
    let a = only(&r);
    assert_eq!(a["result"], "error", "{a}");
    assert_eq!(a["object"]["status"]["value"], "Error");
    assert_eq!(a["object"]["checksum"]["value"], checksum);
    assert!(
        a["object"]["error_message"]["value"]
            .as_str()
            .unwrap()
            .contains("nosuchfilter"),
        "{a}"
    );
    assert_eq!(artifact_event_count(&s, &id).await, 1);
    let resp = get_artifact(&s, &id).await;
    assert_eq!(resp.status(), 200);

    // Fixing the template with the same output: back to Ready, still no new event.
    s.admin(
        "mutation($d: CoreArtifactDefinitionUpdateInput!) { CoreArtifactDefinitionUpdate(data: $d) { ok } }",
        json!({"d": {"id": def, "template": {"value": BRANCH_TEMPLATE}}}),
    )
    .await;
    let r = generate(&s, &def, json!([target])).await;
    let a = only(&r);
    assert_eq!(a["result"], "unchanged", "{a}");
    assert_eq!(a["object"]["status"]["value"], "Ready");
    assert!(a["object"]["error_message"]["value"].is_null());
    assert_eq!(artifact_event_count(&s, &id).await, 1);

    // A query that fails at execution (a required variable is missing).
    save_query(
        &s,
        "needs_name",
        "query($name: String!) { Branch(name: $name) { name } }",
    )
    .await;
    let q = create_definition(&s, "needs", "needs_name", "{{ Branch }}", json!({})).await;
    let r = generate(&s, &q, json!([target])).await;
    let a = only(&r);
    assert_eq!(a["result"], "error");
    let message = a["object"]["error_message"]["value"].as_str().unwrap();
    assert!(
        message.starts_with("The query 'needs_name' failed"),
        "{message}"
    );
    s.shutdown().await;
}

/// Acceptance (c) for artifacts: the events are found by `InfrahubEvent` with `event_type`,
/// `primary_node__ids` and `related_node__ids`, and delivered by the `events` subscription.
#[tokio::test]
async fn artifact_events_are_queryable_and_delivered_by_the_subscription() {
    let s = TestServer::start().await;
    save_query(&s, "branch_names", BRANCH_NAMES).await;
    let def = create_definition(&s, "subs", "branch_names", BRANCH_TEMPLATE, json!({})).await;
    let target = branch_id(&s, "main").await;

    let mut ws = s.ws_admin().await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "subscription($t: [String!], $r: [String!]) { events(event_type: $t, related_node__ids: $r) { id event branch primary_node { id kind } related_nodes { id kind } ... on ArtifactEvent { artifact_definition_id checksum checksum_previous storage_id storage_id_previous } } }",
        "variables": {"t": [CREATED, UPDATED], "r": [target]},
    }}))
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;

    let first = generate(&s, &def, json!([target])).await;
    let a = only(&first);
    let artifact = a["object"]["id"].as_str().unwrap().to_string();
    let frame = ws.recv_data().await;
    assert_eq!(frame["type"], "next", "{frame}");
    let pushed = &frame["payload"]["data"]["events"];
    assert_eq!(pushed["id"], a["event_id"]);
    assert_eq!(pushed["event"], CREATED);
    assert_eq!(pushed["branch"], "main");
    assert_eq!(
        pushed["primary_node"],
        json!({"id": artifact, "kind": "CoreArtifact"})
    );
    assert_eq!(
        pushed["related_nodes"],
        json!([{"id": target, "kind": "Branch"}])
    );
    assert_eq!(pushed["artifact_definition_id"], def.as_str());
    assert_eq!(pushed["checksum"], a["object"]["checksum"]["value"]);
    assert_eq!(pushed["storage_id"], a["object"]["storage_id"]["value"]);

    create_branch(&s, "sub-branch").await;
    let second = generate(&s, &def, json!([target])).await;
    let b = only(&second);
    assert_eq!(b["result"], "updated");
    let frame = ws.recv_data().await;
    let pushed = &frame["payload"]["data"]["events"];
    assert_eq!(pushed["id"], b["event_id"]);
    assert_eq!(pushed["event"], UPDATED);
    assert_eq!(
        pushed["checksum_previous"],
        a["object"]["checksum"]["value"]
    );
    assert_eq!(
        pushed["storage_id_previous"],
        a["object"]["storage_id"]["value"]
    );

    // The same events through InfrahubEvent, by each filter and by all of them.
    for (ids, related) in [
        (json!([artifact]), Value::Null),
        (Value::Null, json!([target])),
        (json!([artifact]), json!([target])),
    ] {
        let events = artifact_events(&s, ids, related).await;
        assert_eq!(events["count"], 2, "{events}");
        assert_eq!(events["edges"][0]["node"]["id"], a["event_id"]);
        assert_eq!(events["edges"][1]["node"]["id"], b["event_id"]);
    }
    let none = artifact_events(&s, json!([artifact]), json!(["someone-else"])).await;
    assert_eq!(none["count"], 0);

    // Unchanged content pushes nothing.
    let third = generate(&s, &def, json!([target])).await;
    assert_eq!(only(&third)["result"], "unchanged");
    if let Ok(Some(Ok(Message::Text(t)))) =
        tokio::time::timeout(Duration::from_millis(300), ws.inner().next()).await
    {
        let v: Value = serde_json::from_str(&t).unwrap();
        assert!(
            v["type"] == "ka" || v["type"] == "ping",
            "unexpected frame {t}"
        );
    }
    s.shutdown().await;
}

/// Upload, fetch by identifier, an artifact created from an uploaded object, and the REST
/// generation endpoint.
#[tokio::test]
async fn storage_endpoints_and_rest_generation() {
    let s = TestServer::start_with(&[("max_body_bytes", "4096")]).await;
    let (status, body) = post_json(
        &s,
        "/api/storage/upload/content",
        Some(ADMIN_TOKEN),
        json!({"content": "hello artifact"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let identifier = body["identifier"].as_str().unwrap().to_string();
    assert_eq!(body["checksum"], md5_hex(b"hello artifact").as_str());
    let resp = get(
        &s,
        &format!("/api/storage/object/{identifier}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello artifact");
    // Oversized uploads are refused by max_body_bytes.
    let (status, body) = post_json(
        &s,
        "/api/storage/upload/content",
        Some(ADMIN_TOKEN),
        json!({"content": "x".repeat(5000)}).to_string(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = post_json(
        &s,
        "/api/storage/upload/content",
        Some(ADMIN_TOKEN),
        json!({"text": "no"}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // An artifact created from the uploaded object: created event, served content.
    save_query(&s, "branch_names", BRANCH_NAMES).await;
    let def = create_definition(&s, "rest", "branch_names", BRANCH_TEMPLATE, json!({})).await;
    let data = s
        .admin(
            "mutation($d: CoreArtifactCreateInput!) { CoreArtifactCreate(data: $d) { ok object { id status { value } checksum { value } storage_id { value } target { id kind } } } }",
            json!({"d": {"definition": {"id": def}, "target": {"id": "dev-9", "kind": "InfraDevice"}, "storage_id": {"value": identifier}}}),
        )
        .await;
    let obj = &data["CoreArtifactCreate"]["object"];
    assert_eq!(obj["status"]["value"], "Ready");
    assert_eq!(
        obj["checksum"]["value"],
        md5_hex(b"hello artifact").as_str()
    );
    let uploaded_artifact = obj["id"].as_str().unwrap().to_string();
    let events = artifact_events(&s, json!([uploaded_artifact]), json!(["dev-9"])).await;
    assert_eq!(events["count"], 1);
    assert_eq!(events["edges"][0]["node"]["event"], CREATED);
    let resp = get_artifact(&s, &uploaded_artifact).await;
    assert_eq!(resp.text().await.unwrap(), "hello artifact");
    // A second artifact for the same (definition, target, branch) is refused.
    let message = s
        .admin_error(
            "mutation($d: CoreArtifactCreateInput!) { CoreArtifactCreate(data: $d) { ok } }",
            json!({"d": {"definition": {"id": def}, "target": {"id": "dev-9", "kind": "InfraDevice"}}}),
        )
        .await;
    assert!(message.contains("already exists"), "{message}");

    // REST generation: for given nodes, then for all existing artifacts of the definition.
    let target = branch_id(&s, "main").await;
    let (status, body) = post_json(
        &s,
        &format!("/api/artifact/generate/{def}"),
        Some(ADMIN_TOKEN),
        json!({"nodes": [target]}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["artifacts"][0]["result"], "created", "{body}");
    assert_eq!(
        body["artifacts"][0]["checksum"],
        md5_hex(b"main\n").as_str()
    );
    let (status, body) = post_json(
        &s,
        &format!("/api/artifact/generate/{def}"),
        Some(ADMIN_TOKEN),
        String::new(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2, "{body}");
    let results: Vec<&str> = body["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["result"].as_str().unwrap())
        .collect();
    // The uploaded artifact is regenerated from the template (new content), the other is
    // unchanged.
    assert!(
        results.contains(&"updated") && results.contains(&"unchanged"),
        "{body}"
    );
    // By definition name too, and on a named branch.
    create_branch(&s, "rest-branch").await;
    let (status, body) = post_json(
        &s,
        "/api/artifact/generate/rest?branch=rest-branch",
        Some(ADMIN_TOKEN),
        json!({"nodes": [target]}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["artifacts"][0]["branch"], "rest-branch");
    assert_eq!(body["artifacts"][0]["result"], "created");
    let (status, _) = post_json(
        &s,
        "/api/artifact/generate/rest?branch=no-such-branch",
        Some(ADMIN_TOKEN),
        String::new(),
    )
    .await;
    assert_eq!(status, 404);
    s.shutdown().await;
}

/// Bad input gets clear errors: definitions, generation, identifiers, authentication.
#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let s = TestServer::start().await;
    save_query(&s, "branch_names", BRANCH_NAMES).await;
    let definition = |name: &str, content_type: &str, query: &str, template: &str| {
        json!({"d": {
            "name": {"value": name},
            "artifact_name": {"value": "x"},
            "content_type": {"value": content_type},
            "query": {"value": query},
            "template": {"value": template},
        }})
    };
    let cases = [
        (
            definition("a", "text/html", "branch_names", "x"),
            "content_type 'text/html' is not supported",
        ),
        (
            definition("b", "text/plain", "nope", "x"),
            "The saved query 'nope' does not exist",
        ),
        (
            definition("c", "text/plain", "branch_names", "{% for %}"),
            "The template does not compile",
        ),
    ];
    for (vars, expected) in cases {
        let message = s.admin_error(DEFINITION_CREATE, vars).await;
        assert!(message.contains(expected), "{message} / {expected}");
    }
    let message = s
        .admin_error(
            DEFINITION_CREATE,
            json!({"d": {"name": {"value": "d"}, "content_type": {"value": "text/plain"}}}),
        )
        .await;
    assert!(message.contains("is required"), "{message}");
    let def = create_definition(&s, "ok", "branch_names", "x", json!({})).await;
    let message = s
        .admin_error(
            DEFINITION_CREATE,
            definition("ok", "text/plain", "branch_names", "x"),
        )
        .await;
    assert!(message.contains("already exists"), "{message}");
    let message = s
        .admin_error(
            DEFINITION_CREATE,
            json!({"d": {"name": {"value": "p"}, "artifact_name": {"value": "x"}, "content_type": {"value": "text/plain"}, "query": {"value": "branch_names"}, "template": {"value": "x"}, "parameters": {"value": [1, 2]}}}),
        )
        .await;
    assert!(
        message.contains("parameters.value must be a JSON object"),
        "{message}"
    );
    // Mutations are not data sources.
    save_query(
        &s,
        "a_mutation",
        "mutation { BranchCreate(data: {name: \"zz\"}) { ok } }",
    )
    .await;
    let message = s
        .admin_error(
            DEFINITION_CREATE,
            definition("m", "text/plain", "a_mutation", "x"),
        )
        .await;
    assert!(message.contains("is not a query operation"), "{message}");

    // Generation.
    let message = s
        .admin_error(GENERATE, json!({"d": "no-such-definition", "t": ["x"]}))
        .await;
    assert!(
        message.contains("Artifact definition no-such-definition not found"),
        "{message}"
    );
    let message = s
        .admin_error(
            GENERATE,
            json!({"d": def, "t": ["00000000-0000-0000-0000-000000000000"]}),
        )
        .await;
    assert!(
        message.contains("Target 00000000-0000-0000-0000-000000000000 not found"),
        "{message}"
    );
    let message = s.admin_error(GENERATE, json!({"d": def, "t": [""]})).await;
    assert!(message.contains("Invalid target"), "{message}");
    let (status, body) = post_json(
        &s,
        "/api/artifact/generate/nope",
        Some(ADMIN_TOKEN),
        "{}".into(),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(error_message(&body).contains("Artifact definition nope not found"));
    let (status, body) = post_json(
        &s,
        &format!("/api/artifact/generate/{def}"),
        Some(ADMIN_TOKEN),
        json!({"nodes": [1]}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post_json(
        &s,
        &format!("/api/artifact/generate/{def}"),
        Some(ADMIN_TOKEN),
        "{".into(),
    )
    .await;
    assert_eq!(status, 400);

    // Identifiers: hex only, no path traversal.
    for bad in [
        "..%2F..%2Finfrastream.db",
        "..",
        "%2E%2E",
        "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
        "abc",
    ] {
        let resp = get(&s, &format!("/api/storage/object/{bad}"), Some(ADMIN_TOKEN)).await;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(status == 400 || status == 404, "{bad}: {status} {body}");
        assert!(!body.contains("SQLite"), "{bad}: {body}");
        if status == 400 {
            assert!(body.contains("Invalid object identifier"), "{body}");
        }
    }
    let resp = get(
        &s,
        &format!("/api/storage/object/{}", "0".repeat(64)),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let resp = get(&s, "/api/artifact/no-such-artifact", Some(ADMIN_TOKEN)).await;
    assert_eq!(resp.status(), 404);
    // A definition id is not an artifact.
    let resp = get_artifact(&s, &def).await;
    assert_eq!(resp.status(), 404);

    // Authentication is required on every endpoint; uploads need the write role.
    assert_eq!(get(&s, "/api/artifact/x", None).await.status(), 401);
    assert_eq!(
        get(&s, &format!("/api/storage/object/{}", "0".repeat(64)), None)
            .await
            .status(),
        401
    );
    let (status, _) = post_json(
        &s,
        "/api/storage/upload/content",
        None,
        json!({"content": "x"}).to_string(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post_json(
        &s,
        &format!("/api/artifact/generate/{def}"),
        None,
        "{}".into(),
    )
    .await;
    assert_eq!(status, 401);
    s.admin(
        "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok } }",
        json!({"d": {"name": {"value": "reader"}, "password": {"value": "reader-pass"}, "role": {"value": "read-only"}}}),
    )
    .await;
    let (status, login) = post_json(
        &s,
        "/api/auth/login",
        None,
        json!({"username": "reader", "password": "reader-pass"}).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let access = login["access_token"].as_str().unwrap();
    let resp = s
        .http
        .post(format!("{}/api/storage/upload/content", s.url))
        .header("authorization", format!("Bearer {access}"))
        .body(json!({"content": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = s
        .http
        .post(format!("{}/api/artifact/generate/{def}", s.url))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    s.shutdown().await;
}
