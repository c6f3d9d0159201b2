//! The conformance suite every [`Store`] backend must pass. A backend's test calls [`run_all`]
//! with a factory that opens a fresh, empty store. The checks of generic nodes are in
//! [`nodes`], of pruning the log in [`retention`], of text (order, case, characters a backend
//! cannot store) in [`text`], of the commit feed in [`feed`].

mod feed;
mod nodes;
pub mod postgres;
mod retention;
mod text;

use crate::{Change, Commit, Store, StoreError};
use infrastream_core::{
    Branch, BranchStatus, ErrorKind, Event, EventFilter, NewEvent, ParentRef, Position,
    RelatedNode, SortOrder, now,
};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

/// A shared store under test.
pub type DynStore = Arc<dyn Store>;

/// Runs every check against fresh stores made by `open`.
pub async fn run_all<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = DynStore>,
{
    positions_are_gap_free_under_concurrency(open().await).await;
    refused_change_rolls_back_its_events(open().await).await;
    branch_changes_are_checked(open().await).await;
    parents_get_levels_and_children(open().await).await;
    sql_filters_agree_with_matches(open().await).await;
    paging_and_order(open().await).await;
    tokens_and_meta(open().await).await;
    revoked_sessions(open().await).await;
    a_healthy_store_is_ready(open().await).await;
    nodes::nodes_are_unique_per_kind(open().await).await;
    nodes::concurrent_creates_with_one_id_have_one_winner(open().await).await;
    nodes::a_node_keeps_its_kind(open().await).await;
    retention::pruning_by_count_removes_the_oldest(open().await).await;
    retention::pruning_by_age_removes_what_occurred_before(open().await).await;
    retention::pruning_is_bounded_and_never_reuses_positions(open().await).await;
    retention::commits_go_on_during_a_prune(open().await).await;
    text::names_are_listed_in_byte_order(open().await).await;
    text::filters_are_case_sensitive(open().await).await;
    text::a_string_the_backend_cannot_store_is_refused_alone(open().await).await;
    feed::the_feed_carries_every_committed_event_once(open().await).await;
}

/// A branch value for tests.
pub fn branch(name: &str) -> Branch {
    let t = now();
    Branch {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        description: None,
        origin_branch: "main".into(),
        branched_from: t,
        created_at: t,
        status: BranchStatus::Open,
        sync_with_git: false,
        is_default: false,
        has_schema_changes: false,
        graph_version: 0,
    }
}

fn custom(name: &str) -> NewEvent {
    NewEvent::new(name)
}

async fn positions_are_gap_free_under_concurrency(store: DynStore) {
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..50 {
                let events = vec![
                    custom(&format!("w{w}.e{i}")),
                    custom(&format!("w{w}.e{i}.b")),
                ];
                let stored = store.commit(Commit::events(events)).await.unwrap();
                assert_eq!(
                    stored[1].position,
                    stored[0].position.next(),
                    "a commit is contiguous"
                );
                got.extend(stored.into_iter().map(|e| e.position));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let expected: Vec<Position> = (1..=800).map(Position).collect();
    assert_eq!(
        all, expected,
        "positions are 1..=n without gaps or duplicates"
    );
    assert_eq!(*store.head().borrow(), Position(800));
    let read = store.read_after(Position(790), 100).await.unwrap();
    assert_eq!(
        read.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        (791..=800).collect::<Vec<_>>()
    );
}

async fn refused_change_rolls_back_its_events(store: DynStore) {
    store
        .commit(Commit {
            changes: vec![Change::InsertBranch(branch("a"))],
            events: vec![custom("x.created")],
        })
        .await
        .unwrap();
    // A duplicate branch is refused together with its event; a concurrent good commit survives.
    let dup = store.commit(Commit {
        changes: vec![Change::InsertBranch(branch("a"))],
        events: vec![custom("x.dup")],
    });
    let good = store.commit(Commit::events(vec![custom("x.good")]));
    let (dup, good) = tokio::join!(dup, good);
    match dup {
        Err(StoreError::Rejected(e)) => {
            assert_eq!(e.kind, ErrorKind::AlreadyExists);
            assert_eq!(e.message, "The branch a already exists");
        }
        other => panic!("duplicate branch accepted: {other:?}"),
    }
    let good = good.unwrap();
    assert_eq!(
        good[0].position,
        Position(2),
        "the refused commit left no gap"
    );
    let page = store
        .query_events(&EventFilter::default(), SortOrder::Asc, 50, 0)
        .await
        .unwrap();
    let names: Vec<_> = page.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["x.created", "x.good"]);
}

async fn branch_changes_are_checked(store: DynStore) {
    let b = branch("feature/x");
    store
        .commit(Commit {
            changes: vec![Change::InsertBranch(b.clone())],
            events: vec![],
        })
        .await
        .unwrap();
    let stored = store.branch("feature/x").await.unwrap().unwrap();
    assert_eq!(stored, b);
    let merged = Branch {
        status: BranchStatus::Merged,
        ..b.clone()
    };
    let update = |expect| Commit {
        changes: vec![Change::UpdateBranch {
            branch: merged.clone(),
            expect_status: Some(expect),
        }],
        events: vec![custom("x.merged")],
    };
    store.commit(update(BranchStatus::Open)).await.unwrap();
    let again = store.commit(update(BranchStatus::Open)).await;
    assert!(
        matches!(again, Err(StoreError::Rejected(ref e)) if e.kind == ErrorKind::Conflict),
        "{again:?}"
    );
    assert_eq!(
        store.branch("feature/x").await.unwrap().unwrap().status,
        BranchStatus::Merged
    );
    store
        .commit(Commit {
            changes: vec![Change::DeleteBranch {
                name: "feature/x".into(),
            }],
            events: vec![],
        })
        .await
        .unwrap();
    assert!(store.branch("feature/x").await.unwrap().is_none());
    let gone = store
        .commit(Commit {
            changes: vec![Change::DeleteBranch {
                name: "feature/x".into(),
            }],
            events: vec![],
        })
        .await;
    assert!(
        matches!(gone, Err(StoreError::Rejected(ref e)) if e.message == "Branch: feature/x not found.")
    );
    assert_eq!(
        *store.head().borrow(),
        Position(1),
        "only the successful merge appended an event"
    );
}

async fn parents_get_levels_and_children(store: DynStore) {
    let mut child = custom("x.child");
    child.parent = Some(ParentRef::InBatch(0));
    let stored = store
        .commit(Commit::events(vec![custom("x.parent"), child]))
        .await
        .unwrap();
    assert!(stored[0].has_children);
    assert_eq!(
        (stored[1].level, stored[1].parent_id),
        (1, Some(stored[0].id))
    );
    let mut grandchild = custom("x.grandchild");
    grandchild.parent = Some(ParentRef::Existing(stored[1].id));
    let gc = store
        .commit(Commit::events(vec![grandchild]))
        .await
        .unwrap();
    assert_eq!(gc[0].level, 2);
    let page = store
        .query_events(
            &EventFilter {
                ids: vec![stored[1].id],
                ..Default::default()
            },
            SortOrder::Asc,
            10,
            0,
        )
        .await
        .unwrap();
    assert!(
        page.events[0].has_children,
        "an existing parent is marked when a child arrives"
    );
    let mut orphan = custom("x.orphan");
    orphan.parent = Some(ParentRef::Existing(uuid::Uuid::now_v7()));
    let err = store
        .commit(Commit::events(vec![orphan]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected(ref e) if e.kind == ErrorKind::NotFound));
}

fn node(id: &str) -> RelatedNode {
    RelatedNode {
        id: id.into(),
        kind: "TestKind".into(),
    }
}

/// Commits a varied set of events and checks, for many filters, that the backend's query
/// returns exactly the events `EventFilter::matches` accepts.
async fn sql_filters_agree_with_matches(store: DynStore) {
    let mut batch = Vec::new();
    for i in 0..24 {
        let mut e = match i % 4 {
            0 => custom("acme.deploy"),
            1 => NewEvent {
                data: json!({"source_branch": format!("b{}", i % 3)}),
                ..custom("infrahub.branch.merged")
            },
            2 => NewEvent {
                data: json!({"rebased_branch": format!("b{}", i % 3)}),
                branch: Some(format!("b{}", i % 3)),
                ..custom("infrahub.branch.rebased")
            },
            // Account events (hidden from callers who may not manage accounts), and a name
            // that only differs in case, which is not one.
            _ if i % 8 == 3 => custom("infrahub.account.logged_in"),
            _ if i % 12 == 7 => custom("Infrahub.Account.logged_in"),
            _ => custom("acme.check"),
        };
        if i % 2 == 0 {
            e.branch = Some(format!("b{}", i % 3));
        }
        e.account_id = Some(format!("acc{}", i % 2));
        e.primary_node = Some(node(&format!("p{}", i % 5)));
        e.related_nodes = vec![node(&format!("r{}", i % 3)), node(&format!("r{}", i % 4))];
        if i % 6 == 5 {
            e.parent = Some(ParentRef::InBatch(i - 1));
        }
        batch.push(e);
    }
    let all = store.commit(Commit::events(batch)).await.unwrap();
    let mid = all[12].occurred_at;
    let filters = vec![
        EventFilter::default(),
        EventFilter {
            event_types: vec!["acme.deploy".into(), "acme.check".into()],
            ..Default::default()
        },
        EventFilter {
            branch_merged: Some(vec!["b1".into()]),
            ..Default::default()
        },
        EventFilter {
            event_types: vec!["acme.check".into()],
            branch_rebased: Some(vec!["b2".into()]),
            ..Default::default()
        },
        EventFilter {
            branches: vec!["b0".into(), "b2".into()],
            ..Default::default()
        },
        EventFilter {
            account_ids: vec!["acc1".into()],
            ..Default::default()
        },
        EventFilter {
            primary_node_ids: vec!["p3".into()],
            ..Default::default()
        },
        EventFilter {
            related_node_ids: vec!["r1".into()],
            ..Default::default()
        },
        EventFilter {
            related_node_ids: vec!["p1".into()],
            ..Default::default()
        },
        EventFilter {
            parent_ids: vec![all[4].id],
            ..Default::default()
        },
        EventFilter {
            level: Some(1),
            ..Default::default()
        },
        EventFilter {
            has_children: Some(true),
            ..Default::default()
        },
        EventFilter {
            ids: vec![all[0].id, all[7].id],
            ..Default::default()
        },
        EventFilter {
            since: Some(mid),
            until: Some(mid),
            ..Default::default()
        },
        EventFilter {
            since: Some(mid + chrono::Duration::seconds(1)),
            ..Default::default()
        },
        EventFilter {
            branches: vec!["b1".into()],
            account_ids: vec!["acc0".into()],
            related_node_ids: vec!["r0".into()],
            ..Default::default()
        },
        EventFilter {
            hide_account_events: true,
            ..Default::default()
        },
        EventFilter {
            event_types: vec!["infrahub.account.logged_in".into(), "acme.check".into()],
            hide_account_events: true,
            ..Default::default()
        },
        EventFilter {
            ids: vec![all[3].id, all[7].id, all[0].id],
            hide_account_events: true,
            ..Default::default()
        },
        EventFilter {
            event_types: vec!["infrahub.account.logged_in".into()],
            ..Default::default()
        },
    ];
    for f in filters {
        let expected: Vec<&Event> = all.iter().filter(|e| f.matches(e)).collect();
        let page = store.query_events(&f, SortOrder::Asc, 50, 0).await.unwrap();
        assert_eq!(page.count as usize, expected.len(), "count for {f:?}");
        let got: Vec<_> = page.events.iter().map(|e| e.position).collect();
        let want: Vec<_> = expected.iter().map(|e| e.position).collect();
        assert_eq!(got, want, "events for {f:?}");
    }
    // What was read back equals what the commit returned.
    let page = store
        .query_events(&EventFilter::default(), SortOrder::Asc, 50, 0)
        .await
        .unwrap();
    assert_eq!(page.events, all);
}

async fn paging_and_order(store: DynStore) {
    let events: Vec<_> = (0..15).map(|i| custom(&format!("acme.e{i}"))).collect();
    store.commit(Commit::events(events)).await.unwrap();
    let f = EventFilter::default();
    let desc = store.query_events(&f, SortOrder::Desc, 4, 2).await.unwrap();
    assert_eq!(desc.count, 15);
    assert_eq!(
        desc.events.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        [13, 12, 11, 10]
    );
    let asc = store.query_events(&f, SortOrder::Asc, 4, 13).await.unwrap();
    assert_eq!(
        asc.events.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        [14, 15]
    );
    assert_eq!(
        store.event_position(asc.events[0].id).await.unwrap(),
        Some(Position(14))
    );
}

async fn tokens_and_meta(store: DynStore) {
    use infrastream_core::{Account, ApiToken, Role};
    let account = Account {
        id: "a1".into(),
        name: "alice".into(),
        role: Role::ReadOnly,
        password_hash: "h".into(),
    };
    let token = ApiToken {
        id: "t1".into(),
        account_id: "a1".into(),
        name: Some("ci".into()),
        token_hash: "abc".into(),
        expires_at: Some(now()),
        revoked: false,
    };
    store
        .commit(Commit {
            changes: vec![
                Change::InsertAccount(account.clone()),
                Change::InsertToken(token.clone()),
            ],
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        store.account_by_name("alice").await.unwrap(),
        Some(account.clone())
    );
    assert_eq!(
        store.token_by_hash("abc").await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.tokens_of("a1").await.unwrap(), vec![token.clone()]);
    assert!(store.tokens_of("nobody").await.unwrap().is_empty());
    let wrong_owner = store
        .commit(Commit {
            changes: vec![Change::RevokeToken {
                id: "t1".into(),
                account_id: Some("other".into()),
            }],
            events: vec![],
        })
        .await;
    assert!(wrong_owner.is_err(), "a token is revoked only by its owner");
    store
        .commit(Commit {
            changes: vec![Change::RevokeToken {
                id: "t1".into(),
                account_id: Some("a1".into()),
            }],
            events: vec![],
        })
        .await
        .unwrap();
    assert!(store.token("t1").await.unwrap().unwrap().revoked);
    assert!(
        store
            .tokens_of("a1")
            .await
            .unwrap()
            .iter()
            .all(|t| t.id != "t1"),
        "a revoked token is not listed"
    );
    let set = |value: &str, only_if_absent| Change::SetMeta {
        key: "k".into(),
        value: value.into(),
        only_if_absent,
    };
    store
        .commit(Commit {
            changes: vec![set("v1", true)],
            events: vec![],
        })
        .await
        .unwrap();
    store
        .commit(Commit {
            changes: vec![set("v2", true)],
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v1"));
    store
        .commit(Commit {
            changes: vec![set("v3", false)],
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.meta("k").await.unwrap().as_deref(), Some("v3"));
}

async fn revoked_sessions(store: DynStore) {
    use infrastream_core::RevokedSession;
    let t = now();
    let session = |id: &str, expires_at| RevokedSession {
        session_id: id.into(),
        account_id: "a1".into(),
        expires_at,
    };
    let old = session("s-old", t - chrono::Duration::seconds(10));
    let live = session("s-live", t + chrono::Duration::hours(1));
    assert_eq!(store.revoked_session("s-live").await.unwrap(), None);
    store
        .commit(Commit {
            changes: vec![
                Change::RevokeSession(old.clone()),
                Change::RevokeSession(live.clone()),
            ],
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        store.revoked_session("s-live").await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(store.revoked_session("s-old").await.unwrap(), Some(old));
    // A second logout of one session is refused with its event: one logout, one event.
    let again = store
        .commit(Commit {
            changes: vec![Change::RevokeSession(live.clone())],
            events: vec![custom("infrahub.account.logged_out")],
        })
        .await;
    match again {
        Err(StoreError::Rejected(e)) => {
            assert_eq!(e.kind, ErrorKind::Conflict);
            assert_eq!(e.message, "Session s-live is already logged out");
        }
        other => panic!("second revocation accepted: {other:?}"),
    }
    assert_eq!(
        *store.head().borrow(),
        Position(0),
        "its event was not kept"
    );
    // Pruning forgets only what expired.
    store
        .commit(Commit::change(Change::PruneRevokedSessions {
            expired_before: t,
        }))
        .await
        .unwrap();
    assert_eq!(store.revoked_session("s-old").await.unwrap(), None);
    assert_eq!(store.revoked_session("s-live").await.unwrap(), Some(live));
    store.close().await;
}

/// A store that commits is ready, before and after commits, and stays so when polled; the
/// log is not touched by asking.
async fn a_healthy_store_is_ready(store: DynStore) {
    store.ready().await.expect("a fresh store is ready");
    store
        .commit(Commit::events(vec![custom("t.ready")]))
        .await
        .unwrap();
    for _ in 0..20 {
        store.ready().await.expect("a store that commits is ready");
    }
    assert_eq!(*store.head().borrow(), Position(1));
    store.close().await;
}
