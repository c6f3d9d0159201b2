//! The JWT signing secret can come from the settings (`jwt_secret`) or a file
//! (`jwt_secret_file`), for deployments that manage their secrets: tokens signed with it are
//! accepted, tokens signed with anything else are not, and a secret file that group or others
//! can read is refused at start.

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

#[tokio::test]
async fn a_secret_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt.secret");
    std::fs::write(&file, SECRET).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
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
    let e = infrastream_server::Server::start(settings, listener)
        .await
        .err()
        .expect("a shared secret file is refused")
        .to_string();
    assert!(e.contains(&format!("chmod 600 {}", file.display())), "{e}");
    assert!(!e.contains(SECRET), "the secret is never shown: {e}");
}
