//! The embedded backend against the store conformance suite, plus SQLite-specific checks.

use infrastream_core::{NewEvent, Position};
use infrastream_store::sqlite::{CURRENT_SCHEMA_VERSION, SqliteOptions, SqliteStore};
use infrastream_store::{Commit, Store, StoreError, conformance};
use std::sync::Arc;

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = dir.path().join(format!("db{n}.sqlite"));
        async move {
            // Small prune chunks: every retention check also prunes in several transactions.
            let mut options = SqliteOptions::new(path);
            options.prune_chunk_events = 7;
            let store = SqliteStore::open(options).await.unwrap();
            Arc::new(store) as conformance::DynStore
        }
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_events_and_continues_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store
        .commit(Commit::events(vec![
            NewEvent::new("a.b"),
            NewEvent::new("a.c"),
        ]))
        .await
        .unwrap();
    store.close().await;
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert_eq!(*store.head().borrow(), Position(2));
    let e = store
        .commit(Commit::events(vec![NewEvent::new("a.d")]))
        .await
        .unwrap();
    assert_eq!(e[0].position, Position(3));
    assert!(e[0].occurred_at >= store.read_after(Position(1), 1).await.unwrap()[0].occurred_at);
    store.close().await;
}

/// After a restart, where the log starts is still known: positions continue after the last
/// pruned one even with every event pruned, pruned ids are still recognised, and the pruned
/// events' related-node index rows are gone with them.
#[tokio::test]
async fn pruning_survives_a_restart() {
    use infrastream_core::RelatedNode;
    use infrastream_store::PrunePolicy;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let mut events = Vec::new();
    for i in 0..6 {
        let mut e = NewEvent::new("a.b");
        e.related_nodes = vec![RelatedNode {
            id: format!("n{i}"),
            kind: "K".into(),
        }];
        events.extend(store.commit(Commit::events(vec![e])).await.unwrap());
    }
    let everything = PrunePolicy {
        keep_newest: Some(0),
        ..PrunePolicy::default()
    };
    let outcome = store.prune(everything).await.unwrap();
    assert_eq!(outcome.removed, 6);
    store.close().await;
    {
        use sqlx::{Connection, SqliteConnection};
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let related: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM event_related")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(related, 0, "the index rows of pruned events are removed");
        conn.close().await.unwrap();
    }
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert_eq!(*store.head().borrow(), Position(6));
    assert_eq!(store.log_start().await.unwrap(), outcome.log_start);
    assert!(outcome.log_start.covers(events[0].id));
    assert!(matches!(
        store.read_after(Position(2), 10).await,
        Err(StoreError::Pruned { .. })
    ));
    let e = store
        .commit(Commit::events(vec![NewEvent::new("a.c")]))
        .await
        .unwrap();
    assert_eq!(e[0].position, Position(7));
    store.close().await;
}

#[tokio::test]
async fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store.close().await;
    {
        use sqlx::{Connection, SqliteConnection};
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            CURRENT_SCHEMA_VERSION + 1
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    match SqliteStore::open(SqliteOptions::new(&path)).await {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!(
                (found, supported),
                (CURRENT_SCHEMA_VERSION + 1, CURRENT_SCHEMA_VERSION)
            );
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

#[tokio::test]
async fn commits_after_close_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("db")))
        .await
        .unwrap();
    store.close().await;
    assert!(
        store
            .commit(Commit::events(vec![NewEvent::new("a.b")]))
            .await
            .is_err()
    );
}
