//! The JWT signing secret can come from the settings (`jwt_secret`) or a file
//! (`jwt_secret_file`), for deployments that manage their secrets: tokens signed with it are
//! accepted, tokens signed with anything else are not, and a secret file that group or others
//! can read is refused at start. The file may hold several keys, one per line: the first signs,
//! all verify; a file with a short, repeated or no key is refused at start, naming the line.

use infrastream_auth::{Claims, JwtKeys, TokenKind};
use infrastream_testkit::{ADMIN_TOKEN, Auth, TestServer};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

const SECRET: &str = "managed-secret-0123456789abcdef0123456789";

/// An access token for `account` signed with `secret`.
fn token(secret: &str, account: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    JwtKeys::new(secret.as_bytes()).sign(&Claims {
        sub: account.to_string(),
        iat: now,
        exp: now + 600,
        fresh: true,
        session_id: "s".into(),
        kind: TokenKind::Access,
    })
}

/// Whether a GraphQL request with `Bearer <jwt>` is served.
async fn served(s: &TestServer, jwt: &str) -> bool {
    let (status, _) = s
        .post_as(
            "/graphql",
            Auth::Bearer(jwt),
            "{ InfrahubInfo { version } }",
            json!({}),
        )
        .await;
    status == 200
}

async fn admin_id(s: &TestServer) -> String {
    let data = s
        .run_as(
            Auth::Token(ADMIN_TOKEN),
            "{ AccountProfile { id } }",
            json!({}),
        )
        .await;
    data["AccountProfile"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_secret_from_a_file_signs_and_verifies_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt.secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let s = TestServer::start_with(&[("jwt_secret_file", file.to_str().unwrap())]).await;
    let admin = admin_id(&s).await;
    assert!(
        served(&s, &token(SECRET, &admin)).await,
        "signed with the file's secret"
    );
    assert!(
        !served(&s, &token("another-secret-0123456789abcdef0123", &admin)).await,
        "signed with another secret"
    );
    let (jwt, _) = s
        .login_ok("admin", infrastream_testkit::ADMIN_PASSWORD)
        .await;
    assert!(served(&s, &jwt).await, "the server's own tokens");
}

#[tokio::test]
async fn a_secret_from_the_settings_is_used() {
    let s = TestServer::start_with(&[("jwt_secret", SECRET)]).await;
    let admin = admin_id(&s).await;
    assert!(served(&s, &token(SECRET, &admin)).await);
}

/// Writes `content` to a key file in `dir` with `mode`.
fn key_file(dir: &tempfile::TempDir, content: &str, mode: u32) -> std::path::PathBuf {
    let file = dir.path().join("jwt.secret");
    std::fs::write(&file, content).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// Why the server refuses to start with the key file `file`.
async fn start_error(dir: &tempfile::TempDir, file: &std::path::Path) -> String {
    let settings = infrastream_config::load(
        None,
        Vec::new(),
        &[
            (
                "data_dir".into(),
                dir.path().join("data").display().to_string(),
            ),
            ("jwt_secret_file".into(), file.display().to_string()),
        ],
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    infrastream_server::Server::start(settings, listener)
        .await
        .err()
        .expect("the key file is refused")
        .to_string()
}

#[tokio::test]
async fn a_secret_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = key_file(&dir, SECRET, 0o644);
    let e = start_error(&dir, &file).await;
    assert!(e.contains(&format!("chmod 600 {}", file.display())), "{e}");
    assert!(!e.contains(SECRET), "the secret is never shown: {e}");
}

#[tokio::test]
async fn a_file_of_several_keys_signs_with_the_first_and_verifies_with_each() {
    const OLD: &str = "old-secret-0123456789abcdef0123456789abc";
    const UNKNOWN: &str = "unknown-secret-0123456789abcdef012345678";
    let dir = tempfile::tempdir().unwrap();
    let content =
        format!("# the first key signs\n\n  {SECRET}  \n# retiring on 2025-02-01\n{OLD}\n");
    let file = key_file(&dir, &content, 0o600);
    let s = TestServer::start_with(&[("jwt_secret_file", file.to_str().unwrap())]).await;
    let admin = admin_id(&s).await;
    assert!(served(&s, &token(SECRET, &admin)).await, "the signing key");
    assert!(served(&s, &token(OLD, &admin)).await, "a verification key");
    assert!(
        !served(&s, &token(UNKNOWN, &admin)).await,
        "a key not in the file"
    );
    let (jwt, _) = s
        .login_ok("admin", infrastream_testkit::ADMIN_PASSWORD)
        .await;
    assert!(served(&s, &jwt).await);
    // Signed with the first key, named by its id: a ring of the other key does not know it.
    assert!(
        JwtKeys::new(SECRET.as_bytes())
            .verify(&jwt, TokenKind::Access)
            .is_ok()
    );
    assert_eq!(
        JwtKeys::new(OLD.as_bytes()).verify(&jwt, TokenKind::Access),
        Err(infrastream_auth::JwtError::Invalid)
    );
}

#[tokio::test]
async fn a_key_file_with_a_short_repeated_or_no_key_is_refused_at_start() {
    let short = "too-short-0123456789";
    let cases = [
        (
            format!("{SECRET}\n\n{short}\n"),
            "line 3: the key holds 20 bytes; at least 32 are required",
        ),
        (
            format!("{SECRET}\n# again\n{SECRET}\n"),
            "line 3: the key repeats the one on line 1",
        ),
        (String::new(), "holds no key"),
        ("# only a comment\n\n".to_string(), "holds no key"),
    ];
    for (content, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = key_file(&dir, &content, 0o600);
        let e = start_error(&dir, &file).await;
        assert!(
            e.contains(&file.display().to_string()),
            "names the file: {e}"
        );
        assert!(e.contains(expected), "{e}");
        assert!(
            !e.contains(SECRET) && !e.contains(short),
            "no key is shown: {e}"
        );
    }
}
