//! SPEC §8: "No secret ever appears in a log line or error message." Runs the real binary with
//! `RUST_LOG=debug`, exercises every path that handles a secret (login right and wrong, refresh,
//! token create/use/revoke, account create and password change, bogus credentials, bad
//! requests), stops it with SIGTERM and searches everything it wrote for the secrets.

use infrastream_testkit::Binary;
use infrastream_testkit::http::send;
use serde_json::{Value, json};
use std::time::Duration;

const ADMIN_TOKEN: &str = "sekret-admin-token-3f9a1c7e5b2d8f4a6c0e1b3d5f7a9c2e";
const ADMIN_PASSWORD: &str = "sekret-admin-password-8d41c2";
const WRONG_PASSWORD: &str = "sekret-wrong-password-77b0e9";
const ACCOUNT_PASSWORD: &str = "sekret-account-password-5e62fa";
const NEW_ACCOUNT_PASSWORD: &str = "sekret-changed-password-19ad3c";
const BOGUS_TOKEN: &str = "sekret-bogus-token-0c4e8a2f6b1d9e3a7c5f";
const LITERAL_PASSWORD: &str = "sekret-literal-password-2b9f40";
const BOGUS_JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWtyZXQifQ.c2VrcmV0LWJvZ3VzLXNpZ25hdHVyZQ";

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Value) -> (u16, Value) {
        self.post_raw(path, headers, body.to_string().into_bytes())
            .await
    }

    async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        let r = send(
            &self.http,
            "POST",
            &format!("{}{path}", self.url),
            &all,
            Some(body),
        )
        .await;
        (r.status, r.json)
    }

    async fn graphql(&self, headers: &[(&str, &str)], query: &str, variables: Value) -> Value {
        let (status, body) = self
            .post(
                "/graphql",
                headers,
                json!({"query": query, "variables": variables}),
            )
            .await;
        assert!(status == 200 || status == 401, "{status}: {body}");
        body
    }
}

fn string(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_console() {
    let mut server = Binary::builder(env!("CARGO_BIN_EXE_infrastream"))
        .set("fsync", "false")
        .env("RUST_LOG", "debug")
        .env("INFRASTREAM_INITIAL_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INFRASTREAM_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .capture_stderr()
        .spawn();
    let c = Client {
        http: reqwest::Client::new(),
        url: server.url.clone(),
    };
    let admin = [("x-infrahub-key", ADMIN_TOKEN)];

    // Login: right and wrong password, unknown user, a malformed body carrying the password.
    let (status, tokens) = c
        .post(
            "/api/auth/login",
            &[],
            json!({"username": "admin", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let access = string(&tokens["access_token"]);
    let refresh = string(&tokens["refresh_token"]);
    for (user, password) in [("admin", WRONG_PASSWORD), ("nobody", WRONG_PASSWORD)] {
        let (status, _) = c
            .post(
                "/api/auth/login",
                &[],
                json!({"username": user, "password": password}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let truncated = format!(r#"{{"username": "admin", "password": "{WRONG_PASSWORD}""#);
    let (status, _) = c
        .post_raw("/api/auth/login", &[], truncated.into_bytes())
        .await;
    assert_eq!(status, 400);

    // Refresh: with the refresh token, and wrongly with the access token.
    let bearer_refresh = format!("Bearer {refresh}");
    let (status, body) = c
        .post(
            "/api/auth/refresh",
            &[("authorization", &bearer_refresh)],
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let refreshed = string(&body["access_token"]);
    let bearer_access = format!("Bearer {access}");
    let (status, _) = c
        .post(
            "/api/auth/refresh",
            &[("authorization", &bearer_access)],
            json!({}),
        )
        .await;
    assert_eq!(status, 401);

    // API token: create, use, revoke, use again.
    let created = c
        .graphql(
            &admin,
            r#"mutation { InfrahubAccountTokenCreate(data: {name: "ci"}) { ok object { id token { value } } } }"#,
            json!({}),
        )
        .await;
    let object = &created["data"]["InfrahubAccountTokenCreate"]["object"];
    let api_token = string(&object["token"]["value"]);
    let api_token_id = string(&object["id"]);
    let body = c
        .graphql(
            &[("x-infrahub-key", &api_token)],
            "{ AccountProfile { name { value } } }",
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["AccountProfile"]["name"]["value"], "admin");
    let body = c
        .graphql(
            &admin,
            "mutation($id: String!) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
            json!({"id": api_token_id}),
        )
        .await;
    assert_eq!(
        body["data"]["InfrahubAccountTokenDelete"]["ok"], true,
        "{body}"
    );
    let body = c
        .graphql(
            &[("x-infrahub-key", &api_token)],
            "{ InfrahubInfo { version } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_array(), "{body}");

    // Account with a password (via the JWT and the refreshed JWT), its login, a password
    // change and a too-short password.
    let bearer_refreshed = format!("Bearer {refreshed}");
    let body = c
        .graphql(
            &[("authorization", &bearer_access)],
            "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok object { id } } }",
            json!({"d": {"name": {"value": "alice"}, "password": {"value": ACCOUNT_PASSWORD}, "role": {"value": "read-write"}}}),
        )
        .await;
    let alice = string(&body["data"]["CoreAccountCreate"]["object"]["id"]);
    let (status, alice_tokens) = c
        .post(
            "/api/auth/login",
            &[],
            json!({"username": "alice", "password": ACCOUNT_PASSWORD}),
        )
        .await;
    assert_eq!(status, 200);
    let body = c
        .graphql(
            &[("authorization", &bearer_refreshed)],
            "mutation($d: CoreAccountUpdateInput!) { CoreAccountUpdate(data: $d) { ok } }",
            json!({"d": {"id": alice, "password": {"value": NEW_ACCOUNT_PASSWORD}}}),
        )
        .await;
    assert_eq!(body["data"]["CoreAccountUpdate"]["ok"], true, "{body}");
    let body = c
        .graphql(
            &admin,
            "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok } }",
            json!({"d": {"name": {"value": "bob"}, "password": {"value": "sekret"}}}),
        )
        .await;
    assert!(body["errors"].is_array(), "{body}");

    // Bogus credentials of every kind.
    let bogus_bearer = format!("Bearer {BOGUS_JWT}");
    let bogus_cookie = format!("access_token={BOGUS_TOKEN}");
    for headers in [
        [("x-infrahub-key", BOGUS_TOKEN)],
        [("authorization", bogus_bearer.as_str())],
        [("cookie", bogus_cookie.as_str())],
    ] {
        let (status, _) = c
            .post(
                "/graphql",
                &headers,
                json!({"query": "{ InfrahubInfo { version } }"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) = c
        .post(
            "/api/auth/refresh",
            &[("authorization", &bogus_bearer)],
            json!({}),
        )
        .await;
    assert_eq!(status, 401);

    // GraphQL errors of several kinds, sent with credentials.
    let alice_bearer = format!("Bearer {}", string(&alice_tokens["access_token"]));
    for query in [
        "{ Branch { name no_such_field } }",
        "{ Branch { name }",
        r#"{ InfrahubEvent(ids: ["not-a-uuid"]) { count } }"#,
        r#"mutation { BranchCreate(data: {name: "a..b"}) { ok } }"#,
        r#"mutation { CoreAccountCreate(data: {name: {value: "eve"}, password: {value: "eve-password-1"}}) { ok } }"#,
    ] {
        let body = c
            .graphql(&[("authorization", &alice_bearer)], query, json!({}))
            .await;
        assert!(body["errors"].is_array(), "{query}: {body}");
    }
    // A syntax error in a document that carries a password: the error message quotes the
    // document back to its sender, the log must not.
    let body = c
        .graphql(
            &admin,
            &format!(
                r#"mutation {{ CoreAccountCreate(data: {{name: {{value: "mallory"}}, password: {{value: "{LITERAL_PASSWORD}"}}}}) {{ ok }}"#
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED",
        "{body}"
    );
    let (status, _) = c
        .post_raw("/graphql", &admin, b"{\"query\": ".to_vec())
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .post(
            "/graphql/nope",
            &admin,
            json!({"query": "{ Branch { name } }"}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .post_raw(
            "/graphql",
            &admin,
            b"[{\"query\": \"{ Branch { name } }\"}]".to_vec(),
        )
        .await;
    assert_eq!(status, 400);

    // Stop with SIGTERM and collect everything the process wrote.
    let exit = server.stop(Duration::from_secs(30)).await;
    let stdout: String = server.stdout().iter().map(|l| format!("{l}\n")).collect();
    let stderr = server.stderr();
    assert!(exit.success(), "exit {exit:?}; stderr:\n{stderr}");

    // The logs are really there, at debug level, and cover the requests above.
    assert!(stderr.contains("DEBUG"), "no debug lines in:\n{stderr}");
    assert!(stderr.contains("bad GraphQL request"), "{stderr}");
    // SPEC §9: refused requests are logged at debug, with their reason but no secret.
    for expected in [
        "request refused",
        "Incorrect username or password",
        "The API token has been revoked",
        "Invalid token type",
        "Branch: nope not found.",
        "GRAPHQL_VALIDATION_FAILED",
        "GRAPHQL_PARSE_FAILED",
        "BAD_USER_INPUT",
        "FORBIDDEN",
    ] {
        assert!(
            stderr.contains(expected),
            "no {expected:?} in the logs:\n{stderr}"
        );
    }
    assert!(stderr.contains("server stopped"), "{stderr}");
    assert!(stdout.contains("infrastream listening on http://"));
    // With both INITIAL_* settings given, nothing was generated and nothing is shown.
    assert!(!stdout.contains("password:"), "{stdout}");
    assert!(!stdout.contains("shown once"), "{stdout}");

    let jwt_signature = |jwt: &str| jwt.rsplit('.').next().unwrap().to_string();
    let alice_access = string(&alice_tokens["access_token"]);
    let alice_refresh = string(&alice_tokens["refresh_token"]);
    let secrets: Vec<(&str, String)> = vec![
        ("admin token", ADMIN_TOKEN.into()),
        ("admin password", ADMIN_PASSWORD.into()),
        ("wrong password", WRONG_PASSWORD.into()),
        ("account password", ACCOUNT_PASSWORD.into()),
        ("changed account password", NEW_ACCOUNT_PASSWORD.into()),
        ("created API token", api_token.clone()),
        ("bogus token", BOGUS_TOKEN.into()),
        ("password in a failed document", LITERAL_PASSWORD.into()),
        ("bogus JWT", BOGUS_JWT.into()),
        ("bogus JWT signature", jwt_signature(BOGUS_JWT)),
        ("access JWT", access.clone()),
        ("access JWT signature", jwt_signature(&access)),
        ("refresh JWT", refresh.clone()),
        ("refresh JWT signature", jwt_signature(&refresh)),
        ("refreshed JWT", refreshed.clone()),
        ("refreshed JWT signature", jwt_signature(&refreshed)),
        ("account access JWT", alice_access.clone()),
        ("account access JWT signature", jwt_signature(&alice_access)),
        ("account refresh JWT", alice_refresh.clone()),
        (
            "account refresh JWT signature",
            jwt_signature(&alice_refresh),
        ),
    ];
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is too short to search for");
        assert!(
            !stderr.contains(secret.as_str()),
            "the logs contain the {what}:\n{stderr}"
        );
        assert!(
            !stdout.contains(secret.as_str()),
            "stdout contains the {what}:\n{stdout}"
        );
    }
    // Not even a recognisable part of a password.
    assert!(!stderr.contains("sekret"), "{stderr}");
    assert!(!stdout.contains("sekret"), "{stdout}");
}
