//! Loading a schema (`POST /api/schema/load`), reading it back (`GET /api/schema`,
//! `/api/schema/summary`), its `infrahub.schema.updated` event, its errors, and its branch.

use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

async fn load(s: &TestServer, branch: Option<&str>, body: &Value) -> (u16, Value) {
    let mut url = format!("{}/api/schema/load", s.url);
    if let Some(b) = branch {
        url.push_str(&format!("?branch={b}"));
    }
    let resp = s
        .http
        .post(url)
        .header("x-infrahub-key", ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let resp = s
        .http
        .get(format!("{}{path}", s.url))
        .header("x-infrahub-key", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn infra() -> Value {
    json!({"schemas": [{
        "version": "1.0",
        "generics": [{
            "name": "Equipment", "namespace": "Infra",
            "attributes": [{"name": "serial", "kind": "Text", "optional": true}]
        }],
        "nodes": [
            {"name": "Site", "namespace": "Infra", "human_friendly_id": ["name__value"],
             "default_filter": "name__value",
             "attributes": [{"name": "name", "kind": "Text", "unique": true},
                            {"name": "status", "kind": "Dropdown",
                             "choices": [{"name": "active"}, {"name": "planned"}]}]},
            {"name": "Tag", "namespace": "Infra",
             "attributes": [{"name": "name", "kind": "Text", "unique": true}]},
            {"name": "Device", "namespace": "Infra", "inherit_from": ["InfraEquipment"],
             "human_friendly_id": ["name__value"],
             "uniqueness_constraints": [["site", "name__value"]],
             "attributes": [{"name": "name", "kind": "Text"},
                            {"name": "height", "kind": "Number", "optional": true}],
             "relationships": [
                 {"name": "site", "peer": "InfraSite", "cardinality": "one", "optional": false},
                 {"name": "tags", "peer": "InfraTag", "cardinality": "many"}
             ]}
        ]
    }]})
}

async fn schema_events(s: &TestServer) -> Vec<Value> {
    let data = s
        .admin(
            "{ InfrahubEvent(event_type: [\"infrahub.schema.updated\"], order: ASC) { count edges { node { event branch account_id ... on StandardEvent { payload } } } } }",
            Value::Null,
        )
        .await;
    data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

#[tokio::test]
async fn a_schema_loads_reads_back_and_commits_one_event() {
    let s = TestServer::start().await;
    let (status, body) = load(&s, None, &infra()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema_updated"], true);
    assert_eq!(body["warnings"], json!([]));
    let added: Vec<&String> = body["diff"]["added"].as_object().unwrap().keys().collect();
    assert_eq!(
        added,
        ["InfraDevice", "InfraEquipment", "InfraSite", "InfraTag"]
    );
    let hash = body["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 32);

    let (status, schema) = get(&s, "/api/schema?branch=main").await;
    assert_eq!(status, 200, "{schema}");
    assert_eq!(schema["main"], hash.as_str());
    let nodes = schema["nodes"].as_array().unwrap();
    let device = nodes.iter().find(|n| n["kind"] == "InfraDevice").unwrap();
    assert_eq!(device["namespace"], "Infra");
    assert_eq!(device["branch"], "aware");
    assert_eq!(device["inherit_from"], json!(["InfraEquipment"]));
    assert!(device["id"].is_string());
    let attrs: Vec<(&str, bool)> = device["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["inherited"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        [("name", false), ("height", false), ("serial", true)]
    );
    let site = &device["relationships"][0];
    assert_eq!(site["cardinality"], "one");
    assert_eq!(site["optional"], false);
    assert_eq!(site["identifier"], "infradevice__infrasite");
    assert_eq!(device["relationships"][1]["optional"], true);
    let generics = schema["generics"].as_array().unwrap();
    let generic = generics
        .iter()
        .find(|g| g["kind"] == "InfraEquipment")
        .unwrap();
    assert_eq!(generic["used_by"], json!(["InfraDevice"]));
    // The built-in kinds are there too, as in Infrahub: groups, and the generic of all nodes.
    let group = generics.iter().find(|g| g["kind"] == "CoreGroup").unwrap();
    assert_eq!(group["used_by"], json!(["CoreStandardGroup"]));
    assert!(generics.iter().any(|g| g["kind"] == "CoreNode"));

    let (status, summary) = get(&s, "/api/schema/summary").await;
    assert_eq!(status, 200);
    assert_eq!(summary["main"], hash.as_str());
    assert_eq!(summary["nodes"]["InfraDevice"], device["hash"]);

    let events = schema_events(&s).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["branch"], "main");
    assert!(events[0]["account_id"].is_string());
    let data = &events[0]["payload"]["data"];
    assert_eq!(data["branch_name"], "main");
    assert_eq!(data["schema_hash"], hash.as_str());
    assert_eq!(
        data["changed_elements"]["added_kinds"],
        json!(["InfraDevice", "InfraEquipment", "InfraSite", "InfraTag"])
    );

    // The same load again changes nothing and commits nothing.
    let (status, again) = load(&s, None, &infra()).await;
    assert_eq!(status, 200);
    assert_eq!(again["schema_updated"], false);
    assert_eq!(again["hash"], hash.as_str());
    assert_eq!(schema_events(&s).await.len(), 1);

    // What was read back loads again (its read-only keys are ignored, with warnings).
    let (status, reloaded) = load(
        &s,
        None,
        &json!({"schemas": [{"version": "1.0", "nodes": [device], "generics": [generic]}]}),
    )
    .await;
    assert_eq!(status, 200, "{reloaded}");
    let warnings: Vec<&str> = reloaded["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert!(
        warnings.contains(&"'hash' is a read-only field, the submitted value is ignored"),
        "{warnings:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_change_is_diffed_field_by_field_and_absent_removes() {
    let s = TestServer::start().await;
    assert_eq!(load(&s, None, &infra()).await.0, 200);
    let (status, body) = load(
        &s,
        None,
        &json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "Device", "namespace": "Infra",
             "attributes": [{"name": "height", "kind": "Number", "state": "absent"},
                            {"name": "role", "kind": "Text", "optional": true}]},
            {"name": "Tag", "namespace": "Infra", "state": "absent"}
        ]}]}),
    )
    .await;
    // InfraDevice.tags points to InfraTag, which this load removes.
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        "Unable to find the schema 'InfraTag' in the registry"
    );
    let (status, body) = load(
        &s,
        None,
        &json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "Device", "namespace": "Infra", "description": "A box",
             "attributes": [{"name": "height", "kind": "Number", "state": "absent"},
                            {"name": "role", "kind": "Text", "optional": true}]}
        ]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["diff"]["changed"]["InfraDevice"],
        json!({"added": {"description": null}, "changed": {"attributes": {
            "added": {"role": null}, "changed": {}, "removed": {"height": null}}}, "removed": {}})
    );
    let events = schema_events(&s).await;
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1]["payload"]["data"]["changed_elements"],
        json!({"added_kinds": [], "removed_kinds": [],
               "changed_fields": {"InfraDevice": ["description", "height", "role"]}})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_bad_body_names_where_and_loads_nothing() {
    let s = TestServer::start().await;
    let (status, body) = load(
        &s,
        None,
        &json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "widget", "namespace": "Test", "attributes": [{"name": "size", "kind": "Huge"}]}
        ]}]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_array().unwrap();
    assert_eq!(detail.len(), 2, "{body}");
    assert_eq!(
        detail[0]["loc"],
        json!(["body", "schemas", 0, "nodes", 0, "name"])
    );
    assert_eq!(
        detail[0]["msg"],
        "String should match pattern '^[A-Z][a-zA-Z0-9]+$'"
    );
    assert_eq!(detail[0]["input"], "widget");
    assert_eq!(
        detail[1]["loc"],
        json!(["body", "schemas", 0, "nodes", 0, "attributes", 0])
    );

    // Rules of the merged schema: all broken ones, in one answer.
    let (status, body) = load(
        &s,
        None,
        &json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "Timestamp", "namespace": "Internal"},
            {"name": "Widget", "namespace": "Test", "inherit_from": ["TestMissing"],
             "human_friendly_id": ["color__value"],
             "attributes": [{"name": "save", "kind": "Text"},
                            {"name": "tier", "kind": "Dropdown"},
                            {"name": "level", "kind": "Text"},
                            {"name": "level", "kind": "Number"}]}
        ]}]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["errors"][0]["extensions"]["code"], 422);
    let message = body["errors"][0]["message"].as_str().unwrap();
    for part in [
        "Restricted namespace 'Internal' used on 'Timestamp'",
        "TestWidget: 'save' is a reserved name (attribute: 'save'). Rename this attribute or relationship.",
        "TestWidget.tier: The property 'choices' is required for kind=Dropdown",
        "TestWidget: Names of attributes and relationships must be unique : ['level']",
        "TestWidget Unable to find the generic TestMissing",
        "TestWidget: human_friendly_id 'color__value' is invalid",
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    let (_, schema) = get(&s, "/api/schema").await;
    let kinds: Vec<&str> = schema["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["CoreStandardGroup"],
        "nothing was loaded but the built-in kinds"
    );
    assert!(schema_events(&s).await.is_empty());

    let (status, body) = load(&s, Some("nowhere"), &infra()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["message"], "Branch: nowhere not found.");
    let (status, _) = get(&s, "/api/schema?branch=nowhere").await;
    assert_eq!(status, 400);
    s.shutdown().await;
}

#[tokio::test]
async fn a_schema_loaded_on_a_branch_stays_on_the_branch() {
    let s = TestServer::start().await;
    s.admin(
        "mutation { BranchCreate(data: {name: \"schema-b\"}) { ok } }",
        Value::Null,
    )
    .await;
    assert_eq!(load(&s, None, &infra()).await.0, 200);
    let extra = json!({"schemas": [{"version": "1.0", "nodes": [
        {"name": "Rack", "namespace": "Infra",
         "attributes": [{"name": "name", "kind": "Text"}]}
    ]}]});
    let (status, body) = load(&s, Some("schema-b"), &extra).await;
    assert_eq!(status, 200, "{body}");
    let kinds = |schema: &Value| -> Vec<String> {
        schema["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .filter(|k| !k.starts_with("Core"))
            .collect()
    };
    let (_, on_branch) = get(&s, "/api/schema?branch=schema-b").await;
    assert_eq!(
        kinds(&on_branch),
        ["InfraDevice", "InfraRack", "InfraSite", "InfraTag"]
    );
    let (_, on_main) = get(&s, "/api/schema?branch=main").await;
    assert_eq!(kinds(&on_main), ["InfraDevice", "InfraSite", "InfraTag"]);
    let events = schema_events(&s).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["branch"], "schema-b");
    assert_eq!(
        events[1]["payload"]["data"]["changed_elements"]["added_kinds"],
        json!(["InfraRack"])
    );
    s.shutdown().await;
}

async fn event_id(s: &TestServer, name: &str) -> String {
    let data = s
        .admin(
            "query($e: [String!]) { InfrahubEvent(event_type: $e) { edges { node { id } } } }",
            json!({"e": [name]}),
        )
        .await;
    data["InfrahubEvent"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn node_kinds(s: &TestServer, branch: &str) -> Vec<String> {
    let (status, schema) = get(s, &format!("/api/schema?branch={branch}")).await;
    assert_eq!(status, 200, "{schema}");
    // The kinds loaded (not the built-in ones every schema has).
    schema["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .filter(|k| !k.starts_with("Core"))
        .collect()
}

fn one_node(node: Value) -> Value {
    json!({"schemas": [{"version": "1.0", "nodes": [node]}]})
}

async fn has_schema_changes(s: &TestServer, branch: &str) -> Value {
    let data = s
        .admin(
            "query($b: String) { Branch(name: $b) { has_schema_changes } }",
            json!({"b": branch}),
        )
        .await;
    data["Branch"][0]["has_schema_changes"].clone()
}

#[tokio::test]
async fn a_branch_carries_its_schema_on_rebase_and_merge() {
    let s = TestServer::start().await;
    assert_eq!(load(&s, None, &infra()).await.0, 200);
    s.admin(
        "mutation { BranchCreate(data: {name: \"carry\"}) { ok } }",
        Value::Null,
    )
    .await;
    assert_eq!(has_schema_changes(&s, "carry").await, false);
    // On the branch: a new kind, and InfraSite changed.
    let rack = one_node(json!({"name": "Rack", "namespace": "Infra",
        "attributes": [{"name": "name", "kind": "Text"}]}));
    assert_eq!(load(&s, Some("carry"), &rack).await.0, 200);
    let site_on_branch =
        one_node(json!({"name": "Site", "namespace": "Infra", "description": "from the branch"}));
    assert_eq!(load(&s, Some("carry"), &site_on_branch).await.0, 200);
    assert_eq!(has_schema_changes(&s, "carry").await, true);
    // On main meanwhile: another new kind, and InfraSite changed too.
    let cable = one_node(json!({"name": "Cable", "namespace": "Infra",
        "attributes": [{"name": "label", "kind": "Text"}]}));
    assert_eq!(load(&s, None, &cable).await.0, 200);
    let site_on_main =
        one_node(json!({"name": "Site", "namespace": "Infra", "description": "from main"}));
    assert_eq!(load(&s, None, &site_on_main).await.0, 200);
    assert_eq!(
        node_kinds(&s, "carry").await,
        ["InfraDevice", "InfraRack", "InfraSite", "InfraTag"]
    );

    // Rebase: main's schema with the branch's changes on top.
    s.admin(
        "mutation { BranchRebase(data: {name: \"carry\"}) { ok } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        node_kinds(&s, "carry").await,
        [
            "InfraCable",
            "InfraDevice",
            "InfraRack",
            "InfraSite",
            "InfraTag"
        ]
    );
    let (_, on_branch) = get(&s, "/api/schema?branch=carry").await;
    let site = |schema: &Value| {
        schema["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["kind"] == "InfraSite")
            .unwrap()["description"]
            .clone()
    };
    assert_eq!(site(&on_branch), "from the branch");
    let rebased = event_id(&s, "infrahub.branch.rebased").await;

    // Merge: main gets the branch's kinds; the branch's value wins for InfraSite.
    s.admin(
        "mutation { BranchMerge(data: {name: \"carry\"}) { ok } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        node_kinds(&s, "main").await,
        [
            "InfraCable",
            "InfraDevice",
            "InfraRack",
            "InfraSite",
            "InfraTag"
        ]
    );
    let (_, on_main) = get(&s, "/api/schema?branch=main").await;
    assert_eq!(site(&on_main), "from the branch");
    let merged = event_id(&s, "infrahub.branch.merged").await;

    let data = s
        .admin(
            "{ InfrahubEvent(event_type: [\"infrahub.schema.updated\"], order: ASC) { edges { node { branch level parent_id ... on StandardEvent { payload } } } } }",
            Value::Null,
        )
        .await;
    let events: Vec<&Value> = data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    // infra, rack, site (branch), cable, site (main), rebase, merge.
    assert_eq!(events.len(), 7, "{events:?}");
    let (on_rebase, on_merge) = (events[5], events[6]);
    assert_eq!(on_rebase["branch"], "carry");
    assert_eq!(on_rebase["parent_id"], rebased.as_str());
    assert_eq!(on_rebase["level"], 1);
    assert_eq!(
        on_rebase["payload"]["data"]["changed_elements"]["added_kinds"],
        json!(["InfraCable"])
    );
    assert_eq!(on_merge["branch"], "main");
    assert_eq!(on_merge["parent_id"], merged.as_str());
    assert_eq!(
        on_merge["payload"]["data"]["changed_elements"],
        json!({"added_kinds": ["InfraRack"], "removed_kinds": [],
               "changed_fields": {"InfraSite": ["description"]}})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_merge_that_would_make_the_schema_invalid_is_refused() {
    let s = TestServer::start().await;
    let rack = one_node(json!({"name": "Rack", "namespace": "Infra",
        "attributes": [{"name": "name", "kind": "Text"}]}));
    assert_eq!(load(&s, None, &rack).await.0, 200);
    s.admin(
        "mutation { BranchCreate(data: {name: \"dangling\"}) { ok } }",
        Value::Null,
    )
    .await;
    // The branch points a new kind at InfraRack; main removes InfraRack meanwhile.
    let device = one_node(json!({"name": "Device", "namespace": "Infra",
        "attributes": [{"name": "name", "kind": "Text"}],
        "relationships": [{"name": "rack", "peer": "InfraRack", "cardinality": "one"}]}));
    assert_eq!(load(&s, Some("dangling"), &device).await.0, 200);
    let gone = one_node(json!({"name": "Rack", "namespace": "Infra", "state": "absent"}));
    assert_eq!(load(&s, None, &gone).await.0, 200);
    for op in ["BranchMerge", "BranchRebase"] {
        let message = s
            .admin_error(
                &format!("mutation {{ {op}(data: {{name: \"dangling\"}}) {{ ok }} }}"),
                Value::Null,
            )
            .await;
        let verb = if op == "BranchMerge" {
            "merge"
        } else {
            "rebase"
        };
        assert_eq!(
            message,
            format!(
                "Unable to {verb} the branch 'dangling', the resulting schema is not valid: Unable to find the schema 'InfraRack' in the registry"
            )
        );
    }
    assert_eq!(node_kinds(&s, "main").await, Vec::<String>::new());
    s.shutdown().await;
}
