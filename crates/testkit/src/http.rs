//! HTTP helpers on reqwest: GraphQL POSTs with an API token or a JWT, login, raw requests of
//! any method, and the checks of the Infrahub error envelope
//! `{"errors":[{"message","extensions":{"code","http_status"}}]}`.

use serde_json::{Value, json};

/// The credential a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// None.
    None,
    /// An API token in `X-INFRAHUB-KEY`.
    Token(&'a str),
    /// A JWT in `Authorization: Bearer …`.
    Bearer(&'a str),
}

impl Auth<'_> {
    fn apply(self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => req,
            Auth::Token(t) => req.header("x-infrahub-key", t),
            Auth::Bearer(jwt) => req.header("authorization", format!("Bearer {jwt}")),
        }
    }
}

impl<'a> From<Option<&'a str>> for Auth<'a> {
    /// An optional API token.
    fn from(token: Option<&'a str>) -> Self {
        token.map_or(Auth::None, Auth::Token)
    }
}

/// A response: status, headers, raw text and (if it parses) the JSON body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// A response header as text (empty when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `errors[0].message`, if any.
    pub fn first_message(&self) -> Option<&str> {
        self.json["errors"][0]["message"].as_str()
    }

    /// `errors[0].extensions.code`, if any.
    pub fn first_code(&self) -> Option<&str> {
        self.json["errors"][0]["extensions"]["code"].as_str()
    }
}

/// Sends `method url` with `headers` and an optional raw body.
///
/// # Panics
/// When the request cannot be sent or its answer not read.
pub async fn send(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

/// POSTs `{"query", "variables"}` as JSON to `url` (e.g. `http://…/graphql`) with `auth`;
/// returns the status and the JSON body (the raw text as a JSON string if it is not JSON).
///
/// # Panics
/// When the request cannot be sent or its answer not read.
pub async fn post_graphql(
    http: &reqwest::Client,
    url: &str,
    auth: Auth<'_>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let resp = graphql_request(http, url, auth, query, variables)
        .send()
        .await
        .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Like [`post_graphql`], but a failure is an `Err` describing it instead of a panic: a request
/// that could not be sent, a status other than 200 or an `errors` key. Returns the whole body.
pub async fn try_graphql(
    http: &reqwest::Client,
    url: &str,
    auth: Auth<'_>,
    query: &str,
    variables: Value,
) -> Result<Value, String> {
    let req = graphql_request(http, url, auth, query, variables);
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status != 200 || body.get("errors").is_some() {
        return Err(format!("status {status}: {body}"));
    }
    Ok(body)
}

/// Runs `query` as admin ([`ADMIN_TOKEN`](crate::ADMIN_TOKEN)) at `url` (e.g.
/// `http://…/graphql`), without variables; returns `data`.
///
/// # Panics
/// When the request fails, the status is not 200 or the answer has `errors`.
pub async fn admin_data(http: &reqwest::Client, url: &str, query: &str) -> Value {
    let auth = Auth::Token(crate::ADMIN_TOKEN);
    match try_graphql(http, url, auth, query, json!({})).await {
        Ok(mut body) => body["data"].take(),
        Err(e) => panic!("{query} at {url}: {e}"),
    }
}

/// A GraphQL POST of `{"query", "variables"}` as JSON to `url` with `auth`.
fn graphql_request(
    http: &reqwest::Client,
    url: &str,
    auth: Auth<'_>,
    query: &str,
    variables: Value,
) -> reqwest::RequestBuilder {
    let req = http
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"query": query, "variables": variables}).to_string());
    auth.apply(req)
}

/// `jwt` with its signature broken (its first character changed), its shape kept.
///
/// # Panics
/// When `jwt` has no `.`-separated signature.
pub fn tamper_jwt(jwt: &str) -> String {
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}

/// `POST /api/auth/login` with a username and password.
pub async fn login(http: &reqwest::Client, base: &str, username: &str, password: &str) -> Resp {
    send(
        http,
        "POST",
        &format!("{base}/api/auth/login"),
        &[("content-type", "application/json")],
        Some(
            json!({"username": username, "password": password})
                .to_string()
                .into_bytes(),
        ),
    )
    .await
}

/// Logs in, asserting success; returns `(access token, refresh token)`.
///
/// # Panics
/// When the login is refused.
pub async fn login_ok(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> (String, String) {
    let r = login(http, base, username, password).await;
    assert_eq!(r.status, 200, "login {username}: {}", r.text);
    let token = |key: &str| {
        r.json[key]
            .as_str()
            .unwrap_or_else(|| panic!("login {username}: no {key} in {}", r.text))
            .to_string()
    };
    let (access, refresh) = (token("access_token"), token("refresh_token"));
    assert_ne!(access, refresh);
    (access, refresh)
}

/// Asserts an HTTP-level error reply: `status`, a JSON body with a non-empty `errors` array
/// whose first entry has a message, `extensions.code == code` and
/// `extensions.http_status == status`. Returns the message.
#[track_caller]
pub fn assert_error_reply(what: &str, r: &Resp, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{what}: status; body {}", r.text);
    assert!(
        r.header("content-type").starts_with("application/json"),
        "{what}: content type {:?}",
        r.header("content-type")
    );
    assert_error_entry(what, &r.json, code, status)
}

/// Asserts that `body.errors[0]` is an Infrahub-shaped error with `code` and `http_status`;
/// returns its message.
#[track_caller]
pub fn assert_error_entry(what: &str, body: &Value, code: &str, http_status: u16) -> String {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors array in {body}"));
    assert!(!errors.is_empty(), "{what}: empty errors array");
    let e = &errors[0];
    let message = e["message"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: errors[0].message is not a string: {body}"));
    assert!(!message.is_empty(), "{what}: empty message");
    assert_eq!(
        e["extensions"]["code"], code,
        "{what}: extensions.code in {body}"
    );
    assert_eq!(
        e["extensions"]["http_status"], http_status,
        "{what}: extensions.http_status in {body}"
    );
    message.to_string()
}
