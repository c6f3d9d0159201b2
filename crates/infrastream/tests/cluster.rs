//! Several instances of the real binary on one PostgreSQL database (SPEC §10): one log, every
//! subscriber on every instance, credentials and work coordinated between them.
//!
//! - three instances, writers and subscribers on each: every subscriber receives every event
//!   exactly once, in the same order on every instance;
//! - one instance killed (SIGKILL) under concurrent writes: no acknowledged event lost or
//!   duplicated, and its subscriber resumes on another instance with `after`, missing nothing;
//! - a token revoked through one instance closes its socket on another within a second;
//! - each webhook delivery is made by exactly one instance, in log order.
//!
//! Each test gets a fresh database of the test cluster (`INFRASTREAM_TEST_DATABASE_URL`);
//! without one they print why and return, unless `INFRASTREAM_REQUIRE_POSTGRES=1`.

use infrastream_store::conformance::postgres::fresh_database_url;
use infrastream_testkit::http::try_graphql;
use infrastream_testkit::{ADMIN_TOKEN, Auth, Binary, WsClient};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const EVENT: &str = "cluster.test";

fn instance(database_url: &str) -> Binary {
    Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
        .set("store", "postgres")
        .set("database_url", database_url)
        .spawn()
}

fn base(b: &Binary) -> String {
    format!("http://{}", b.addr())
}

async fn graphql(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    vars: Value,
) -> Result<Value, String> {
    try_graphql(
        http,
        &format!("{base}/graphql"),
        Auth::Token(ADMIN_TOKEN),
        query,
        vars,
    )
    .await
}

/// Emits one event through `base`; its id when acknowledged.
async fn emit(http: &reqwest::Client, base: &str, writer: usize, seq: usize) -> Option<String> {
    let q = format!(
        r#"mutation {{ EventEmit(data: {{event: "{EVENT}", payload: {{writer: {writer}, seq: {seq}}}}}) {{ ok object {{ id }} }} }}"#
    );
    let body = graphql(http, base, &q, Value::Null).await.ok()?;
    let r = &body["data"]["EventEmit"];
    (r["ok"] == json!(true)).then(|| r["object"]["id"].as_str().map(str::to_owned))?
}

/// A socket on `b` subscribed to the test's events (from `after`, when given).
async fn subscriber(b: &Binary, after: Option<&str>) -> WsClient {
    let mut ws = WsClient::connect(&b.ws_url(), Some("graphql-transport-ws")).await;
    ws.init(ADMIN_TOKEN).await;
    ws.subscribe(
        "1",
        "subscription($after: String) { events(event_type: [\"cluster.test\"], after: $after) { id event } }",
        json!({"after": after}),
    )
    .await;
    ws
}

/// The next `n` event ids `ws` receives.
async fn receive(ws: &mut WsClient, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    while ids.len() < n {
        let data = ws.next_data("1").await;
        ids.push(data["events"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// The test's events in the log, oldest first, as `base` serves them.
async fn logged(http: &reqwest::Client, base: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut offset = 0;
    loop {
        let body = graphql(
            http,
            base,
            "query($o: Int) { InfrahubEvent(event_type: [\"cluster.test\"], order: ASC, limit: 50, offset: $o) { edges { node { id } } } }",
            json!({"o": offset}),
        )
        .await
        .unwrap();
        let edges = body["data"]["InfrahubEvent"]["edges"]
            .as_array()
            .unwrap()
            .clone();
        if edges.is_empty() {
            return ids;
        }
        offset += edges.len();
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_owned()),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_deliver_one_log_in_one_order() {
    let Some(url) = fresh_database_url("three_instances").await else {
        return;
    };
    let nodes: Vec<Binary> = (0..3).map(|_| instance(&url)).collect();
    let mut subscribers = Vec::new();
    for b in &nodes {
        for _ in 0..2 {
            subscribers.push(subscriber(b, None).await);
        }
    }
    // Writers on every instance at once.
    const PER_WRITER: usize = 40;
    let http = reqwest::Client::new();
    let writers: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(w, b)| {
            let (http, base) = (http.clone(), base(b));
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for seq in 0..PER_WRITER {
                    acked.push(emit(&http, &base, w, seq).await.expect("acknowledged"));
                }
                acked
            })
        })
        .collect();
    let mut acked = HashSet::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert_eq!(acked.len(), 3 * PER_WRITER);

    let log = logged(&http, &base(&nodes[0])).await;
    assert_eq!(
        log.len(),
        acked.len(),
        "the log holds every acknowledged event once"
    );
    for (i, ws) in subscribers.iter_mut().enumerate() {
        let got = tokio::time::timeout(Duration::from_secs(30), receive(ws, acked.len()))
            .await
            .unwrap_or_else(|_| panic!("subscriber {i} did not receive every event"));
        assert_eq!(
            got,
            log,
            "subscriber {i} (instance {}) saw another order",
            i / 2
        );
        ws.assert_silent(200).await;
    }
    for b in [1, 2] {
        assert_eq!(
            logged(&http, &base(&nodes[b])).await,
            log,
            "instance {b} serves another log"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_loses_nothing_and_its_subscriber_resumes_elsewhere() {
    let Some(url) = fresh_database_url("killed_instance").await else {
        return;
    };
    let survivor = instance(&url);
    let mut victim = instance(&url);
    let mut on_victim = subscriber(&victim, None).await;
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [base(&survivor), base(&victim)]
        .into_iter()
        .enumerate()
        .map(|(w, base)| {
            let (http, stop) = (http.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    if let Some(id) = emit(&http, &base, w, seq).await {
                        acked.push(id);
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                acked
            })
        })
        .collect();
    // Read a little on the victim, then kill it mid-stream.
    let before = receive(&mut on_victim, 20).await;
    victim.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = HashSet::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }

    let log = logged(&http, &base(&survivor)).await;
    let unique: HashSet<_> = log.iter().cloned().collect();
    assert_eq!(unique.len(), log.len(), "no event is in the log twice");
    assert!(acked.is_subset(&unique), "an acknowledged event was lost");

    // The victim's subscriber resumes on the survivor from the last event it received.
    let last = before.last().unwrap();
    let at = log
        .iter()
        .position(|id| id == last)
        .expect("received events are logged");
    assert_eq!(
        before,
        log[at + 1 - before.len()..=at],
        "the victim delivered the log in order"
    );
    let mut resumed = subscriber(&survivor, Some(last)).await;
    let rest = tokio::time::timeout(
        Duration::from_secs(30),
        receive(&mut resumed, log.len() - at - 1),
    )
    .await
    .expect("the resumed subscriber gets the rest of the log");
    assert_eq!(
        rest,
        log[at + 1..],
        "the resume has no gap and no duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_instance_closes_its_socket_on_another() {
    let Some(url) = fresh_database_url("revocation").await else {
        return;
    };
    let a = instance(&url);
    let b = instance(&url);
    let http = reqwest::Client::new();
    let created = graphql(
        &http,
        &base(&a),
        "mutation { InfrahubAccountTokenCreate(data: {name: \"cluster\"}) { ok object { id token { value } } } }",
        Value::Null,
    )
    .await
    .unwrap();
    let object = &created["data"]["InfrahubAccountTokenCreate"]["object"];
    let (id, secret) = (
        object["id"].as_str().unwrap().to_owned(),
        object["token"]["value"].as_str().unwrap().to_owned(),
    );
    let mut ws = WsClient::connect(&b.ws_url(), Some("graphql-transport-ws")).await;
    ws.init(&secret).await;
    ws.subscribe("1", "subscription { events { id } }", Value::Null)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let revoked = graphql(
        &http,
        &base(&a),
        "mutation($id: String!) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
        json!({"id": id}),
    )
    .await
    .unwrap();
    let answered = Instant::now();
    assert_eq!(revoked["data"]["InfrahubAccountTokenDelete"]["ok"], true);
    let reason = tokio::time::timeout(Duration::from_secs(5), ws.expect_close(4403))
        .await
        .expect("the socket on instance b closes");
    let took = answered.elapsed();
    println!("closed on the other instance {took:?} after the revocation: {reason}");
    assert!(
        took <= Duration::from_secs(1),
        "closed {took:?} after the revocation"
    );
    // And instance b refuses the token for new requests too.
    let refused = try_graphql(
        &http,
        &format!("{}/graphql", base(&b)),
        Auth::Token(&secret),
        "{ InfrahubEvent(limit: 1) { count } }",
        Value::Null,
    )
    .await;
    assert!(
        refused.is_err(),
        "instance b still accepts the revoked token: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_to_generate_an_artifact_generate_it_once() {
    let Some(url) = fresh_database_url("artifact_race").await else {
        return;
    };
    let (a, b) = (instance(&url), instance(&url));
    let http = reqwest::Client::new();
    let admin = |b: &Binary, q: &'static str, vars: Value| {
        let (http, base) = (http.clone(), base(b));
        async move { graphql(&http, &base, q, vars).await.unwrap()["data"].clone() }
    };
    admin(
        &a,
        "mutation($d: CoreGraphQLQueryCreateInput!) { CoreGraphQLQueryCreate(data: $d) { ok } }",
        json!({"d": {"name": {"value": "branches"}, "query": {"value": "query { Branch { name } }"}}}),
    )
    .await;
    let def = admin(
        &a,
        "mutation($d: CoreArtifactDefinitionCreateInput!) { CoreArtifactDefinitionCreate(data: $d) { ok object { id } } }",
        json!({"d": {
            "name": {"value": "race"},
            "artifact_name": {"value": "race-artifact"},
            "content_type": {"value": "text/plain"},
            "parameters": {"value": {}},
            "query": {"value": "branches"},
            "template": {"value": "{% for b in data.Branch %}{{ b.name }}\n{% endfor %}"},
        }}),
    )
    .await["CoreArtifactDefinitionCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let main = admin(&a, "query { Branch(name: \"main\") { id } }", Value::Null).await["Branch"][0]
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    const GENERATE: &str = "mutation($d: String!, $t: [String!]) { ArtifactGenerate(definition: $d, targets: $t) { ok artifacts { result object { id } } } }";
    // Both instances at once, several times over: one artifact, created once.
    let mut results = Vec::new();
    for _ in 0..5 {
        let vars = json!({"d": def, "t": [main]});
        let (x, y) = tokio::join!(admin(&a, GENERATE, vars.clone()), admin(&b, GENERATE, vars));
        for r in [x, y] {
            let artifact = &r["ArtifactGenerate"]["artifacts"][0];
            results.push((
                artifact["result"].as_str().unwrap().to_owned(),
                artifact["object"]["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let created = results.iter().filter(|(r, _)| r == "created").count();
    assert_eq!(created, 1, "generated more than once: {results:?}");
    assert!(
        results
            .iter()
            .all(|(r, _)| r == "created" || r == "unchanged"),
        "{results:?}"
    );
    assert!(
        results.iter().all(|(_, id)| *id == results[0].1),
        "two artifacts: {results:?}"
    );
    let events = admin(
        &b,
        "{ InfrahubEvent(event_type: [\"infrahub.artifact.created\", \"infrahub.artifact.updated\"]) { count } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        events["InfrahubEvent"]["count"], 1,
        "the event was emitted more than once"
    );
}

/// Runs `git` in `dir`; its trimmed output.
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Waiters for an advisory lock in the database at `url`.
async fn lock_waiters(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_racing_to_sync_a_repository_sync_it_once() {
    use infrastream_services::locks::Locks;
    let Some(url) = fresh_database_url("repository_sync_race").await else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    let path = source.path();
    git(path, &["init", "-q", "-b", "main"]);
    std::fs::write(path.join("README"), "race").unwrap();
    git(path, &["add", "."]);
    git(
        path,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-q",
            "-m",
            "one",
        ],
    );
    let head = git(path, &["rev-parse", "HEAD"]);

    let (a, b) = (instance(&url), instance(&url));
    let http = reqwest::Client::new();
    let created = graphql(
        &http,
        &base(&a),
        "mutation($loc: String!) { CoreRepositoryCreate(data: {name: {value: \"race\"}, location: {value: $loc}}) { object { id } } }",
        json!({"loc": path.to_str().unwrap()}),
    )
    .await
    .unwrap();
    let id = created["data"]["CoreRepositoryCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The repository's lock, held the way a third instance would: both requests are made
    // while it is held, so whichever syncs first started after both were made.
    let locks = infrastream_services::cluster::PostgresLocks::new(url.clone());
    let held = locks.lock(&format!("repository/{id}")).await;
    const SYNC: &str = "mutation($id: String!) { RepositorySync(data: {id: $id}) { ok object { commit { value } } } }";
    let request = |b: &Binary| {
        let (http, base, id) = (http.clone(), base(b), id.clone());
        tokio::spawn(async move {
            graphql(&http, &base, SYNC, json!({"id": id}))
                .await
                .unwrap()
        })
    };
    let (x, y) = (request(&a), request(&b));
    let deadline = Instant::now() + Duration::from_secs(20);
    while lock_waiters(&url).await < 2 {
        assert!(
            Instant::now() < deadline,
            "the two syncs never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    for answer in [x.await.unwrap(), y.await.unwrap()] {
        let r = &answer["data"]["RepositorySync"];
        assert_eq!(r["ok"], true, "{answer}");
        assert_eq!(r["object"]["commit"]["value"], head.as_str(), "{answer}");
    }
    let events = graphql(
        &http,
        &base(&b),
        "query($id: String!) { InfrahubEvent(primary_node__ids: [$id], order: ASC) { edges { node { event } } } }",
        json!({"id": id}),
    )
    .await
    .unwrap();
    let names: Vec<&str> = events["data"]["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "infrahub.repository.sync_started",
            "infrahub.repository.sync_completed",
            "infrahub.repository.update_commit",
        ],
        "synced more than once"
    );

    // A request made after that sync completed syncs again.
    let again = graphql(&http, &base(&a), SYNC, json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(again["data"]["RepositorySync"]["ok"], true, "{again}");
    let started = graphql(
        &http,
        &base(&a),
        "{ InfrahubEvent(event_type: [\"infrahub.repository.sync_started\"]) { count } }",
        Value::Null,
    )
    .await
    .unwrap();
    assert_eq!(started["data"]["InfrahubEvent"]["count"], 2);
}

/// A webhook receiver on 127.0.0.1 answering 200 to every request; what it received
/// (`webhook-id` and body), in arrival order.
async fn webhook_receiver() -> (String, Arc<std::sync::Mutex<Vec<(String, Value)>>>) {
    let seen: Arc<std::sync::Mutex<Vec<(String, Value)>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let record = record.clone();
                async move {
                    let id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    record.lock().unwrap().push((id, body));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_webhook_delivery_is_made_by_exactly_one_instance() {
    let Some(url) = fresh_database_url("webhooks_once").await else {
        return;
    };
    let nodes: Vec<Binary> = (0..2)
        .map(|_| {
            Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
                .set("store", "postgres")
                .set("database_url", &url)
                .set("webhooks.allow_private_destinations", "true")
                .spawn()
        })
        .collect();
    let http = reqwest::Client::new();
    let (hook, seen) = webhook_receiver().await;
    let created = graphql(
        &http,
        &base(&nodes[0]),
        "mutation($d: CoreStandardWebhookCreateInput!) { CoreStandardWebhookCreate(data: $d) { ok } }",
        json!({"d": {
            "name": {"value": "cluster"},
            "url": {"value": hook},
            "event_type": {"value": "cluster.webhook"},
            "branch_scope": {"value": "all_branches"},
        }}),
    )
    .await
    .unwrap();
    assert_eq!(
        created["data"]["CoreStandardWebhookCreate"]["ok"], true,
        "{created}"
    );
    // Events committed through both instances, interleaved.
    let mut emitted = Vec::new();
    for i in 0..40 {
        let q = format!(
            r#"mutation {{ EventEmit(data: {{event: "cluster.webhook", payload: {{i: {i}}}}}) {{ object {{ id }} }} }}"#
        );
        let body = graphql(&http, &base(&nodes[i % 2]), &q, Value::Null)
            .await
            .unwrap();
        emitted.push(
            body["data"]["EventEmit"]["object"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < emitted.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} delivered",
            seen.lock().unwrap().len(),
            emitted.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both instances run a dispatcher and a sender: give a second delivery time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = seen.lock().unwrap().clone();
    let ids: Vec<String> = seen
        .iter()
        .map(|(_, body)| body["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        ids, emitted,
        "every event delivered once, by one instance, in log order"
    );
    let unique: HashSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), emitted.len(), "one webhook-id per event");
}
