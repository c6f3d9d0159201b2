//! Text as every backend must treat it: names are listed in byte order (never the
//! database's locale), compared case-sensitively, and a string the backend cannot store is
//! refused alone, as invalid input, without failing the commits grouped with it.

use super::{DynStore, branch};
use crate::{Change, Commit, StoreError};
use infrastream_core::{
    Account, ErrorKind, EventFilter, NewEvent, Node, Position, Role, SavedQuery, SortOrder,
};
use serde_json::json;

/// Names whose byte order differs from a dictionary's: upper case before lower, `-` before
/// `_`, and non-ASCII last.
const NAMES: [&str; 6] = ["beta_1", "Zeta", "ébène", "alpha", "beta-2", "Alpha"];

fn byte_order() -> Vec<String> {
    let mut names: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    names.sort();
    names
}

pub(super) async fn names_are_listed_in_byte_order(store: DynStore) {
    let mut changes = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        changes.push(Change::InsertBranch(branch(name)));
        changes.push(Change::InsertAccount(Account {
            id: format!("a{i}"),
            name: name.to_string(),
            role: Role::ReadOnly,
            password_hash: "h".into(),
        }));
        changes.push(Change::InsertSavedQuery(SavedQuery {
            id: format!("q{i}"),
            name: name.to_string(),
            query: "{ x }".into(),
            description: None,
        }));
        changes.push(Change::CreateNode(Node {
            id: format!("n{i}"),
            kind: "K".into(),
            name: name.to_string(),
            data: json!({}),
        }));
    }
    store
        .commit(Commit {
            changes,
            events: vec![],
        })
        .await
        .unwrap();
    let want = byte_order();
    let branches: Vec<_> = store.branches().await.unwrap();
    assert_eq!(
        branches.into_iter().map(|b| b.name).collect::<Vec<_>>(),
        want,
        "branches"
    );
    let accounts = store.accounts().await.unwrap();
    assert_eq!(
        accounts.into_iter().map(|a| a.name).collect::<Vec<_>>(),
        want,
        "accounts"
    );
    let queries = store.saved_queries().await.unwrap();
    assert_eq!(
        queries.into_iter().map(|q| q.name).collect::<Vec<_>>(),
        want,
        "saved queries"
    );
    let nodes = store.nodes("K").await.unwrap();
    assert_eq!(
        nodes.into_iter().map(|n| n.name).collect::<Vec<_>>(),
        want,
        "nodes"
    );
    // Lookups are exact: another case is another name.
    assert!(store.branch("alpha").await.unwrap().is_some());
    assert!(store.branch("ALPHA").await.unwrap().is_none());
    assert_eq!(
        store.account_by_name("Alpha").await.unwrap().map(|a| a.id),
        Some("a5".to_string())
    );
    assert!(store.account_by_name("ZETA").await.unwrap().is_none());
    assert!(store.nodes("k").await.unwrap().is_empty());
    store.close().await;
}

pub(super) async fn filters_are_case_sensitive(store: DynStore) {
    let mut e = NewEvent::new("acme.Deploy");
    e.branch = Some("Main".into());
    e.account_id = Some("Acc".into());
    store.commit(Commit::events(vec![e])).await.unwrap();
    let none = [
        EventFilter {
            event_types: vec!["acme.deploy".into()],
            ..Default::default()
        },
        EventFilter {
            branches: vec!["main".into()],
            ..Default::default()
        },
        EventFilter {
            account_ids: vec!["acc".into()],
            ..Default::default()
        },
    ];
    for f in none {
        let page = store.query_events(&f, SortOrder::Asc, 10, 0).await.unwrap();
        assert_eq!(page.count, 0, "{f:?}");
    }
    let exact = EventFilter {
        event_types: vec!["acme.Deploy".into()],
        branches: vec!["Main".into()],
        account_ids: vec!["Acc".into()],
        ..Default::default()
    };
    let page = store
        .query_events(&exact, SortOrder::Asc, 10, 0)
        .await
        .unwrap();
    assert_eq!(page.count, 1);
    store.close().await;
}

/// A NUL character is stored faithfully or refused alone (invalid input); either way the
/// commits around it succeed and the log has no gap.
pub(super) async fn a_string_the_backend_cannot_store_is_refused_alone(store: DynStore) {
    let odd = "nul\0here";
    let attempts = vec![
        Commit::events(vec![NewEvent::new(odd)]),
        Commit {
            changes: vec![Change::InsertBranch(branch(odd))],
            events: vec![NewEvent::new("x.branch")],
        },
        Commit {
            changes: vec![Change::SetMeta {
                key: "k".into(),
                value: odd.into(),
                only_if_absent: false,
            }],
            events: vec![],
        },
    ];
    for attempt in attempts {
        // Grouped with good commits before and after it.
        let before = store.commit(Commit::events(vec![NewEvent::new("x.before")]));
        let odd_commit = store.commit(attempt);
        let after = store.commit(Commit::events(vec![NewEvent::new("x.after")]));
        let (before, odd_commit, after) = tokio::join!(before, odd_commit, after);
        before.expect("a neighbour commits");
        after.expect("a neighbour commits");
        match odd_commit {
            Ok(_) => {}
            Err(StoreError::Rejected(e)) => {
                assert_eq!(e.kind, ErrorKind::InvalidInput, "{e:?}");
                assert!(e.message.contains("NUL"), "{}", e.message);
            }
            Err(other) => panic!("the NUL character failed the store: {other}"),
        }
    }
    // What was stored reads back as it was written.
    if let Some(b) = store.branch(odd).await.unwrap() {
        assert_eq!(b.name, odd);
    }
    if let Some(v) = store.meta("k").await.unwrap() {
        assert_eq!(v, odd);
    }
    let events = store.read_after(Position::ZERO, 100).await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position, Position(i as u64 + 1), "no gap");
    }
    if let Some(e) = events.iter().find(|e| e.name.contains('\0')) {
        assert_eq!(e.name, odd);
    }
    // Asking with it is no failure: filters agree with `matches`, lookups find what is stored.
    for f in [
        EventFilter {
            event_types: vec![odd.into()],
            ..Default::default()
        },
        EventFilter {
            event_types: vec![odd.into(), "x.after".into()],
            branches: vec![odd.into()],
            ..Default::default()
        },
        EventFilter {
            account_ids: vec![odd.into()],
            primary_node_ids: vec![odd.into()],
            related_node_ids: vec![odd.into()],
            branch_merged: Some(vec![odd.into()]),
            ..Default::default()
        },
    ] {
        let page = store.query_events(&f, SortOrder::Asc, 50, 0).await.unwrap();
        let want: Vec<_> = events.iter().filter(|e| f.matches(e)).cloned().collect();
        assert_eq!(page.events, want, "{f:?}");
    }
    assert!(store.account_by_name(odd).await.unwrap().is_none());
    assert!(store.token_by_hash(odd).await.unwrap().is_none());
    assert!(store.nodes(odd).await.unwrap().is_empty());
    assert!(store.meta(odd).await.unwrap().is_none());
    // In JSON it is always fine.
    let mut e = NewEvent::new("x.json");
    e.data = json!({"text": odd});
    let stored = store.commit(Commit::events(vec![e])).await.unwrap();
    let read = store
        .read_after(Position(stored[0].position.0 - 1), 1)
        .await
        .unwrap();
    assert_eq!(read[0].data, json!({"text": odd}));
    store.close().await;
}
