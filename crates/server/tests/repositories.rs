//! Git repositories against a real server and real Git repositories made with the `git`
//! binary: registration, sync on demand with its events (started, completed, and the
//! `update_commit` children), clean failures, the events in `InfrahubEvent` and on the
//! `events` subscription, and the periodic sync.

use infrastream_testkit::TestServer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------- git helpers

/// Runs git in `dir` (isolated from any surrounding repository and user configuration);
/// returns its trimmed standard output.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A new repository on branch `main` with one commit.
fn new_repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    std::fs::create_dir(&path).unwrap();
    git(&path, &["init", "-q", "-b", "main"]);
    git(&path, &["config", "user.name", "Test"]);
    git(&path, &["config", "user.email", "test@example.com"]);
    add_commit(&path, "first");
    (dir, path)
}

/// Commits a change; returns the new HEAD.
fn add_commit(repo: &Path, message: &str) -> String {
    std::fs::write(repo.join(format!("{message}.txt")), message).unwrap();
    git(repo, &["add", "."]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

// ---------------------------------------------------------------- GraphQL helpers

const REPO_FIELDS: &str = "id name { value } location { value } default_branch { value } commit { value } sync_status { value } sync_message { value }";

async fn register(s: &TestServer, name: &str, location: &str) -> String {
    let q = format!(
        "mutation($name: String!, $loc: String!) {{ CoreRepositoryCreate(data: {{name: {{value: $name}}, location: {{value: $loc}}}}) {{ ok object {{ {REPO_FIELDS} }} }} }}"
    );
    let data = s.admin(&q, json!({"name": name, "loc": location})).await;
    let r = &data["CoreRepositoryCreate"];
    assert_eq!(r["ok"], true);
    assert_eq!(r["object"]["default_branch"]["value"], "main");
    assert_eq!(r["object"]["commit"]["value"], Value::Null);
    r["object"]["id"].as_str().unwrap().to_string()
}

/// Syncs on demand; returns `{ok object}`.
async fn sync(s: &TestServer, id: &str) -> Value {
    let q = format!(
        "mutation($id: String!) {{ RepositorySync(data: {{id: $id}}) {{ ok object {{ {REPO_FIELDS} }} }} }}"
    );
    s.admin(&q, json!({"id": id})).await["RepositorySync"].clone()
}

const EVENT_FIELDS: &str = "id event branch level parent_id has_children account_id
    primary_node { id kind } related_nodes { id kind }
    ... on RepositorySyncEvent { repository_id repository_name status message commit }
    ... on RepositoryCommitEvent { repository_id repository_name commit commit_previous ref }";

/// Events about repository `id`, oldest first.
async fn repo_events(s: &TestServer, id: &str) -> Vec<Value> {
    let q = format!(
        "query($id: String!) {{ InfrahubEvent(primary_node__ids: [$id], order: ASC, limit: 50) {{ count edges {{ node {{ {EVENT_FIELDS} }} }} }} }}"
    );
    let data = s.admin(&q, json!({"id": id})).await;
    data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Entries left in `<data_dir>/repositories/` other than `keep`.
fn leftovers(s: &TestServer, keep: &[&str]) -> Vec<String> {
    match std::fs::read_dir(s.data_dir().join("repositories")) {
        Err(_) => Vec::new(),
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !keep.contains(&n.as_str()))
            .collect(),
    }
}

/// Asserts one failed sync (started then completed/failed); returns its message.
async fn assert_failed_sync(s: &TestServer, id: &str) -> String {
    let result = sync(s, id).await;
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["object"]["sync_status"]["value"], "error-import");
    assert_eq!(result["object"]["commit"]["value"], Value::Null);
    let events = repo_events(s, id).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "infrahub.repository.sync_started",
            "infrahub.repository.sync_completed"
        ]
    );
    assert_eq!(events[0]["status"], "started");
    let done = &events[1];
    assert_eq!(done["status"], "failed");
    assert_eq!(done["has_children"], false);
    assert_eq!(done["commit"], Value::Null);
    let message = done["message"].as_str().unwrap().to_string();
    assert_eq!(result["object"]["sync_message"]["value"], message.as_str());
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

// ---------------------------------------------------------------- tests

/// Acceptance (b): a real repository, synced twice, and a path that does not exist.
#[tokio::test]
async fn sync_emits_started_completed_and_update_commit_children() {
    let s = TestServer::start().await;
    let (_keep, path) = new_repo();
    let head1 = git(&path, &["rev-parse", "HEAD"]);
    let id = register(&s, "infra-config", path.to_str().unwrap()).await;
    // Registering does not fetch.
    assert!(repo_events(&s, &id).await.is_empty());

    let result = sync(&s, &id).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["object"]["commit"]["value"], head1.as_str());
    assert_eq!(result["object"]["sync_status"]["value"], "in-sync");
    assert_eq!(result["object"]["sync_message"]["value"], Value::Null);

    let events = repo_events(&s, &id).await;
    assert_eq!(events.len(), 3, "{events:#?}");
    let (started, done, update) = (&events[0], &events[1], &events[2]);
    assert_eq!(started["event"], "infrahub.repository.sync_started");
    assert_eq!(started["status"], "started");
    assert_eq!(started["level"], 0);
    assert_eq!(started["has_children"], false);
    assert_eq!(done["event"], "infrahub.repository.sync_completed");
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["message"], Value::Null);
    assert_eq!(done["commit"], head1.as_str());
    assert_eq!(done["level"], 0);
    assert_eq!(done["has_children"], true);
    assert_eq!(update["event"], "infrahub.repository.update_commit");
    assert_eq!(update["commit"], head1.as_str());
    assert_eq!(update["commit_previous"], Value::Null);
    assert_eq!(update["ref"], "refs/heads/main");
    assert_eq!(update["level"], 1);
    assert_eq!(update["parent_id"], done["id"]);
    for e in &events {
        assert_eq!(
            e["primary_node"],
            json!({"id": id, "kind": "CoreRepository"})
        );
        assert_eq!(e["related_nodes"], json!([]));
        assert_eq!(e["repository_id"], id.as_str());
        assert_eq!(e["repository_name"], "infra-config");
        assert_eq!(e["branch"], Value::Null);
        assert!(e["account_id"].is_string(), "the admin caused it: {e}");
    }
    // The mirror is a bare repository holding the commit.
    let mirror = s.data_dir().join("repositories").join(&id);
    assert_eq!(git(&mirror, &["rev-parse", "--is-bare-repository"]), "true");
    assert_eq!(git(&mirror, &["rev-parse", "refs/heads/main"]), head1);
    assert!(leftovers(&s, &[&id]).is_empty());

    // Two more commits, a new branch and a tag.
    add_commit(&path, "second");
    let head3 = add_commit(&path, "third");
    git(&path, &["branch", "feature/x", &head1]);
    git(&path, &["tag", "-a", "v1", "-m", "v1"]);
    let result = sync(&s, &id).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["object"]["commit"]["value"], head3.as_str());
    let events = repo_events(&s, &id).await;
    assert_eq!(events.len(), 3 + 5, "{events:#?}");
    let done = &events[4];
    assert_eq!(done["event"], "infrahub.repository.sync_completed");
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["commit"], head3.as_str());
    let updates: Vec<(String, Value, Value)> = events[5..]
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "infrahub.repository.update_commit");
            assert_eq!(e["parent_id"], done["id"]);
            assert_eq!(e["level"], 1);
            (
                e["ref"].as_str().unwrap().to_string(),
                e["commit"].clone(),
                e["commit_previous"].clone(),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            ("refs/heads/feature/x".into(), json!(head1), Value::Null),
            ("refs/heads/main".into(), json!(head3), json!(head1)),
            // An annotated tag is reported with the commit it points to.
            ("refs/tags/v1".into(), json!(head3), Value::Null),
        ]
    );

    // A sync with nothing new: started and completed, no children.
    assert_eq!(sync(&s, &id).await["ok"], true);
    let events = repo_events(&s, &id).await;
    assert_eq!(events.len(), 8 + 2);
    assert_eq!(events[9]["status"], "succeeded");
    assert_eq!(events[9]["has_children"], false);

    // The list query.
    let q = format!(
        "query($n: String) {{ CoreRepository(name__value: $n) {{ count edges {{ node {{ {REPO_FIELDS} }} }} }} }}"
    );
    let list = s.admin(&q, json!({"n": "infra-config"})).await;
    assert_eq!(list["CoreRepository"]["count"], 1);
    let node = &list["CoreRepository"]["edges"][0]["node"];
    assert_eq!(node["id"], id.as_str());
    assert_eq!(node["location"]["value"], path.to_str().unwrap());
    assert_eq!(node["commit"]["value"], head3.as_str());
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_syncs_of_one_repository_are_serialized() {
    let s = TestServer::start().await;
    let (_keep, path) = new_repo();
    let id = register(&s, "busy", path.to_str().unwrap()).await;
    let (a, b) = tokio::join!(sync(&s, &id), sync(&s, &id));
    assert_eq!(
        (a["ok"].clone(), b["ok"].clone()),
        (json!(true), json!(true))
    );
    let names: Vec<String> = repo_events(&s, &id)
        .await
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    let one = [
        "infrahub.repository.sync_started",
        "infrahub.repository.sync_completed",
        "infrahub.repository.update_commit",
    ];
    let again = [
        "infrahub.repository.sync_started",
        "infrahub.repository.sync_completed",
    ];
    // Either the second request came before the first sync started, which then served both,
    // or it came during that sync and ran after it — never two syncs interleaved.
    assert!(
        names == one || names == [&one[..], &again[..]].concat(),
        "{names:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_missing_path_fails_clearly_and_leaves_nothing_behind() {
    let s = TestServer::start().await;
    let id = register(&s, "ghost", "/nonexistent/infrastream/repo").await;
    let message = assert_failed_sync(&s, &id).await;
    assert_eq!(
        message,
        "Repository location /nonexistent/infrastream/repo does not exist"
    );
    assert!(leftovers(&s, &[]).is_empty(), "{:?}", leftovers(&s, &[]));
    s.shutdown().await;
}

#[tokio::test]
async fn a_directory_that_is_not_a_repository_fails_clearly() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "not git").unwrap();
    let shown = dir.path().display().to_string();
    let id = register(&s, "plain", &shown).await;
    let message = assert_failed_sync(&s, &id).await;
    assert_eq!(
        message,
        format!("Repository location {shown} is not a Git repository")
    );
    // The temporary clone was removed.
    assert!(leftovers(&s, &[]).is_empty(), "{:?}", leftovers(&s, &[]));
    s.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_url_fails_clearly_without_secrets() {
    let s = TestServer::start().await;
    // Loopback port 9 (discard): nothing listens, the connection is refused at once.
    let id = register(&s, "remote", "http://bob:s3cret@127.0.0.1:9/x.git").await;
    let q =
        "query($id: ID) { CoreRepository(ids: [$id]) { edges { node { location { value } } } } }";
    let data = s.admin(q, json!({"id": id})).await;
    assert_eq!(
        data["CoreRepository"]["edges"][0]["node"]["location"]["value"],
        "http://127.0.0.1:9/x.git"
    );
    let message = assert_failed_sync(&s, &id).await;
    assert!(
        message.starts_with("Could not reach http://127.0.0.1:9/x.git: "),
        "{message}"
    );
    assert!(
        !message.contains("s3cret") && !message.contains("bob"),
        "{message}"
    );
    assert!(leftovers(&s, &[]).is_empty(), "{:?}", leftovers(&s, &[]));
    s.shutdown().await;
}

#[tokio::test]
async fn a_file_url_works_and_a_failed_fetch_keeps_the_mirror() {
    let s = TestServer::start().await;
    let (_keep, path) = new_repo();
    let head = git(&path, &["rev-parse", "HEAD"]);
    let url = format!("file://{}", path.display());
    let id = register(&s, "by-url", &url).await;
    let result = sync(&s, &id).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["object"]["commit"]["value"], head.as_str());
    let events = repo_events(&s, &id).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["commit"], head.as_str());
    assert_eq!(events[2]["ref"], "refs/heads/main");

    // The source disappears: the sync fails, the mirror and the recorded commit stay.
    let moved = path.with_file_name("moved");
    std::fs::rename(&path, &moved).unwrap();
    let result = sync(&s, &id).await;
    assert_eq!(result["ok"], false);
    assert_eq!(
        result["object"]["sync_message"]["value"],
        format!("Repository location {url} does not exist")
    );
    assert_eq!(result["object"]["commit"]["value"], head.as_str());
    let mirror = s.data_dir().join("repositories").join(&id);
    assert_eq!(git(&mirror, &["rev-parse", "refs/heads/main"]), head);

    // Pointing the repository at the new place (Update) and syncing: nothing moved.
    let q = "mutation($id: String!, $loc: String!) { CoreRepositoryUpdate(data: {id: $id, location: {value: $loc}}) { ok object { location { value } } } }";
    s.admin(q, json!({"id": id, "loc": moved.to_str().unwrap()}))
        .await;
    let result = sync(&s, &id).await;
    assert_eq!(result["ok"], true, "{result}");
    let events = repo_events(&s, &id).await;
    assert_eq!(events.len(), 3 + 2 + 2, "no update_commit: {events:#?}");

    // A default branch that does not exist fails the sync with a message naming it.
    let q = "mutation($id: String!) { CoreRepositoryUpdate(data: {id: $id, default_branch: {value: \"develop\"}}) { ok object { commit { value } } } }";
    let data = s.admin(q, json!({"id": id})).await;
    assert_eq!(
        data["CoreRepositoryUpdate"]["object"]["commit"]["value"],
        Value::Null
    );
    let result = sync(&s, &id).await;
    assert_eq!(result["ok"], false);
    assert_eq!(
        result["object"]["sync_message"]["value"],
        format!("Branch develop does not exist in {}", moved.display())
    );

    // Delete removes the node and its mirror.
    let q = "mutation($id: String!) { CoreRepositoryDelete(data: {id: $id}) { ok } }";
    assert_eq!(
        s.admin(q, json!({"id": id})).await["CoreRepositoryDelete"]["ok"],
        true
    );
    assert!(leftovers(&s, &[]).is_empty(), "{:?}", leftovers(&s, &[]));
    let q = "query { CoreRepository { count } }";
    assert_eq!(s.admin(q, json!({})).await["CoreRepository"]["count"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn mutations_validate_their_input() {
    let s = TestServer::start().await;
    let create = "mutation($loc: String!, $name: String!) { CoreRepositoryCreate(data: {name: {value: $name}, location: {value: $loc}}) { ok } }";
    for (loc, expected) in [
        ("relative/path", "a local path must be absolute"),
        ("ssh://git@example.com/x.git", "only local paths"),
        ("", "location.value is required"),
    ] {
        let message = s
            .admin_error(create, json!({"loc": loc, "name": "x"}))
            .await;
        assert!(message.contains(expected), "{loc}: {message}");
    }
    register(&s, "dup", "/tmp/dup").await;
    let message = s
        .admin_error(create, json!({"loc": "/tmp/other", "name": "dup"}))
        .await;
    assert!(message.contains("already exists"), "{message}");
    // Upsert by name changes the existing repository.
    let upsert = "mutation { CoreRepositoryUpsert(data: {name: {value: \"dup\"}, location: {value: \"/tmp/moved\"}}) { ok object { location { value } } } }";
    let data = s.admin(upsert, json!({})).await;
    assert_eq!(
        data["CoreRepositoryUpsert"]["object"]["location"]["value"],
        "/tmp/moved"
    );
    assert_eq!(
        s.admin("query { CoreRepository { count } }", json!({}))
            .await["CoreRepository"]["count"],
        1
    );
    // Unknown ids, and an anonymous caller may not sync.
    let message = s
        .admin_error(
            "mutation { RepositorySync(data: {id: \"00000000-0000-0000-0000-000000000000\"}) { ok } }",
            json!({}),
        )
        .await;
    assert!(message.contains("not found"), "{message}");
    let (_, body) = s
        .post(
            "/graphql",
            None,
            "mutation { RepositorySync(data: {id: \"x\"}) { ok } }",
            json!({}),
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Authentication is required"),
        "{body}"
    );
    s.shutdown().await;
}

/// Acceptance (c): found by `InfrahubEvent` filters and delivered on the socket.
#[tokio::test]
async fn repository_events_are_filtered_and_delivered_by_the_subscription() {
    let s = TestServer::start().await;
    let (_keep, path) = new_repo();
    let head = git(&path, &["rev-parse", "HEAD"]);
    let id = register(&s, "streamed", path.to_str().unwrap()).await;
    let other = register(&s, "other", "/nonexistent/other").await;

    let mut ws = s.ws_admin().await;
    let sub = format!(
        "subscription($ids: [String!]) {{ events(primary_node__ids: $ids) {{ {EVENT_FIELDS} }} }}"
    );
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"query": sub, "variables": {"ids": [id]}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sync(&s, &other).await["ok"], false);
    assert_eq!(sync(&s, &id).await["ok"], true);

    let mut pushed = Vec::new();
    for _ in 0..3 {
        let f = ws.recv_data().await;
        assert_eq!(f["type"], "next", "{f}");
        pushed.push(f["payload"]["data"]["events"].clone());
    }
    // Identical to what InfrahubEvent returns, in the same order; nothing about `other`.
    assert_eq!(pushed, repo_events(&s, &id).await);
    assert_eq!(pushed[2]["event"], "infrahub.repository.update_commit");
    assert_eq!(pushed[2]["commit"], head.as_str());
    assert_eq!(pushed[2]["parent_id"], pushed[1]["id"]);
    ws.assert_silent(200).await;

    // event_type combined with primary_node__ids.
    let completed = page(&s, "infrahub.repository.sync_completed", vec![&id]).await;
    assert_eq!(completed["count"], 1);
    assert_eq!(completed["edges"][0]["node"]["id"], pushed[1]["id"]);
    let updates = page(&s, "infrahub.repository.update_commit", vec![&id]).await;
    assert_eq!(updates["count"], 1);
    assert_eq!(updates["edges"][0]["node"]["id"], pushed[2]["id"]);
    let started = page(&s, "infrahub.repository.sync_started", vec![&id, &other]).await;
    assert_eq!(started["count"], 2);
    assert_eq!(
        page(&s, "infrahub.repository.update_commit", vec![&other]).await["count"],
        0
    );
    // The repository is the primary node only: no related nodes, so related_node__ids on its
    // id matches none of its events.
    let q = "query($ids: [String!]) { InfrahubEvent(related_node__ids: $ids) { count } }";
    assert_eq!(
        s.admin(q, json!({"ids": [id]})).await["InfrahubEvent"]["count"],
        0
    );
    // A subscription filtered by event type sees the next sync's completion only.
    ws.send(json!({"id": "2", "type": "subscribe", "payload": {"query": "subscription { events(event_type: [\"infrahub.repository.sync_completed\"]) { event ... on RepositorySyncEvent { status commit } } }"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let head2 = add_commit(&path, "second");
    assert_eq!(sync(&s, &id).await["ok"], true);
    let mut by_op: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for _ in 0..4 {
        let f = ws.recv_data().await;
        assert_eq!(f["type"], "next", "{f}");
        by_op
            .entry(f["id"].as_str().unwrap().to_string())
            .or_default()
            .push(f["payload"]["data"]["events"].clone());
    }
    assert_eq!(
        by_op["2"],
        [
            json!({"event": "infrahub.repository.sync_completed", "status": "succeeded", "commit": head2})
        ]
    );
    assert_eq!(by_op["1"].len(), 3);
    assert_eq!(by_op["1"][2]["commit_previous"], head.as_str());
    s.shutdown().await;
}

#[tokio::test]
async fn the_periodic_sync_picks_up_new_commits() {
    let s = TestServer::start_with(&[("repository_sync_interval_secs", "1")]).await;
    let (_keep, path) = new_repo();
    let head1 = git(&path, &["rev-parse", "HEAD"]);
    let id = register(&s, "watched", path.to_str().unwrap()).await;

    wait_for_commit(&s, &id, &head1).await;
    let head2 = add_commit(&path, "second");
    wait_for_commit(&s, &id, &head2).await;

    // The periodic sync emitted the same events, with no account.
    let events = repo_events(&s, &id).await;
    let update = events
        .iter()
        .find(|e| {
            e["event"] == "infrahub.repository.update_commit" && e["commit"] == head2.as_str()
        })
        .expect("an update_commit for the new commit");
    assert_eq!(update["commit_previous"], head1.as_str());
    assert_eq!(update["account_id"], Value::Null);
    assert_eq!(update["level"], 1);
    s.shutdown().await;
}

/// `InfrahubEvent` filtered by one event type and primary node ids.
async fn page(s: &TestServer, event_type: &str, ids: Vec<&str>) -> Value {
    let q = "query($t: [String!], $ids: [String!]) { InfrahubEvent(event_type: $t, primary_node__ids: $ids) { count edges { node { id event primary_node { id } } } } }";
    s.admin(q, json!({"t": [event_type], "ids": ids})).await["InfrahubEvent"].clone()
}

/// Polls the repository until its `commit` is `expected` (10 s at most).
async fn wait_for_commit(s: &TestServer, id: &str, expected: &str) {
    let q = "query($id: ID) { CoreRepository(ids: [$id]) { edges { node { commit { value } } } } }";
    for _ in 0..100 {
        let data = s.admin(q, json!({"id": id})).await;
        if data["CoreRepository"]["edges"][0]["node"]["commit"]["value"] == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the periodic sync did not reach {expected}");
}
