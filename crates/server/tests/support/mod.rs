//! Raw HTTP helpers for the auth and bad-input tests: send any method, headers and body bytes,
//! and check the error envelope `{"errors":[{"message","extensions":{"code","http_status"}}]}`.
#![allow(dead_code, unreachable_pub)]

use serde_json::Value;

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
