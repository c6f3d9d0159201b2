//! The PostgreSQL backend against the store conformance suite, plus what only a shared
//! database has: several instances on one log, concurrent migrations, a newer schema, and a
//! follower that loses its listening connection.
//!
//! Each test gets a fresh database of the cluster named by `INFRASTREAM_TEST_DATABASE_URL`
//! (`scripts/postgres start DIR` prints one); without it the tests are skipped, unless
//! `INFRASTREAM_REQUIRE_POSTGRES=1`.

use infrastream_core::{Event, NewEvent, Position};
use infrastream_store::conformance::postgres::fresh_database_url;
use infrastream_store::postgres::{
    CURRENT_SCHEMA_VERSION, LISTENER_APPLICATION_NAME, PostgresOptions, PostgresStore,
    WRITER_APPLICATION_NAME,
};
use infrastream_store::{Commit, CommitFeed, Store, StoreError, conformance};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

async fn open(url: &str) -> PostgresStore {
    PostgresStore::open(PostgresOptions::new(url))
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    if fresh_database_url("postgres_passes_the_conformance_suite")
        .await
        .is_none()
    {
        return;
    }
    conformance::run_all(|| async {
        let url = fresh_database_url("conformance").await.unwrap();
        Arc::new(open(&url).await) as conformance::DynStore
    })
    .await;
}

/// Receives from `feed` until `n` events arrived (or panics after a while).
async fn take(feed: &mut CommitFeed, n: usize) -> Vec<Event> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), feed.recv()).await {
            Ok(Some(batch)) => got.extend(batch),
            Ok(None) => panic!("the feed closed after {} events", got.len()),
            Err(_) => panic!("only {} of {n} events arrived", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_publish_one_log_in_order() {
    let Some(url) = fresh_database_url("two_instances_publish_one_log_in_order").await else {
        return;
    };
    let a = Arc::new(open(&url).await);
    let b = Arc::new(open(&url).await);
    let mut feeds = [a.take_commit_feed().unwrap(), b.take_commit_feed().unwrap()];
    let (writers, commits) = (4, 40);
    let mut tasks = Vec::new();
    for (s, store) in [a.clone(), b.clone()].into_iter().enumerate() {
        for w in 0..writers {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..commits {
                    let events = vec![
                        NewEvent::new(format!("s{s}.w{w}.e{i}")),
                        NewEvent::new(format!("s{s}.w{w}.e{i}.b")),
                    ];
                    let stored = store.commit(Commit::events(events)).await.unwrap();
                    assert_eq!(stored[1].position, stored[0].position.next());
                    // When a commit returns, its own store's head has reached it.
                    assert!(*store.head().borrow() >= stored[1].position);
                    mine.extend(stored);
                }
                mine
            }));
        }
    }
    let mut committed = Vec::new();
    for t in tasks {
        committed.extend(t.await.unwrap());
    }
    committed.sort_by_key(|e| e.position);
    let n = 2 * writers * commits * 2;
    assert_eq!(
        committed.iter().map(|e| e.position.0).collect::<Vec<_>>(),
        (1..=n as u64).collect::<Vec<_>>(),
        "positions are gap-free across instances"
    );
    for feed in &mut feeds {
        let fed = take(feed, n).await;
        assert_eq!(fed, committed, "every feed carries the whole log, in order");
    }
    for store in [&a, &b] {
        let mut head = store.head();
        tokio::time::timeout(Duration::from_secs(5), head.wait_for(|p| p.0 == n as u64))
            .await
            .expect("the head reaches the last event")
            .unwrap();
    }
    // Nothing more arrives: no duplicate.
    for feed in &mut feeds {
        let more = tokio::time::timeout(Duration::from_millis(1500), feed.recv()).await;
        assert!(more.is_err(), "unexpected events: {more:?}");
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_apply_the_migrations_once() {
    let Some(url) = fresh_database_url("concurrent_starts_apply_the_migrations_once").await else {
        return;
    };
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::open(PostgresOptions::new(url)).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every instance opens"));
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(versions, (1..=CURRENT_SCHEMA_VERSION).collect::<Vec<_>>());
    // They share one log.
    stores[0]
        .commit(Commit::events(vec![NewEvent::new("m.a")]))
        .await
        .unwrap();
    let e = stores[3]
        .commit(Commit::events(vec![NewEvent::new("m.b")]))
        .await
        .unwrap();
    assert_eq!(e[0].position, Position(2));
    for s in stores {
        s.close().await;
    }
}

#[tokio::test]
async fn a_newer_database_is_refused() {
    let Some(url) = fresh_database_url("a_newer_database_is_refused").await else {
        return;
    };
    open(&url).await.close().await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
        .bind(CURRENT_SCHEMA_VERSION + 1)
        .execute(&mut conn)
        .await
        .unwrap();
    match PostgresStore::open(PostgresOptions::new(&url)).await {
        Err(e @ StoreError::TooNew { found, supported }) => {
            assert_eq!(
                (found, supported),
                (CURRENT_SCHEMA_VERSION + 1, CURRENT_SCHEMA_VERSION)
            );
            let shown = e.to_string();
            assert!(
                shown.contains(&found.to_string()) && shown.contains(&supported.to_string()),
                "{shown}"
            );
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_events_and_continues_positions() {
    let Some(url) = fresh_database_url("reopening_keeps_events_and_continues_positions").await
    else {
        return;
    };
    let store = open(&url).await;
    store
        .commit(Commit::events(vec![
            NewEvent::new("a.b"),
            NewEvent::new("a.c"),
        ]))
        .await
        .unwrap();
    store.close().await;
    let store = open(&url).await;
    assert_eq!(*store.head().borrow(), Position(2));
    let e = store
        .commit(Commit::events(vec![NewEvent::new("a.d")]))
        .await
        .unwrap();
    assert_eq!(e[0].position, Position(3));
    assert!(e[0].occurred_at >= store.read_after(Position(1), 1).await.unwrap()[0].occurred_at);
    store.close().await;
    assert!(
        store
            .commit(Commit::events(vec![NewEvent::new("a.e")]))
            .await
            .is_err(),
        "a closed store refuses commits"
    );
}

/// Terminates the listening connections of the database at `url`; how many there were.
async fn kill_listeners(url: &str) -> usize {
    kill(url, LISTENER_APPLICATION_NAME).await
}

/// Terminates the connections of the database at `url` named `application_name`; how many
/// there were.
async fn kill(url: &str, application_name: &str) -> usize {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(application_name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    killed.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_writer_connection_is_replaced_without_failing_a_commit() {
    let Some(url) =
        fresh_database_url("a_lost_writer_connection_is_replaced_without_failing_a_commit").await
    else {
        return;
    };
    let mut options = PostgresOptions::new(&url);
    options.ready_probe_interval = Duration::from_millis(1);
    let store = PostgresStore::open(options).await.unwrap();
    let mut feed = store.take_commit_feed().unwrap();
    let first = store
        .commit(Commit::events(vec![NewEvent::new("w.1")]))
        .await
        .unwrap();
    assert_eq!(kill(&url, WRITER_APPLICATION_NAME).await, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The batch meets the dead connection before it commits: it is written again.
    let second = store
        .commit(Commit::events(vec![NewEvent::new("w.2")]))
        .await
        .expect("a commit on a lost connection is retried on a new one");
    assert_eq!(second[0].position, Position(2));
    // A probe on a lost connection too.
    assert_eq!(kill(&url, WRITER_APPLICATION_NAME).await, 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.ready().await.expect("ready on a new connection");
    assert_eq!(take(&mut feed, 2).await, [first, second].concat());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_storage_full_and_loses_nothing() {
    let Some(url) = fresh_database_url("a_full_disk_is_storage_full_and_loses_nothing").await
    else {
        return;
    };
    let mut options = PostgresOptions::new(&url);
    options.ready_probe_interval = Duration::from_millis(50);
    let store = PostgresStore::open(options).await.unwrap();
    let mut feed = store.take_commit_feed().unwrap();
    let first = store
        .commit(Commit::events(vec![NewEvent::new("d.1")]))
        .await
        .unwrap();
    // The server's own `disk_full` (SQLSTATE 53100), raised where a full disk raises it: when
    // rows are written.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'could not extend file: No space left on device' \
             USING ERRCODE = 'disk_full'; END $$; \
         CREATE TRIGGER full_events BEFORE INSERT ON events \
             FOR EACH STATEMENT EXECUTE FUNCTION full_disk(); \
         CREATE TRIGGER full_meta BEFORE INSERT OR UPDATE ON meta \
             FOR EACH STATEMENT EXECUTE FUNCTION full_disk();",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let refused = [
        Commit::events(vec![NewEvent::new("d.lost")]),
        Commit {
            changes: vec![infrastream_store::Change::InsertBranch(
                conformance::branch("b"),
            )],
            events: vec![NewEvent::new("d.branch")],
        },
    ];
    for commit in refused {
        let e = store.commit(commit).await.unwrap_err();
        assert!(e.is_storage_full(), "{e:?}");
        let shown = infrastream_core::DomainError::user_error(&e);
        assert_eq!(shown.code, "STORAGE_FULL");
    }
    // Not ready: from the last commit, then from a probe of its own.
    assert!(store.ready().await.unwrap_err().is_storage_full());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(store.ready().await.unwrap_err().is_storage_full());
    assert_eq!(*store.head().borrow(), Position(1));
    assert!(store.branch("b").await.unwrap().is_none());

    // Space again: the log goes on from the last acknowledged position.
    sqlx::raw_sql("DROP TRIGGER full_events ON events; DROP TRIGGER full_meta ON meta;")
        .execute(&mut admin)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    store.ready().await.expect("ready once there is room");
    let next = store
        .commit(Commit::events(vec![NewEvent::new("d.2")]))
        .await
        .unwrap();
    assert_eq!(next[0].position, Position(2));
    assert_eq!(take(&mut feed, 2).await, [first, next].concat());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_catches_up_after_its_listener_is_killed() {
    let Some(url) =
        fresh_database_url("the_follower_catches_up_after_its_listener_is_killed").await
    else {
        return;
    };
    // No fallback poll to speak of: what arrives, arrives by notification or reconnection.
    let mut options = PostgresOptions::new(&url);
    options.poll_interval = Duration::from_secs(3600);
    let follower = PostgresStore::open(options.clone()).await.unwrap();
    let mut feed = follower.take_commit_feed().unwrap();
    let writer = PostgresStore::open(options).await.unwrap();
    wait_for_listeners(&url, 2).await;
    let first = writer
        .commit(Commit::events(vec![NewEvent::new("f.notified")]))
        .await
        .unwrap();
    assert_eq!(take(&mut feed, 1).await, first, "delivered by notification");

    // Keep killing the listening connections while an event is committed without any
    // notification: only the catch-up that follows a reconnection can deliver it.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let mut killed = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                killed += kill_listeners(&url).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            killed
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let raw_id = commit_silently(&url, "f.silent").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(killer.await.unwrap() >= 2, "the listeners were killed");
    let caught_up = take(&mut feed, 1).await;
    assert_eq!(
        (
            caught_up[0].position,
            caught_up[0].id,
            caught_up[0].name.as_str()
        ),
        (Position(2), raw_id, "f.silent")
    );

    // It listens again: the next commit is delivered by notification.
    wait_for_listeners(&url, 2).await;
    let later = writer
        .commit(Commit::events(vec![NewEvent::new("f.later")]))
        .await
        .unwrap();
    assert_eq!(take(&mut feed, 1).await, later);
    assert_eq!(later[0].position, Position(3));
    // The head moves right after the feed.
    let mut head = follower.head();
    tokio::time::timeout(Duration::from_secs(5), head.wait_for(|p| *p == Position(3)))
        .await
        .expect("the head reaches the last event")
        .unwrap();
    follower.close().await;
    writer.close().await;
}

/// Appends one event the way a writer does, under the head lock, but without notifying;
/// returns its id.
async fn commit_silently(url: &str, name: &str) -> uuid::Uuid {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT position FROM log_head FOR UPDATE")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (position, id, name, occurred_at, level, related_nodes, data, context) \
         VALUES ($1, $2, $3, 0, 0, '[]', '{}', '{}')",
    )
    .bind(head + 1)
    .bind(id)
    .bind(name)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE log_head SET position = $1")
        .bind(head + 1)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

/// Waits until `n` listening connections of the database at `url` wait for notifications.
async fn wait_for_listeners(url: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while listeners(url).await < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listeners did not connect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Listening connections of the database at `url` that are waiting for notifications.
async fn listeners(url: &str) -> usize {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    n as usize
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://someone:hunter2@127.0.0.1:{port}/db");
    let e = match PostgresStore::open(PostgresOptions::new(&url)).await {
        Err(e) => e,
        Ok(_) => panic!("opened a store with no server"),
    };
    let shown = infrastream_core::Chain(&e).to_string();
    assert!(
        shown.contains(&format!(
            "cannot connect to the PostgreSQL server at 127.0.0.1:{port}"
        )),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    let bad = PostgresStore::open(PostgresOptions::new("postgres://h:notaport/db")).await;
    assert!(
        matches!(&bad, Err(e) if e.to_string().contains("not a valid PostgreSQL URL")),
        "{:?}",
        bad.err()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_after_the_connect_timeout() {
    // Accepts connections (the kernel does, from its backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut options = PostgresOptions::new(format!("postgres://u@127.0.0.1:{port}/db"));
    options.connect_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let e = match PostgresStore::open(options).await {
        Err(e) => e,
        Ok(_) => panic!("opened a store on a silent server"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let shown = infrastream_core::Chain(&e).to_string();
    assert!(
        shown.contains("cannot connect to the PostgreSQL server")
            && shown.contains("database_connect_timeout_ms"),
        "{shown}"
    );
    drop(silent);
}

#[tokio::test]
async fn the_committed_head_counts_other_instances_commits_at_once() {
    let Some(url) =
        fresh_database_url("the_committed_head_counts_other_instances_commits_at_once").await
    else {
        return;
    };
    // A fallback poll far away: only a notification would move this store's head, and the
    // commit below sends none.
    let mut options = PostgresOptions::new(&url);
    options.poll_interval = Duration::from_secs(3600);
    let store = PostgresStore::open(options).await.unwrap();
    store
        .commit(Commit::events(vec![NewEvent::new("own")]))
        .await
        .unwrap();
    assert_eq!(store.committed_head().await.unwrap(), Position(1));
    commit_silently(&url, "elsewhere").await;
    assert_eq!(
        *store.head().borrow(),
        Position(1),
        "nothing told this store"
    );
    assert_eq!(store.committed_head().await.unwrap(), Position(2));
    store.close().await;
}
