//! Data on branches, over GraphQL: what each branch sees (the default branch as of
//! `branched_from` plus its own changes; agnostic attributes shared at once), the diff and
//! its conflicts, merge (one `infrahub.branch.merged` with a child event per changed node, in
//! one commit; refused while a conflict is unresolved), rebase, and delete.

use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use serde_json::{Value, json};

async fn load_schema(s: &TestServer) {
    let body = json!({"schemas": [{"version": "1.0", "nodes": [
        {"name": "Site", "namespace": "Infra", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text", "unique": true},
                        {"name": "height", "kind": "Number", "optional": true},
                        {"name": "note", "kind": "Text", "optional": true},
                        {"name": "owner", "kind": "Text", "optional": true, "branch": "agnostic"}]},
        {"name": "Tag", "namespace": "Infra", "human_friendly_id": ["name__value"],
         "attributes": [{"name": "name", "kind": "Text", "unique": true}],
         "relationships": [{"name": "sites", "peer": "InfraSite", "cardinality": "many",
                            "identifier": "site__tag"}]}
    ]}]});
    let resp = s
        .http
        .post(format!("{}/api/schema/load", s.url))
        .header("x-infrahub-key", ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

/// Runs `query` on `/graphql/<branch>` as the admin, asserting success; returns `data`.
async fn on(s: &TestServer, branch: &str, query: &str, vars: Value) -> Value {
    let (status, body) = s
        .post(
            &format!("/graphql/{branch}"),
            Some(ADMIN_TOKEN),
            query,
            vars,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{branch}: {query}: {body}");
    body["data"].clone()
}

/// The first error's message of `query` on `branch`.
async fn refused(s: &TestServer, branch: &str, query: &str, vars: Value) -> String {
    let (_, body) = s
        .post(
            &format!("/graphql/{branch}"),
            Some(ADMIN_TOKEN),
            query,
            vars,
        )
        .await;
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"))
        .to_owned()
}

async fn create_site(s: &TestServer, branch: &str, name: &str, height: i64) -> String {
    on(
        s,
        branch,
        "mutation($n: String, $h: BigInt) { InfraSiteCreate(data: {name: {value: $n}, height: {value: $h}}) { object { id } } }",
        json!({"n": name, "h": height}),
    )
    .await["InfraSiteCreate"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn update_site(s: &TestServer, branch: &str, id: &str, field: &str, value: Value) {
    let query = format!(
        "mutation($id: String, $v: GenericScalar) {{ InfraSiteUpdate(data: {{id: $id, {field}: {{value: $v}}}}) {{ ok }} }}"
    )
    .replace("GenericScalar", if value.is_number() { "BigInt" } else { "String" });
    on(s, branch, &query, json!({"id": id, "v": value})).await;
}

/// The sites `branch` sees: name → {height, note, owner}.
async fn sites(s: &TestServer, branch: &str) -> Value {
    let data = on(
        s,
        branch,
        "{ InfraSite { count edges { node { name { value } height { value } note { value } owner { value } } } } }",
        Value::Null,
    )
    .await;
    let edges = data["InfraSite"]["edges"].as_array().unwrap();
    assert_eq!(data["InfraSite"]["count"], edges.len(), "{data}");
    let mut out = serde_json::Map::new();
    for e in edges {
        let n = &e["node"];
        out.insert(
            n["name"]["value"].as_str().unwrap().to_owned(),
            json!({"height": n["height"]["value"], "note": n["note"]["value"], "owner": n["owner"]["value"]}),
        );
    }
    Value::Object(out)
}

async fn branch_op(s: &TestServer, op: &str, name: &str) {
    let query = format!("mutation($n: String) {{ {op}(data: {{name: $n}}) {{ ok }} }}");
    on(s, "main", &query, json!({"n": name})).await;
}

async fn create_branch(s: &TestServer, name: &str) {
    on(
        s,
        "main",
        "mutation($n: String!) { BranchCreate(data: {name: $n}) { ok } }",
        json!({"n": name}),
    )
    .await;
}

fn site(height: Value, note: Value, owner: Value) -> Value {
    json!({"height": height, "note": note, "owner": owner})
}

#[tokio::test]
async fn each_branch_sees_main_as_of_branched_from_plus_its_own_changes() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let paris = create_site(&s, "main", "paris", 1).await;
    let lyon = create_site(&s, "main", "lyon", 1).await;
    create_branch(&s, "b").await;
    create_branch(&s, "c").await;
    // On b: an update, a create, a delete, and an agnostic attribute.
    update_site(&s, "b", &paris, "height", json!(2)).await;
    let nice = create_site(&s, "b", "nice", 5).await;
    on(
        &s,
        "b",
        "mutation($id: String) { InfraSiteDelete(data: {id: $id}) { ok } }",
        json!({"id": lyon}),
    )
    .await;
    update_site(&s, "b", &paris, "owner", json!("ops")).await;
    // On main, after b and c were branched: an update and a create.
    update_site(&s, "main", &paris, "note", json!("main note")).await;
    create_site(&s, "main", "brest", 7).await;
    let null = Value::Null;
    assert_eq!(
        sites(&s, "main").await,
        json!({
            "brest": site(json!(7), null.clone(), null.clone()),
            "lyon": site(json!(1), null.clone(), null.clone()),
            "paris": site(json!(1), json!("main note"), json!("ops")),
        }),
        "main: b's changes are invisible until merge, but for the agnostic owner"
    );
    assert_eq!(
        sites(&s, "b").await,
        json!({
            "nice": site(json!(5), null.clone(), null.clone()),
            "paris": site(json!(2), null.clone(), json!("ops")),
        }),
        "b: its own changes on main as of branched_from; main's later changes invisible"
    );
    assert_eq!(
        sites(&s, "c").await,
        json!({
            "lyon": site(json!(1), null.clone(), null.clone()),
            "paris": site(json!(1), null.clone(), json!("ops")),
        }),
        "c: main as of branched_from; nothing of b's but the agnostic owner"
    );
    // A node created on b is found by id there only.
    let get = "query($id: ID) { InfraSite(ids: [$id]) { count } }";
    assert_eq!(
        on(&s, "b", get, json!({"id": nice})).await["InfraSite"]["count"],
        1
    );
    assert_eq!(
        on(&s, "main", get, json!({"id": nice})).await["InfraSite"]["count"],
        0
    );
    // Uniqueness holds per branch: b has no lyon any more, so it may create one; c may not.
    create_site(&s, "b", "lyon", 9).await;
    assert_eq!(
        refused(
            &s,
            "c",
            "mutation { InfraSiteCreate(data: {name: {value: \"lyon\"}}) { ok } }",
            Value::Null
        )
        .await,
        "An object already exists with name: lyon"
    );
    // The node events of b's changes are on b.
    let events = on(
        &s,
        "main",
        "{ InfrahubEvent(branches: [\"b\"], event_type: [\"infrahub.node.created\", \"infrahub.node.updated\", \"infrahub.node.deleted\"], order: ASC) { edges { node { event branch } } } }",
        Value::Null,
    )
    .await;
    let names: Vec<&str> = events["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "infrahub.node.updated",
            "infrahub.node.created",
            "infrahub.node.deleted",
            "infrahub.node.updated",
            "infrahub.node.created"
        ]
    );
    // Rebasing b brings main's later changes in, under b's own.
    branch_op(&s, "BranchRebase", "b").await;
    assert_eq!(
        sites(&s, "b").await,
        json!({
            "brest": site(json!(7), null.clone(), null.clone()),
            "lyon": site(json!(9), null.clone(), null.clone()),
            "nice": site(json!(5), null.clone(), null.clone()),
            "paris": site(json!(2), json!("main note"), json!("ops")),
        }),
    );
    // Deleting c drops its data; main is untouched.
    let before = sites(&s, "main").await;
    branch_op(&s, "BranchDelete", "c").await;
    assert_eq!(sites(&s, "main").await, before);
    // Merging b: main gets b's changes.
    branch_op(&s, "BranchMerge", "b").await;
    assert_eq!(sites(&s, "main").await, sites_after_merge());
    s.shutdown().await;
}

fn sites_after_merge() -> Value {
    let null = Value::Null;
    json!({
        "brest": site(json!(7), null.clone(), null.clone()),
        "lyon": site(json!(9), null.clone(), null.clone()),
        "nice": site(json!(5), null.clone(), null.clone()),
        "paris": site(json!(2), json!("main note"), json!("ops")),
    })
}

/// The events that match `filters` (InfrahubEvent's arguments), up to `max`, page by page;
/// `fields` of each.
async fn events(s: &TestServer, filters: &str, fields: &str, max: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < max {
        let query = format!(
            "{{ InfrahubEvent({filters}, limit: 50, offset: {}) {{ edges {{ node {{ {fields} }} }} }} }}",
            out.len()
        );
        let page = on(s, "main", &query, Value::Null).await;
        let edges = page["InfrahubEvent"]["edges"].as_array().unwrap().clone();
        if edges.is_empty() {
            break;
        }
        out.extend(edges.into_iter().map(|e| e["node"].clone()));
    }
    out.truncate(max);
    out
}

/// `{event, level, branch, parent_id}` of every event of the merge of `branch`, parent first.
async fn merge_events(s: &TestServer, branch: &str) -> (Value, Vec<Value>) {
    let data = on(
        s,
        "main",
        "{ InfrahubEvent(event_type: [\"infrahub.branch.merged\"], limit: 1) { edges { node { id branch has_children ... on BranchMergedEvent { source_branch } } } } }",
        Value::Null,
    )
    .await;
    let merged = data["InfrahubEvent"]["edges"][0]["node"].clone();
    assert_eq!(merged["source_branch"], branch, "{merged}");
    let parent = merged["id"].as_str().unwrap();
    let nodes = events(
        s,
        &format!("parent__ids: [\"{parent}\"], order: ASC"),
        "event level branch parent_id primary_node { id }",
        usize::MAX,
    )
    .await;
    (merged, nodes)
}

#[tokio::test]
async fn a_merge_carries_every_changed_node_with_one_child_event_each() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(create_site(&s, "main", &format!("site{i:03}"), 1).await);
    }
    create_branch(&s, "big").await;
    for id in &ids {
        update_site(&s, "big", id, "height", json!(2)).await;
    }
    for i in 0..100 {
        create_site(&s, "big", &format!("new{i:03}"), 3).await;
    }
    let (_, before) = s
        .post(
            "/graphql",
            Some(ADMIN_TOKEN),
            "{ InfraSite { count } }",
            Value::Null,
        )
        .await;
    assert_eq!(before["data"]["InfraSite"]["count"], 100);
    let summary = on(
        &s,
        "big",
        "{ DiffTreeSummary { num_added num_updated num_removed num_conflicts diff_branch } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        summary["DiffTreeSummary"],
        json!({"num_added": 100, "num_updated": 100, "num_removed": 0, "num_conflicts": 0, "diff_branch": "big"})
    );
    let head_before = s.emit("probe.before", "").await;
    branch_op(&s, "BranchMerge", "big").await;
    let (merged, children) = merge_events(&s, "big").await;
    assert_eq!(merged["has_children"], true);
    assert_eq!(children.len(), 200, "one child event per changed node");
    for c in &children {
        assert_eq!(c["level"], 1, "{c}");
        assert_eq!(c["branch"], "main", "{c}");
        assert_eq!(c["parent_id"], merged["id"], "{c}");
    }
    let created = children
        .iter()
        .filter(|c| c["event"] == "infrahub.node.created")
        .count();
    assert_eq!(created, 100);
    // One commit: the merge and its 200 children are consecutive in the log, right after
    // the probe emitted before it.
    let edges = events(&s, "order: DESC", "id parent_id", 202).await;
    assert!(edges[..200].iter().all(|e| e["parent_id"] == merged["id"]));
    assert_eq!(edges[200]["id"], merged["id"]);
    assert_eq!(edges[201]["id"], head_before.as_str());
    let after = on(
        &s,
        "main",
        "{ InfraSite(height__value: 2) { count } all: InfraSite { count } }",
        Value::Null,
    )
    .await;
    assert_eq!(
        after,
        json!({"InfraSite": {"count": 100}, "all": {"count": 200}})
    );
    s.shutdown().await;
}

const DIFF: &str = "{ DiffTree { num_conflicts nodes { uuid status contains_conflict attributes { name status properties { previous_value new_value conflict { uuid base_branch_value diff_branch_value selected_branch } } } } } }";

/// The conflict ids in a `DIFF` answer, by attribute name.
fn conflicts(diff: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in diff["DiffTree"]["nodes"].as_array().unwrap() {
        for a in n["attributes"].as_array().unwrap() {
            for p in a["properties"].as_array().unwrap() {
                if let Some(id) = p["conflict"]["uuid"].as_str() {
                    out.push((a["name"].as_str().unwrap().to_owned(), id.to_owned()));
                }
            }
        }
    }
    out.sort();
    out
}

const RESOLVE: &str = "mutation($id: String, $s: ConflictSelection) { ResolveDiffConflict(data: {conflict_id: $id, selected_branch: $s}) { ok } }";

#[tokio::test]
async fn conflicts_refuse_merge_and_rebase_until_resolved_then_go_the_chosen_way() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let paris = create_site(&s, "main", "paris", 1).await;
    create_branch(&s, "b").await;
    update_site(&s, "b", &paris, "height", json!(2)).await;
    update_site(&s, "b", &paris, "note", json!("from b")).await;
    update_site(&s, "main", &paris, "height", json!(3)).await;
    update_site(&s, "main", &paris, "note", json!("from main")).await;
    let diff = on(&s, "b", DIFF, Value::Null).await;
    assert_eq!(diff["DiffTree"]["num_conflicts"], 2, "{diff}");
    let found = conflicts(&diff);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["height", "note"]);
    let height = &diff["DiffTree"]["nodes"][0]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "height")
        .unwrap()["properties"][0];
    assert_eq!(height["previous_value"], "1");
    assert_eq!(height["new_value"], "2");
    assert_eq!(height["conflict"]["base_branch_value"], "3");
    assert_eq!(height["conflict"]["diff_branch_value"], "2");
    assert_eq!(height["conflict"]["selected_branch"], Value::Null);
    let merge = "mutation { BranchMerge(data: {name: \"b\"}) { ok } }";
    assert_eq!(
        refused(&s, "main", merge, Value::Null).await,
        format!(
            "Unable to merge the branch 'b', validation failed: data/{paris}/height/value, data/{paris}/note/value"
        )
    );
    let total = "{ InfrahubEvent(limit: 1) { count } }";
    let events_before = on(&s, "main", total, Value::Null).await;
    // Height goes main's way, note the branch's.
    let (height_id, note_id) = (&found[0].1, &found[1].1);
    on(
        &s,
        "b",
        RESOLVE,
        json!({"id": height_id, "s": "BASE_BRANCH"}),
    )
    .await;
    assert_eq!(
        refused(&s, "main", merge, Value::Null).await,
        format!(
            "Unable to merge the branch 'b', conflict resolution missing: data/{paris}/note/value"
        )
    );
    assert_eq!(
        refused(
            &s,
            "main",
            "mutation { BranchRebase(data: {name: \"b\"}) { ok } }",
            Value::Null
        )
        .await,
        format!(
            "Unable to rebase the branch 'b', conflicts not resolved in favour of the branch: data/{paris}/height/value, data/{paris}/note/value"
        )
    );
    assert_eq!(
        refused(&s, "b", RESOLVE, json!({"id": "nope", "s": "BASE_BRANCH"})).await,
        "No conflict with id nope"
    );
    on(
        &s,
        "main",
        RESOLVE,
        json!({"id": note_id, "s": "DIFF_BRANCH"}),
    )
    .await;
    let diff = on(&s, "b", DIFF, Value::Null).await;
    assert!(
        diff.to_string()
            .contains("\"selected_branch\":\"BASE_BRANCH\""),
        "{diff}"
    );
    // The refused attempts and the resolutions committed no event.
    assert_eq!(on(&s, "main", total, Value::Null).await, events_before);
    branch_op(&s, "BranchMerge", "b").await;
    let null = Value::Null;
    assert_eq!(
        sites(&s, "main").await,
        json!({"paris": site(json!(3), json!("from b"), null)})
    );
    let (_, children) = merge_events(&s, "b").await;
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["event"], "infrahub.node.updated");
    assert_eq!(children[0]["primary_node"]["id"], paris.as_str());
    s.shutdown().await;
}

#[tokio::test]
async fn a_rebase_with_conflicts_resolved_for_the_branch_keeps_its_values() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    let paris = create_site(&s, "main", "paris", 1).await;
    create_branch(&s, "b").await;
    update_site(&s, "b", &paris, "height", json!(2)).await;
    update_site(&s, "main", &paris, "height", json!(3)).await;
    update_site(&s, "main", &paris, "note", json!("main")).await;
    let found = conflicts(&on(&s, "b", DIFF, Value::Null).await);
    assert_eq!(found.len(), 1);
    on(
        &s,
        "b",
        RESOLVE,
        json!({"id": found[0].1, "s": "DIFF_BRANCH"}),
    )
    .await;
    branch_op(&s, "BranchRebase", "b").await;
    let null = Value::Null;
    assert_eq!(
        sites(&s, "b").await,
        json!({"paris": site(json!(2), json!("main"), null)})
    );
    // The rebase's child event on b: paris as b saw it, to paris as it sees it now.
    let data = on(
        &s,
        "main",
        "{ InfrahubEvent(event_type: [\"infrahub.branch.rebased\"], limit: 1) { edges { node { id } } } }",
        Value::Null,
    )
    .await;
    let rebased = data["InfrahubEvent"]["edges"][0]["node"]["id"].clone();
    let children = on(
        &s,
        "main",
        "query($p: String!) { InfrahubEvent(parent__ids: [$p]) { edges { node { event branch level ... on NodeMutatedEvent { attributes { name action value value_previous } } } } } }",
        json!({"p": rebased}),
    )
    .await;
    let edges = children["InfrahubEvent"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{children}");
    let e = &edges[0]["node"];
    assert_eq!(e["event"], "infrahub.node.updated");
    assert_eq!(e["branch"], "b");
    assert_eq!(e["level"], 1);
    let note = e["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "note")
        .unwrap();
    assert_eq!(note["action"], "UPDATED", "{e}");
    assert_eq!(note["value"], "main");
    // After the rebase the branch and main no longer conflict: b's height is its own change.
    assert_eq!(
        on(
            &s,
            "b",
            "{ DiffTreeSummary { num_conflicts num_updated } }",
            Value::Null
        )
        .await["DiffTreeSummary"],
        json!({"num_conflicts": 0, "num_updated": 1})
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_merge_that_would_duplicate_a_unique_value_is_refused() {
    let s = TestServer::start().await;
    load_schema(&s).await;
    create_branch(&s, "b").await;
    create_site(&s, "b", "lyon", 1).await;
    create_site(&s, "main", "lyon", 2).await;
    let total = "{ InfrahubEvent(limit: 1) { count } }";
    let before = on(&s, "main", total, Value::Null).await;
    assert_eq!(
        refused(
            &s,
            "main",
            "mutation { BranchMerge(data: {name: \"b\"}) { ok } }",
            Value::Null
        )
        .await,
        "Unable to merge the branch 'b', InfraSite.name would not be unique: lyon is on both branches"
    );
    assert_eq!(on(&s, "main", total, Value::Null).await, before);
    let null = Value::Null;
    assert_eq!(
        sites(&s, "main").await,
        json!({"lyon": site(json!(2), null.clone(), null.clone())})
    );
    assert_eq!(
        sites(&s, "b").await,
        json!({"lyon": site(json!(1), null.clone(), null)})
    );
    s.shutdown().await;
}
