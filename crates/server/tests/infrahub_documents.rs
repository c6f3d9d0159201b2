//! Documents written for Infrahub, with variables typed by Infrahub's own input and enum
//! names, run unchanged against a real server: the declarations match, so they validate, and
//! they do what they do on Infrahub.

use infrastream_testkit::TestServer;
use serde_json::{Value, json};

/// Runs `query` as admin and returns `data.<field>`, asserting success.
async fn run(s: &TestServer, query: &str, variables: Value, field: &str) -> Value {
    s.admin(query, variables).await[field].clone()
}

#[tokio::test]
async fn node_mutations_take_infrahubs_typed_inputs() {
    let s = TestServer::start().await;

    // CoreRepository: create, update by hfid, upsert (update, then create), delete by hfid.
    let created = run(
        &s,
        "mutation($d: CoreRepositoryCreateInput!) { CoreRepositoryCreate(data: $d) { ok object { id } } }",
        json!({"d": {"name": {"value": "infra"}, "location": {"value": "https://example.invalid/infra.git"}}}),
        "CoreRepositoryCreate",
    )
    .await;
    assert_eq!(created["ok"], true, "{created}");
    let repo_id = created["object"]["id"].as_str().unwrap().to_string();
    let updated = run(
        &s,
        "mutation($d: CoreRepositoryUpdateInput!) { CoreRepositoryUpdate(data: $d) { ok object { id description { value } sync_status { value } } } }",
        json!({"d": {"hfid": ["infra"], "description": {"value": "by hfid", "is_default": false}}}),
        "CoreRepositoryUpdate",
    )
    .await;
    assert_eq!(
        updated,
        json!({"ok": true, "object": {"id": repo_id, "description": {"value": "by hfid"}, "sync_status": {"value": "unknown"}}})
    );
    let upserted = run(
        &s,
        "mutation($d: CoreRepositoryUpsertInput!) { CoreRepositoryUpsert(data: $d) { ok object { id default_branch { value } } } }",
        json!({"d": {"name": {"value": "infra"}, "default_branch": {"value": "stable"}}}),
        "CoreRepositoryUpsert",
    )
    .await;
    assert_eq!(upserted["object"]["id"], repo_id.as_str(), "found by name");
    assert_eq!(upserted["object"]["default_branch"]["value"], "stable");
    let other = run(
        &s,
        "mutation($d: CoreRepositoryUpsertInput!) { CoreRepositoryUpsert(data: $d) { ok object { id } } }",
        json!({"d": {"name": {"value": "other"}, "location": {"value": "https://example.invalid/other.git"}}}),
        "CoreRepositoryUpsert",
    )
    .await;
    assert_ne!(other["object"]["id"], repo_id.as_str(), "created");
    let deleted = run(
        &s,
        "mutation($d: DeleteInput!) { CoreRepositoryDelete(data: $d) { ok } }",
        json!({"d": {"hfid": ["infra"]}}),
        "CoreRepositoryDelete",
    )
    .await;
    assert_eq!(deleted, json!({"ok": true}));
    let left = run(
        &s,
        "{ CoreRepository { count edges { node { name { value } } } } }",
        json!({}),
        "CoreRepository",
    )
    .await;
    assert_eq!(
        left,
        json!({"count": 1, "edges": [{"node": {"name": {"value": "other"}}}]})
    );

    // CoreGraphQLQuery and CoreAccount, the same way.
    let q = run(
        &s,
        "mutation($d: CoreGraphQLQueryCreateInput!) { CoreGraphQLQueryCreate(data: $d) { ok object { id display_label } } }",
        json!({"d": {"name": {"value": "branches"}, "query": {"value": "query { Branch { name } }"}}}),
        "CoreGraphQLQueryCreate",
    )
    .await;
    assert_eq!(q["object"]["display_label"], "branches");
    let q = run(
        &s,
        "mutation($d: CoreGraphQLQueryUpsertInput!) { CoreGraphQLQueryUpsert(data: $d) { ok object { description { value } } } }",
        json!({"d": {"hfid": ["branches"], "description": {"value": "d"}}}),
        "CoreGraphQLQueryUpsert",
    )
    .await;
    assert_eq!(q["object"]["description"]["value"], "d");
    let account = run(
        &s,
        "mutation($d: CoreAccountUpsertInput!) { CoreAccountUpsert(data: $d) { ok object { id name { value } } } }",
        json!({"d": {"name": {"value": "erin"}, "password": {"value": "erin-password"}}}),
        "CoreAccountUpsert",
    )
    .await;
    assert_eq!(account["object"]["name"]["value"], "erin", "created");
    let account_id = account["object"]["id"].as_str().unwrap().to_string();
    let again = run(
        &s,
        "mutation($d: CoreAccountUpdateInput!) { CoreAccountUpdate(data: $d) { ok object { id } } }",
        json!({"d": {"hfid": ["erin"], "password": {"value": "erin-password-2"}}}),
        "CoreAccountUpdate",
    )
    .await;
    assert_eq!(again["object"]["id"], account_id.as_str());
    let gone = run(
        &s,
        "mutation($d: DeleteInput!) { CoreAccountDelete(data: $d) { ok } }",
        json!({"d": {"id": account_id}}),
        "CoreAccountDelete",
    )
    .await;
    assert_eq!(gone, json!({"ok": true}));

    // What Infrahub's declarations leave optional but the operation needs is refused clearly.
    for (document, expected) in [
        (
            "mutation($d: CoreRepositoryUpdateInput!) { CoreRepositoryUpdate(data: $d) { ok } }",
            "id or hfid is required for CoreRepository",
        ),
        (
            "mutation($d: DeleteInput!) { CoreGraphQLQueryDelete(data: $d) { ok } }",
            "id or hfid is required for CoreGraphQLQuery",
        ),
        (
            "mutation($d: CoreGraphQLQueryCreateInput!) { CoreGraphQLQueryCreate(data: $d) { ok } }",
            "name.value is required",
        ),
        (
            "mutation($d: BranchNameInput!) { BranchMerge(data: $d) { ok } }",
            "The branch name is required (data.name)",
        ),
        (
            "mutation($d: InfrahubAccountTokenDeleteInput!) { InfrahubAccountTokenDelete(data: $d) { ok } }",
            "The id of the token to delete is required",
        ),
    ] {
        let message = s.admin_error(document, json!({"d": {}})).await;
        assert_eq!(message, expected, "{document}");
    }
    let message = s
        .admin_error(
            "mutation($d: CoreAccountUpdateInput!) { CoreAccountUpdate(data: $d) { ok } }",
            json!({"d": {"hfid": ["a", "b"]}}),
        )
        .await;
    assert!(
        message.starts_with("Invalid hfid for CoreAccount"),
        "{message}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn branch_mutations_take_infrahubs_inputs_and_arguments() {
    let s = TestServer::start().await;
    let created = run(
        &s,
        "mutation($d: BranchCreateInput!, $wait: Boolean) { BranchCreate(data: $d, wait_until_completion: $wait) { ok object { name status is_isolated created_at } task { id } } }",
        json!({"d": {"name": "feat/x", "sync_with_git": false}}),
        "BranchCreate",
    )
    .await;
    assert_eq!(created["ok"], true);
    assert_eq!(created["object"]["status"], "OPEN");
    assert_eq!(created["object"]["is_isolated"], true);
    assert!(created["object"]["created_at"].is_string(), "{created}");
    assert!(created["task"]["id"].is_string(), "{created}");
    // Not waiting: the task, but no branch (as Infrahub).
    let merged = run(
        &s,
        "mutation($d: BranchNameInput!) { BranchMerge(data: $d, wait_until_completion: false) { ok object { name } task { id } } }",
        json!({"d": {"name": "feat/x"}}),
        "BranchMerge",
    )
    .await;
    assert_eq!(merged["ok"], true);
    assert_eq!(merged["object"], Value::Null);
    assert!(merged["task"]["id"].is_string(), "{merged}");
    s.admin(
        r#"mutation { BranchCreate(data: {name: "feat/y"}) { ok } }"#,
        json!({}),
    )
    .await;
    let deleted = run(
        &s,
        "mutation($d: BranchDeleteInput!) { BranchDelete(data: $d) { ok task { id } } }",
        json!({"d": {"name": "feat/y", "delete_from_git": false}}),
        "BranchDelete",
    )
    .await;
    assert_eq!(deleted["ok"], true);
    assert!(deleted["task"]["id"].is_string(), "{deleted}");
    let branches = run(
        &s,
        r#"{ Branch(name: "feat/y") { name } }"#,
        json!({}),
        "Branch",
    )
    .await;
    assert_eq!(branches, json!([]), "feat/y is deleted");
    s.shutdown().await;
}

#[tokio::test]
async fn infrahub_event_order_is_optional_and_descending_by_default() {
    let s = TestServer::start().await;
    let first = s.emit("test.first", "").await;
    let second = s.emit("test.second", "").await;
    let document = "query($order: EventSortOrder) { InfrahubEvent(order: $order, event_type: [\"test.first\", \"test.second\"]) { count edges { node { id } } } }";
    let ids = |data: &Value| -> Vec<String> {
        data["InfrahubEvent"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    // `order` omitted, and given as null: newest first.
    for variables in [json!({}), json!({"order": null})] {
        let data = s.admin(document, variables.clone()).await;
        assert_eq!(data["InfrahubEvent"]["count"], 2, "{variables}");
        assert_eq!(
            ids(&data),
            vec![second.clone(), first.clone()],
            "{variables}"
        );
    }
    let data = s.admin(document, json!({"order": "ASC"})).await;
    assert_eq!(ids(&data), vec![first, second]);

    // The served declaration itself, as a client's introspection sees it.
    let order = s
        .admin(
            r#"{ __type(name: "Query") { fields { name args { name defaultValue type { kind name } } } } }"#,
            json!({}),
        )
        .await["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "InfrahubEvent")
        .unwrap()["args"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "order")
        .unwrap()
        .clone();
    assert_eq!(
        order,
        json!({"name": "order", "defaultValue": "DESC", "type": {"kind": "ENUM", "name": "EventSortOrder"}})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn account_profile_is_a_generic_account() {
    let s = TestServer::start().await;
    let profile = s
        .admin(
            "{ AccountProfile { __typename id display_label name { value } ... on CoreAccount { role { value } } } }",
            json!({}),
        )
        .await["AccountProfile"]
        .clone();
    assert_eq!(profile["__typename"], "CoreAccount");
    assert_eq!(profile["name"]["value"], "admin");
    assert_eq!(profile["display_label"], "admin");
    assert_eq!(profile["role"]["value"], "admin");
    let token = run(
        &s,
        "mutation($d: InfrahubAccountTokenCreateInput!) { InfrahubAccountTokenCreate(data: $d) { ok object { id token { value } } } }",
        json!({"d": {"name": "ci"}}),
        "InfrahubAccountTokenCreate",
    )
    .await;
    assert_eq!(token["ok"], true);
    let id = token["object"]["id"].as_str().unwrap().to_string();
    assert!(token["object"]["token"]["value"].as_str().unwrap().len() >= 64);
    let deleted = run(
        &s,
        "mutation($d: InfrahubAccountTokenDeleteInput!) { InfrahubAccountTokenDelete(data: $d) { ok } }",
        json!({"d": {"id": id}}),
        "InfrahubAccountTokenDelete",
    )
    .await;
    assert_eq!(deleted, json!({"ok": true}));
    s.shutdown().await;
}

#[tokio::test]
async fn artifacts_take_infrahubs_relationship_inputs() {
    let s = TestServer::start().await;
    run(
        &s,
        "mutation($d: CoreGraphQLQueryCreateInput!) { CoreGraphQLQueryCreate(data: $d) { ok } }",
        json!({"d": {"name": {"value": "names"}, "query": {"value": "query { Branch { name } }"}}}),
        "CoreGraphQLQueryCreate",
    )
    .await;
    let definition = run(
        &s,
        "mutation($d: CoreArtifactDefinitionCreateInput!) { CoreArtifactDefinitionCreate(data: $d) { ok object { id } } }",
        json!({"d": {
            "name": {"value": "config"},
            "artifact_name": {"value": "config.txt"},
            "content_type": {"value": "text/plain"},
            "parameters": {"value": {}},
            "query": {"value": "names"},
            "template": {"value": "x"},
        }}),
        "CoreArtifactDefinitionCreate",
    )
    .await;
    let definition_id = definition["object"]["id"].as_str().unwrap().to_string();
    // The definition by hfid, the target as Infrahub's `object`.
    let artifact = run(
        &s,
        "mutation($d: CoreArtifactCreateInput!) { CoreArtifactCreate(data: $d) { ok object { id target { id kind } definition { node { id } } } } }",
        json!({"d": {"definition": {"hfid": ["config"]}, "object": {"id": "dev-1", "kind": "InfraDevice"}}}),
        "CoreArtifactCreate",
    )
    .await;
    assert_eq!(
        artifact["object"]["target"],
        json!({"id": "dev-1", "kind": "InfraDevice"})
    );
    assert_eq!(
        artifact["object"]["definition"]["node"]["id"],
        definition_id.as_str()
    );
    let artifact_id = artifact["object"]["id"].as_str().unwrap().to_string();
    let found = run(
        &s,
        r#"{ CoreArtifact(object__ids: ["dev-1"]) { count edges { node { id } } } }"#,
        json!({}),
        "CoreArtifact",
    )
    .await;
    assert_eq!(
        found,
        json!({"count": 1, "edges": [{"node": {"id": artifact_id}}]})
    );
    let none = run(
        &s,
        r#"{ CoreArtifact(object__ids: ["dev-2"]) { count } }"#,
        json!({}),
        "CoreArtifact",
    )
    .await;
    assert_eq!(none["count"], 0);
    let both = s
        .admin_error(
            "mutation($d: CoreArtifactCreateInput!) { CoreArtifactCreate(data: $d) { ok } }",
            json!({"d": {"definition": {"id": definition_id}, "object": {"id": "dev-3", "kind": "InfraDevice"}, "target": {"id": "dev-3", "kind": "InfraDevice"}}}),
        )
        .await;
    assert_eq!(
        both,
        "Give the artifact's target as object or as target, not both"
    );
    let by_hfid = s
        .admin_error(
            "mutation($d: DeleteInput!) { CoreArtifactDelete(data: $d) { ok } }",
            json!({"d": {"hfid": ["config"]}}),
        )
        .await;
    assert_eq!(
        by_hfid,
        "CoreArtifact has no hfid: designate the artifact by id"
    );
    let deleted = run(
        &s,
        "mutation($d: DeleteInput!) { CoreArtifactDefinitionDelete(data: $d) { ok } }",
        json!({"d": {"hfid": ["config"]}}),
        "CoreArtifactDefinitionDelete",
    )
    .await;
    assert_eq!(deleted, json!({"ok": true}));
    let left = run(&s, "{ CoreArtifact { count } }", json!({}), "CoreArtifact").await;
    assert_eq!(left["count"], 0, "a definition's artifacts go with it");
    s.shutdown().await;
}
