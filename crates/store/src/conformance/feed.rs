//! The commit feed and the head, as the bus consumes them: the feed is handed out once, and
//! carries every committed event exactly once, in position order, refused commits never; when
//! a commit returns, the head has reached its events; times never go back.

use super::{DynStore, branch};
use crate::{Change, Commit, StoreError};
use infrastream_core::{Event, NewEvent, Position};
use std::time::Duration;

pub(super) async fn the_feed_carries_every_committed_event_once(store: DynStore) {
    let Some(mut feed) = store.take_commit_feed() else {
        // A backend without a feed is read by position (the bus follows its head).
        store.close().await;
        return;
    };
    assert!(
        store.take_commit_feed().is_none(),
        "the feed is handed out once"
    );
    let mut committed: Vec<Event> = Vec::new();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..25 {
                let commit = if i % 5 == 0 {
                    // Refused (the branch exists after the first round): its event never
                    // reaches the feed.
                    Commit {
                        changes: vec![Change::InsertBranch(branch(&format!("w{w}")))],
                        events: vec![NewEvent::new(format!("w{w}.branch{i}"))],
                    }
                } else {
                    Commit::events(vec![NewEvent::new(format!("w{w}.e{i}"))])
                };
                match store.commit(commit).await {
                    Ok(events) => {
                        let last = events.last().expect("one event").position;
                        assert!(
                            *store.head().borrow() >= last,
                            "the head reached the commit when it returned"
                        );
                        mine.extend(events);
                    }
                    Err(StoreError::Rejected(_)) => assert!(i > 0),
                    Err(e) => panic!("{e}"),
                }
            }
            mine
        }));
    }
    for t in tasks {
        committed.extend(t.await.unwrap());
    }
    committed.sort_by_key(|e| e.position);
    assert_eq!(committed.len(), 4 * 20 + 4);
    let mut fed: Vec<Event> = Vec::new();
    while fed.len() < committed.len() {
        match tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
            Ok(Some(batch)) => fed.extend(batch),
            other => panic!("the feed stopped after {} events: {other:?}", fed.len()),
        }
    }
    assert_eq!(fed, committed, "every event once, in position order");
    assert!(
        fed.windows(2).all(|w| w[0].occurred_at <= w[1].occurred_at),
        "times never go back along the log"
    );
    assert_eq!(
        fed.iter().map(|e| e.position).collect::<Vec<_>>(),
        (1..=committed.len() as u64)
            .map(Position)
            .collect::<Vec<_>>()
    );
    let more = tokio::time::timeout(Duration::from_millis(300), feed.recv()).await;
    assert!(more.is_err(), "nothing else is fed: {more:?}");
    store.close().await;
    // Closing ends the feed.
    let end = tokio::time::timeout(Duration::from_secs(10), feed.recv()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}
