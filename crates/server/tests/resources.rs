//! Branch lifecycle details, saved queries and accounts through GraphQL, in Infrahub's shapes.

use infrastream_testkit::{Auth, TestServer};
use serde_json::json;

#[tokio::test]
async fn branch_update_validate_and_rebase_move_the_right_fields() {
    let s = TestServer::start().await;
    let fields = "id name description status branched_from created_at graph_version sync_with_git is_default has_schema_changes origin_branch";
    let created = s
        .admin(&format!(r#"mutation {{ BranchCreate(data: {{name: "feat/u", description: "one", sync_with_git: true}}) {{ ok object {{ {fields} }} }} }}"#), json!({}))
        .await["BranchCreate"]["object"]
        .clone();
    assert_eq!(created["sync_with_git"], true);
    assert_eq!(created["graph_version"], 0);
    let updated = s
        .admin(&format!(r#"mutation {{ BranchUpdate(data: {{name: "feat/u", description: "two"}}) {{ ok object {{ {fields} }} }} }}"#), json!({}))
        .await["BranchUpdate"]["object"]
        .clone();
    assert_eq!(updated["description"], "two");
    assert_eq!(
        updated["branched_from"], created["branched_from"],
        "an update does not move branched_from"
    );
    let valid = s
        .admin(
            r#"mutation { BranchValidate(data: {name: "feat/u"}) { ok object { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        valid["BranchValidate"],
        json!({"ok": true, "object": {"name": "feat/u"}})
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let rebased = s
        .admin(&format!(r#"mutation {{ BranchRebase(data: {{name: "feat/u"}}) {{ ok object {{ {fields} }} }} }}"#), json!({}))
        .await["BranchRebase"]["object"]
        .clone();
    assert!(
        rebased["branched_from"].as_str() > created["branched_from"].as_str(),
        "rebase moves branched_from"
    );
    assert_eq!(rebased["created_at"], created["created_at"]);
    assert_eq!(rebased["graph_version"], 1);
    let by_id = s
        .admin(
            &format!(
                r#"{{ Branch(ids: ["{}"]) {{ name description }} }}"#,
                created["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        by_id["Branch"],
        json!([{"name": "feat/u", "description": "two"}])
    );
    let e = s
        .admin_error(
            r#"mutation { BranchUpdate(data: {name: "nope"}) { ok } }"#,
            json!({}),
        )
        .await;
    assert_eq!(e, "Branch: nope not found.");
    s.shutdown().await;
}

#[tokio::test]
async fn saved_queries_are_validated_and_managed_in_node_shape() {
    let s = TestServer::start().await;
    let create = r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "q1"}, query: {value: "query { Branch { name } }"}, description: {value: "d"}}) { ok object { id name { value } query { value } description { value } } } }"#;
    let created = s.admin(create, json!({})).await["CoreGraphQLQueryCreate"].clone();
    assert_eq!(created["ok"], true);
    assert_eq!(created["object"]["name"]["value"], "q1");
    let id = created["object"]["id"].as_str().unwrap().to_string();
    let dup = s.admin_error(create, json!({})).await;
    assert!(dup.contains("already exists"), "{dup}");
    let invalid = s
        .admin_error(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "bad"}, query: {value: "query { NoSuchField }"}}) { ok } }"#, json!({}))
        .await;
    assert!(invalid.starts_with("The query is not valid"), "{invalid}");
    let unparsable = s
        .admin_error(r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "bad"}, query: {value: "query {"}}) { ok } }"#, json!({}))
        .await;
    assert!(
        unparsable.starts_with("The query is not valid"),
        "{unparsable}"
    );
    let update = format!(
        r#"mutation {{ CoreGraphQLQueryUpdate(data: {{id: "{id}", query: {{value: "query {{ InfrahubInfo {{ version }} }}"}}}}) {{ ok object {{ query {{ value }} description {{ value }} }} }} }}"#
    );
    let updated = s.admin(&update, json!({})).await;
    assert_eq!(
        updated["CoreGraphQLQueryUpdate"]["object"]["query"]["value"],
        "query { InfrahubInfo { version } }"
    );
    assert_eq!(
        updated["CoreGraphQLQueryUpdate"]["object"]["description"]["value"],
        "d"
    );
    let upsert = r#"mutation { CoreGraphQLQueryUpsert(data: {name: {value: "q2"}, query: {value: "query { Branch { id } }"}}) { ok object { id } } }"#;
    let first = s.admin(upsert, json!({})).await["CoreGraphQLQueryUpsert"]["object"]["id"].clone();
    let second = s.admin(upsert, json!({})).await["CoreGraphQLQueryUpsert"]["object"]["id"].clone();
    assert_eq!(first, second, "upsert by name updates the same query");
    let list = s
        .admin(
            r#"{ CoreGraphQLQuery { count edges { node { name { value } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(list["CoreGraphQLQuery"]["count"], 2);
    let one = s
        .admin(
            r#"{ CoreGraphQLQuery(name__value: "q2") { count } }"#,
            json!({}),
        )
        .await;
    assert_eq!(one["CoreGraphQLQuery"]["count"], 1);
    s.admin(
        &format!(r#"mutation {{ CoreGraphQLQueryDelete(data: {{id: "{id}"}}) {{ ok }} }}"#),
        json!({}),
    )
    .await;
    let gone = s
        .admin_error(
            &format!(r#"mutation {{ CoreGraphQLQueryDelete(data: {{id: "{id}"}}) {{ ok }} }}"#),
            json!({}),
        )
        .await;
    assert!(gone.contains("not found"), "{gone}");
    s.shutdown().await;
}

#[tokio::test]
async fn accounts_and_their_tokens() {
    let s = TestServer::start().await;
    let created = s
        .admin(r#"mutation { CoreAccountCreate(data: {name: {value: "carol"}, password: {value: "carolpassword"}, role: {value: "read-write"}}) { ok object { id name { value } role { value } } } }"#, json!({}))
        .await["CoreAccountCreate"]["object"]
        .clone();
    assert_eq!(created["role"]["value"], "read-write");
    let bad_role = s
        .admin_error(r#"mutation { CoreAccountCreate(data: {name: {value: "dave"}, password: {value: "davepassword"}, role: {value: "root"}}) { ok } }"#, json!({}))
        .await;
    assert!(bad_role.contains("Invalid role"), "{bad_role}");
    // carol logs in, creates her own API token and uses it.
    let (access, _) = s.login_ok("carol", "carolpassword").await;
    let (_, token) = s
        .post_as(
            "/graphql",
            Auth::Bearer(&access),
            "mutation { InfrahubAccountTokenCreate(data: {name: \"ci\"}) { ok object { id token { value } } } }",
            json!({}),
        )
        .await;
    let secret = token["data"]["InfrahubAccountTokenCreate"]["object"]["token"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 64, "at least 32 bytes of entropy");
    let (status, profile) = s
        .post(
            "/graphql",
            Some(&secret),
            "{ AccountProfile { id name { value } ... on CoreAccount { role { value } } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        profile["data"]["AccountProfile"]["name"]["value"], "carol",
        "{profile}"
    );
    assert_eq!(
        profile["data"]["AccountProfile"]["role"]["value"],
        "read-write"
    );
    let list = s
        .admin(
            r#"{ CoreAccount { count edges { node { name { value } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(list["CoreAccount"]["count"], 2);
    let id = created["id"].as_str().unwrap();
    s.admin(&format!(r#"mutation {{ CoreAccountUpdate(data: {{id: "{id}", role: {{value: "read-only"}}}}) {{ ok }} }}"#), json!({})).await;
    let (_, denied) = s
        .post(
            "/graphql",
            Some(&secret),
            r#"mutation { BranchCreate(data: {name: "x"}) { ok } }"#,
            json!({}),
        )
        .await;
    assert_eq!(denied["errors"][0]["extensions"]["code"], "FORBIDDEN");
    s.admin(
        &format!(r#"mutation {{ CoreAccountDelete(data: {{id: "{id}"}}) {{ ok }} }}"#),
        json!({}),
    )
    .await;
    let (status, _) = s
        .post("/graphql", Some(&secret), "{ Branch { name } }", json!({}))
        .await;
    assert_eq!(status, 401, "a deleted account's tokens stop working");
    s.shutdown().await;
}
