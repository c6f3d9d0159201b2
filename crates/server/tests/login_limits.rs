//! Login limits against a real server: failed logins back off per (account, address) and per
//! address, with 429 + `Retry-After` and no password check while backing off; the owner of an
//! account is never locked out from another address; a success clears the counters; an
//! unknown account and a wrong password get the same answer through the same throttles and
//! pool; a full password-hashing pool refuses logins at once. Clients bind to 127.0.0.2 to be
//! "another address" (all of 127.0.0.0/8 is loopback).

use infrastream_testkit::http::login;
use infrastream_testkit::{ADMIN_PASSWORD, Resp, TestServer, assert_error_reply};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// An HTTP client whose connections come from `127.0.0.x`.
fn client_from(x: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, x)))
        .build()
        .unwrap()
}

async fn create_account(s: &TestServer, name: &str, password: &str) {
    s.admin(
        "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok } }",
        json!({"d": {"name": {"value": name}, "password": {"value": password}, "role": {"value": "read-only"}}}),
    )
    .await;
}

/// Asserts a 401 `Incorrect username or password`.
#[track_caller]
fn assert_refused(what: &str, r: &Resp) {
    let message = assert_error_reply(what, r, 401, "UNAUTHENTICATED");
    assert_eq!(message, "Incorrect username or password", "{what}");
    assert_eq!(
        r.header("retry-after"),
        "",
        "{what}: no Retry-After on a 401"
    );
}

/// Asserts a 429 `LIMIT_EXCEEDED` with `Retry-After` in whole seconds (1 ..= `max`); returns
/// the message and the seconds.
#[track_caller]
fn assert_wait(what: &str, r: &Resp, max: u64) -> (String, u64) {
    let message = assert_error_reply(what, r, 429, "LIMIT_EXCEEDED");
    let secs: u64 = r
        .header("retry-after")
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {:?}", r.header("retry-after")));
    assert!((1..=max).contains(&secs), "{what}: Retry-After {secs}");
    assert!(
        message.contains(&format!("retry in {secs} s")),
        "{what}: {message}"
    );
    assert!(r.json.get("access_token").is_none());
    (message, secs)
}

/// Failures for one account from one address back off; the owner logs in from another
/// address meanwhile; the backing-off pair is refused even with the right password (nothing is
/// checked while it waits); after the wait, a success clears the pair's count.
#[tokio::test]
async fn a_flood_against_an_account_does_not_lock_its_owner_out_elsewhere() {
    let s = TestServer::start_with(&[
        ("login_failures_before_backoff", "3"),
        ("login_backoff_base_ms", "1000"),
    ])
    .await;
    create_account(&s, "bob", "bob-password-1").await;
    let (x, y) = (client_from(1), client_from(2));
    for i in 0..3 {
        let r = login(&x, &s.url, "bob", "guess").await;
        assert_refused(&format!("failure {i} within the allowance"), &r);
    }
    let r = login(&x, &s.url, "bob", "guess").await;
    assert_refused("the failure that starts the backoff is still judged", &r);
    let started = Instant::now();
    let r = login(&x, &s.url, "bob", "guess").await;
    let (message, _) = assert_wait("backing off", &r, 1);
    assert!(
        message.contains("login_failures_before_backoff"),
        "{message}"
    );
    let r = login(&x, &s.url, "bob", "bob-password-1").await;
    assert_wait("the right password while backing off", &r, 1);

    // The owner, from another address, is not held up, and neither are wrong guesses there.
    let r = login(&y, &s.url, "bob", "bob-password-1").await;
    assert_eq!(r.status, 200, "owner from another address: {}", r.text);
    assert!(r.json["access_token"].is_string());
    assert_refused(
        "a typo from the other address",
        &login(&y, &s.url, "bob", "typo").await,
    );
    // Another account from the backing-off address is not held up either.
    let r = login(&x, &s.url, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "another account from X: {}", r.text);

    // After the wait the pair may try again; its next failure doubles the wait.
    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(started.elapsed())).await;
    assert_refused("after the wait", &login(&x, &s.url, "bob", "guess").await);
    let (_, secs) = assert_wait("doubled", &login(&x, &s.url, "bob", "guess").await, 2);
    assert_eq!(secs, 2);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = login(&x, &s.url, "bob", "bob-password-1").await;
    assert_eq!(r.status, 200, "right password after the wait: {}", r.text);
    // The success cleared the pair: the full allowance again.
    for i in 0..4 {
        let r = login(&x, &s.url, "bob", "guess").await;
        assert_refused(&format!("failure {i} after the success"), &r);
    }
    assert_wait(
        "backing off again",
        &login(&x, &s.url, "bob", "guess").await,
        1,
    );
    s.shutdown().await;
}

/// Failures from one address over many account names back off that address for every name,
/// and for no other address; a success from it after the wait clears its count.
#[tokio::test]
async fn failures_from_one_address_back_it_off_for_every_account() {
    let s = TestServer::start_with(&[
        ("login_address_failures_before_backoff", "4"),
        ("login_backoff_base_ms", "1000"),
    ])
    .await;
    let (x, y) = (client_from(1), client_from(3));
    for i in 0..5 {
        let r = login(&x, &s.url, &format!("user{i}"), "guess").await;
        assert_refused(&format!("name {i}"), &r);
    }
    let started = Instant::now();
    let r = login(&x, &s.url, "admin", ADMIN_PASSWORD).await;
    assert_wait("any account from the address", &r, 1);
    let r = login(&y, &s.url, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "another address: {}", r.text);

    tokio::time::sleep(Duration::from_millis(1100).saturating_sub(started.elapsed())).await;
    let r = login(&x, &s.url, "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status, 200, "after the wait: {}", r.text);
    for i in 0..5 {
        let r = login(&x, &s.url, &format!("other{i}"), "guess").await;
        assert_refused(&format!("name {i} after the success"), &r);
    }
    assert_wait(
        "backing off again",
        &login(&x, &s.url, "zed", "guess").await,
        1,
    );
    s.shutdown().await;
}

/// An unknown account and a wrong password: same status, code, message and headers, and the
/// same throttle (an unknown name backs off like a real one).
#[tokio::test]
async fn an_unknown_account_and_a_wrong_password_look_the_same() {
    let s = TestServer::start_with(&[("login_failures_before_backoff", "2")]).await;
    create_account(&s, "carol", "carol-password-1").await;
    let http = client_from(1);
    let mut answers = Vec::new();
    for name in ["carol", "nobody"] {
        let mut seen = Vec::new();
        for _ in 0..4 {
            let r = login(&http, &s.url, name, "wrong-password").await;
            let mut headers: Vec<(String, String)> = r
                .headers
                .iter()
                .filter(|(k, _)| *k != "date")
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            seen.push((r.status, r.text.clone(), headers));
        }
        assert_eq!(
            seen.iter().map(|a| a.0).collect::<Vec<_>>(),
            [401, 401, 401, 429],
            "{name}: {seen:?}"
        );
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "an unknown account is answered exactly as a wrong password"
    );
    s.shutdown().await;
}

/// One hashing thread and a queue of one: of many concurrent logins (known and unknown
/// accounts, from many addresses so that no throttle applies), those that find the pool full
/// get 429 with `Retry-After: 1` at once; the rest are judged; the server then logs in as
/// usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_pool_refuses_logins_at_once() {
    let s = TestServer::start_with(&[("password_hash_threads", "1"), ("password_hash_queue", "1")])
        .await;
    create_account(&s, "dave", "dave-password-1").await;
    let mut busy = [0usize; 2];
    let mut judged = 0;
    for round in 0..5u8 {
        let attempts: Vec<_> = (0..24u8)
            .map(|i| {
                let http = client_from(10 + round * 24 + i);
                let url = s.url.clone();
                let name = if i % 2 == 0 { "dave" } else { "nobody" };
                tokio::spawn(async move {
                    let started = Instant::now();
                    let r = login(&http, &url, name, "guess").await;
                    (i % 2, r, started.elapsed())
                })
            })
            .collect();
        for a in attempts {
            let (kind, r, took) = a.await.unwrap();
            match r.status {
                401 => judged += 1,
                429 => {
                    let (message, secs) = assert_wait("pool full", &r, 1);
                    assert_eq!(secs, 1);
                    assert!(message.contains("password_hash_queue"), "{message}");
                    // No hash was waited for; loose bound for a loaded machine.
                    assert!(took < Duration::from_secs(5), "refused after {took:?}");
                    busy[kind as usize] += 1;
                }
                other => panic!("unexpected {other}: {}", r.text),
            }
        }
        if busy[0] > 0 && busy[1] > 0 {
            break;
        }
    }
    assert!(judged >= 2, "some logins were judged ({judged})");
    assert!(
        busy[0] > 0 && busy[1] > 0,
        "a full pool refuses known ({}) and unknown ({}) accounts alike",
        busy[0],
        busy[1]
    );
    let r = login(&client_from(250), &s.url, "dave", "dave-password-1").await;
    assert_eq!(r.status, 200, "after the flood: {}", r.text);
    s.shutdown().await;
}
