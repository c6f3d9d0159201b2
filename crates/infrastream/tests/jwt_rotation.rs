//! JWT key rotation on the real binary, by editing `jwt_secret_file` and sending SIGHUP: tokens
//! signed with the old key keep working until they expire while new logins and refreshes get
//! the new key's `kid`; once the old key is removed its tokens are refused even before they
//! expire, and sockets they authenticated are closed; a file that cannot be used at SIGHUP
//! keeps the keys in force.

use infrastream_auth::{Claims, JwtKeys, TokenKind, key_id};
use infrastream_testkit::http::{login_ok, post_graphql, send};
use infrastream_testkit::{ADMIN_PASSWORD, ADMIN_TOKEN, Auth, Binary, Resp, WsClient};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY_A: &str = "rotation-key-a-0123456789abcdef0123456789";
const KEY_B: &str = "rotation-key-b-0123456789abcdef0123456789";

/// How long the server may take to act on SIGHUP.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `content` to the key file, private to this user.
fn write_file(file: &Path, content: &str) {
    std::fs::write(file, content).unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The `kid` header of `token`.
fn kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).unwrap().kid
}

/// A server reading its keys from a file, logging at info (stderr captured).
struct Rotating {
    server: Binary,
    file: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Rotating {
    fn start(keys: &[&str], settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jwt.keys");
        write_file(&file, &(keys.join("\n") + "\n"));
        let mut builder = Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
            .env("RUST_LOG", "info")
            .capture_stderr()
            .set("jwt_secret_file", file.to_str().unwrap());
        for (key, value) in settings {
            builder = builder.set(key, value);
        }
        Self {
            server: builder.spawn(),
            file,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// Sends SIGHUP.
    fn hangup(&self) {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &self.server.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP: {status}");
    }

    /// Rewrites the key file with `keys` (one per line), sends SIGHUP and waits until the
    /// server logged its `count`-th line containing `log` — the answer to this SIGHUP.
    async fn reload(&self, content: &str, log: &str, count: usize) -> String {
        write_file(&self.file, content);
        self.hangup();
        self.wait_log(log, count).await
    }

    /// Waits until stderr holds `count` lines containing `needle`; returns the last one.
    async fn wait_log(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        loop {
            let stderr = self.server.stderr();
            let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(needle)).collect();
            if lines.len() >= count {
                return lines[count - 1].to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no {count}-th log line with {needle:?} within {RELOAD_TIMEOUT:?}; stderr:\n{stderr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn login(&self) -> (String, String) {
        login_ok(&self.http, &self.server.url, "admin", ADMIN_PASSWORD).await
    }

    /// Status and first error message of a GraphQL request authenticated by `jwt`.
    async fn query_with(&self, jwt: &str) -> (u16, Option<String>) {
        let url = format!("{}/graphql", self.server.url);
        let (status, body) = post_graphql(
            &self.http,
            &url,
            Auth::Bearer(jwt),
            "{ AccountProfile { name { value } } }",
            json!({}),
        )
        .await;
        if status == 200 {
            assert_eq!(
                body["data"]["AccountProfile"]["name"]["value"], "admin",
                "{body}"
            );
        }
        let message = body["errors"][0]["message"].as_str().map(str::to_owned);
        (status, message)
    }

    /// `POST /api/auth/refresh` with `refresh_token`.
    async fn refresh(&self, refresh_token: &str) -> Resp {
        let bearer = format!("Bearer {refresh_token}");
        send(
            &self.http,
            "POST",
            &format!("{}/api/auth/refresh", self.server.url),
            &[("authorization", &bearer)],
            None,
        )
        .await
    }

    async fn admin_id(&self) -> String {
        let url = format!("{}/graphql", self.server.url);
        let (_, body) = post_graphql(
            &self.http,
            &url,
            Auth::Token(ADMIN_TOKEN),
            "{ AccountProfile { id } }",
            json!({}),
        )
        .await;
        body["data"]["AccountProfile"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Asserts that no key ever reached the logs.
    fn assert_no_key_logged(&self) {
        let stderr = self.server.stderr();
        for key in [KEY_A, KEY_B] {
            assert!(!stderr.contains(key), "a key was logged:\n{stderr}");
        }
    }
}

#[tokio::test]
async fn after_rotation_old_tokens_work_until_they_expire_and_new_logins_get_the_new_kid() {
    let s = Rotating::start(&[KEY_A], &[("access_token_lifetime_secs", "6")]);
    let loaded = s.wait_log("JWT keys loaded", 1).await;
    assert!(
        loaded.contains(&key_id(KEY_A.as_bytes())) && loaded.contains("jwt_secret_file"),
        "{loaded}"
    );
    let (old_access, old_refresh) = s.login().await;
    assert_eq!(kid(&old_access), Some(key_id(KEY_A.as_bytes())));
    let expires = JwtKeys::new(KEY_A.as_bytes())
        .verify(&old_access, TokenKind::Access)
        .unwrap()
        .exp;

    // Rotate: B on top signs, A below still verifies.
    let reloaded = s
        .reload(&format!("{KEY_B}\n{KEY_A}\n"), "JWT keys reloaded", 1)
        .await;
    let (kid_a, kid_b) = (key_id(KEY_A.as_bytes()), key_id(KEY_B.as_bytes()));
    assert!(
        reloaded.contains(&format!("signing_kid={kid_b}"))
            && reloaded.contains(&format!("{kid_b}, {kid_a}")),
        "{reloaded}"
    );
    assert_eq!(
        s.query_with(&old_access).await,
        (200, None),
        "a token of the old key works after the rotation ({}s before its expiry)",
        expires - chrono::Utc::now().timestamp()
    );
    let (new_access, new_refresh) = s.login().await;
    assert_eq!(kid(&new_access), Some(kid_b.clone()), "a new login");
    assert_eq!(kid(&new_refresh), Some(kid_b.clone()));
    assert_eq!(s.query_with(&new_access).await, (200, None));
    // Refreshing with the old key's refresh token signs the new access token with the new key.
    let r = s.refresh(&old_refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refreshed = r.json["access_token"].as_str().unwrap();
    assert_eq!(kid(refreshed), Some(kid_b.clone()), "a refreshed token");
    assert_eq!(s.query_with(refreshed).await, (200, None));

    // Once expired, the old key's access token is refused as expired.
    let left = expires - chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(left).unwrap_or(0) * 1000 + 1100,
    ))
    .await;
    assert_eq!(
        s.query_with(&old_access).await,
        (401, Some("Expired Signature".into()))
    );
    s.assert_no_key_logged();
}

#[tokio::test]
async fn a_removed_key_refuses_its_unexpired_tokens_and_closes_their_sockets() {
    let s = Rotating::start(&[KEY_A], &[]);
    let (old_access, old_refresh) = s.login().await;
    // A socket authenticated by a token of key A.
    let now = chrono::Utc::now().timestamp();
    let socket_jwt = JwtKeys::new(KEY_A.as_bytes()).sign(&Claims {
        sub: s.admin_id().await,
        iat: now,
        exp: now + 600,
        fresh: true,
        session_id: "socket".into(),
        kind: TokenKind::Access,
    });
    let mut ws = WsClient::connect(&s.server.ws_url(), Some("graphql-transport-ws")).await;
    ws.init_with(json!({"Authorization": format!("Bearer {socket_jwt}")}))
        .await;
    ws.subscribe("1", "subscription { events { id } }", Value::Null)
        .await;

    s.reload(&format!("{KEY_B}\n{KEY_A}\n"), "JWT keys reloaded", 1)
        .await;
    assert_eq!(
        s.query_with(&old_access).await,
        (200, None),
        "A still verifies"
    );
    ws.assert_silent(300).await;

    // Retire A: its tokens are refused although they have not expired.
    s.reload(&format!("# rotated\n{KEY_B}\n"), "JWT keys reloaded", 2)
        .await;
    let r = s.refresh(&old_refresh).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        r.json["errors"][0]["message"], "Invalid token",
        "{}",
        r.text
    );
    assert_eq!(
        s.query_with(&old_access).await,
        (401, Some("Invalid token".into()))
    );
    ws.expect_close(4403).await;
    let (access, _) = s.login().await;
    assert_eq!(kid(&access), Some(key_id(KEY_B.as_bytes())));
    assert_eq!(s.query_with(&access).await, (200, None));
    s.assert_no_key_logged();
}

#[tokio::test]
async fn a_key_file_that_cannot_be_used_at_sighup_keeps_the_keys_in_force() {
    let s = Rotating::start(&[KEY_A], &[]);
    let (access, _) = s.login().await;
    let file = s.file.display().to_string();
    let cases = [
        (
            format!("{KEY_B}\nshort-key\n"),
            "line 2: the key holds 9 bytes",
        ),
        (
            format!("{KEY_B}\n{KEY_A}\n{KEY_B}\n"),
            "line 3: the key repeats the one on line 1",
        ),
        ("# nothing yet\n\n".to_string(), "holds no key"),
    ];
    let mut refused = 0;
    for (content, expected) in &cases {
        refused += 1;
        let line = s.reload(content, "JWT keys unchanged", refused).await;
        assert!(
            line.contains("ERROR") && line.contains(&file) && line.contains(expected),
            "{line}"
        );
    }
    // A file others can read is refused with the fix.
    write_file(&s.file, &format!("{KEY_B}\n"));
    std::fs::set_permissions(&s.file, std::fs::Permissions::from_mode(0o644)).unwrap();
    s.hangup();
    refused += 1;
    let line = s.wait_log("JWT keys unchanged", refused).await;
    assert!(line.contains(&format!("chmod 600 {file}")), "{line}");
    // A missing file too.
    std::fs::remove_file(&s.file).unwrap();
    s.hangup();
    refused += 1;
    let line = s.wait_log("JWT keys unchanged", refused).await;
    assert!(line.contains(&file), "{line}");

    // Key A still signs and verifies.
    assert_eq!(s.query_with(&access).await, (200, None));
    let (again, _) = s.login().await;
    assert_eq!(kid(&again), Some(key_id(KEY_A.as_bytes())));
    assert_eq!(s.query_with(&again).await, (200, None));
    s.assert_no_key_logged();
}
