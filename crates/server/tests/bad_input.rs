//! Bad input over HTTP (SPEC §4, §9): every malformed or unacceptable request gets its
//! documented status and an Infrahub-shaped error, the server keeps serving the next request,
//! and nothing reaches the event log.

use infrastream_testkit::http::send;
use infrastream_testkit::{ADMIN_TOKEN, TestServer};
use infrastream_testkit::{Resp, assert_error_entry, assert_error_reply};
use serde_json::{Value, json};

/// Body limit of the server under test, small so the oversized case stays cheap.
const MAX_BODY: usize = 64 * 1024;

/// What a bad request must get back.
#[derive(Debug)]
enum Expect {
    /// An HTTP-level error reply: status, `extensions.code`, a message fragment.
    Http(u16, &'static str, &'static str),
    /// A GraphQL response with errors: status, first error's code, a message fragment.
    /// With `application/graphql-response+json` a request error has no `data` key.
    Graphql(u16, &'static str, &'static str),
}

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    /// Headers besides the admin API token.
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    expect: Expect,
}

const JSON: (&str, &str) = ("content-type", "application/json");
const GQL_RESPONSE: &str = "application/graphql-response+json";

fn case(
    what: &'static str,
    method: &'static str,
    path: &str,
    headers: &[(&'static str, &str)],
    body: Option<&[u8]>,
    expect: Expect,
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.map(<[u8]>::to_vec),
        expect,
    }
}

/// A JSON POST of `query` with `accept`.
fn post_query(what: &'static str, query: &str, accept: &str, expect: Expect) -> Case {
    let body = json!({"query": query}).to_string();
    case(
        what,
        "POST",
        "/graphql",
        &[JSON, ("accept", accept)],
        Some(body.as_bytes()),
        expect,
    )
}

/// `{ __schema { types { fields { type { ofType { ... name ... } } } } } }`, `levels` deep
/// below `type`.
fn deep_introspection(levels: usize) -> String {
    format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(levels),
        "}".repeat(levels)
    )
}

async fn run(s: &TestServer, c: &Case) -> Resp {
    let mut headers: Vec<(&str, &str)> = vec![("x-infrahub-key", ADMIN_TOKEN)];
    headers.extend(c.headers.iter().map(|(k, v)| (*k, v.as_str())));
    send(
        &s.http,
        c.method,
        &format!("{}{}", s.url, c.path),
        &headers,
        c.body.clone(),
    )
    .await
}

fn check(c: &Case, r: &Resp) {
    let what = c.what;
    match c.expect {
        Expect::Http(status, code, fragment) => {
            let message = assert_error_reply(what, r, status, code);
            assert!(
                message.contains(fragment),
                "{what}: message {message:?} lacks {fragment:?}"
            );
            assert!(r.json.get("data").is_none(), "{what}: {}", r.text);
        }
        Expect::Graphql(status, code, fragment) => {
            assert_eq!(r.status, status, "{what}: status; body {}", r.text);
            let graphql_response = c
                .headers
                .iter()
                .any(|(k, v)| *k == "accept" && v.starts_with(GQL_RESPONSE));
            let expected_type = if graphql_response {
                GQL_RESPONSE
            } else {
                "application/json"
            };
            assert!(
                r.header("content-type").starts_with(expected_type),
                "{what}: content type {:?}",
                r.header("content-type")
            );
            let http_status = match code {
                "GRAPHQL_PARSE_FAILED" | "GRAPHQL_VALIDATION_FAILED" | "BAD_USER_INPUT" => 400,
                "ALREADY_EXISTS" => 409,
                "FORBIDDEN" => 403,
                other => panic!("{what}: no http_status known for {other}"),
            };
            let message = assert_error_entry(what, &r.json, code, http_status);
            assert!(
                message.contains(fragment),
                "{what}: message {message:?} lacks {fragment:?}"
            );
            if status == 400 {
                assert!(r.json.get("data").is_none(), "{what}: {}", r.text);
            } else {
                assert!(r.json.get("data").is_some(), "{what}: {}", r.text);
            }
        }
    }
}

/// Event count and branches: what no bad request may change.
async fn state(s: &TestServer) -> Value {
    s.admin(
        "{ InfrahubEvent(limit: 1) { count } Branch { name } CoreGraphQLQuery { count } }",
        json!({}),
    )
    .await
}

#[tokio::test]
async fn bad_requests_get_their_status_and_the_server_keeps_serving() {
    let max = MAX_BODY.to_string();
    let s = TestServer::start_with(&[("max_body_bytes", max.as_str())]).await;
    let before = state(&s).await;
    let before_count = before["InfrahubEvent"]["count"].as_i64().unwrap();
    assert!(before_count >= 1, "{before}");

    let good_query = r#"{ Branch(name: "main") { name } }"#;
    let good_body = json!({"query": good_query}).to_string();
    let oversized = json!({"query": format!("{good_query}{}", " ".repeat(MAX_BODY))}).to_string();
    let just_fits = json!({"query": format!("{good_query}{}", " ".repeat(MAX_BODY - 64))});
    let deep_json = format!(
        r#"{{"query": "{{ Branch {{ name }} }}", "variables": {{"v": {}1{}}}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    // A document nested far deeper than any limit, close to the body limit: must be refused
    // without exhausting the stack.
    let braces = (MAX_BODY - 100) / 2;
    let pathological =
        json!({"query": format!("{}a{}", "{a".repeat(braces / 2), "}".repeat(braces / 2))})
            .to_string();
    let deep_list_value = json!({"query": format!(
        "{{ Branch(name: {}\"x\"{}) {{ name }} }}",
        "[".repeat(braces / 2),
        "]".repeat(braces / 2)
    )})
    .to_string();
    let get_mutation = format!(
        "/graphql?{}",
        serde_urlencoded::to_string([(
            "query",
            r#"mutation { BranchCreate(data: {name: "via-get"}) { ok } }"#
        )])
        .unwrap()
    );
    let get_deep = format!(
        "/graphql?{}",
        serde_urlencoded::to_string([("query", deep_introspection(40))]).unwrap()
    );

    use Expect::{Graphql, Http};
    let cases = vec![
        // --- HTTP-level: the body is not a GraphQL request ---
        case(
            "malformed JSON",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"query": "{ Branch { name } }""#),
            Http(400, "BAD_USER_INPUT", "not valid JSON"),
        ),
        case(
            "JSON with trailing garbage",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"query": "{ Branch { name } }"} {"#),
            Http(400, "BAD_USER_INPUT", "not valid JSON"),
        ),
        case(
            "empty body",
            "POST",
            "/graphql",
            &[JSON],
            Some(b""),
            Http(400, "BAD_USER_INPUT", "empty"),
        ),
        case(
            "invalid UTF-8 inside a JSON string",
            "POST",
            "/graphql",
            &[JSON],
            Some(b"{\"query\": \"{ Branch { name \xff\xfe } }\"}"),
            Http(400, "BAD_USER_INPUT", "not valid JSON"),
        ),
        case(
            "invalid UTF-8 outside strings",
            "POST",
            "/graphql",
            &[JSON],
            Some(b"{\"query\": \"{ Branch { name } }\"}\xc3\x28"),
            Http(400, "BAD_USER_INPUT", "not valid JSON"),
        ),
        case(
            "lone surrogate escape",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"query": "{ Branch(name: \"\ud800\") { name } }"}"#),
            Http(400, "BAD_USER_INPUT", "not valid JSON"),
        ),
        case(
            "batched request (JSON array)",
            "POST",
            "/graphql",
            &[JSON],
            Some(format!("[{good_body}, {good_body}]").as_bytes()),
            Http(400, "BAD_USER_INPUT", "Batched requests"),
        ),
        case(
            "empty batch",
            "POST",
            "/graphql",
            &[JSON],
            Some(b"[]"),
            Http(400, "BAD_USER_INPUT", "Batched requests"),
        ),
        case(
            "JSON null",
            "POST",
            "/graphql",
            &[JSON],
            Some(b"null"),
            Http(400, "BAD_USER_INPUT", "JSON object"),
        ),
        case(
            "JSON string",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#""{ Branch { name } }""#),
            Http(400, "BAD_USER_INPUT", "JSON object"),
        ),
        case(
            "no query",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"variables": {}}"#),
            Http(400, "BAD_USER_INPUT", "no 'query'"),
        ),
        case(
            "query is not a string",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"query": {"Branch": "name"}}"#),
            Http(400, "BAD_USER_INPUT", "'query' must be a string"),
        ),
        case(
            "variables is a string",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"query": "{ Branch { name } }", "variables": "{}"}"#),
            Http(400, "BAD_USER_INPUT", "'variables' must be an object"),
        ),
        case(
            "operationName is a number",
            "POST",
            "/graphql",
            &[JSON],
            Some(br#"{"query": "{ Branch { name } }", "operationName": 1}"#),
            Http(400, "BAD_USER_INPUT", "'operationName'"),
        ),
        case(
            "JSON nested beyond the parser's limit",
            "POST",
            "/graphql",
            &[JSON],
            Some(deep_json.as_bytes()),
            Http(400, "BAD_USER_INPUT", "not valid JSON"),
        ),
        case(
            "wrong content type text/plain",
            "POST",
            "/graphql",
            &[("content-type", "text/plain")],
            Some(good_body.as_bytes()),
            Http(415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
        ),
        case(
            "content type application/graphql",
            "POST",
            "/graphql",
            &[("content-type", "application/graphql")],
            Some(good_query.as_bytes()),
            Http(415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
        ),
        case(
            "form content type",
            "POST",
            "/graphql",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(b"query=%7B%20Branch%20%7B%20name%20%7D%20%7D"),
            Http(415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
        ),
        case(
            "no content type",
            "POST",
            "/graphql",
            &[],
            Some(good_body.as_bytes()),
            Http(415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
        ),
        case(
            "oversized body",
            "POST",
            "/graphql",
            &[JSON],
            Some(oversized.as_bytes()),
            Http(413, "PAYLOAD_TOO_LARGE", "max_body_bytes"),
        ),
        case(
            "unacceptable Accept",
            "POST",
            "/graphql",
            &[JSON, ("accept", "text/plain")],
            Some(good_body.as_bytes()),
            Http(406, "NOT_ACCEPTABLE", "Accept"),
        ),
        case(
            "unacceptable Accept on GET",
            "GET",
            "/graphql?query=%7B%20Branch%20%7B%20name%20%7D%20%7D",
            &[("accept", "application/xml")],
            None,
            Http(406, "NOT_ACCEPTABLE", "Accept"),
        ),
        case(
            "unknown branch",
            "POST",
            "/graphql/nope",
            &[JSON],
            Some(good_body.as_bytes()),
            Http(404, "NOT_FOUND", "Branch: nope not found."),
        ),
        case(
            "unknown branch with a slash, URL-encoded",
            "POST",
            "/graphql/feature%2Fnope",
            &[JSON],
            Some(good_body.as_bytes()),
            Http(404, "NOT_FOUND", "Branch: feature/nope not found."),
        ),
        case(
            "unknown branch with a slash",
            "POST",
            "/graphql/feature/nope",
            &[JSON],
            Some(good_body.as_bytes()),
            Http(404, "NOT_FOUND", "Branch: feature/nope not found."),
        ),
        case(
            "unknown branch on GET",
            "GET",
            "/graphql/nope?query=%7B%20Branch%20%7B%20name%20%7D%20%7D",
            &[],
            None,
            Http(404, "NOT_FOUND", "Branch: nope not found."),
        ),
        case(
            "mutation over GET",
            "GET",
            &get_mutation,
            &[],
            None,
            Http(405, "METHOD_NOT_ALLOWED", "POST"),
        ),
        case(
            "GET without a query",
            "GET",
            "/graphql",
            &[],
            None,
            Http(400, "BAD_USER_INPUT", "'query'"),
        ),
        case(
            "GET with variables that are not JSON",
            "GET",
            "/graphql?query=%7B%20Branch%20%7B%20name%20%7D%20%7D&variables=%7Bnope",
            &[],
            None,
            Http(400, "BAD_USER_INPUT", "'variables'"),
        ),
        // --- GraphQL request errors: 200 for application/json, 400 for graphql-response+json ---
        post_query(
            "unknown field (application/json)",
            "{ Branch { name no_such_field } }",
            "application/json",
            Graphql(200, "GRAPHQL_VALIDATION_FAILED", "no_such_field"),
        ),
        post_query(
            "unknown field (graphql-response+json)",
            "{ Branch { name no_such_field } }",
            GQL_RESPONSE,
            Graphql(400, "GRAPHQL_VALIDATION_FAILED", "no_such_field"),
        ),
        post_query(
            "unknown argument",
            r#"{ Branch(colour: "red") { name } }"#,
            GQL_RESPONSE,
            Graphql(400, "GRAPHQL_VALIDATION_FAILED", "colour"),
        ),
        post_query(
            "syntax error (application/json)",
            "{ Branch { name }",
            "application/json",
            Graphql(200, "GRAPHQL_PARSE_FAILED", ""),
        ),
        post_query(
            "syntax error (graphql-response+json)",
            "{ Branch { name }",
            GQL_RESPONSE,
            Graphql(400, "GRAPHQL_PARSE_FAILED", ""),
        ),
        post_query(
            "deeply nested query (application/json)",
            &deep_introspection(40),
            "application/json",
            Graphql(200, "GRAPHQL_VALIDATION_FAILED", "nested too deep"),
        ),
        post_query(
            "deeply nested query (graphql-response+json)",
            &deep_introspection(40),
            GQL_RESPONSE,
            Graphql(400, "GRAPHQL_VALIDATION_FAILED", "nested too deep"),
        ),
        case(
            "deeply nested query over GET",
            "GET",
            &get_deep,
            &[("accept", GQL_RESPONSE)],
            None,
            Graphql(400, "GRAPHQL_VALIDATION_FAILED", "nested too deep"),
        ),
        post_query(
            "query nested beyond the recursion limit",
            &deep_introspection(100),
            GQL_RESPONSE,
            Graphql(400, "GRAPHQL_PARSE_FAILED", "recursion"),
        ),
        case(
            "pathologically nested selection sets",
            "POST",
            "/graphql",
            &[JSON, ("accept", GQL_RESPONSE)],
            Some(pathological.as_bytes()),
            Graphql(400, "GRAPHQL_PARSE_FAILED", ""),
        ),
        case(
            "pathologically nested list value",
            "POST",
            "/graphql",
            &[JSON, ("accept", GQL_RESPONSE)],
            Some(deep_list_value.as_bytes()),
            Graphql(400, "GRAPHQL_PARSE_FAILED", ""),
        ),
        case(
            "variable of the wrong type",
            "POST",
            "/graphql",
            &[JSON, ("accept", GQL_RESPONSE)],
            Some(
                json!({"query": "query($l: Int) { InfrahubEvent(limit: $l) { count } }", "variables": {"l": "ten"}})
                    .to_string()
                    .as_bytes(),
            ),
            Graphql(400, "GRAPHQL_VALIDATION_FAILED", ""),
        ),
        // --- execution errors: the request ran, the field failed ---
        post_query(
            "invalid UUID in InfrahubEvent(ids:)",
            r#"{ InfrahubEvent(ids: ["not-a-uuid"]) { count } }"#,
            "application/json",
            Graphql(200, "BAD_USER_INPUT", "Invalid UUID 'not-a-uuid'"),
        ),
        post_query(
            "invalid UUID in InfrahubEvent(parent__ids:)",
            r#"{ InfrahubEvent(parent__ids: ["1234"]) { count } }"#,
            GQL_RESPONSE,
            Graphql(200, "BAD_USER_INPUT", "Invalid UUID '1234'"),
        ),
        post_query(
            "InfrahubEvent page above the maximum",
            "{ InfrahubEvent(limit: 51) { count } }",
            "application/json",
            Graphql(200, "BAD_USER_INPUT", "limit"),
        ),
        post_query(
            "branch name with ..",
            r#"mutation { BranchCreate(data: {name: "a..b"}) { ok } }"#,
            "application/json",
            Graphql(200, "BAD_USER_INPUT", ""),
        ),
        post_query(
            "branch name with a leading -",
            r#"mutation { BranchCreate(data: {name: "-x"}) { ok } }"#,
            "application/json",
            Graphql(200, "BAD_USER_INPUT", ""),
        ),
        post_query(
            "branch name with whitespace",
            r#"mutation { BranchCreate(data: {name: "a b"}) { ok } }"#,
            "application/json",
            Graphql(200, "BAD_USER_INPUT", ""),
        ),
        post_query(
            "empty branch name",
            r#"mutation { BranchCreate(data: {name: ""}) { ok } }"#,
            "application/json",
            Graphql(200, "BAD_USER_INPUT", ""),
        ),
        post_query(
            "duplicate branch",
            r#"mutation { BranchCreate(data: {name: "main"}) { ok } }"#,
            "application/json",
            Graphql(200, "ALREADY_EXISTS", "The branch main already exists"),
        ),
        post_query(
            "saved query that does not validate",
            r#"mutation { CoreGraphQLQueryCreate(data: {name: {value: "bad"}, query: {value: "{ nope }"}}) { ok } }"#,
            "application/json",
            Graphql(200, "BAD_USER_INPUT", ""),
        ),
    ];

    let just_fits_body = just_fits.to_string();
    assert!(just_fits_body.len() <= MAX_BODY && oversized.len() > MAX_BODY);

    for c in &cases {
        let r = run(&s, c).await;
        check(c, &r);
        // The server keeps serving, and the bad request wrote nothing.
        let good = run(
            &s,
            &case(
                "good",
                "POST",
                "/graphql",
                &[JSON],
                Some(br#"{"query": "{ InfrahubEvent(limit: 1) { count } Branch(name: \"main\") { name } }"}"#),
                Http(200, "", ""),
            ),
        )
        .await;
        assert_eq!(good.status, 200, "after {}: {}", c.what, good.text);
        assert!(
            good.json.get("errors").is_none(),
            "after {}: {}",
            c.what,
            good.text
        );
        assert_eq!(
            good.json["data"]["InfrahubEvent"]["count"], before_count,
            "after {}: the event log changed",
            c.what
        );
        assert_eq!(good.json["data"]["Branch"][0]["name"], "main");
    }

    // A body just under the limit is served.
    let r = run(
        &s,
        &case(
            "body just under the limit",
            "POST",
            "/graphql",
            &[JSON],
            Some(just_fits_body.as_bytes()),
            Http(200, "", ""),
        ),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["data"]["Branch"][0]["name"], "main");

    // Nothing any bad request did reached the store.
    assert_eq!(state(&s).await, before);
    s.shutdown().await;
}
