//! The writer's reply lost after its statement committed: the commit is neither lost nor
//! repeated. A TCP proxy between the store and PostgreSQL drops the database's answer to the
//! writer's append and closes that connection, as a network failure at the worst moment would.
//!
//! Needs `INFRASTREAM_TEST_DATABASE_URL` (see tests/postgres.rs).

use infrastream_core::{NewEvent, Position};
use infrastream_store::conformance::postgres::fresh_database_url;
use infrastream_store::postgres::{PostgresOptions, PostgresStore, WRITER_APPLICATION_NAME};
use infrastream_store::{Commit, Store};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy drops: armed by the test, filled with the bytes it swallowed.
#[derive(Default)]
struct Trap {
    armed: bool,
    dropped: Option<Vec<u8>>,
}

/// Forwards connections to `upstream`; once `trap` is armed, the next bytes the database
/// sends on the writer's connection (known by its `application_name` in the startup message)
/// are kept in the trap instead of forwarded, and that connection is closed.
async fn proxy(upstream: SocketAddr, trap: Arc<Mutex<Trap>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let trap = trap.clone();
            tokio::spawn(async move {
                let server = TcpStream::connect(upstream).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let writer = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let is_writer = writer.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0; 65536];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let name = WRITER_APPLICATION_NAME.as_bytes();
                        if buf[..n].windows(name.len()).any(|w| w == name) {
                            is_writer.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0; 65536];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if writer.load(std::sync::atomic::Ordering::SeqCst) {
                        let mut t = trap.lock().unwrap();
                        if t.armed {
                            t.armed = false;
                            t.dropped = Some(buf[..n].to_vec());
                            break;
                        }
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_lost_after_commit_neither_loses_nor_repeats_the_commit() {
    let Some(url) = fresh_database_url("a_reply_lost_after_commit").await else {
        return;
    };
    // postgres://user@host:port/db → the proxy's address in its place.
    let (prefix, rest) = url.split_once('@').unwrap();
    let (host_port, db) = rest.split_once('/').unwrap();
    let trap = Arc::new(Mutex::new(Trap::default()));
    let addr = proxy(host_port.parse().unwrap(), trap.clone()).await;
    let store = PostgresStore::open(PostgresOptions::new(format!("{prefix}@{addr}/{db}")))
        .await
        .unwrap();
    // The first append also prepares the statement: the trapped reply is then the one of
    // its execution.
    store
        .commit(Commit::events(vec![NewEvent::new("first")]))
        .await
        .unwrap();
    trap.lock().unwrap().armed = true;
    let second = store
        .commit(Commit::events(vec![
            NewEvent::new("second.a"),
            NewEvent::new("second.b"),
        ]))
        .await
        .expect("a commit whose reply was lost is found, not failed");
    let dropped = trap.lock().unwrap().dropped.take().expect("the trap fired");
    assert!(
        dropped.windows(8).any(|w| w == b"SELECT 1"),
        "the lost reply was not the append's: {dropped:?}"
    );
    assert_eq!(
        second.iter().map(|e| e.position).collect::<Vec<_>>(),
        [Position(2), Position(3)]
    );
    let log = store.read_after(Position(0), 10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["first", "second.a", "second.b"],
        "written once"
    );
    assert_eq!(log[1].id, second[0].id);
    assert_eq!(log[1].occurred_at, second[0].occurred_at);
    store.close().await;
}
