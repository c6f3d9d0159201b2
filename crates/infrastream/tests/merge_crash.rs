//! A merge is all or nothing: a branch with 200 changed nodes is merged while the real binary
//! is killed with SIGKILL at different moments; after each restart on the same data directory
//! the default branch has either all 200 nodes, the branch `MERGED` and one
//! `infrahub.branch.merged` event with 200 child events — or none of it, with the branch still
//! open and still seeing its 200 nodes.

use infrastream_testkit::http::try_graphql;
use infrastream_testkit::{ADMIN_TOKEN, Auth, Binary};
use serde_json::{Value, json};
use std::time::Duration;

const NODES: usize = 200;
/// How long after sending the merge each round kills the server.
const KILL_AFTER_MS: [u64; 5] = [0, 10, 30, 80, 200];

async fn graphql(http: &reqwest::Client, url: &str, query: &str, vars: Value) -> Value {
    try_graphql(
        http,
        &format!("{url}/graphql"),
        Auth::Token(ADMIN_TOKEN),
        query,
        vars,
    )
    .await
    .unwrap_or_else(|e| panic!("{query}: {e}"))["data"]
        .clone()
}

async fn on_branch(http: &reqwest::Client, url: &str, branch: &str, query: &str) -> Value {
    try_graphql(
        http,
        &format!("{url}/graphql/{branch}"),
        Auth::Token(ADMIN_TOKEN),
        query,
        Value::Null,
    )
    .await
    .unwrap_or_else(|e| panic!("{query}: {e}"))["data"]
        .clone()
}

/// How many sites named `<prefix>…` `branch` sees.
async fn sites(http: &reqwest::Client, url: &str, branch: &str, prefix: &str) -> usize {
    let data = on_branch(
        http,
        url,
        branch,
        "{ InfraSite { edges { node { name { value } } } } }",
    )
    .await;
    data["InfraSite"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["node"]["name"]["value"]
                .as_str()
                .unwrap()
                .starts_with(prefix)
        })
        .count()
}

/// The ids of the `infrahub.branch.merged` events of `branch`, and the number of children of
/// each.
async fn merged_events(http: &reqwest::Client, url: &str, branch: &str) -> Vec<(String, usize)> {
    let data = graphql(
        http,
        url,
        "{ InfrahubEvent(event_type: [\"infrahub.branch.merged\"], limit: 50) { edges { node { id ... on BranchMergedEvent { source_branch } } } } }",
        Value::Null,
    )
    .await;
    let mut out = Vec::new();
    for e in data["InfrahubEvent"]["edges"].as_array().unwrap() {
        if e["node"]["source_branch"] != branch {
            continue;
        }
        let id = e["node"]["id"].as_str().unwrap().to_owned();
        let children = graphql(
            http,
            url,
            "query($p: String!) { InfrahubEvent(parent__ids: [$p], limit: 1) { count } }",
            json!({"p": id}),
        )
        .await["InfrahubEvent"]["count"]
            .as_u64()
            .unwrap() as usize;
        out.push((id, children));
    }
    out
}

async fn load_schema(http: &reqwest::Client, url: &str) {
    let body = json!({"schemas": [{"version": "1.0", "nodes": [
        {"name": "Site", "namespace": "Infra", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text", "unique": true}]}]}]});
    let resp = http
        .post(format!("{url}/api/schema/load"))
        .header("x-infrahub-key", ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// Creates the branch and its `NODES` sites, 8 requests at a time.
async fn prepare(http: &reqwest::Client, url: &str, branch: &str) {
    graphql(
        http,
        url,
        "mutation($n: String!) { BranchCreate(data: {name: $n}) { ok } }",
        json!({"n": branch}),
    )
    .await;
    for chunk in (0..NODES).collect::<Vec<_>>().chunks(8) {
        let creates = chunk.iter().map(|i| {
            let query = format!(
                "mutation {{ InfraSiteCreate(data: {{name: {{value: \"{branch}-{i:03}\"}}}}) {{ ok }} }}"
            );
            async move { on_branch(http, url, branch, &query).await }
        });
        futures::future::join_all(creates).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_killed_midway_leaves_all_of_it_or_none() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut server = Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
        .env_remove("INFRASTREAM_FSYNC")
        .spawn();
    load_schema(&http, &server.url).await;
    let mut outcomes = Vec::new();
    for (round, delay) in KILL_AFTER_MS.iter().enumerate() {
        let branch = format!("big{round}");
        prepare(&http, &server.url, &branch).await;
        assert_eq!(sites(&http, &server.url, &branch, &branch).await, NODES);
        let merge = {
            let (http, url, branch) = (http.clone(), server.url.clone(), branch.clone());
            tokio::spawn(async move {
                try_graphql(
                    &http,
                    &format!("{url}/graphql"),
                    Auth::Token(ADMIN_TOKEN),
                    "mutation($n: String) { BranchMerge(data: {name: $n}) { ok } }",
                    json!({"n": branch}),
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(*delay)).await;
        server.kill();
        let acknowledged = merge.await.unwrap().is_ok();
        server = server.restart();
        let url = server.url.clone();
        let on_main = sites(&http, &url, "main", &branch).await;
        let events = merged_events(&http, &url, &branch).await;
        let status = graphql(
            &http,
            &url,
            "query($n: String) { Branch(name: $n) { status } }",
            json!({"n": branch}),
        )
        .await["Branch"][0]["status"]
            .clone();
        if on_main == NODES {
            assert_eq!(status, "MERGED", "round {round}");
            assert_eq!(events.len(), 1, "round {round}: {events:?}");
            assert_eq!(events[0].1, NODES, "round {round}: children of the merge");
            outcomes.push("merged");
        } else {
            assert_eq!(
                on_main, 0,
                "round {round}: a part of the merge was committed"
            );
            assert!(
                !acknowledged,
                "round {round}: an acknowledged merge was lost"
            );
            assert!(events.is_empty(), "round {round}: {events:?}");
            assert_eq!(status, "OPEN", "round {round}");
            assert_eq!(
                sites(&http, &url, &branch, &branch).await,
                NODES,
                "round {round}"
            );
            outcomes.push("not merged");
        }
    }
    eprintln!("outcomes by kill delay {KILL_AFTER_MS:?}: {outcomes:?}");
    server.kill();
}
