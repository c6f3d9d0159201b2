//! A node id is taken once: of two creates racing with one id, exactly one wins and the other
//! gets a clear `ALREADY_EXISTS` error, whatever the timing (the store checks inside its
//! transaction, not only before it).

use futures::future::join;
use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

const DEFINITION_CREATE: &str = "mutation($d: CoreArtifactDefinitionCreateInput!) { CoreArtifactDefinitionCreate(data: $d) { ok object { id name { value } } } }";

/// Creates a definition named `name` with node id `id`; the raw response body.
async fn create_definition(s: &TestServer, id: &str, name: &str) -> Value {
    let (status, body) = s
        .post(
            "/graphql",
            Some(ADMIN_TOKEN),
            DEFINITION_CREATE,
            json!({"d": {
                "id": id,
                "name": {"value": name},
                "artifact_name": {"value": "config"},
                "content_type": {"value": "text/plain"},
                "query": {"value": "q"},
                "template": {"value": "hello"},
            }}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn two_concurrent_creates_with_one_id_have_exactly_one_winner() {
    let s = TestServer::start().await;
    s.admin(
        "mutation { CoreGraphQLQueryCreate(data: {name: {value: \"q\"}, query: {value: \"{ InfrahubInfo { version } }\"}}) { ok } }",
        json!({}),
    )
    .await;
    for round in 0..20 {
        let id = uuid::Uuid::now_v7().to_string();
        let (a, b) = join(
            create_definition(&s, &id, &format!("first-{round}")),
            create_definition(&s, &id, &format!("second-{round}")),
        )
        .await;
        let won: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|r| r["data"]["CoreArtifactDefinitionCreate"]["ok"] == true)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {a} / {b}");
        let lost = if won[0] == &a { &b } else { &a };
        let error = &lost["errors"][0];
        assert_eq!(error["extensions"]["code"], "ALREADY_EXISTS", "{lost}");
        assert!(
            error["message"].as_str().unwrap().contains(&id),
            "the error names the id: {lost}"
        );
        // The winner's name stands: the loser overwrote nothing.
        let winner_name =
            &won[0]["data"]["CoreArtifactDefinitionCreate"]["object"]["name"]["value"];
        let stored = s
            .admin(
                "query($ids: [ID]) { CoreArtifactDefinition(ids: $ids) { count edges { node { name { value } } } } }",
                json!({"ids": [id]}),
            )
            .await;
        assert_eq!(stored["CoreArtifactDefinition"]["count"], 1, "{stored}");
        assert_eq!(
            &stored["CoreArtifactDefinition"]["edges"][0]["node"]["name"]["value"],
            winner_name
        );
    }
}

#[tokio::test]
async fn an_id_taken_by_one_kind_is_refused_to_another_and_the_node_keeps_its_kind() {
    let s = TestServer::start().await;
    s.admin(
        "mutation { CoreGraphQLQueryCreate(data: {name: {value: \"q\"}, query: {value: \"{ InfrahubInfo { version } }\"}}) { ok } }",
        json!({}),
    )
    .await;
    let id = uuid::Uuid::now_v7().to_string();
    let created = create_definition(&s, &id, "holder").await;
    assert_eq!(
        created["data"]["CoreArtifactDefinitionCreate"]["ok"], true,
        "{created}"
    );
    let (status, body) = s
        .post(
            "/graphql",
            Some(ADMIN_TOKEN),
            "mutation($id: String, $loc: String!) { CoreRepositoryCreate(data: {id: $id, name: {value: \"r\"}, location: {value: $loc}}) { ok } }",
            json!({"id": id, "loc": "file:///nonexistent"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "ALREADY_EXISTS",
        "{body}"
    );
    let stored = s
        .admin(
            "query($ids: [ID]) { CoreArtifactDefinition(ids: $ids) { count } CoreRepository(ids: $ids) { count } }",
            json!({"ids": [id]}),
        )
        .await;
    assert_eq!(stored["CoreArtifactDefinition"]["count"], 1, "{stored}");
    assert_eq!(stored["CoreRepository"]["count"], 0, "{stored}");
}
