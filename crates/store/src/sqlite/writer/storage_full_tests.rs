//! The writer when the database is full (SQLite's `SQLITE_FULL`, here from `max_page_count`,
//! the way a full disk reports itself): the failed commits are refused as `STORAGE_FULL`,
//! nothing of them is written, published or numbered, and once space is freed the log goes
//! on from the last acknowledged position.

use super::*;
use infrastream_core::{DomainError, NewEvent};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use std::time::Duration;

fn emit(i: usize) -> Commit {
    let mut e = NewEvent::new(format!("t.e{i}"));
    e.data = serde_json::json!({"padding": "x".repeat(200), "i": i});
    Commit::events(vec![e.clone(), e])
}

async fn commit(tx: &mpsc::Sender<Msg>, c: Commit) -> Result<Vec<Event>, StoreError> {
    let (r, w) = oneshot::channel();
    tx.send(Msg::Commit(Box::new(c), r)).await.ok().unwrap();
    w.await.unwrap()
}

#[tokio::test]
async fn a_full_database_keeps_every_acknowledged_event_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    super::super::schema::migrate(&mut conn).await.unwrap();
    // Ballast to free later, then no page more than the file has.
    sqlx::query("CREATE TABLE ballast (b BLOB)")
        .execute(&mut conn)
        .await
        .unwrap();
    for _ in 0..32 {
        sqlx::query("INSERT INTO ballast VALUES (zeroblob(3000))")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA max_page_count = {pages}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    let (tx, rx) = mpsc::channel(1024);
    let (head_tx, head) = watch::channel(Position(0));
    let (feed, mut fed) = mpsc::unbounded_channel();
    let readiness = Arc::new(Readiness::new(
        Duration::from_secs(600),
        Duration::from_secs(1),
    ));
    let published = Published {
        head: head_tx,
        feed,
        readiness: readiness.clone(),
        log_start: watch::channel(crate::LogStart::default()).0,
    };
    let task = tokio::spawn(run(conn, rx, published, 1024));

    // Commit until the database is full.
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for i in 0..10_000 {
        match commit(&tx, emit(i)).await {
            Ok(events) => acknowledged.extend(events.iter().map(|e| e.position.0)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("the database never filled up");
    assert!(e.is_storage_full(), "{e:?}");
    let shown = e.user_error();
    assert_eq!((shown.code, shown.http_status()), ("STORAGE_FULL", 507));
    assert_eq!(shown.message, infrastream_core::storage_full::MESSAGE);
    let n = acknowledged.len() as u64;
    assert!(n > 0, "the first commit already failed");
    assert_eq!(acknowledged, (1..=n).collect::<Vec<u64>>());
    assert_eq!(*head.borrow(), Position(n));
    // The writer recorded the failure: readiness answers it without a probe.
    let ready = readiness
        .check(|| async { panic!("no probe while the failure is recent") })
        .await;
    assert!(ready.unwrap_err().is_storage_full());

    // Requests queued together fail together, each with the cause's class.
    let mut waiting = Vec::new();
    for i in 0..4 {
        let (r, w) = oneshot::channel();
        tx.send(Msg::Commit(Box::new(emit(1000 + i)), r))
            .await
            .ok()
            .unwrap();
        waiting.push(w);
    }
    for w in waiting {
        let e = w.await.unwrap().unwrap_err();
        assert!(e.is_storage_full(), "{e:?}");
    }
    assert_eq!(*head.borrow(), Position(n));

    // Space returns (another connection frees the ballast's pages): the log goes on from
    // the last acknowledged position.
    let mut other = SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    sqlx::query("DELETE FROM ballast")
        .execute(&mut other)
        .await
        .unwrap();
    let events = commit(&tx, emit(9999)).await.unwrap();
    let after: Vec<u64> = events.iter().map(|e| e.position.0).collect();
    assert_eq!(after, vec![n + 1, n + 2]);
    assert_eq!(*head.borrow(), Position(n + 2));

    let (done_tx, done) = oneshot::channel();
    tx.send(Msg::Close(done_tx)).await.ok().unwrap();
    done.await.unwrap();
    task.await.unwrap();
    // The bus was fed exactly the acknowledged events, and the file holds exactly them.
    let mut fed_positions = Vec::new();
    while let Ok(batch) = fed.try_recv() {
        fed_positions.extend(batch.iter().map(|e| e.position.0));
    }
    assert_eq!(fed_positions, (1..=n + 2).collect::<Vec<u64>>());
    let stored: Vec<i64> = sqlx::query_scalar("SELECT position FROM events ORDER BY position")
        .fetch_all(&mut other)
        .await
        .unwrap();
    assert_eq!(stored, (1..=n as i64 + 2).collect::<Vec<i64>>());
}

#[tokio::test]
async fn a_probe_commits_one_metadata_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    super::super::schema::migrate(&mut conn).await.unwrap();
    for _ in 0..3 {
        probe(&mut conn, 65_536).await.unwrap();
    }
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM meta WHERE key = ?")
        .bind(PROBE_KEY)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let value = &rows[0].1;
    assert_eq!(value.len(), 65_536);
    let time = value.split(' ').next().unwrap();
    assert!(infrastream_core::parse_timestamp(time).is_some(), "{time}");
    // Every page of the row changes from one probe to the next (the time is repeated), so a
    // probe commits all its bytes rather than the first page only.
    let tail = |v: &str| v[v.len() - 4096..].to_owned();
    let last = tail(value);
    tokio::time::sleep(Duration::from_millis(2)).await;
    probe(&mut conn, 65_536).await.unwrap();
    let value: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(PROBE_KEY)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_ne!(tail(&value), last, "the row's last page did not change");
    // Probing again does not grow the database: the row's pages are reused.
    let page_count = async |conn: &mut SqliteConnection| -> i64 {
        sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(conn)
            .await
            .unwrap()
    };
    let before = page_count(&mut conn).await;
    for _ in 0..20 {
        probe(&mut conn, 65_536).await.unwrap();
    }
    let after = page_count(&mut conn).await;
    assert!(
        after <= before + 1,
        "the probes grew the database from {before} to {after} pages"
    );
    // A transaction left open (a failure whose ROLLBACK failed too) does not wedge the writer.
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    probe(&mut conn, 10).await.unwrap();
}
