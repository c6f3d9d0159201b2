//! Retention: [`Store::prune`](crate::Store::prune) by count and by age, idempotent, bounded,
//! gap-free afterwards, concurrent with commits; pruned events disappear from every read, a
//! reader before the new start gets [`StoreError::Pruned`], pruned ids are recognised
//! ([`LogStart::covers`]), and positions are never reused, even with every event pruned.

use super::{DynStore, custom};
use crate::{Commit, LogStart, PrunePolicy, StoreError};
use infrastream_core::{Event, EventFilter, Position, RelatedNode, SortOrder, now};

/// Commits `n` events named `prefix.i` (one commit each); returns them.
async fn commit_n(store: &DynStore, prefix: &str, n: usize) -> Vec<Event> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut e = custom(&format!("{prefix}.{i}"));
        e.related_nodes = vec![RelatedNode {
            id: format!("node{}", i % 3),
            kind: "TestKind".into(),
        }];
        out.extend(store.commit(Commit::events(vec![e])).await.unwrap());
    }
    out
}

/// Every event still in the log, ascending.
async fn all_events(store: &DynStore) -> Vec<Event> {
    let mut out = Vec::new();
    loop {
        let page = store
            .query_events(
                &EventFilter::default(),
                SortOrder::Asc,
                50,
                out.len() as u32,
            )
            .await
            .unwrap();
        if page.events.is_empty() {
            return out;
        }
        out.extend(page.events);
    }
}

fn keep(n: u64) -> PrunePolicy {
    PrunePolicy {
        keep_newest: Some(n),
        ..PrunePolicy::default()
    }
}

/// The log holds exactly positions `first..=last`, readable by position without a gap, and
/// a read from before `first - 1` is refused as pruned.
async fn assert_log_is(store: &DynStore, first: u64, last: u64) {
    let positions: Vec<u64> = all_events(store)
        .await
        .iter()
        .map(|e| e.position.0)
        .collect();
    assert_eq!(positions, (first..=last).collect::<Vec<_>>(), "the log");
    let count = store
        .query_events(&EventFilter::default(), SortOrder::Desc, 1, 0)
        .await
        .unwrap()
        .count;
    assert_eq!(count, last + 1 - first, "InfrahubEvent's count");
    let read = store
        .read_after(Position(first - 1), 1000)
        .await
        .unwrap_or_else(|e| panic!("reading from the log's start ({}): {e}", first - 1));
    assert_eq!(
        read.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        (first..=last).collect::<Vec<_>>(),
        "read_after from the start"
    );
    if first >= 2 {
        for after in [0, first - 2] {
            match store.read_after(Position(after), 10).await {
                Err(StoreError::Pruned {
                    after: a,
                    pruned_through,
                }) => {
                    assert_eq!(a, Position(after));
                    assert_eq!(pruned_through, Position(first - 1), "from {after}");
                }
                other => panic!("read_after({after}) before the start: {other:?}"),
            }
        }
    }
}

pub(super) async fn pruning_by_count_removes_the_oldest(store: DynStore) {
    assert_eq!(store.log_start().await.unwrap(), LogStart::default());
    let events = commit_n(&store, "count", 30).await;
    // Without a limit nothing goes.
    let none = store.prune(PrunePolicy::default()).await.unwrap();
    assert_eq!(none.removed, 0);
    assert_eq!(none.log_start, LogStart::default());
    let outcome = store.prune(keep(10)).await.unwrap();
    assert_eq!(outcome.removed, 20);
    assert_eq!(outcome.log_start.pruned_through, Position(20));
    assert_eq!(outcome.log_start.newest_pruned_id, Some(events[19].id));
    assert_eq!(store.log_start().await.unwrap(), outcome.log_start);
    assert_log_is(&store, 21, 30).await;
    assert_eq!(
        *store.head().borrow(),
        Position(30),
        "the head does not move"
    );
    // Pruned ids are gone and recognised; kept ones stay; unknown newer ones are not pruned.
    for e in &events[..20] {
        assert_eq!(store.event_position(e.id).await.unwrap(), None);
        assert!(outcome.log_start.covers(e.id), "pruned {}", e.position.0);
    }
    assert_eq!(
        store.event_position(events[20].id).await.unwrap(),
        Some(Position(21))
    );
    assert!(!outcome.log_start.covers(uuid::Uuid::now_v7()));
    assert!(!outcome.log_start.covers(uuid::Uuid::new_v4()));
    // The related-node filter no longer finds pruned events either.
    let related = EventFilter {
        related_node_ids: vec!["node0".into()],
        ..EventFilter::default()
    };
    let page = store
        .query_events(&related, SortOrder::Asc, 50, 0)
        .await
        .unwrap();
    assert!(page.events.iter().all(|e| e.position.0 > 20));
    assert_eq!(page.count, page.events.len() as u64);
    // Idempotent: the same policy again removes nothing.
    let again = store.prune(keep(10)).await.unwrap();
    assert_eq!(again.removed, 0);
    assert_eq!(again.log_start, outcome.log_start);
    // Commits continue the log; the count limit then applies to the new head.
    let more = commit_n(&store, "count.more", 3).await;
    assert_eq!(more[0].position, Position(31));
    assert_eq!(store.prune(keep(10)).await.unwrap().removed, 3);
    assert_log_is(&store, 24, 33).await;
    store.close().await;
}

pub(super) async fn pruning_by_age_removes_what_occurred_before(store: DynStore) {
    let old = commit_n(&store, "age.old", 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let cutoff = now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let young = commit_n(&store, "age.young", 5).await;
    assert!(old.iter().all(|e| e.occurred_at < cutoff));
    assert!(young.iter().all(|e| e.occurred_at >= cutoff));
    let by_age = PrunePolicy {
        occurred_before: Some(cutoff),
        ..PrunePolicy::default()
    };
    let outcome = store.prune(by_age).await.unwrap();
    assert_eq!(outcome.removed, 5);
    assert_eq!(outcome.log_start.pruned_through, Position(5));
    assert_log_is(&store, 6, 10).await;
    assert_eq!(store.prune(by_age).await.unwrap().removed, 0, "idempotent");
    // Both limits: the stricter one wins.
    let both = PrunePolicy {
        occurred_before: Some(cutoff),
        keep_newest: Some(2),
        ..PrunePolicy::default()
    };
    assert_eq!(store.prune(both).await.unwrap().removed, 3);
    assert_log_is(&store, 9, 10).await;
    let both = PrunePolicy {
        occurred_before: Some(now()),
        keep_newest: Some(2),
        ..PrunePolicy::default()
    };
    assert_eq!(
        store.prune(both).await.unwrap().removed,
        2,
        "age is stricter"
    );
    store.close().await;
}

/// `through_at_most` bounds a prune; pruning everything leaves an empty log whose head stays,
/// and the next commit continues after it.
pub(super) async fn pruning_is_bounded_and_never_reuses_positions(store: DynStore) {
    let events = commit_n(&store, "bound", 12).await;
    let bounded = PrunePolicy {
        keep_newest: Some(0),
        through_at_most: Some(Position(4)),
        ..PrunePolicy::default()
    };
    assert_eq!(store.prune(bounded).await.unwrap().removed, 4);
    assert_log_is(&store, 5, 12).await;
    let everything = PrunePolicy {
        occurred_before: Some(now() + chrono::Duration::seconds(60)),
        ..PrunePolicy::default()
    };
    let outcome = store.prune(everything).await.unwrap();
    assert_eq!(outcome.removed, 8);
    assert_eq!(outcome.log_start.pruned_through, Position(12));
    assert_eq!(outcome.log_start.newest_pruned_id, Some(events[11].id));
    assert!(all_events(&store).await.is_empty());
    assert_eq!(*store.head().borrow(), Position(12));
    assert_eq!(store.read_after(Position(12), 10).await.unwrap(), vec![]);
    assert!(matches!(
        store.read_after(Position(11), 10).await,
        Err(StoreError::Pruned { .. })
    ));
    let next = commit_n(&store, "bound.next", 1).await;
    assert_eq!(next[0].position, Position(13), "positions are never reused");
    assert_log_is(&store, 13, 13).await;
    store.close().await;
}

/// Commits from several tasks while prunes run: every commit gets its gap-free position, and
/// the log stays gap-free from its start throughout.
pub(super) async fn commits_go_on_during_a_prune(store: DynStore) {
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut positions = Vec::new();
            for i in 0..100 {
                let events = vec![custom(&format!("w{w}.{i}")), custom(&format!("w{w}.{i}.b"))];
                let stored = store.commit(Commit::events(events)).await.unwrap();
                assert_eq!(stored[1].position, stored[0].position.next());
                positions.extend(stored.iter().map(|e| e.position.0));
            }
            positions
        }));
    }
    let pruner = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = Position::ZERO;
            for _ in 0..50 {
                let outcome = store.prune(keep(25)).await.unwrap();
                assert!(
                    outcome.log_start.pruned_through >= last,
                    "the start only moves on"
                );
                last = outcome.log_start.pruned_through;
                // Whatever was committed meanwhile, the log is contiguous from its start.
                let read = store.read_after(last, 100).await.unwrap();
                for (i, e) in read.iter().enumerate() {
                    assert_eq!(e.position.0, last.0 + 1 + i as u64, "no gap after a prune");
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap());
    }
    pruner.await.unwrap();
    all.sort();
    assert_eq!(all, (1..=800).collect::<Vec<u64>>(), "commits are gap-free");
    store.prune(keep(25)).await.unwrap();
    assert_log_is(&store, 776, 800).await;
    store.close().await;
}
