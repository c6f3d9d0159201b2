//! Nodes of the kinds a loaded schema declares, over GraphQL: create, list (filters, paging,
//! total count), update, delete; their `infrahub.node.*` events with the changelog; nothing
//! committed by a no-op save or a refused mutation.

use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

async fn load_schema(s: &TestServer) {
    let body = json!({"schemas": [{"version": "1.0", "nodes": [
        {"name": "Site", "namespace": "Infra", "human_friendly_id": ["name__value"],
         "display_label": "Site {{ name__value }}",
         "attributes": [{"name": "name", "kind": "Text", "unique": true},
                        {"name": "height", "kind": "Number", "optional": true},
                        {"name": "secret", "kind": "HashedPassword", "optional": true}]},
        {"name": "Tag", "namespace": "Infra", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text"}]},
        {"name": "Cable", "namespace": "Infra",
         "attributes": [{"name": "label", "kind": "Text", "unique": true},
                        {"name": "serial", "kind": "Text", "unique": true}]},
        {"name": "Device", "namespace": "Infra", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text"},
                        {"name": "role", "kind": "Text", "default_value": "leaf"}],
         "relationships": [
             {"name": "site", "peer": "InfraSite", "cardinality": "one", "optional": false},
             {"name": "tags", "peer": "InfraTag", "cardinality": "many"}]}
    ]}]});
    load(s, &body).await;
}

/// Loads a schema on `main`.
async fn load(s: &TestServer, body: &Value) {
    let resp = s
        .http
        .post(format!("{}/api/schema/load", s.url))
        .header("x-infrahub-key", ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// Runs a create mutation on `main`; the id of `<field>.object`.
async fn created_id(s: &TestServer, query: &str, vars: Value, field: &str) -> String {
    ok(s, query, vars).await[field]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `query` on `/graphql/<branch>`; the whole answer.
async fn run(s: &TestServer, branch: &str, query: &str, vars: Value) -> (u16, Value) {
    s.post(
        &format!("/graphql/{branch}"),
        Some(ADMIN_TOKEN),
        query,
        vars,
    )
    .await
}

async fn ok(s: &TestServer, query: &str, vars: Value) -> Value {
    let (status, body) = run(s, "main", query, vars).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

async fn error(s: &TestServer, branch: &str, query: &str, vars: Value) -> String {
    let (_, body) = run(s, branch, query, vars).await;
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"))
        .to_owned()
}

async fn node_events(s: &TestServer) -> Vec<Value> {
    let data = ok(
        s,
        "{ InfrahubEvent(event_type: [\"infrahub.node.created\", \"infrahub.node.updated\", \"infrahub.node.deleted\"], order: ASC, limit: 50) { edges { node { event branch primary_node { id kind } related_nodes { id kind } ... on NodeMutatedEvent { attributes { name action value value_previous } relationships { name action peer { id kind } } payload } } } } }",
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

const CREATE_SITE: &str = "mutation($n: String, $h: BigInt) { InfraSiteCreate(data: {name: {value: $n}, height: {value: $h}, secret: {value: \"hunter2\"}}) { ok object { id hfid display_label name { value is_default } height { value } } } }";

#[tokio::test]
async fn nodes_are_created_listed_updated_and_deleted_with_their_events() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let site = ok(&s, CREATE_SITE, json!({"n": "paris", "h": 3})).await["InfraSiteCreate"].clone();
    assert_eq!(site["ok"], true);
    let site = &site["object"];
    assert_eq!(site["hfid"], json!(["paris"]));
    assert_eq!(site["display_label"], "Site paris");
    assert_eq!(site["name"], json!({"value": "paris", "is_default": false}));
    let site_id = site["id"].as_str().unwrap().to_owned();
    let tag = ok(
        &s,
        "mutation { InfraTagCreate(data: {name: {value: \"red\"}}) { object { id } } }",
        Value::Null,
    )
    .await["InfraTagCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let device = ok(
        &s,
        "mutation($s: String, $t: String) { InfraDeviceCreate(data: {name: {value: \"r1\"}, site: {id: $s}, tags: [{id: $t}]}) { object { id role { value is_default } site { node { id display_label } } tags { count edges { node { id } } } } } }",
        json!({"s": site_id, "t": tag}),
    )
    .await["InfraDeviceCreate"]["object"]
        .clone();
    assert_eq!(device["role"], json!({"value": "leaf", "is_default": true}));
    assert_eq!(device["site"]["node"]["id"], site_id.as_str());
    assert_eq!(device["tags"]["count"], 1);
    let device_id = device["id"].as_str().unwrap().to_owned();

    // Lists: filters, hfid, paging with the total count.
    for i in 0..5 {
        ok(&s, CREATE_SITE, json!({"n": format!("site-{i}"), "h": i})).await;
    }
    let page = ok(
        &s,
        "{ InfraSite(offset: 2, limit: 2) { count edges { node { name { value } } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(page["InfraSite"]["count"], 6);
    assert_eq!(page["InfraSite"]["edges"].as_array().unwrap().len(), 2);
    let by = ok(
        &s,
        "{ a: InfraSite(name__value: \"paris\") { count } b: InfraSite(hfid: [\"site-3\"]) { edges { node { height { value } } } } c: InfraSite(name__values: [\"site-1\", \"site-2\"]) { count } }",
        Value::Null,
    )
    .await;
    assert_eq!(by["a"]["count"], 1);
    assert_eq!(by["b"]["edges"][0]["node"]["height"]["value"], 3);
    assert_eq!(by["c"]["count"], 2);

    // Update, a no-op update, delete.
    let updated = ok(
        &s,
        "mutation($id: String) { InfraSiteUpdate(data: {id: $id, height: {value: 7}}) { ok object { height { value } } } }",
        json!({"id": site_id}),
    )
    .await;
    assert_eq!(updated["InfraSiteUpdate"]["object"]["height"]["value"], 7);
    ok(
        &s,
        "mutation { InfraSiteUpdate(data: {hfid: [\"paris\"], height: {value: 7}}) { ok } }",
        Value::Null,
    )
    .await;
    ok(
        &s,
        "mutation($id: String) { InfraDeviceDelete(data: {id: $id}) { ok } }",
        json!({"id": device_id}),
    )
    .await;
    assert_eq!(
        ok(&s, "{ InfraDevice { count } }", Value::Null).await["InfraDevice"]["count"],
        0
    );

    let events = node_events(&s).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    // paris, red, r1, 5 sites, one update (the no-op commits nothing), the delete.
    assert_eq!(
        names,
        [
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.updated",
            "infrahub.node.deleted",
        ]
    );
    let created_site = &events[0];
    assert_eq!(created_site["branch"], "main");
    assert_eq!(
        created_site["primary_node"],
        json!({"id": site_id, "kind": "InfraSite"})
    );
    assert_eq!(
        created_site["attributes"],
        json!([
            {"name": "name", "action": "ADDED", "value": "paris", "value_previous": null},
            {"name": "height", "action": "ADDED", "value": "3", "value_previous": null},
            {"name": "secret", "action": "ADDED", "value": "***", "value_previous": null},
        ])
    );
    let created_device = &events[2];
    assert_eq!(
        created_device["related_nodes"],
        json!([{"id": site_id, "kind": "InfraSite"}, {"id": tag, "kind": "InfraTag"}])
    );
    assert_eq!(
        created_device["relationships"],
        json!([
            {"name": "site", "action": "ADDED", "peer": {"id": site_id, "kind": "InfraSite"}},
            {"name": "tags", "action": "ADDED", "peer": {"id": tag, "kind": "InfraTag"}},
        ])
    );
    assert_eq!(
        created_device["payload"]["data"]["human_friendly_id"],
        json!(["r1"])
    );
    let update = &events[8];
    assert_eq!(
        update["attributes"][1],
        json!({"name": "height", "action": "UPDATED", "value": "7", "value_previous": "3"})
    );
    assert_eq!(update["attributes"][0]["action"], "UNCHANGED");
    assert_eq!(events[9]["primary_node"]["id"], device_id.as_str());

    // The peer's events are found by related node.
    let related = ok(
        &s,
        "query($id: String!) { InfrahubEvent(related_node__ids: [$id]) { count } }",
        json!({"id": site_id}),
    )
    .await;
    assert_eq!(related["InfrahubEvent"]["count"], 2);
    s.shutdown().await;
}

#[tokio::test]
async fn refused_mutations_change_nothing_and_say_why() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    ok(&s, CREATE_SITE, json!({"n": "paris", "h": 1})).await;
    let before = node_events(&s).await.len();
    assert_eq!(
        error(&s, "main", CREATE_SITE, json!({"n": "paris", "h": 2})).await,
        "An object already exists with name: paris"
    );
    assert_eq!(
        error(
            &s,
            "main",
            "mutation { InfraDeviceCreate(data: {name: {value: \"r2\"}}) { ok } }",
            Value::Null
        )
        .await,
        "site is required"
    );
    // A kind with two unique attributes: each is checked.
    let cable = "mutation($l: String, $s: String) { InfraCableCreate(data: {label: {value: $l}, serial: {value: $s}}) { ok } }";
    ok(&s, cable, json!({"l": "c1", "s": "s1"})).await;
    let before = before + 1; // that create's event
    assert_eq!(
        error(&s, "main", cable, json!({"l": "c2", "s": "s1"})).await,
        "An object already exists with serial: s1"
    );
    assert_eq!(
        error(&s, "main", cable, json!({"l": "c1", "s": "s2"})).await,
        "An object already exists with label: c1"
    );
    assert_eq!(
        error(
            &s,
            "main",
            "mutation { InfraDeviceCreate(data: {site: {hfid: [\"paris\"]}}) { ok } }",
            Value::Null
        )
        .await,
        "name.value is required"
    );
    assert_eq!(
        error(&s, "main", "mutation { InfraDeviceCreate(data: {name: {value: \"r3\"}, site: {hfid: [\"lyon\"]}}) { ok } }", Value::Null).await,
        "InfraSite lyon not found"
    );
    assert_eq!(
        error(
            &s,
            "main",
            "mutation { InfraSiteUpdate(data: {id: \"nope\", height: {value: 1}}) { ok } }",
            Value::Null
        )
        .await,
        "InfraSite nope not found"
    );
    // One operation cannot mix built-in fields with those of loaded kinds.
    let (status, body) = run(
        &s,
        "main",
        "{ Branch { name } InfraSite { count } }",
        Value::Null,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Fields of schema-defined kinds (InfraSite) cannot be combined"),
        "{body}"
    );
    assert_eq!(
        node_events(&s).await.len(),
        before,
        "a refused mutation committed an event"
    );
    assert_eq!(
        ok(
            &s,
            "{ InfraSite { count } InfraDevice { count } }",
            Value::Null
        )
        .await,
        json!({"InfraSite": {"count": 1}, "InfraDevice": {"count": 0}})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn upserts_and_relationship_changes_commit_their_events() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let upsert = "mutation($h: BigInt) { InfraSiteUpsert(data: {name: {value: \"paris\"}, height: {value: $h}}) { ok created object { id height { value } } } }";
    let first = ok(&s, upsert, json!({"h": 1})).await["InfraSiteUpsert"].clone();
    assert_eq!(first["created"], true);
    let second = ok(&s, upsert, json!({"h": 2})).await["InfraSiteUpsert"].clone();
    assert_eq!(
        second["created"], false,
        "found by the hfid its values make"
    );
    assert_eq!(second["object"]["id"], first["object"]["id"]);
    assert_eq!(second["object"]["height"]["value"], 2);
    let site = first["object"]["id"].as_str().unwrap().to_owned();

    let tag = |name: &'static str| {
        let s = &s;
        async move {
            ok(
                s,
                "mutation($n: String) { InfraTagCreate(data: {name: {value: $n}}) { object { id } } }",
                json!({"n": name}),
            )
            .await["InfraTagCreate"]["object"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (red, blue) = (tag("red").await, tag("blue").await);
    let device = created_id(&s, "mutation($s: String, $t: String) { InfraDeviceCreate(data: {name: {value: \"r1\"}, site: {id: $s}, tags: [{id: $t}]}) { object { id } } }", json!({"s": site, "t": red}), "InfraDeviceCreate").await;
    let change = |op: &'static str, peer: String| {
        let (s, device) = (&s, device.clone());
        async move {
            let q = format!(
                "mutation($id: String!, $p: String) {{ {op}(data: {{id: $id, name: \"tags\", nodes: [{{id: $p}}]}}) {{ ok }} }}"
            );
            ok(s, &q, json!({"id": device, "p": peer})).await
        }
    };
    change("RelationshipAdd", blue.clone()).await;
    change("RelationshipAdd", blue.clone()).await; // already there: no event
    change("RelationshipRemove", red.clone()).await;
    let tags = ok(
        &s,
        "query($id: ID) { InfraDevice(ids: [$id]) { edges { node { tags { count edges { node { id } } } } } } }",
        json!({"id": device}),
    )
    .await;
    assert_eq!(
        tags["InfraDevice"]["edges"][0]["node"]["tags"],
        json!({"count": 1, "edges": [{"node": {"id": blue}}]})
    );
    assert_eq!(
        error(&s, "main", "mutation($id: String!) { RelationshipAdd(data: {id: $id, name: \"site\", nodes: []}) { ok } }", json!({"id": device})).await,
        "site of InfraDevice has cardinality one: set it with InfraDeviceUpdate"
    );

    let events = node_events(&s).await;
    let device_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["primary_node"]["id"] == device.as_str())
        .collect();
    assert_eq!(device_events.len(), 3, "{device_events:?}");
    assert_eq!(
        device_events[1]["relationships"],
        json!([{"name": "tags", "action": "ADDED", "peer": {"id": blue, "kind": "InfraTag"}}])
    );
    assert_eq!(
        device_events[2]["relationships"],
        json!([{"name": "tags", "action": "REMOVED", "peer": {"id": red, "kind": "InfraTag"}}])
    );
    let site_events: Vec<&str> = events
        .iter()
        .filter(|e| e["primary_node"]["id"] == site.as_str())
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        site_events,
        ["infrahub.node.created", "infrahub.node.updated"]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn peers_follow_both_ways_and_cascade_as_child_events() {
    let s = TestServer::start().await;
    let body = json!({"schemas": [{"version": "1.0", "nodes": [
        {"name": "Site", "namespace": "Net", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text"}],
         "relationships": [{"name": "devices", "peer": "NetDevice", "cardinality": "many"}]},
        {"name": "Device", "namespace": "Net", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text"}],
         "relationships": [
             {"name": "site", "peer": "NetSite", "cardinality": "one"},
             {"name": "interfaces", "peer": "NetInterface", "cardinality": "many", "on_delete": "cascade"}]},
        {"name": "Interface", "namespace": "Net", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text"}],
         "relationships": [{"name": "device", "peer": "NetDevice", "cardinality": "one"}]}
    ]}]});
    load(&s, &body).await;
    let create = |kind: &'static str, name: &'static str| {
        let s = &s;
        async move {
            let q = format!(
                "mutation($n: String) {{ {kind}Create(data: {{name: {{value: $n}}}}) {{ object {{ id }} }} }}"
            );
            ok(s, &q, json!({"n": name})).await[format!("{kind}Create")]["object"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (lyon, paris) = (
        create("NetSite", "lyon").await,
        create("NetSite", "paris").await,
    );
    let eth0 = create("NetInterface", "eth0").await;
    let r1 = created_id(&s, "mutation($s: String, $i: String) { NetDeviceCreate(data: {name: {value: \"r1\"}, site: {id: $s}, interfaces: [{id: $i}]}) { object { id } } }", json!({"s": lyon, "i": eth0}), "NetDeviceCreate").await;
    // Both sides.
    let data = ok(
        &s,
        "query($id: ID) { NetSite(ids: [$id]) { edges { node { devices { edges { node { id } } } } } } }",
        json!({"id": lyon}),
    )
    .await;
    assert_eq!(
        data["NetSite"]["edges"][0]["node"]["devices"]["edges"][0]["node"]["id"],
        r1.as_str()
    );
    let data = ok(
        &s,
        "query($id: ID) { NetInterface(ids: [$id]) { edges { node { device { node { id } } } } } }",
        json!({"id": eth0}),
    )
    .await;
    assert_eq!(
        data["NetInterface"]["edges"][0]["node"]["device"]["node"]["id"],
        r1.as_str()
    );

    // Moving the device updates both sites, as children of the device's event.
    ok(
        &s,
        "mutation($id: String, $s: String) { NetDeviceUpdate(data: {id: $id, site: {id: $s}}) { ok } }",
        json!({"id": r1, "s": paris}),
    )
    .await;
    // Deleting it deletes its interface (cascade) and leaves paris without it.
    ok(
        &s,
        "mutation($id: String) { NetDeviceDelete(data: {id: $id}) { ok } }",
        json!({"id": r1}),
    )
    .await;
    assert_eq!(
        ok(&s, "{ NetInterface { count } }", Value::Null).await["NetInterface"]["count"],
        0
    );

    let data = ok(
        &s,
        "{ InfrahubEvent(event_type: [\"infrahub.node.created\", \"infrahub.node.updated\", \"infrahub.node.deleted\"], order: ASC, limit: 50) { edges { node { id event level parent_id primary_node { id } ... on NodeMutatedEvent { relationships { name action peer { id } } } } } } }",
        Value::Null,
    )
    .await;
    let events: Vec<&Value> = data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let summary: Vec<(String, String, i64)> = events
        .iter()
        .map(|e| {
            let who = e["primary_node"]["id"].as_str().unwrap();
            let name = [
                (&lyon, "lyon"),
                (&paris, "paris"),
                (&eth0, "eth0"),
                (&r1, "r1"),
            ]
            .iter()
            .find(|(id, _)| id.as_str() == who)
            .map(|(_, n)| *n)
            .unwrap();
            (
                e["event"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("infrahub.node.")
                    .to_owned(),
                name.to_owned(),
                e["level"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String, i64)> = [
        ("created", "lyon", 0),
        ("created", "paris", 0),
        ("created", "eth0", 0),
        ("created", "r1", 0),
        ("updated", "lyon", 1),
        ("updated", "eth0", 1),
        ("updated", "r1", 0),
        ("updated", "paris", 1),
        ("updated", "lyon", 1),
        ("deleted", "r1", 0),
        ("updated", "paris", 1),
        ("deleted", "eth0", 1),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
    .collect();
    assert_eq!(summary, expected);
    // Children name their parent; the site's change names the device.
    assert_eq!(events[4]["parent_id"], events[3]["id"]);
    assert_eq!(
        events[4]["relationships"],
        json!([{"name": "devices", "action": "ADDED", "peer": {"id": r1}}])
    );
    assert_eq!(events[8]["parent_id"], events[6]["id"]);
    assert_eq!(events[11]["parent_id"], events[9]["id"]);
    s.shutdown().await;
}

#[tokio::test]
async fn attributes_of_a_generic_are_the_inheriting_nodes_own() {
    let s = TestServer::start().await;
    load(
        &s,
        &json!({"schemas": [{"version": "1.0",
            "generics": [{"name": "Equipment", "namespace": "Gear",
                          "attributes": [{"name": "serial", "kind": "Text", "unique": true}]}],
            "nodes": [{"name": "Router", "namespace": "Gear", "inherit_from": ["GearEquipment"],
                       "human_friendly_id": ["serial__value"],
                       "attributes": [{"name": "name", "kind": "Text", "optional": true}]}]}]}),
    )
    .await;
    assert_eq!(
        error(
            &s,
            "main",
            "mutation { GearRouterCreate(data: {name: {value: \"r1\"}}) { ok } }",
            Value::Null
        )
        .await,
        "serial.value is required"
    );
    let created = ok(
        &s,
        "mutation { GearRouterCreate(data: {serial: {value: \"SN1\"}}) { object { hfid serial { value } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        created["GearRouterCreate"]["object"],
        json!({"hfid": ["SN1"], "serial": {"value": "SN1"}})
    );
    assert_eq!(
        error(
            &s,
            "main",
            "mutation { GearRouterCreate(data: {serial: {value: \"SN1\"}}) { ok } }",
            Value::Null
        )
        .await,
        "An object already exists with serial: SN1"
    );
    let found = ok(
        &s,
        "{ GearRouter(serial__value: \"SN1\") { count } }",
        Value::Null,
    )
    .await;
    assert_eq!(found["GearRouter"]["count"], 1);
    // The generic lists the nodes of every kind inheriting from it.
    let all = ok(
        &s,
        "{ GearEquipment(serial__value: \"SN1\") { count edges { node { __typename hfid serial { value } ... on GearRouter { name { value } } } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        all["GearEquipment"],
        json!({"count": 1, "edges": [{"node": {"__typename": "GearRouter", "hfid": ["SN1"],
            "serial": {"value": "SN1"}, "name": {"value": null}}}]})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn group_membership_commits_group_events_with_members_and_ancestors() {
    let s = TestServer::start().await;
    load(
        &s,
        &json!({"schemas": [{"version": "1.0", "nodes": [
            {"name": "Site", "namespace": "Infra", "human_friendly_id": ["name__value"],
             "attributes": [{"name": "name", "kind": "Text", "unique": true}]},
            {"name": "SiteGroup", "namespace": "Infra", "inherit_from": ["CoreGroup"],
             "relationships": [
                 {"name": "parent", "peer": "InfraSiteGroup", "cardinality": "one",
                  "optional": true, "identifier": "site_group_tree"},
                 {"name": "children", "peer": "InfraSiteGroup", "cardinality": "many",
                  "identifier": "site_group_tree"}]}
        ]}]}),
    )
    .await;
    let site = created_id(
        &s,
        "mutation { InfraSiteCreate(data: {name: {value: \"paris\"}}) { object { id } } }",
        Value::Null,
        "InfraSiteCreate",
    )
    .await;
    let root = created_id(
        &s,
        "mutation { InfraSiteGroupCreate(data: {name: {value: \"europe\"}}) { object { id } } }",
        Value::Null,
        "InfraSiteGroupCreate",
    )
    .await;
    let child = created_id(
        &s,
        "mutation($p: String) { InfraSiteGroupCreate(data: {name: {value: \"france\"}, parent: {id: $p}}) { object { id } } }",
        json!({"p": root}),
        "InfraSiteGroupCreate",
    )
    .await;
    let standard = created_id(
        &s,
        "mutation { CoreStandardGroupCreate(data: {name: {value: \"all\"}}) { object { id } } }",
        Value::Null,
        "CoreStandardGroupCreate",
    )
    .await;
    // The parent learns its child (the relationship the other way).
    let tree = ok(
        &s,
        "query($r: ID) { InfraSiteGroup(ids: [$r]) { edges { node { children { count } } } } CoreGroup { count } }",
        json!({"r": root}),
    )
    .await;
    assert_eq!(
        tree["InfraSiteGroup"]["edges"][0]["node"]["children"]["count"],
        1
    );
    assert_eq!(tree["CoreGroup"]["count"], 3, "{tree}");
    let add = "mutation($g: String!, $n: String!) { RelationshipAdd(data: {id: $g, name: \"members\", nodes: [{id: $n}]}) { ok } }";
    let remove = "mutation($g: String!, $n: String!) { RelationshipRemove(data: {id: $g, name: \"members\", nodes: [{id: $n}]}) { ok } }";
    ok(&s, add, json!({"g": child, "n": site})).await;
    ok(&s, add, json!({"g": child, "n": site})).await; // already a member: nothing
    ok(&s, add, json!({"g": standard, "n": child})).await;
    ok(&s, remove, json!({"g": child, "n": site})).await;
    ok(&s, remove, json!({"g": child, "n": site})).await; // not a member: nothing
    let members = ok(
        &s,
        "query($g: ID) { CoreStandardGroup(ids: [$g]) { edges { node { members { count edges { node { id __typename } } } } } } }",
        json!({"g": standard}),
    )
    .await;
    assert_eq!(
        members["CoreStandardGroup"]["edges"][0]["node"]["members"],
        json!({"count": 1, "edges": [{"node": {"id": child, "__typename": "InfraSiteGroup"}}]})
    );
    let events = ok(
        &s,
        "{ InfrahubEvent(event_type: [\"infrahub.group.member_added\", \"infrahub.group.member_removed\"], order: ASC) { edges { node { event branch primary_node { id kind } related_nodes { id kind } ... on GroupEvent { members { id kind } ancestors { id kind } } } } } }",
        Value::Null,
    )
    .await;
    let got: Vec<Value> = events["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    let node = |id: &str, kind: &str| json!({"id": id, "kind": kind});
    let event = |name: &str, group: Value, member: Value, ancestors: Value| {
        json!({"event": name, "branch": "main", "primary_node": group,
               "related_nodes": [member.clone()], "members": [member], "ancestors": ancestors})
    };
    assert_eq!(
        got,
        [
            event(
                "infrahub.group.member_added",
                node(&child, "InfraSiteGroup"),
                node(&site, "InfraSite"),
                json!([node(&root, "InfraSiteGroup")])
            ),
            event(
                "infrahub.group.member_added",
                node(&standard, "CoreStandardGroup"),
                node(&child, "InfraSiteGroup"),
                json!([])
            ),
            event(
                "infrahub.group.member_removed",
                node(&child, "InfraSiteGroup"),
                node(&site, "InfraSite"),
                json!([node(&root, "InfraSiteGroup")])
            ),
        ]
    );
    s.shutdown().await;
}

/// Every field of a node event, as both HTTP and the subscription select it.
const NODE_EVENT_FIELDS: &str = "id event branch level parent_id has_children primary_node { id kind } related_nodes { id kind } ... on NodeMutatedEvent { attributes { name kind action value value_previous } relationships { name action peer { id kind } } payload }";

#[tokio::test]
async fn node_events_are_the_same_over_http_and_on_the_subscription_and_filter_by_node() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let start = s.emit("probe.start", "").await;
    let types = json!([
        "infrahub.node.created",
        "infrahub.node.updated",
        "infrahub.node.deleted"
    ]);
    let mut all = s.ws_admin().await;
    all.subscribe(
        "all",
        &format!("subscription($t: [String!], $a: String) {{ events(event_type: $t, after: $a) {{ {NODE_EVENT_FIELDS} }} }}"),
        json!({"t": types, "a": start}),
    )
    .await;
    let site = created_id(
        &s,
        CREATE_SITE,
        json!({"n": "paris", "h": 3}),
        "InfraSiteCreate",
    )
    .await;
    let tag = created_id(
        &s,
        "mutation { InfraTagCreate(data: {name: {value: \"red\"}}) { object { id } } }",
        Value::Null,
        "InfraTagCreate",
    )
    .await;
    let device = created_id(
        &s,
        "mutation($s: String, $t: String) { InfraDeviceCreate(data: {name: {value: \"r1\"}, site: {id: $s}, tags: [{id: $t}]}) { object { id } } }",
        json!({"s": site, "t": tag}),
        "InfraDeviceCreate",
    )
    .await;
    ok(
        &s,
        "mutation($d: String) { InfraDeviceUpdate(data: {id: $d, name: {value: \"r2\"}}) { ok } }",
        json!({"d": device}),
    )
    .await;
    // Lists filter by any attribute and by peers.
    let found = ok(
        &s,
        "query($s: ID) { a: InfraDevice(any__value: \"r2\") { count } b: InfraDevice(any__value: \"nope\") { count } c: InfraDevice(site__ids: [$s]) { count } d: InfraSite(any__value: \"3\") { count } e: InfraDevice(any__value: \"r\", partial_match: true) { count } }",
        json!({"s": site}),
    )
    .await;
    assert_eq!(
        found,
        json!({"a": {"count": 1}, "b": {"count": 0}, "c": {"count": 1}, "d": {"count": 1}, "e": {"count": 1}})
    );
    ok(
        &s,
        "mutation($d: String) { InfraDeviceDelete(data: {id: $d}) { ok } }",
        json!({"d": device}),
    )
    .await;
    let query = format!(
        "query($t: [String!]) {{ InfrahubEvent(event_type: $t, order: ASC) {{ edges {{ node {{ {NODE_EVENT_FIELDS} }} }} }} }}"
    );
    let over_http: Vec<Value> = ok(&s, &query, json!({"t": types})).await["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    let names: Vec<&str> = over_http
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.created",
            "infrahub.node.updated",
            "infrahub.node.deleted"
        ]
    );
    let mut over_ws = Vec::new();
    for _ in 0..over_http.len() {
        over_ws.push(all.next_data("all").await["events"].clone());
    }
    assert_eq!(
        over_ws, over_http,
        "the subscription and InfrahubEvent differ"
    );
    // By node: the events whose primary node, or a related node, is the site.
    for filter in ["primary_node__ids", "related_node__ids"] {
        let query = format!(
            "query($n: [String!]) {{ InfrahubEvent({filter}: $n, order: ASC) {{ edges {{ node {{ id }} }} }} }}"
        );
        let http_ids: Vec<Value> =
            ok(&s, &query, json!({"n": [site]})).await["InfrahubEvent"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].clone())
                .collect();
        assert!(!http_ids.is_empty(), "{filter}");
        let expected: Vec<Value> = over_http
            .iter()
            .filter(|e| {
                let by_primary = e["primary_node"]["id"] == site.as_str();
                let by_related = e["related_nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["id"] == site.as_str());
                if filter == "primary_node__ids" {
                    by_primary
                } else {
                    by_related
                }
            })
            .map(|e| e["id"].clone())
            .collect();
        assert_eq!(http_ids, expected, "{filter} over HTTP");
        let mut ws = s.ws_admin().await;
        ws.subscribe(
            "f",
            &format!("subscription($n: [String!], $a: String) {{ events({filter}: $n, after: $a) {{ id }} }}"),
            json!({"n": [site], "a": start}),
        )
        .await;
        let mut ws_ids = Vec::new();
        for _ in 0..http_ids.len() {
            ws_ids.push(ws.next_data("f").await["events"]["id"].clone());
        }
        assert_eq!(ws_ids, http_ids, "{filter} on the subscription");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn a_saved_query_of_loaded_kinds_runs_in_a_query_subscription() {
    let s = TestServer::start_with(&[("subscriptions.min_interval_ms", "50")]).await;
    load_schema(&s).await;
    ok(
        &s,
        r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "sites"}, query: {value: "query { InfraSite { count edges { node { name { value } } } } }"}}) { ok } }"#,
        Value::Null,
    )
    .await;
    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "q",
        "subscription { query(name: \"sites\", interval: 50, only_changes: true) }",
        Value::Null,
    )
    .await;
    let first = ws.next_data("q").await;
    assert_eq!(
        first["query"],
        json!({"InfraSite": {"count": 0, "edges": []}}),
        "{first}"
    );
    ok(&s, CREATE_SITE, json!({"n": "paris", "h": 1})).await;
    let next = ws.next_data("q").await;
    assert_eq!(
        next["query"],
        json!({"InfraSite": {"count": 1, "edges": [{"node": {"name": {"value": "paris"}}}]}}),
        "{next}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn queries_and_mutations_of_loaded_kinds_run_over_the_websocket_too() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let mut ws = s.ws_admin().await;
    ws.subscribe(
        "m",
        "mutation { InfraSiteCreate(data: {name: {value: \"oslo\"}}) { ok object { name { value } } } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        ws.next_data("m").await,
        json!({"InfraSiteCreate": {"ok": true, "object": {"name": {"value": "oslo"}}}})
    );
    ws.subscribe("q", "{ InfraSite { count } }", Value::Null)
        .await;
    assert_eq!(ws.next_data("q").await, json!({"InfraSite": {"count": 1}}));
    // Mixing built-in and loaded kinds' fields is refused there as over HTTP.
    ws.subscribe("x", "{ Branch { name } InfraSite { count } }", Value::Null)
        .await;
    let frame = loop {
        let f = ws.recv_data().await;
        if f["id"] == "x" {
            break f;
        }
    };
    assert!(frame.to_string().contains("cannot be combined"), "{frame}");
    s.shutdown().await;
}
