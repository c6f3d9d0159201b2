//! GraphQL over HTTP, as audited by `graphql-http`: POST (JSON) and GET on `/graphql` and
//! `/graphql/{branch}`, media types from `Accept`, 400/405/406/413/415 for bad requests,
//! 404 for an unknown branch, and no `errors` key on success.

use crate::auth::{authenticate, credential_from_headers};
use crate::{AppState, graphiql, reply};
use async_graphql::parser::types::OperationType;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infrastream_graphql::data::Route;
use infrastream_graphql::{UrlBranch, is_request_error};
use serde_json::{Map, Value};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const APPLICATION_JSON: &str = "application/json; charset=utf-8";

/// Response media type chosen from `Accept`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MediaType {
    GraphqlResponseJson,
    Json,
}

/// Walks the `Accept` list in order (ignoring `q`), like graphql-http's reference handler.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let accept = reply::header_text(headers, header::ACCEPT).unwrap_or("*/*");
    for part in accept.split(',') {
        match reply::media_essence(part).as_str() {
            "application/graphql-response+json" => return Some(MediaType::GraphqlResponseJson),
            "application/json" | "application/*" | "*/*" | "" => return Some(MediaType::Json),
            _ => {}
        }
    }
    None
}

pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    reply::header_text(headers, header::ACCEPT).is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.trim().starts_with("text/html"))
    })
}

/// A GraphQL request as sent over HTTP.
#[derive(Debug)]
struct GraphqlRequest {
    query: String,
    variables: Option<Map<String, Value>>,
    operation_name: Option<String>,
    extensions: Option<Map<String, Value>>,
}

fn field_object(
    obj: &Map<String, Value>,
    name: &str,
) -> Result<Option<Map<String, Value>>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(format!("'{name}' must be an object or null")),
    }
}

fn from_json(body: &[u8]) -> Result<GraphqlRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("The request body is empty: expected a JSON object with a 'query'".into());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("The request body is not valid JSON: {e}"))?;
    let obj = match value {
        Value::Object(o) => o,
        Value::Array(_) => return Err("Batched requests (a JSON array) are not supported".into()),
        _ => return Err("The request body must be a JSON object".into()),
    };
    let query = match obj.get("query") {
        Some(Value::String(q)) => q.clone(),
        None | Some(Value::Null) => return Err("The request has no 'query'".into()),
        Some(_) => return Err("'query' must be a string".into()),
    };
    let operation_name = match obj.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("'operationName' must be a string or null".into()),
    };
    Ok(GraphqlRequest {
        query,
        variables: field_object(&obj, "variables")?,
        operation_name,
        extensions: field_object(&obj, "extensions")?,
    })
}

fn from_query_string(uri: &axum::http::Uri) -> Result<GraphqlRequest, String> {
    let pairs: Vec<(String, String)> = url_pairs(uri.query().unwrap_or(""));
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let json_object = |k: &str| -> Result<Option<Map<String, Value>>, String> {
        match get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => Ok(Some(m)),
                Ok(Value::Null) => Ok(None),
                _ => Err(format!("'{k}' must be a JSON object")),
            },
        }
    };
    Ok(GraphqlRequest {
        query: get("query").ok_or("The request has no 'query' parameter")?,
        variables: json_object("variables")?,
        operation_name: get("operationName").filter(|s| !s.is_empty()),
        extensions: json_object("extensions")?,
    })
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap_or_default()
}

/// The operation a request would run, if the document parses.
fn operation_type(req: &GraphqlRequest) -> Option<OperationType> {
    infrastream_graphql::operation_type(&req.query, req.operation_name.as_deref())
}

fn branch_from_path(path: Option<Path<String>>) -> String {
    path.map(|Path(b)| b)
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".into())
}

/// `/graphql` and `/graphql/{*branch}`, GET and POST.
pub(crate) async fn handle(
    State(state): State<AppState>,
    path: Option<Path<String>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if parts.method == Method::GET && wants_html(&parts.headers) {
        return graphiql::page(&parts.uri);
    }
    let Some(media) = negotiate(&parts.headers) else {
        let mut r = reply::error_with_status(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "Accept must allow application/graphql-response+json or application/json",
        );
        r.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/graphql-response+json; charset=utf-8, application/json; charset=utf-8",
            ),
        );
        return r;
    };
    let auth = match authenticate(&state, credential_from_headers(&parts.headers)).await {
        Ok(a) => a,
        Err(e) => return reply::error(&e),
    };
    let branch = branch_from_path(path);
    if let Some(refusal) = state.refuse_unknown_branch(&branch).await {
        return refusal;
    }
    let parsed = if parts.method == Method::POST {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" {
            return reply::error_with_status(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "Content-Type must be application/json",
            );
        }
        let limit = state.settings().max_body_bytes;
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(_) => {
                return reply::payload_too_large(limit);
            }
        };
        from_json(&bytes)
    } else {
        drop::<Body>(body);
        from_query_string(&parts.uri)
    };
    let req = match parsed {
        Ok(r) => r,
        Err(message) => {
            tracing::debug!(%message, "bad GraphQL request");
            return reply::bad_request(&message);
        }
    };
    if parts.method == Method::GET && operation_type(&req) == Some(OperationType::Mutation) {
        let mut r = reply::error_with_status(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Mutations must be sent with POST",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let query = infrastream_graphql::decode_surrogate_pairs(&req.query).into_owned();
    let mut gql = async_graphql::Request::new(query)
        .data(auth.caller)
        .data(UrlBranch(branch.clone()));
    if let Some(v) = req.variables {
        gql = gql.variables(async_graphql::Variables::from_json(Value::Object(v)));
    }
    if let Some(name) = req.operation_name {
        gql = gql.operation_name(name);
    }
    if let Some(ext) = req.extensions {
        for (k, v) in ext {
            if let Ok(v) = async_graphql::Value::from_json(v) {
                gql.extensions.insert(k, v);
            }
        }
    }
    // Parsed once: the schema that runs the request reuses this document.
    let operation = gql.operation_name.clone();
    let route = match gql.parsed_query() {
        Ok(document) => {
            state
                .data_schemas
                .route(
                    &state.services.domain,
                    &branch,
                    document,
                    operation.as_deref(),
                )
                .await
        }
        Err(_) => Route::Builtin,
    };
    let response = match route {
        Route::Builtin => state.schema.execute(gql).await,
        Route::Data(data) => data.schema.execute(gql).await,
        Route::Mixed(message) => return reply::bad_request(&message),
    };
    respond(media, response)
}

fn respond(media: MediaType, response: async_graphql::Response) -> Response {
    let request_error = is_request_error(&response);
    if !response.errors.is_empty() {
        // Codes only: messages may quote the document, and a document may hold a secret.
        let codes: Vec<String> = response
            .errors
            .iter()
            .map(
                |e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                    Some(async_graphql::Value::String(c)) => c.clone(),
                    _ => "UNKNOWN".to_owned(),
                },
            )
            .collect();
        tracing::debug!(?codes, request_error, "GraphQL response with errors");
    }
    let mut body = Map::new();
    if !(request_error && media == MediaType::GraphqlResponseJson) {
        body.insert(
            "data".into(),
            serde_json::to_value(&response.data).unwrap_or(Value::Null),
        );
    }
    if !response.errors.is_empty() {
        body.insert(
            "errors".into(),
            serde_json::to_value(&response.errors).unwrap_or(Value::Null),
        );
    }
    if !response.extensions.is_empty() {
        body.insert(
            "extensions".into(),
            serde_json::to_value(&response.extensions).unwrap_or(Value::Null),
        );
    }
    let status = if request_error && media == MediaType::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let content_type = match media {
        MediaType::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
        MediaType::Json => APPLICATION_JSON,
    };
    let mut r = (status, Value::Object(body).to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_negotiation_follows_list_order() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("*/*")), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json"
            )),
            Some(MediaType::GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(&accept("text/plain, application/json;q=0.9")),
            Some(MediaType::Json)
        );
        assert_eq!(negotiate(&accept("text/plain")), None);
    }

    #[test]
    fn json_body_shapes() {
        assert!(from_json(b"").is_err());
        assert!(
            from_json(b"[{\"query\":\"{a}\"}]")
                .unwrap_err()
                .contains("Batched")
        );
        assert!(from_json(b"{\"query\": 1}").is_err());
        assert!(from_json(b"{\"query\": \"{a}\", \"variables\": \"x\"}").is_err());
        let ok = from_json(b"{\"query\": \"{a}\", \"variables\": null, \"operationName\": null}")
            .unwrap();
        assert_eq!(ok.query, "{a}");
    }

    #[test]
    fn operation_type_of_named_operations() {
        let req = GraphqlRequest {
            query: "query A { a } mutation B { b }".into(),
            variables: None,
            operation_name: Some("B".into()),
            extensions: None,
        };
        assert_eq!(operation_type(&req), Some(OperationType::Mutation));
    }
}
