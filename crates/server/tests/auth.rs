//! Authentication and authorization against a real server (SPEC §4, §8): missing, invalid,
//! expired and revoked credentials get 401 with Infrahub-shaped errors; roles limit what an
//! account may do; login, refresh, cookie and anonymous access behave as specified.

use infrastream_testkit::http::{send, tamper_jwt};
use infrastream_testkit::{ADMIN_PASSWORD, ADMIN_TOKEN, TestServer};
use infrastream_testkit::{Resp, assert_error_entry, assert_error_reply};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A cheap query every role may run.
const PROBE: &str = "{ InfrahubInfo { version } }";

/// Extra request headers, name and value.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// One way of presenting a credential.
#[derive(Clone, Debug)]
enum Cred {
    None,
    Key(String),
    Bearer(String),
    Cookie(String),
    /// Several headers at once (precedence checks).
    Many(Vec<(&'static str, String)>),
}

impl Cred {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Cred::None => vec![],
            Cred::Key(k) => vec![("x-infrahub-key", k.clone())],
            Cred::Bearer(t) => vec![("authorization", format!("Bearer {t}"))],
            Cred::Cookie(t) => vec![("cookie", format!("theme=dark; access_token={t}"))],
            Cred::Many(h) => h.clone(),
        }
    }

    /// The secret presented, to check it is never echoed.
    fn secrets(&self) -> Vec<String> {
        match self {
            Cred::None => vec![],
            Cred::Key(s) | Cred::Bearer(s) | Cred::Cookie(s) => vec![s.clone()],
            Cred::Many(h) => h
                .iter()
                .map(|(_, v)| v.trim_start_matches("Bearer ").to_string())
                .collect(),
        }
    }
}

/// POSTs a GraphQL document to `/graphql` with `cred`.
async fn post(s: &TestServer, cred: &Cred, query: &str, variables: Value) -> Resp {
    post_at(s, "/graphql", cred, query, variables).await
}

async fn post_at(s: &TestServer, path: &str, cred: &Cred, query: &str, variables: Value) -> Resp {
    let mut headers = cred.headers();
    headers.push(("content-type", "application/json".into()));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = json!({"query": query, "variables": variables}).to_string();
    send(
        &s.http,
        "POST",
        &format!("{}{path}", s.url),
        &headers,
        Some(body.into_bytes()),
    )
    .await
}

/// GETs a GraphQL query from `/graphql` with `cred`.
async fn get(s: &TestServer, cred: &Cred, query: &str) -> Resp {
    let headers = cred.headers();
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let qs = serde_urlencoded::to_string([("query", query)]).unwrap();
    send(
        &s.http,
        "GET",
        &format!("{}/graphql?{qs}", s.url),
        &headers,
        None,
    )
    .await
}

/// Asserts a successful GraphQL response (200, `data`, no `errors` key); returns `data`.
#[track_caller]
fn assert_ok(what: &str, r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    assert!(r.json.get("errors").is_none(), "{what}: {}", r.text);
    r.json["data"].clone()
}

/// Asserts a GraphQL response whose first error is FORBIDDEN (403) and whose `field` is null.
#[track_caller]
fn assert_forbidden(what: &str, r: &Resp, field: &str) -> String {
    assert_eq!(r.status, 200, "{what}: {}", r.text);
    assert!(r.json["data"][field].is_null(), "{what}: {}", r.text);
    assert_error_entry(what, &r.json, "FORBIDDEN", 403)
}

async fn refresh(s: &TestServer, headers: &[(&str, &str)]) -> Resp {
    send(
        &s.http,
        "POST",
        &format!("{}/api/auth/refresh", s.url),
        headers,
        None,
    )
    .await
}

/// Creates an API token for the account behind `cred`; returns (id, secret).
async fn create_token(s: &TestServer, cred: &Cred, expiration: Option<String>) -> (String, String) {
    let r = post(
        s,
        cred,
        "mutation($d: InfrahubAccountTokenCreateInput!) { InfrahubAccountTokenCreate(data: $d) { ok object { id token { value } } } }",
        json!({"d": {"name": "test token", "expiration": expiration}}),
    )
    .await;
    let data = assert_ok("token create", &r);
    let object = &data["InfrahubAccountTokenCreate"]["object"];
    (
        object["id"].as_str().unwrap().to_string(),
        object["token"]["value"].as_str().unwrap().to_string(),
    )
}

async fn create_account(s: &TestServer, name: &str, password: &str, role: &str) {
    s.admin(
        "mutation($d: CoreAccountCreateInput!) { CoreAccountCreate(data: $d) { ok } }",
        json!({"d": {"name": {"value": name}, "password": {"value": password}, "role": {"value": role}}}),
    )
    .await;
}

/// The event count, as admin.
async fn event_count(s: &TestServer) -> i64 {
    s.admin("{ InfrahubEvent(limit: 1) { count } }", json!({}))
        .await["InfrahubEvent"]["count"]
        .as_i64()
        .unwrap()
}

/// Every credential case on `/graphql`, by POST and by GET: good ones are served, bad ones
/// get 401 UNAUTHENTICATED with a message that never echoes the secret.
#[tokio::test]
async fn credentials_are_checked_on_every_request() {
    let s = TestServer::start().await;
    let admin = Cred::Key(ADMIN_TOKEN.into());

    // A token that expires in ~2 s; it works now and is checked again at the end.
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(2000);
    let expires_text = expires.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (_, expiring) = create_token(&s, &admin, Some(expires_text)).await;
    let expiring_deadline = Instant::now() + Duration::from_millis(2000);
    assert_ok(
        "expiring token before expiry",
        &post(&s, &Cred::Key(expiring.clone()), PROBE, json!({})).await,
    );

    // A token revoked with InfrahubAccountTokenDelete is refused right after.
    let (revoked_id, revoked) = create_token(&s, &admin, None).await;
    assert_ok(
        "token before revocation",
        &post(&s, &Cred::Key(revoked.clone()), PROBE, json!({})).await,
    );
    let r = post(
        &s,
        &admin,
        "mutation($id: String!) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
        json!({"id": revoked_id}),
    )
    .await;
    assert_eq!(
        assert_ok("revoke", &r)["InfrahubAccountTokenDelete"]["ok"],
        true
    );

    let (access, refresh) = s.login_ok("admin", ADMIN_PASSWORD).await;
    let bogus = "bogus-token-5f0c9a1e7d3b4c2a8e6f1d0b9c7a5e3f".to_string();

    let cases: Vec<(&str, Cred, Option<&str>)> = vec![
        // (what, credential, None = served | Some(expected 401 message))
        ("valid API token", admin.clone(), None),
        ("valid JWT access token", Cred::Bearer(access.clone()), None),
        (
            "valid access_token cookie",
            Cred::Cookie(access.clone()),
            None,
        ),
        (
            "missing credentials",
            Cred::None,
            Some("Authentication is required"),
        ),
        (
            "empty X-INFRAHUB-KEY",
            Cred::Key(String::new()),
            Some("Authentication is required"),
        ),
        (
            "unknown API token",
            Cred::Key(bogus.clone()),
            Some("Invalid token"),
        ),
        (
            "revoked API token",
            Cred::Key(revoked.clone()),
            Some("The API token has been revoked"),
        ),
        (
            "garbage bearer",
            Cred::Bearer(bogus.clone()),
            Some("Invalid token"),
        ),
        (
            "tampered JWT signature",
            Cred::Bearer(tamper_jwt(&access)),
            Some("Invalid token"),
        ),
        (
            "refresh token used as access token",
            Cred::Bearer(refresh.clone()),
            Some("Invalid token type"),
        ),
        (
            "refresh token in the access_token cookie",
            Cred::Cookie(refresh.clone()),
            Some("Invalid token type"),
        ),
        (
            "garbage cookie",
            Cred::Cookie(bogus.clone()),
            Some("Invalid token"),
        ),
        (
            "API token wins over a bad bearer",
            Cred::Many(vec![
                ("x-infrahub-key", ADMIN_TOKEN.into()),
                ("authorization", format!("Bearer {bogus}")),
            ]),
            None,
        ),
        (
            "a bad API token is not rescued by a good bearer",
            Cred::Many(vec![
                ("x-infrahub-key", bogus.clone()),
                ("authorization", format!("Bearer {access}")),
            ]),
            Some("Invalid token"),
        ),
    ];
    for (what, cred, expected) in &cases {
        for (how, r) in [
            ("POST", post(&s, cred, PROBE, json!({})).await),
            ("GET", get(&s, cred, PROBE).await),
            (
                "POST /graphql/main",
                post_at(&s, "/graphql/main", cred, PROBE, json!({})).await,
            ),
        ] {
            let what = format!("{what} ({how})");
            match expected {
                None => {
                    let data = assert_ok(&what, &r);
                    assert_eq!(data["InfrahubInfo"]["version"], env!("CARGO_PKG_VERSION"));
                }
                Some(message) => {
                    let got = assert_error_reply(&what, &r, 401, "UNAUTHENTICATED");
                    assert_eq!(&got, message, "{what}");
                    assert!(r.json.get("data").is_none(), "{what}: {}", r.text);
                    for secret in cred.secrets().iter().filter(|s| s.len() > 8) {
                        assert!(!r.text.contains(secret.as_str()), "{what}: secret echoed");
                    }
                }
            }
        }
    }

    // An unknown branch is not revealed to an unauthenticated caller: auth comes first.
    let r = post_at(&s, "/graphql/nope", &Cred::None, PROBE, json!({})).await;
    assert_error_reply("unknown branch, no credentials", &r, 401, "UNAUTHENTICATED");

    // The expiring token, once past its expiration.
    tokio::time::sleep(expiring_deadline.saturating_duration_since(Instant::now())).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = post(&s, &Cred::Key(expiring.clone()), PROBE, json!({})).await;
    let message = assert_error_reply("expired API token", &r, 401, "UNAUTHENTICATED");
    assert_eq!(message, "The API token has expired");
    assert!(!r.text.contains(&expiring));

    // A token that expired in the past cannot be created.
    let r = post(
        &s,
        &admin,
        "mutation { InfrahubAccountTokenCreate(data: {expiration: \"2001-01-01T00:00:00Z\"}) { ok } }",
        json!({}),
    )
    .await;
    assert_error_entry("token expiring in the past", &r.json, "BAD_USER_INPUT", 400);
    s.shutdown().await;
}

/// A read-only account may query but every mutation is refused with FORBIDDEN and writes
/// nothing, with a JWT and with its own API token; a read-write account cannot manage
/// accounts or raise its own role.
#[tokio::test]
async fn roles_limit_mutations() {
    let s = TestServer::start().await;
    create_account(&s, "viewer", "viewer-password-1", "read-only").await;
    create_account(&s, "writer", "writer-password-1", "read-write").await;
    s.admin(
        r#"mutation { BranchCreate(data: {name: "existing"}) { ok } }"#,
        json!({}),
    )
    .await;

    let (viewer_jwt, _) = s.login_ok("viewer", "viewer-password-1").await;
    let viewer = Cred::Bearer(viewer_jwt);
    // Any account may hold API tokens; the token carries the account's role.
    let (_, viewer_key) = create_token(&s, &viewer, None).await;
    let viewer_key = Cred::Key(viewer_key);

    let profile = assert_ok(
        "viewer profile",
        &post(
            &s,
            &viewer,
            "{ AccountProfile { id name { value } ... on CoreAccount { role { value } } } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(profile["AccountProfile"]["name"]["value"], "viewer");
    assert_eq!(profile["AccountProfile"]["role"]["value"], "read-only");
    let viewer_id = profile["AccountProfile"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let snapshot = "{ Branch { name } InfrahubEvent(limit: 1) { count } CoreGraphQLQuery { count } CoreAccount { count } }";
    let before = s.admin(snapshot, json!({})).await;

    for cred in [&viewer, &viewer_key] {
        let reads = assert_ok(
            "viewer reads",
            &post(
                &s,
                cred,
                "{ Branch { name } InfrahubEvent { count } CoreGraphQLQuery { count } }",
                json!({}),
            )
            .await,
        );
        assert_eq!(reads["Branch"], before["Branch"]);
        let mutations = [
            (
                "BranchCreate",
                r#"mutation { BranchCreate(data: {name: "ro-branch"}) { ok object { name } } }"#,
            ),
            (
                "BranchDelete",
                r#"mutation { BranchDelete(data: {name: "existing"}) { ok } }"#,
            ),
            (
                "BranchMerge",
                r#"mutation { BranchMerge(data: {name: "existing"}) { ok } }"#,
            ),
            (
                "BranchUpdate",
                r#"mutation { BranchUpdate(data: {name: "existing", description: "x"}) { ok } }"#,
            ),
            (
                "EventEmit",
                r#"mutation { EventEmit(data: {event: "acme.ro.attempt"}) { ok object { id } } }"#,
            ),
            (
                "CoreGraphQLQueryCreate",
                r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "ro-query"}, query: {value: "{ Branch { name } }"}}) { ok object { id } } }"#,
            ),
            (
                "CoreAccountCreate",
                r#"mutation { CoreAccountCreate(data: {name: {value: "intruder"}, password: {value: "intruder-pass"}, role: {value: "admin"}}) { ok } }"#,
            ),
        ];
        for (field, m) in mutations {
            let r = post(&s, cred, m, json!({})).await;
            assert_forbidden(&format!("read-only {field} ({cred:?})"), &r, field);
        }
        // Self-promotion is an account update: admin only.
        let r = post(
            &s,
            cred,
            "mutation($id: String!) { CoreAccountUpdate(data: {id: $id, role: {value: \"admin\"}}) { ok } }",
            json!({"id": viewer_id}),
        )
        .await;
        assert_forbidden("read-only self-promotion", &r, "CoreAccountUpdate");
    }

    // Nothing was written.
    assert_eq!(s.admin(snapshot, json!({})).await, before);
    let still_ro = s
        .admin(
            "{ CoreAccount(name__value: \"viewer\") { edges { node { role { value } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        still_ro["CoreAccount"]["edges"][0]["node"]["role"]["value"],
        "read-only"
    );

    // read-write: branch mutations yes, account management no.
    let (writer_jwt, _) = s.login_ok("writer", "writer-password-1").await;
    let writer = Cred::Bearer(writer_jwt);
    let r = post(
        &s,
        &writer,
        r#"mutation { CoreAccountCreate(data: {name: {value: "intruder"}, password: {value: "intruder-pass"}, role: {value: "admin"}}) { ok } }"#,
        json!({}),
    )
    .await;
    assert_forbidden("read-write CoreAccountCreate", &r, "CoreAccountCreate");
    let r = post(
        &s,
        &writer,
        "mutation($id: String!) { CoreAccountDelete(data: {id: $id}) { ok } }",
        json!({"id": viewer_id}),
    )
    .await;
    assert_forbidden("read-write CoreAccountDelete", &r, "CoreAccountDelete");
    let r = post(
        &s,
        &writer,
        r#"mutation { BranchCreate(data: {name: "rw-branch"}) { ok } }"#,
        json!({}),
    )
    .await;
    assert_eq!(
        assert_ok("read-write BranchCreate", &r)["BranchCreate"]["ok"],
        true
    );

    // A non-admin cannot revoke another account's token, nor a token that does not exist.
    let (admin_token_id, admin_token) =
        create_token(&s, &Cred::Key(ADMIN_TOKEN.into()), None).await;
    for (what, id) in [
        ("another account's token", admin_token_id.as_str()),
        ("unknown token", "00000000-0000-0000-0000-000000000000"),
    ] {
        let r = post(
            &s,
            &writer,
            "mutation($id: String!) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
            json!({"id": id}),
        )
        .await;
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_error_entry(what, &r.json, "NOT_FOUND", 404);
    }
    assert_ok(
        "admin token after a foreign revocation attempt",
        &post(&s, &Cred::Key(admin_token), PROBE, json!({})).await,
    );

    // Roles are read on every request: a demoted account loses write access at once.
    let writer_id = assert_ok(
        "writer profile",
        &post(&s, &writer, "{ AccountProfile { id } }", json!({})).await,
    )["AccountProfile"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.admin(
        r#"mutation($id: String!) { CoreAccountUpdate(data: {id: $id, role: {value: "read-only"}}) { ok } }"#,
        json!({"id": writer_id}),
    )
    .await;
    let r = post(
        &s,
        &writer,
        r#"mutation { BranchCreate(data: {name: "rw-branch-2"}) { ok } }"#,
        json!({}),
    )
    .await;
    assert_forbidden("demoted writer BranchCreate", &r, "BranchCreate");
    let accounts = s
        .admin(
            "{ CoreAccount { count edges { node { name { value } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        accounts["CoreAccount"]["count"],
        before["CoreAccount"]["count"]
    );
    assert!(!accounts.to_string().contains("intruder"));
    s.shutdown().await;
}

/// Login with a wrong password or unknown user is 401 with one message for both; a malformed
/// login body is 400; nothing is echoed.
#[tokio::test]
async fn login_failures() {
    let s = TestServer::start().await;
    create_account(&s, "viewer", "viewer-password-1", "read-only").await;
    for (what, user, password) in [
        ("wrong admin password", "admin", "not-the-admin-password"),
        ("wrong viewer password", "viewer", "viewer-password-2"),
        ("unknown user", "nobody", "viewer-password-1"),
        ("empty password", "admin", ""),
    ] {
        let r = s.login(user, password).await;
        let message = assert_error_reply(what, &r, 401, "UNAUTHENTICATED");
        assert_eq!(message, "Incorrect username or password", "{what}");
        assert!(r.json.get("access_token").is_none());
        if !password.is_empty() {
            assert!(!r.text.contains(password), "{what}: password echoed");
        }
    }
    for (what, body) in [
        ("not JSON", "username=admin"),
        ("missing password", r#"{"username": "admin"}"#),
        ("array", r#"[{"username": "admin", "password": "x"}]"#),
    ] {
        let r = send(
            &s.http,
            "POST",
            &format!("{}/api/auth/login", s.url),
            &[("content-type", "application/json")],
            Some(body.as_bytes().to_vec()),
        )
        .await;
        assert_error_reply(what, &r, 400, "BAD_USER_INPUT");
    }
    // The right password still works after the failures.
    s.login_ok("viewer", "viewer-password-1").await;
    s.shutdown().await;
}

/// `/api/auth/refresh` trades a refresh token for a working access token; everything else is
/// refused with 401.
#[tokio::test]
async fn refresh_issues_a_working_access_token() {
    let s = TestServer::start().await;
    let (access, refresh_token) = s.login_ok("admin", ADMIN_PASSWORD).await;
    let bearer = format!("Bearer {refresh_token}");
    let r = refresh(&s, &[("authorization", bearer.as_str())]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let new_access = r.json["access_token"].as_str().unwrap().to_string();
    let profile = assert_ok(
        "refreshed access token",
        &post(
            &s,
            &Cred::Bearer(new_access.clone()),
            "{ AccountProfile { name { value } ... on CoreAccount { role { value } } } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(profile["AccountProfile"]["name"]["value"], "admin");
    assert_eq!(profile["AccountProfile"]["role"]["value"], "admin");
    assert_ok(
        "refreshed token as cookie",
        &post(&s, &Cred::Cookie(new_access), PROBE, json!({})).await,
    );

    let access_bearer = format!("Bearer {access}");
    let tampered = format!("Bearer {}", tamper_jwt(&refresh_token));
    let cases: [(&str, Headers, &str); 5] = [
        (
            "access token instead of refresh token",
            vec![("authorization", access_bearer.as_str())],
            "Invalid token type",
        ),
        (
            "no credentials",
            vec![],
            "A refresh token is required in the Authorization header",
        ),
        (
            "API token",
            vec![("x-infrahub-key", ADMIN_TOKEN)],
            "A refresh token is required in the Authorization header",
        ),
        (
            "garbage",
            vec![("authorization", "Bearer garbage")],
            "Invalid token",
        ),
        (
            "tampered refresh token",
            vec![("authorization", tampered.as_str())],
            "Invalid token",
        ),
    ];
    for (what, headers, message) in cases {
        let r = refresh(&s, &headers).await;
        let got = assert_error_reply(what, &r, 401, "UNAUTHENTICATED");
        assert_eq!(got, message, "{what}");
        assert!(!r.text.contains(&refresh_token) && !r.text.contains(&access));
    }
    s.shutdown().await;
}

/// An expired JWT access token is refused with 401 and the exact message `Expired Signature`
/// (infrahub-sdk re-authenticates on that text), whichever way it is presented; the refresh
/// token still works.
#[tokio::test]
async fn expired_jwt_says_expired_signature() {
    let s = TestServer::start_with(&[("access_token_lifetime_secs", "1")]).await;
    // A second server whose refresh tokens expire as fast, so both wait together.
    let short = TestServer::start_with(&[
        ("access_token_lifetime_secs", "1"),
        ("refresh_token_lifetime_secs", "1"),
    ])
    .await;
    let (access, refresh_token) = s.login_ok("admin", ADMIN_PASSWORD).await;
    let (_, short_refresh) = short.login_ok("admin", ADMIN_PASSWORD).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // An expired refresh token says the same, so the SDK falls back to a password login.
    let bearer = format!("Bearer {short_refresh}");
    let r = refresh(&short, &[("authorization", bearer.as_str())]).await;
    let message = assert_error_reply("expired refresh token", &r, 401, "UNAUTHENTICATED");
    assert_eq!(message, "Expired Signature");
    short.login_ok("admin", ADMIN_PASSWORD).await;
    short.shutdown().await;
    for (how, r) in [
        (
            "bearer",
            post(&s, &Cred::Bearer(access.clone()), PROBE, json!({})).await,
        ),
        (
            "cookie",
            post(&s, &Cred::Cookie(access.clone()), PROBE, json!({})).await,
        ),
        ("GET", get(&s, &Cred::Bearer(access.clone()), PROBE).await),
    ] {
        let message = assert_error_reply(how, &r, 401, "UNAUTHENTICATED");
        assert_eq!(message, "Expired Signature", "{how}");
        // infrahub-sdk: `"Expired Signature" in [e.get("message") for e in errors]`.
        let messages: Vec<&str> = r.json["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["message"].as_str())
            .collect();
        assert!(messages.contains(&"Expired Signature"));
        assert!(!r.text.contains(&access));
    }
    let bearer = format!("Bearer {refresh_token}");
    let r = refresh(&s, &[("authorization", bearer.as_str())]).await;
    assert_eq!(r.status, 200, "refresh after expiry: {}", r.text);
    assert!(r.json["access_token"].as_str().is_some_and(|t| t != access));
    s.shutdown().await;
}

/// With `allow_anonymous_access = true` a caller without credentials may query but not
/// mutate; bad credentials are still refused (no fallback to anonymous).
#[tokio::test]
async fn anonymous_access_is_read_only() {
    let s = TestServer::start_with(&[("allow_anonymous_access", "true")]).await;
    let before = event_count(&s).await;
    let data = assert_ok(
        "anonymous query",
        &post(
            &s,
            &Cred::None,
            "{ Branch { name } InfrahubEvent { count } }",
            json!({}),
        )
        .await,
    );
    assert_eq!(data["Branch"], json!([{"name": "main"}]));
    assert_ok("anonymous GET", &get(&s, &Cred::None, PROBE).await);
    for (field, m) in [
        (
            "BranchCreate",
            r#"mutation { BranchCreate(data: {name: "anon"}) { ok } }"#,
        ),
        (
            "EventEmit",
            r#"mutation { EventEmit(data: {event: "acme.anon"}) { ok } }"#,
        ),
        (
            "CoreGraphQLQueryCreate",
            r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "anon"}, query: {value: "{ Branch { name } }"}}) { ok } }"#,
        ),
    ] {
        let r = post(&s, &Cred::None, m, json!({})).await;
        assert_forbidden(&format!("anonymous {field}"), &r, field);
    }
    // Account-bound operations need an account.
    let r = post(
        &s,
        &Cred::None,
        "mutation { InfrahubAccountTokenCreate(data: {name: \"anon\"}) { ok } }",
        json!({}),
    )
    .await;
    assert_error_entry("anonymous token create", &r.json, "UNAUTHENTICATED", 401);
    let r = post(&s, &Cred::None, "{ AccountProfile { id } }", json!({})).await;
    assert_error_entry("anonymous profile", &r.json, "UNAUTHENTICATED", 401);
    // Bad credentials are not downgraded to anonymous.
    let r = post(&s, &Cred::Key("bogus".into()), PROBE, json!({})).await;
    assert_error_reply(
        "bad token with anonymous access on",
        &r,
        401,
        "UNAUTHENTICATED",
    );
    assert_eq!(event_count(&s).await, before);
    let branches = s.admin("{ Branch { name } }", json!({})).await;
    assert_eq!(branches["Branch"], json!([{"name": "main"}]));
    s.shutdown().await;
}

/// Deleting an account ends every credential it had: API tokens, access and refresh JWTs.
#[tokio::test]
async fn deleted_account_credentials_are_refused() {
    let s = TestServer::start().await;
    create_account(&s, "leaver", "leaver-password-1", "read-write").await;
    let (access, refresh_token) = s.login_ok("leaver", "leaver-password-1").await;
    let jwt = Cred::Bearer(access.clone());
    let (_, key) = create_token(&s, &jwt, None).await;
    let key = Cred::Key(key);
    let id = assert_ok(
        "profile",
        &post(&s, &key, "{ AccountProfile { id } }", json!({})).await,
    )["AccountProfile"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.admin(
        "mutation($id: String!) { CoreAccountDelete(data: {id: $id}) { ok } }",
        json!({"id": id}),
    )
    .await;
    for (what, cred) in [
        ("API token", key),
        ("access JWT", jwt),
        ("access cookie", Cred::Cookie(access)),
    ] {
        let r = post(&s, &cred, PROBE, json!({})).await;
        assert_error_reply(what, &r, 401, "UNAUTHENTICATED");
    }
    let bearer = format!("Bearer {refresh_token}");
    let r = refresh(&s, &[("authorization", bearer.as_str())]).await;
    assert_error_reply("refresh of a deleted account", &r, 401, "UNAUTHENTICATED");
    let r = s.login("leaver", "leaver-password-1").await;
    assert_error_reply("login of a deleted account", &r, 401, "UNAUTHENTICATED");
    s.shutdown().await;
}

#[tokio::test]
async fn an_account_lists_its_own_unrevoked_tokens_without_secrets() {
    let s = TestServer::start().await;
    create_account(&s, "lister", "lister-password-1", "read-write").await;
    let (access, _) = s.login_ok("lister", "lister-password-1").await;
    let jwt = Cred::Bearer(access);
    let (first, _) = create_token(&s, &jwt, None).await;
    let (second, secret) = create_token(&s, &jwt, Some("2999-01-01T00:00:00Z".into())).await;
    let (third, _) = create_token(&s, &jwt, None).await;
    let r = post(
        &s,
        &jwt,
        "mutation($id: String) { InfrahubAccountTokenDelete(data: {id: $id}) { ok } }",
        json!({"id": third}),
    )
    .await;
    assert_ok("revoke", &r);
    let list = |limit: Option<i32>, offset: Option<i32>| {
        let (jwt, s, secret) = (&jwt, &s, &secret);
        async move {
            let r = post(
                s,
                jwt,
                "query($l: Int, $o: Int) { InfrahubAccountToken(limit: $l, offset: $o) { count edges { node { id name expiration } } } }",
                json!({"l": limit, "o": offset}),
            )
            .await;
            assert!(
                !r.text.contains(secret.as_str()),
                "a secret is never listed"
            );
            assert_ok("token list", &r)["InfrahubAccountToken"].clone()
        }
    };
    let all = list(None, None).await;
    assert_eq!(all["count"], 2, "{all}");
    let ids: Vec<&str> = all["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [first.as_str(), second.as_str()],
        "oldest first, revoked left out"
    );
    assert_eq!(all["edges"][0]["node"]["name"], "test token");
    assert_eq!(all["edges"][0]["node"]["expiration"], Value::Null);
    assert_eq!(
        all["edges"][1]["node"]["expiration"],
        "2999-01-01T00:00:00.000000Z"
    );
    let page = list(Some(1), Some(1)).await;
    assert_eq!(page["count"], 2);
    assert_eq!(page["edges"].as_array().unwrap().len(), 1);
    assert_eq!(page["edges"][0]["node"]["id"], second.as_str());
    // The admin's list holds the admin's tokens only.
    let admin = s
        .admin(
            "{ InfrahubAccountToken { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert!(
        !admin.to_string().contains(&first),
        "another account's token is not listed: {admin}"
    );
    let r = post(
        &s,
        &Cred::None,
        "{ InfrahubAccountToken { count } }",
        json!({}),
    )
    .await;
    assert!(r.text.contains("errors"), "anonymous: {}", r.text);
    s.shutdown().await;
}
