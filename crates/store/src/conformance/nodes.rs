//! Generic nodes: a name is unique per kind, an id is taken once (also under concurrent
//! creates), and a node keeps its kind.

use super::DynStore;
use crate::{Change, Commit, StoreError};
use infrastream_core::{ErrorKind, NewEvent, Position};
use serde_json::json;

pub(super) async fn nodes_are_unique_per_kind(store: DynStore) {
    use infrastream_core::Node;
    let node = |id: &str, kind: &str, name: &str| Node {
        id: id.into(),
        kind: kind.into(),
        name: name.into(),
        data: json!({"v": id}),
    };
    let put = |n: Node| Commit {
        changes: vec![Change::PutNode(n)],
        events: vec![],
    };
    store.commit(put(node("1", "KindA", "x"))).await.unwrap();
    store.commit(put(node("2", "KindB", "x"))).await.unwrap();
    let dup = store.commit(put(node("3", "KindA", "x"))).await;
    assert!(
        matches!(dup, Err(StoreError::Rejected(ref e)) if e.message == "A KindA named x already exists"),
        "{dup:?}"
    );
    // Replacing by id keeps one node and its new data.
    store
        .commit(put(Node {
            data: json!({"v": "new"}),
            ..node("1", "KindA", "x")
        }))
        .await
        .unwrap();
    let a = store.nodes("KindA").await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].data, json!({"v": "new"}));
    assert_eq!(store.node("2").await.unwrap().unwrap().kind, "KindB");
    store
        .commit(Commit {
            changes: vec![Change::DeleteNode { id: "2".into() }],
            events: vec![],
        })
        .await
        .unwrap();
    assert!(store.node("2").await.unwrap().is_none());
    assert!(
        store
            .commit(Commit {
                changes: vec![Change::DeleteNode { id: "2".into() }],
                events: vec![]
            })
            .await
            .is_err()
    );
}

fn test_node(id: &str, kind: &str, name: &str) -> infrastream_core::Node {
    infrastream_core::Node {
        id: id.into(),
        kind: kind.into(),
        name: name.into(),
        data: json!({"name": name}),
    }
}

fn node_commit(change: Change) -> Commit {
    Commit {
        changes: vec![change],
        events: vec![],
    }
}

pub(super) async fn concurrent_creates_with_one_id_have_one_winner(store: DynStore) {
    for round in 0..20 {
        let id = format!("n{round}");
        let mut tasks = Vec::new();
        for writer in 0..4 {
            let store = store.clone();
            // Different names, so only the id collides.
            let n = test_node(&id, "KindA", &format!("r{round}w{writer}"));
            tasks.push(tokio::spawn(async move {
                let created = NewEvent::new("node.created");
                let r = store
                    .commit(Commit {
                        changes: vec![Change::CreateNode(n.clone())],
                        events: vec![created],
                    })
                    .await;
                (n, r)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (n, r) = t.await.unwrap();
            match r {
                Ok(events) => {
                    assert_eq!(events.len(), 1);
                    winners.push(n);
                }
                Err(StoreError::Rejected(e)) => {
                    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e:?}");
                    assert_eq!(e.message, format!("A node with id {id} already exists"));
                }
                Err(other) => panic!("unexpected failure: {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one create of {id} wins");
        assert_eq!(store.node(&id).await.unwrap().as_ref(), Some(&winners[0]));
    }
    // The losers' events were not committed.
    assert_eq!(
        store.read_after(Position::ZERO, 1000).await.unwrap().len(),
        20
    );
    // A create is refused whatever the kind of the node holding the id.
    let other_kind = store
        .commit(node_commit(Change::CreateNode(test_node(
            "n0", "KindB", "z",
        ))))
        .await;
    assert!(
        matches!(other_kind, Err(StoreError::Rejected(ref e)) if e.kind == ErrorKind::AlreadyExists),
        "{other_kind:?}"
    );
}

pub(super) async fn a_node_keeps_its_kind(store: DynStore) {
    store
        .commit(node_commit(Change::CreateNode(test_node(
            "1", "KindA", "x",
        ))))
        .await
        .unwrap();
    for change in [
        Change::PutNode(test_node("1", "KindB", "x")),
        Change::UpdateNode(test_node("1", "KindB", "x")),
    ] {
        let r = store.commit(node_commit(change)).await;
        match r {
            Err(StoreError::Rejected(e)) => {
                assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
                assert!(
                    e.message.contains("KindA") && e.message.contains("KindB"),
                    "{}",
                    e.message
                );
            }
            other => panic!("changing a node's kind must be refused: {other:?}"),
        }
    }
    assert_eq!(store.node("1").await.unwrap().unwrap().kind, "KindA");
    assert!(store.nodes("KindB").await.unwrap().is_empty());

    // Updates of the same kind replace the data; an update of a missing id is NotFound.
    let renamed = test_node("1", "KindA", "y");
    store
        .commit(node_commit(Change::UpdateNode(renamed.clone())))
        .await
        .unwrap();
    assert_eq!(store.node("1").await.unwrap(), Some(renamed));
    let missing = store
        .commit(node_commit(Change::UpdateNode(test_node(
            "2", "KindA", "z",
        ))))
        .await;
    assert!(
        matches!(missing, Err(StoreError::Rejected(ref e)) if e.kind == ErrorKind::NotFound),
        "{missing:?}"
    );
    assert!(store.node("2").await.unwrap().is_none());
    // PutNode still creates a missing node.
    store
        .commit(node_commit(Change::PutNode(test_node("2", "KindA", "z"))))
        .await
        .unwrap();
    assert_eq!(store.nodes("KindA").await.unwrap().len(), 2);
}
