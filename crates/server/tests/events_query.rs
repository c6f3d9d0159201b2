//! `InfrahubEvent` (SPEC §5): every filter on its own and combined, `count` against
//! `limit`/`offset`, inclusive `since`/`until`, both orders, the page-size limit, invalid UUIDs,
//! and the fields of the concrete event types.
//!
//! One fixture of 16 events with known names, branches, nodes, parents and accounts; a table of
//! `(description, arguments, expected events in order, expected count)`. The fixture's queries
//! run as bob, a read-write account, who does not see account events: bob's own login
//! (`infrahub.account.logged_in`, seen by admins only) is the one event of the log outside
//! the fixture.

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use infrastream_testkit::{ADMIN_TOKEN, Auth, TestServer};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The fixture's events, oldest first (log positions 1..=16).
const ALL: [&str; 16] = [
    "main.created", // bootstrap; no account, branch null
    "a.created",    // BranchCreate feat-a (admin)
    "b.created",    // BranchCreate feat-b (admin)
    "deploy",       // acme.deploy.started on main, primary dev-1, related if-1, if-2 (admin)
    "step1",        // acme.deploy.step child of deploy, on main, primary dev-1, related if-2
    "step2",        // acme.deploy.step child of step1 (level 2), on feat-a, primary dev-2
    "a.rebased",    // BranchRebase feat-a (admin); branch feat-a
    "audit",        // acme.audit on feat-a, primary dev-2, related dev-1 (bob)
    "c.created",    // BranchCreate feat-c (bob)
    "b.rebased",    // BranchRebase feat-b (admin)
    "a.merged",     // BranchMerge feat-a (admin)
    "step3",        // acme.deploy.step child of deploy, on feat-b, related if-1 (bob)
    "b.merged",     // BranchMerge feat-b (admin)
    "a.deleted",    // BranchDelete feat-a (admin)
    "global",       // acme.audit, no branch, primary dev-3 (admin)
    "ping",         // acme.ping on feat-c, no nodes, no payload (bob)
];

const BOB_PASSWORD: &str = "bobpassword1";

struct Fixture {
    s: TestServer,
    /// label → event id.
    ids: HashMap<&'static str, String>,
    /// label → occurred_at.
    times: HashMap<&'static str, DateTime<Utc>>,
    /// branch name → branch node id.
    branch_ids: HashMap<&'static str, String>,
    admin_id: String,
    bob_id: String,
    /// Bob's API token: the fixture's queries run with it.
    bob_token: String,
}

/// Emits a custom event with `token`; returns its id.
async fn emit(s: &TestServer, token: &str, event: &str, extra: &str) -> String {
    let q = format!(
        "mutation {{ EventEmit(data: {{event: \"{event}\" {extra}}}) {{ ok object {{ id event }} }} }}"
    );
    let data = s.run_as(Auth::Token(token), &q, json!({})).await;
    assert_eq!(data["EventEmit"]["ok"], true);
    assert_eq!(data["EventEmit"]["object"]["event"], event);
    data["EventEmit"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The newest event in the log: `(id, event name)`.
async fn newest(s: &TestServer) -> (String, String) {
    let data = s
        .admin(
            "{ InfrahubEvent(limit: 1) { edges { node { id event } } } }",
            json!({}),
        )
        .await;
    let node = &data["InfrahubEvent"]["edges"][0]["node"];
    (
        node["id"].as_str().unwrap().to_string(),
        node["event"].as_str().unwrap().to_string(),
    )
}

/// Runs a branch mutation with `token` and returns the id of the event it produced.
async fn branch_op(s: &TestServer, token: &str, verb: &str, name: &str, event: &str) -> String {
    s.run_as(
        Auth::Token(token),
        &format!("mutation {{ Branch{verb}(data: {{name: \"{name}\"}}) {{ ok }} }}"),
        json!({}),
    )
    .await;
    let (id, got) = newest(s).await;
    assert_eq!(got, event, "{verb} {name}");
    id
}

fn fmt_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Makes sure consecutive fixture events get distinct `occurred_at` values.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

impl Fixture {
    async fn build() -> Self {
        let s = TestServer::start().await;
        let mut ids: HashMap<&'static str, String> = HashMap::new();
        let mut branch_ids: HashMap<&'static str, String> = HashMap::new();

        let (main_created, name) = newest(&s).await;
        assert_eq!(name, "infrahub.branch.created");
        ids.insert("main.created", main_created);
        let main = s
            .admin(r#"{ Branch(name: "main") { id } }"#, json!({}))
            .await;
        branch_ids.insert("main", main["Branch"][0]["id"].as_str().unwrap().into());
        let admin = s.admin("{ AccountProfile { id } }", json!({})).await;
        let admin_id = admin["AccountProfile"]["id"].as_str().unwrap().to_string();

        // A second account, bob: created by admin, logs in with his password, makes an API token.
        let bob = s
            .admin(
                &format!(
                    r#"mutation {{ CoreAccountCreate(data: {{name: {{value: "bob"}}, password: {{value: "{BOB_PASSWORD}"}}, role: {{value: "read-write"}}}}) {{ ok object {{ id }} }} }}"#
                ),
                json!({}),
            )
            .await;
        let bob_id = bob["CoreAccountCreate"]["object"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (jwt, _) = s.login_ok("bob", BOB_PASSWORD).await;
        let token = s.run_as(Auth::Bearer(&jwt), r#"mutation { InfrahubAccountTokenCreate(data: {name: "t"}) { ok object { token { value } } } }"#,
        json!({}))
        .await;
        let bob_token = token["InfrahubAccountTokenCreate"]["object"]["token"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        let profile = s
            .run_as(
                Auth::Token(&bob_token),
                "{ AccountProfile { id } }",
                json!({}),
            )
            .await;
        assert_eq!(profile["AccountProfile"]["id"], bob_id.as_str());
        assert_ne!(admin_id, bob_id);

        let bob = bob_token.as_str();
        let created = "infrahub.branch.created";
        for (name, label) in [("feat-a", "a.created"), ("feat-b", "b.created")] {
            tick().await;
            let data = s
                .admin(
                    &format!(r#"mutation {{ BranchCreate(data: {{name: "{name}"}}) {{ ok object {{ id }} }} }}"#),
                    json!({}),
                )
                .await;
            let (id, event) = newest(&s).await;
            assert_eq!(event, created);
            ids.insert(label, id);
            branch_ids.insert(
                name,
                data["BranchCreate"]["object"]["id"]
                    .as_str()
                    .unwrap()
                    .into(),
            );
        }
        tick().await;
        let deploy = emit(
            &s,
            ADMIN_TOKEN,
            "acme.deploy.started",
            r#", branch: "main", primary_node: {id: "dev-1", kind: "Device"},
               related_nodes: [{id: "if-1", kind: "Interface"}, {id: "dev-1", kind: "Device"},
                               {id: "if-1", kind: "Interface"}, {id: "if-2", kind: "Interface"}],
               payload: {step: 1, tags: ["a", "b"], nested: {ok: true, n: null}}"#,
        )
        .await;
        ids.insert("deploy", deploy.clone());
        tick().await;
        let step1 = emit(
            &s,
            ADMIN_TOKEN,
            "acme.deploy.step",
            &format!(
                r#", branch: "main", parent_id: "{deploy}", primary_node: {{id: "dev-1", kind: "Device"}},
                   related_nodes: [{{id: "if-2", kind: "Interface"}}], payload: {{step: 2}}"#
            ),
        )
        .await;
        ids.insert("step1", step1.clone());
        tick().await;
        let step2 = emit(
            &s,
            ADMIN_TOKEN,
            "acme.deploy.step",
            &format!(
                r#", branch: "feat-a", parent_id: "{step1}", primary_node: {{id: "dev-2", kind: "Device"}}, payload: {{step: 3}}"#
            ),
        )
        .await;
        ids.insert("step2", step2);
        tick().await;
        let id = branch_op(
            &s,
            ADMIN_TOKEN,
            "Rebase",
            "feat-a",
            "infrahub.branch.rebased",
        )
        .await;
        ids.insert("a.rebased", id);
        tick().await;
        let audit = emit(
            &s,
            bob,
            "acme.audit",
            r#", branch: "feat-a", primary_node: {id: "dev-2", kind: "Device"},
               related_nodes: [{id: "dev-1", kind: "Device"}], payload: {who: "bob"}"#,
        )
        .await;
        ids.insert("audit", audit);
        tick().await;
        let data = s
            .run_as(
                Auth::Token(bob),
                r#"mutation { BranchCreate(data: {name: "feat-c"}) { ok object { id } } }"#,
                json!({}),
            )
            .await;
        branch_ids.insert(
            "feat-c",
            data["BranchCreate"]["object"]["id"]
                .as_str()
                .unwrap()
                .into(),
        );
        let (id, event) = newest(&s).await;
        assert_eq!(event, created);
        ids.insert("c.created", id);
        tick().await;
        let id = branch_op(
            &s,
            ADMIN_TOKEN,
            "Rebase",
            "feat-b",
            "infrahub.branch.rebased",
        )
        .await;
        ids.insert("b.rebased", id);
        tick().await;
        let id = branch_op(&s, ADMIN_TOKEN, "Merge", "feat-a", "infrahub.branch.merged").await;
        ids.insert("a.merged", id);
        tick().await;
        let step3 = emit(
            &s,
            bob,
            "acme.deploy.step",
            &format!(
                r#", branch: "feat-b", parent_id: "{deploy}", related_nodes: [{{id: "if-1", kind: "Interface"}}]"#
            ),
        )
        .await;
        ids.insert("step3", step3);
        tick().await;
        let id = branch_op(&s, ADMIN_TOKEN, "Merge", "feat-b", "infrahub.branch.merged").await;
        ids.insert("b.merged", id);
        tick().await;
        let id = branch_op(
            &s,
            ADMIN_TOKEN,
            "Delete",
            "feat-a",
            "infrahub.branch.deleted",
        )
        .await;
        ids.insert("a.deleted", id);
        tick().await;
        let global = emit(
            &s,
            ADMIN_TOKEN,
            "acme.audit",
            r#", primary_node: {id: "dev-3", kind: "Device"}, payload: {note: "global"}"#,
        )
        .await;
        ids.insert("global", global);
        tick().await;
        let ping = emit(&s, bob, "acme.ping", r#", branch: "feat-c""#).await;
        ids.insert("ping", ping);
        assert_eq!(ids.len(), ALL.len());

        // An admin sees bob's login too, right after the bootstrap.
        let data = s
            .admin(
                "{ InfrahubEvent(limit: 3, order: ASC) { count edges { node { id event account_id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["InfrahubEvent"]["count"], 17);
        let login = &data["InfrahubEvent"]["edges"][1]["node"];
        assert_eq!(login["event"], "infrahub.account.logged_in");
        assert_eq!(login["account_id"], bob_id.as_str());
        assert_eq!(
            data["InfrahubEvent"]["edges"][2]["node"]["id"],
            ids["a.created"].as_str()
        );
        // The whole log as bob, oldest first: exactly the fixture, with strictly increasing
        // times.
        let data = s
            .run_as(
                Auth::Token(bob),
                "{ InfrahubEvent(limit: 50, order: ASC) { count edges { node { id occurred_at } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["InfrahubEvent"]["count"], 16);
        let edges = data["InfrahubEvent"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), ALL.len());
        let mut times = HashMap::new();
        let mut previous: Option<DateTime<Utc>> = None;
        for (label, edge) in ALL.iter().zip(edges) {
            let node = &edge["node"];
            assert_eq!(node["id"], ids[label].as_str(), "position of {label}");
            let text = node["occurred_at"].as_str().unwrap();
            // `2024-01-01T12:00:00.123456Z`
            assert_eq!(text.len(), 27, "{text}");
            assert!(text.ends_with('Z') && &text[19..20] == ".", "{text}");
            let t = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc);
            assert_eq!(fmt_time(&t), text);
            if let Some(p) = previous {
                assert!(t > p, "{label} at {text} is not after {p}");
            }
            previous = Some(t);
            times.insert(*label, t);
        }
        Fixture {
            s,
            ids,
            times,
            branch_ids,
            admin_id,
            bob_id,
            bob_token,
        }
    }

    fn label(&self, id: &str) -> String {
        self.ids
            .iter()
            .find(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.to_string())
            .unwrap_or_else(|| format!("<unknown {id}>"))
    }

    /// Replaces `%key%` placeholders: `%label%` → event id, `%t:label%` → its occurred_at,
    /// `%t+:label%` / `%t-:label%` → one microsecond later / earlier, `%tz:label%` → the same
    /// instant written with a +01:00 offset, `%upper:label%` → the id in upper case,
    /// `%admin%` / `%bob%` → account ids, `%branch:name%` → branch node id.
    fn fill(&self, template: &str) -> String {
        let mut out = String::new();
        for (i, part) in template.split('%').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
                continue;
            }
            let value = match part.split_once(':') {
                None if part == "admin" => self.admin_id.clone(),
                None if part == "bob" => self.bob_id.clone(),
                None => self.ids[part].clone(),
                Some(("t", l)) => fmt_time(&self.times[l]),
                Some(("t+", l)) => fmt_time(&(self.times[l] + Duration::microseconds(1))),
                Some(("t-", l)) => fmt_time(&(self.times[l] - Duration::microseconds(1))),
                Some(("tz", l)) => self.times[l]
                    .with_timezone(&FixedOffset::east_opt(3600).unwrap())
                    .to_rfc3339_opts(SecondsFormat::Micros, false),
                Some(("upper", l)) => self.ids[l].to_uppercase(),
                Some(("branch", b)) => self.branch_ids[b].clone(),
                Some((k, _)) => panic!("unknown placeholder kind {k}"),
            };
            out.push_str(&value);
        }
        out
    }

    /// Runs `InfrahubEvent(<args>)` and returns `(count, labels in result order)`.
    async fn query(&self, args: &str) -> (i64, Vec<String>) {
        let args = self.fill(args);
        let args = if args.trim().is_empty() {
            String::new()
        } else {
            format!("({args})")
        };
        let q = format!("{{ InfrahubEvent{args} {{ count edges {{ node {{ id event }} }} }} }}");
        let data = self
            .s
            .run_as(Auth::Token(&self.bob_token), &q, json!({}))
            .await;
        let count = data["InfrahubEvent"]["count"].as_i64().unwrap();
        let labels = data["InfrahubEvent"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| self.label(e["node"]["id"].as_str().unwrap()))
            .collect();
        (count, labels)
    }

    /// Runs `InfrahubEvent(<args>)` expecting an error; returns the error object.
    async fn query_error(&self, args: &str) -> Value {
        let q = format!(
            "{{ InfrahubEvent({}) {{ count edges {{ node {{ id }} }} }} }}",
            self.fill(args)
        );
        let (_, body) = self
            .s
            .post("/graphql", Some(ADMIN_TOKEN), &q, json!({}))
            .await;
        let errors = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("expected an error for {q}: {body}"));
        assert!(!errors.is_empty(), "{body}");
        assert!(
            body["data"].is_null() || body["data"]["InfrahubEvent"].is_null(),
            "no events may be returned with an error: {body}"
        );
        errors[0].clone()
    }
}

/// `ALL` newest first, without `except`.
fn desc_without(except: &[&str]) -> Vec<&'static str> {
    ALL.iter()
        .rev()
        .copied()
        .filter(|l| !except.contains(l))
        .collect()
}

struct Case {
    what: &'static str,
    args: &'static str,
    expect: Vec<&'static str>,
    /// `None`: the number of expected events (no paging cut).
    count: Option<i64>,
}

fn case(what: &'static str, args: &'static str, expect: &[&'static str]) -> Case {
    Case {
        what,
        args,
        expect: expect.to_vec(),
        count: None,
    }
}

fn paged(what: &'static str, args: &'static str, expect: &[&'static str], count: i64) -> Case {
    Case {
        what,
        args,
        expect: expect.to_vec(),
        count: Some(count),
    }
}

fn table() -> Vec<Case> {
    let all_desc = desc_without(&[]);
    let all_asc: Vec<&str> = ALL.to_vec();
    vec![
        // --- no filter, order, default limit ---
        case("no filter, newest first", "limit: 50", &all_desc),
        case("explicit DESC", "limit: 50, order: DESC", &all_desc),
        case("ASC: oldest first", "limit: 50, order: ASC", &all_asc),
        paged("default limit is 10", "", &all_desc[..10], 16),
        paged("default limit, ASC", "order: ASC", &all_asc[..10], 16),
        // --- ids ---
        case("ids: one", r#"ids: ["%audit%"]"#, &["audit"]),
        case(
            "ids: several are OR-ed, result in log order",
            r#"ids: ["%deploy%", "%b.created%", "%ping%"]"#,
            &["ping", "deploy", "b.created"],
        ),
        case(
            "ids: several, ASC",
            r#"ids: ["%ping%", "%deploy%", "%b.created%"], order: ASC"#,
            &["b.created", "deploy", "ping"],
        ),
        case(
            "ids: a valid UUID that is no event",
            r#"ids: ["00000000-0000-0000-0000-000000000000"]"#,
            &[],
        ),
        case(
            "ids: a repeated id yields the event once",
            r#"ids: ["%audit%", "%audit%"]"#,
            &["audit"],
        ),
        case(
            "ids: UUIDs are case-insensitive",
            r#"ids: ["%upper:audit%"]"#,
            &["audit"],
        ),
        case(
            "ids: empty list is no constraint",
            "ids: [], limit: 50",
            &all_desc,
        ),
        // --- level ---
        case(
            "level 0: root events",
            "level: 0, limit: 50",
            &desc_without(&["step1", "step2", "step3"]),
        ),
        case("level 1", "level: 1", &["step3", "step1"]),
        case("level 2: grandchild", "level: 2", &["step2"]),
        case("level 3: none", "level: 3", &[]),
        // --- has_children ---
        case(
            "has_children true",
            "has_children: true",
            &["step1", "deploy"],
        ),
        case(
            "has_children false",
            "has_children: false, limit: 50",
            &desc_without(&["step1", "deploy"]),
        ),
        // --- event_type ---
        case(
            "event_type: one name",
            r#"event_type: ["acme.deploy.step"]"#,
            &["step3", "step2", "step1"],
        ),
        case(
            "event_type: names are OR-ed",
            r#"event_type: ["acme.audit", "acme.ping"]"#,
            &["ping", "global", "audit"],
        ),
        case(
            "event_type: built-in name",
            r#"event_type: ["infrahub.branch.created"]"#,
            &["c.created", "b.created", "a.created", "main.created"],
        ),
        case(
            "event_type: unknown name",
            r#"event_type: ["acme.nothing"]"#,
            &[],
        ),
        case(
            "event_type: empty list is no constraint",
            "event_type: [], limit: 50",
            &all_desc,
        ),
        case(
            "event_type_filter: empty object is no constraint",
            "event_type_filter: {}, limit: 50",
            &all_desc,
        ),
        case(
            "event_type: prefix is not a match",
            r#"event_type: ["acme.deploy"]"#,
            &[],
        ),
        // --- event_type_filter ---
        case(
            "event_type_filter: merged events of one branch only",
            r#"event_type_filter: {branch_merged: {branches: ["feat-a"]}}"#,
            &["a.merged"],
        ),
        case(
            "event_type_filter: merged, branches OR-ed",
            r#"event_type_filter: {branch_merged: {branches: ["feat-a", "feat-b"]}}"#,
            &["b.merged", "a.merged"],
        ),
        case(
            "event_type_filter: rebased of one branch",
            r#"event_type_filter: {branch_rebased: {branches: ["feat-b"]}}"#,
            &["b.rebased"],
        ),
        case(
            "event_type_filter: rebased of an unknown branch",
            r#"event_type_filter: {branch_rebased: {branches: ["nope"]}}"#,
            &[],
        ),
        case(
            "event_type_filter: merged of a branch that was never merged",
            r#"event_type_filter: {branch_merged: {branches: ["feat-c"]}}"#,
            &[],
        ),
        case(
            "event_type_filter adds to event_type",
            r#"event_type: ["acme.ping"], event_type_filter: {branch_merged: {branches: ["feat-b"]}, branch_rebased: {branches: ["feat-a"]}}"#,
            &["ping", "b.merged", "a.rebased"],
        ),
        case(
            "event_type_filter with event_type of all merges",
            r#"event_type: ["infrahub.branch.merged"], event_type_filter: {branch_rebased: {branches: ["feat-b"]}}"#,
            &["b.merged", "a.merged", "b.rebased"],
        ),
        // --- primary_node__ids ---
        case(
            "primary_node__ids: one node",
            r#"primary_node__ids: ["dev-1"]"#,
            &["step1", "deploy"],
        ),
        case(
            "primary_node__ids: OR-ed",
            r#"primary_node__ids: ["dev-2", "dev-3"]"#,
            &["global", "audit", "step2"],
        ),
        case(
            "primary_node__ids: a branch's node id",
            r#"primary_node__ids: ["%branch:feat-a%"]"#,
            &["a.deleted", "a.merged", "a.rebased", "a.created"],
        ),
        case(
            "primary_node__ids: main",
            r#"primary_node__ids: ["%branch:main%"]"#,
            &["main.created"],
        ),
        case(
            "primary_node__ids: a node that is only ever related",
            r#"primary_node__ids: ["if-1"]"#,
            &[],
        ),
        // --- related_node__ids ---
        case(
            "related_node__ids: one node",
            r#"related_node__ids: ["if-1"]"#,
            &["step3", "deploy"],
        ),
        case(
            "related_node__ids: another node",
            r#"related_node__ids: ["if-2"]"#,
            &["step1", "deploy"],
        ),
        case(
            "related_node__ids: the primary node is not related (dropped from deploy's list)",
            r#"related_node__ids: ["dev-1"]"#,
            &["audit"],
        ),
        case(
            "related_node__ids: OR-ed, an event matching both appears once",
            r#"related_node__ids: ["if-1", "if-2"]"#,
            &["step3", "step1", "deploy"],
        ),
        case(
            "related_node__ids: only ever primary",
            r#"related_node__ids: ["dev-3"]"#,
            &[],
        ),
        // --- parent__ids ---
        case(
            "parent__ids: children of one event",
            r#"parent__ids: ["%deploy%"]"#,
            &["step3", "step1"],
        ),
        case(
            "parent__ids: OR-ed",
            r#"parent__ids: ["%deploy%", "%step1%"]"#,
            &["step3", "step2", "step1"],
        ),
        case(
            "parent__ids: an event without children",
            r#"parent__ids: ["%step2%"]"#,
            &[],
        ),
        case(
            "parent__ids: upper-case UUID",
            r#"parent__ids: ["%upper:step1%"]"#,
            &["step2"],
        ),
        // --- branches ---
        case(
            "branches: main (global events have no branch)",
            r#"branches: ["main"]"#,
            &["step1", "deploy"],
        ),
        case(
            "branches: feat-a (its created/merged/deleted events are global)",
            r#"branches: ["feat-a"]"#,
            &["audit", "a.rebased", "step2"],
        ),
        case(
            "branches: OR-ed",
            r#"branches: ["feat-b", "feat-c"]"#,
            &["ping", "step3", "b.rebased"],
        ),
        case("branches: unknown", r#"branches: ["nope"]"#, &[]),
        // --- account__ids ---
        case(
            "account__ids: bob",
            r#"account__ids: ["%bob%"]"#,
            &["ping", "step3", "c.created", "audit"],
        ),
        case(
            "account__ids: admin",
            r#"account__ids: ["%admin%"], limit: 50"#,
            &desc_without(&["main.created", "ping", "step3", "c.created", "audit"]),
        ),
        case(
            "account__ids: OR-ed (the bootstrap event has no account)",
            r#"account__ids: ["%admin%", "%bob%"], limit: 50"#,
            &desc_without(&["main.created"]),
        ),
        case("account__ids: unknown", r#"account__ids: ["nobody"]"#, &[]),
        // --- since / until ---
        case(
            "since is inclusive",
            r#"since: "%t:audit%", limit: 50"#,
            &[
                "ping",
                "global",
                "a.deleted",
                "b.merged",
                "step3",
                "a.merged",
                "b.rebased",
                "c.created",
                "audit",
            ],
        ),
        case(
            "since one microsecond later excludes the event",
            r#"since: "%t+:audit%", limit: 50"#,
            &[
                "ping",
                "global",
                "a.deleted",
                "b.merged",
                "step3",
                "a.merged",
                "b.rebased",
                "c.created",
            ],
        ),
        case(
            "until is inclusive",
            r#"until: "%t:audit%", limit: 50"#,
            &[
                "audit",
                "a.rebased",
                "step2",
                "step1",
                "deploy",
                "b.created",
                "a.created",
                "main.created",
            ],
        ),
        case(
            "until one microsecond earlier excludes the event",
            r#"until: "%t-:audit%", limit: 50"#,
            &[
                "a.rebased",
                "step2",
                "step1",
                "deploy",
                "b.created",
                "a.created",
                "main.created",
            ],
        ),
        case(
            "since = until = occurred_at: exactly that event",
            r#"since: "%t:audit%", until: "%t:audit%""#,
            &["audit"],
        ),
        case(
            "since = until = occurred_at + 1µs: nothing",
            r#"since: "%t+:audit%", until: "%t+:audit%""#,
            &[],
        ),
        case(
            "since = until = occurred_at - 1µs: nothing",
            r#"since: "%t-:audit%", until: "%t-:audit%""#,
            &[],
        ),
        case(
            "since after until: nothing",
            r#"since: "%t:ping%", until: "%t:main.created%""#,
            &[],
        ),
        case(
            "since/until window, both ends inclusive",
            r#"since: "%t:step1%", until: "%t:a.rebased%""#,
            &["a.rebased", "step2", "step1"],
        ),
        case(
            "since/until window, ASC",
            r#"since: "%t:step1%", until: "%t:a.rebased%", order: ASC"#,
            &["step1", "step2", "a.rebased"],
        ),
        case(
            "since/until with a +01:00 offset denote the same instant",
            r#"since: "%tz:audit%", until: "%tz:audit%""#,
            &["audit"],
        ),
        case(
            "since first event: everything",
            r#"since: "%t:main.created%", limit: 50"#,
            &all_desc,
        ),
        case(
            "until last event: everything",
            r#"until: "%t:ping%", limit: 50"#,
            &all_desc,
        ),
        // --- combinations: AND across filters, OR within a list ---
        case(
            "event_type AND branches",
            r#"event_type: ["acme.deploy.step"], branches: ["feat-a", "feat-b"]"#,
            &["step3", "step2"],
        ),
        case(
            "event_type AND account",
            r#"event_type: ["acme.audit", "acme.deploy.step"], account__ids: ["%bob%"]"#,
            &["step3", "audit"],
        ),
        case(
            "level AND has_children",
            "level: 1, has_children: true",
            &["step1"],
        ),
        case(
            "level AND has_children: none",
            "level: 2, has_children: true",
            &[],
        ),
        case(
            "primary AND related",
            r#"primary_node__ids: ["dev-1"], related_node__ids: ["if-1"]"#,
            &["deploy"],
        ),
        case(
            "primary AND related, related OR-ed",
            r#"primary_node__ids: ["dev-1"], related_node__ids: ["if-1", "if-2"]"#,
            &["step1", "deploy"],
        ),
        case(
            "event_type_filter AND branches",
            r#"event_type_filter: {branch_rebased: {branches: ["feat-a", "feat-b"]}}, branches: ["feat-b"]"#,
            &["b.rebased"],
        ),
        case(
            "event_type_filter AND account",
            r#"event_type_filter: {branch_merged: {branches: ["feat-a", "feat-b"]}}, account__ids: ["%bob%"]"#,
            &[],
        ),
        case(
            "parent AND branches",
            r#"parent__ids: ["%deploy%"], branches: ["feat-b"]"#,
            &["step3"],
        ),
        case(
            "ids AND has_children",
            r#"ids: ["%deploy%", "%step1%", "%audit%"], has_children: true"#,
            &["step1", "deploy"],
        ),
        case(
            "since AND until AND account AND level",
            r#"since: "%t:deploy%", until: "%t:b.rebased%", account__ids: ["%admin%"], level: 0"#,
            &["b.rebased", "a.rebased", "deploy"],
        ),
        case(
            "since AND event_type",
            r#"since: "%t:audit%", event_type: ["infrahub.branch.created"]"#,
            &["c.created"],
        ),
        case(
            "event_type, ASC",
            r#"event_type: ["infrahub.branch.created"], order: ASC"#,
            &["main.created", "a.created", "b.created", "c.created"],
        ),
        // --- limit / offset: count is the total regardless of paging ---
        paged("limit 1", "limit: 1", &["ping"], 16),
        paged("limit 5", "limit: 5", &all_desc[..5], 16),
        paged(
            "limit 5, offset 5",
            "limit: 5, offset: 5",
            &all_desc[5..10],
            16,
        ),
        paged(
            "limit 5, offset 15: last one",
            "limit: 5, offset: 15",
            &["main.created"],
            16,
        ),
        paged("offset at the end", "limit: 5, offset: 16", &[], 16),
        paged("offset past the end", "limit: 5, offset: 100", &[], 16),
        paged(
            "ASC, limit 3, offset 2",
            "order: ASC, limit: 3, offset: 2",
            &["b.created", "deploy", "step1"],
            16,
        ),
        paged(
            "filter with paging",
            r#"event_type: ["infrahub.branch.created"], limit: 2, offset: 1"#,
            &["b.created", "a.created"],
            4,
        ),
        paged(
            "filter with paging, ASC",
            r#"event_type: ["infrahub.branch.created"], limit: 2, offset: 1, order: ASC"#,
            &["a.created", "b.created"],
            4,
        ),
        paged(
            "filter with offset past its matches",
            r#"event_type: ["infrahub.branch.created"], offset: 4"#,
            &[],
            4,
        ),
        paged(
            "related filter with paging counts each event once",
            r#"related_node__ids: ["if-1", "if-2"], limit: 1, offset: 1"#,
            &["step1"],
            3,
        ),
        paged(
            "default limit with a filter",
            r#"account__ids: ["%admin%"]"#,
            &desc_without(&["main.created", "ping", "step3", "c.created", "audit"])[..10],
            11,
        ),
    ]
}

#[tokio::test]
async fn every_filter_order_and_page() {
    let f = Fixture::build().await;
    let mut failures = Vec::new();
    let cases = table();
    for c in &cases {
        let (count, got) = f.query(c.args).await;
        let want_count = c.count.unwrap_or(c.expect.len() as i64);
        if got != c.expect || count != want_count {
            failures.push(format!(
                "{}\n    args:  {}\n    want:  {want_count} {:?}\n    got:   {count} {:?}",
                c.what, c.args, c.expect, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Walking the pages in both orders yields the whole log once, with a constant count.
    for (order, expected) in [("ASC", ALL.to_vec()), ("DESC", desc_without(&[]))] {
        let mut walked = Vec::new();
        for offset in (0..20).step_by(3) {
            let (count, page) = f
                .query(&format!("order: {order}, limit: 3, offset: {offset}"))
                .await;
            assert_eq!(count, 16, "{order} offset {offset}");
            assert!(page.len() <= 3);
            walked.extend(page);
        }
        assert_eq!(walked, expected, "{order}");
    }
    f.s.shutdown().await;
}

#[tokio::test]
async fn page_size_and_bad_arguments_are_rejected() {
    let f = Fixture::build().await;

    // limit 50 is the maximum and is accepted.
    let (count, got) = f.query("limit: 50").await;
    assert_eq!((count, got.len()), (16, 16));

    for limit in ["51", "1000"] {
        let e = f.query_error(&format!("limit: {limit}")).await;
        let msg = e["message"].as_str().unwrap();
        assert!(msg.contains("limit") && msg.contains("50"), "{msg}");
        assert!(msg.contains(limit), "the message names the value: {msg}");
        assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "{e}");
        assert_eq!(e["extensions"]["http_status"], 400, "{e}");
    }

    let e = f.query_error(r#"ids: ["not-a-uuid"]"#).await;
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("not-a-uuid") && msg.contains("ids"),
        "names the bad value and the argument: {msg}"
    );
    assert!(msg.contains("UUID"), "{msg}");
    assert_eq!(e["extensions"]["code"], "BAD_USER_INPUT", "{e}");

    // One bad value among good ones still fails, and the message names the bad one.
    let e = f.query_error(r#"ids: ["%audit%", "also-bad"]"#).await;
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("also-bad"), "{msg}");
    assert!(!msg.contains(&f.ids["audit"]), "{msg}");

    let e = f.query_error(r#"parent__ids: ["nope"]"#).await;
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("nope") && msg.contains("parent__ids"), "{msg}");

    let e = f.query_error("offset: -1").await;
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("offset"), "{msg}");

    let e = f.query_error("level: -1").await;
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("level"), "{msg}");

    let e = f.query_error(r#"since: "yesterday""#).await;
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("yesterday"), "{msg}");

    let e = f.query_error("order: SIDEWAYS").await;
    assert!(e["message"].as_str().unwrap().contains("SIDEWAYS"), "{e}");

    // Nothing above changed the log.
    let (count, _) = f.query("").await;
    assert_eq!(count, 16);
    f.s.shutdown().await;
}

#[tokio::test]
async fn concrete_types_and_fields() {
    let f = Fixture::build().await;
    let q = r#"{ InfrahubEvent(limit: 50, order: ASC) { count edges { node {
        __typename id event branch account_id level parent_id has_children
        primary_node { id kind } related_nodes { id kind }
        ... on BranchCreatedEvent { created_branch }
        ... on BranchRebasedEvent { rebased_branch }
        ... on BranchMergedEvent { source_branch }
        ... on BranchDeletedEvent { deleted_branch proposed_change_id }
        ... on StandardEvent { payload }
    } } } }"#;
    let data = f.s.run_as(Auth::Token(&f.bob_token), q, json!({})).await;
    assert_eq!(data["InfrahubEvent"]["count"], 16);
    let nodes: Vec<Value> = data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();

    let id = |l: &str| json!(f.ids[l]);
    let admin = json!(f.admin_id);
    let bob = json!(f.bob_id);
    let branch_node = |b: &str| json!({"id": f.branch_ids[b], "kind": "Branch"});
    let device = |d: &str| json!({"id": d, "kind": "Device"});
    let interface = |i: &str| json!({"id": i, "kind": "Interface"});
    let context = |account: &Value| json!({"account_id": account, "branch": "main"});

    let expected = vec![
        json!({"__typename": "BranchCreatedEvent", "id": id("main.created"),
            "event": "infrahub.branch.created", "branch": null, "account_id": null, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("main"),
            "related_nodes": [], "created_branch": "main"}),
        json!({"__typename": "BranchCreatedEvent", "id": id("a.created"),
            "event": "infrahub.branch.created", "branch": null, "account_id": admin, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("feat-a"),
            "related_nodes": [], "created_branch": "feat-a"}),
        json!({"__typename": "BranchCreatedEvent", "id": id("b.created"),
            "event": "infrahub.branch.created", "branch": null, "account_id": admin, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("feat-b"),
            "related_nodes": [], "created_branch": "feat-b"}),
        json!({"__typename": "StandardEvent", "id": id("deploy"),
            "event": "acme.deploy.started", "branch": "main", "account_id": admin, "level": 0,
            "parent_id": null, "has_children": true, "primary_node": device("dev-1"),
            "related_nodes": [interface("if-1"), interface("if-2")],
            "payload": {"data": {"step": 1, "tags": ["a", "b"], "nested": {"ok": true, "n": null}},
                        "context": context(&admin)}}),
        json!({"__typename": "StandardEvent", "id": id("step1"),
            "event": "acme.deploy.step", "branch": "main", "account_id": admin, "level": 1,
            "parent_id": id("deploy"), "has_children": true, "primary_node": device("dev-1"),
            "related_nodes": [interface("if-2")],
            "payload": {"data": {"step": 2}, "context": context(&admin)}}),
        json!({"__typename": "StandardEvent", "id": id("step2"),
            "event": "acme.deploy.step", "branch": "feat-a", "account_id": admin, "level": 2,
            "parent_id": id("step1"), "has_children": false, "primary_node": device("dev-2"),
            "related_nodes": [],
            "payload": {"data": {"step": 3}, "context": context(&admin)}}),
        json!({"__typename": "BranchRebasedEvent", "id": id("a.rebased"),
            "event": "infrahub.branch.rebased", "branch": "feat-a", "account_id": admin,
            "level": 0, "parent_id": null, "has_children": false,
            "primary_node": branch_node("feat-a"), "related_nodes": [],
            "rebased_branch": "feat-a"}),
        json!({"__typename": "StandardEvent", "id": id("audit"),
            "event": "acme.audit", "branch": "feat-a", "account_id": bob, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": device("dev-2"),
            "related_nodes": [device("dev-1")],
            "payload": {"data": {"who": "bob"}, "context": context(&bob)}}),
        json!({"__typename": "BranchCreatedEvent", "id": id("c.created"),
            "event": "infrahub.branch.created", "branch": null, "account_id": bob, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("feat-c"),
            "related_nodes": [], "created_branch": "feat-c"}),
        json!({"__typename": "BranchRebasedEvent", "id": id("b.rebased"),
            "event": "infrahub.branch.rebased", "branch": "feat-b", "account_id": admin,
            "level": 0, "parent_id": null, "has_children": false,
            "primary_node": branch_node("feat-b"), "related_nodes": [],
            "rebased_branch": "feat-b"}),
        json!({"__typename": "BranchMergedEvent", "id": id("a.merged"),
            "event": "infrahub.branch.merged", "branch": null, "account_id": admin, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("feat-a"),
            "related_nodes": [], "source_branch": "feat-a"}),
        json!({"__typename": "StandardEvent", "id": id("step3"),
            "event": "acme.deploy.step", "branch": "feat-b", "account_id": bob, "level": 1,
            "parent_id": id("deploy"), "has_children": false, "primary_node": null,
            "related_nodes": [interface("if-1")],
            "payload": {"data": {}, "context": context(&bob)}}),
        json!({"__typename": "BranchMergedEvent", "id": id("b.merged"),
            "event": "infrahub.branch.merged", "branch": null, "account_id": admin, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("feat-b"),
            "related_nodes": [], "source_branch": "feat-b"}),
        json!({"__typename": "BranchDeletedEvent", "id": id("a.deleted"),
            "event": "infrahub.branch.deleted", "branch": null, "account_id": admin, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": branch_node("feat-a"),
            "related_nodes": [], "deleted_branch": "feat-a", "proposed_change_id": null}),
        json!({"__typename": "StandardEvent", "id": id("global"),
            "event": "acme.audit", "branch": null, "account_id": admin, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": device("dev-3"),
            "related_nodes": [],
            "payload": {"data": {"note": "global"}, "context": context(&admin)}}),
        json!({"__typename": "StandardEvent", "id": id("ping"),
            "event": "acme.ping", "branch": "feat-c", "account_id": bob, "level": 0,
            "parent_id": null, "has_children": false, "primary_node": null,
            "related_nodes": [],
            "payload": {"data": {}, "context": context(&bob)}}),
    ];
    assert_eq!(nodes.len(), expected.len());
    for ((label, got), want) in ALL.iter().zip(&nodes).zip(&expected) {
        assert_eq!(got, want, "{label}");
    }

    // `payload` through the interface on the built-in types: {"data": <event fields>, "context"}.
    let q = f.fill(
        r#"{ InfrahubEvent(ids: ["%a.created%", "%a.merged%", "%a.rebased%", "%a.deleted%"], order: ASC) {
            edges { node { __typename payload } } } }"#,
    );
    let data = f.s.admin(&q, json!({})).await;
    let payloads: Vec<(String, Value)> = data["InfrahubEvent"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["__typename"].as_str().unwrap().to_string(),
                e["node"]["payload"].clone(),
            )
        })
        .collect();
    let feat_a = f.branch_ids["feat-a"].as_str();
    let kinds: Vec<&str> = payloads.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "BranchCreatedEvent",
            "BranchRebasedEvent",
            "BranchMergedEvent",
            "BranchDeletedEvent"
        ]
    );
    for ((typename, p), (key, value)) in payloads.iter().zip([
        ("created_branch", "feat-a"),
        ("rebased_branch", "feat-a"),
        ("source_branch", "feat-a"),
        ("deleted_branch", "feat-a"),
    ]) {
        assert_eq!(p["data"][key], value, "{typename}: {p}");
        assert_eq!(p["data"]["branch_id"], feat_a, "{typename}: {p}");
        assert_eq!(p["context"], context(&admin), "{typename}: {p}");
    }

    // Filtering by event type returns the matching concrete type.
    let data =
        f.s.admin(
            r#"{ InfrahubEvent(event_type: ["infrahub.branch.merged"]) { count edges { node {
                __typename ... on BranchMergedEvent { source_branch } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["InfrahubEvent"],
        json!({"count": 2, "edges": [
            {"node": {"__typename": "BranchMergedEvent", "source_branch": "feat-b"}},
            {"node": {"__typename": "BranchMergedEvent", "source_branch": "feat-a"}},
        ]})
    );
    f.s.shutdown().await;
}
