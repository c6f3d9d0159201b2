//! Following the log: the `events` subscription over WebSocket (graphql-transport-ws) with the
//! filters given. Whenever the connection drops — the server restarts, the network blips — it
//! reconnects with backoff and resumes with `after` = the last event handed out, so every
//! event is handed out once and none is skipped. Refused credentials, a bad filter or a
//! pruned cursor end it with the server's message.

use crate::{Client, ClientError, EVENT_FIELDS};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Which events to follow (each list: any of these; empty: all).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Event names (`infrahub.branch.created`, …).
    pub types: Vec<String>,
    /// Branch names.
    pub branches: Vec<String>,
    /// Node ids: the event's primary node.
    pub nodes: Vec<String>,
    /// Account ids.
    pub accounts: Vec<String>,
}

impl Filters {
    /// The filter arguments as GraphQL variables, with `after`.
    fn variables(&self, after: Option<&str>) -> Value {
        let list = |l: &Vec<String>| (!l.is_empty()).then(|| json!(l));
        json!({
            "types": list(&self.types),
            "branches": list(&self.branches),
            "nodes": list(&self.nodes),
            "accounts": list(&self.accounts),
            "after": after,
        })
    }
}

/// Where following starts.
#[derive(Debug, Clone)]
pub enum Start {
    /// With the next event committed.
    Now,
    /// After the event with this id.
    After(String),
    /// With the oldest event in the log (that matches).
    FromStart,
}

const SUBSCRIPTION: &str = "subscription($types: [String!], $branches: [String!], $nodes: [String!], $accounts: [String!], $after: String) { events(event_type: $types, branches: $branches, primary_node__ids: $nodes, account__ids: $accounts, after: $after) { FIELDS } }";

/// The oldest event in the log, whatever the filters.
const OLDEST: &str = "{ InfrahubEvent(order: ASC, limit: 1) { edges { node { id } } } }";

/// That event, if it matches the filters.
const IF_MATCHING: &str = "query($types: [String!], $branches: [String!], $nodes: [String!], $accounts: [String!], $ids: [String!]) { InfrahubEvent(event_type: $types, branches: $branches, primary_node__ids: $nodes, account__ids: $accounts, ids: $ids) { edges { node { FIELDS } } } }";

/// How one connection ended.
enum Ended {
    /// `deliver` asked to stop.
    Stopped,
    /// Lost: try again (why).
    Lost(String),
}

/// Follows the log from `start`, handing each event to `deliver` until it returns `false`
/// (then `Ok`) or the server refuses (then the error). `notice` hears about reconnections.
pub async fn tail(
    client: &Client,
    filters: &Filters,
    start: Start,
    mut deliver: impl FnMut(&Value) -> bool,
    mut notice: impl FnMut(&str),
) -> Result<(), ClientError> {
    // The credentials are checked over HTTP first: a socket may accept an unknown token as
    // anonymous, and following would then wait forever instead of saying so.
    client.graphql(None, "{ __typename }", json!({})).await?;
    let mut after = match start {
        Start::Now => None,
        Start::After(id) => Some(id),
        // The subscription starts after an event, so from the start means: hand out the
        // oldest event of the log if it matches, then follow after it. (After the oldest
        // *matching* one would miss matching events committed while the subscription is set
        // up when there is none yet.) Only an empty log starts with the next event.
        Start::FromStart => {
            let oldest = client.graphql(None, OLDEST, json!({})).await?;
            match oldest["InfrahubEvent"]["edges"][0]["node"]["id"].as_str() {
                Some(id) => {
                    let mut variables = filters.variables(None);
                    variables["ids"] = json!([id]);
                    let query = IF_MATCHING.replace("FIELDS", EVENT_FIELDS);
                    let data = client.graphql(None, &query, variables).await?;
                    if let Some(first) = data["InfrahubEvent"]["edges"][0]["node"].as_object()
                        && !deliver(&Value::Object(first.clone()))
                    {
                        return Ok(());
                    }
                    Some(id.to_owned())
                }
                None => None,
            }
        }
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match session(client, filters, &mut after, &mut deliver).await? {
            Ended::Stopped => return Ok(()),
            Ended::Lost(why) => {
                notice(&format!(
                    "connection lost ({why}); reconnecting in {} ms",
                    backoff.as_millis()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// One connection: init, subscribe after `after`, hand out events (moving `after`).
async fn session(
    client: &Client,
    filters: &Filters,
    after: &mut Option<String>,
    deliver: &mut impl FnMut(&Value) -> bool,
) -> Result<Ended, ClientError> {
    let url = client.graphql_ws_url();
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws"
            .parse()
            .expect("a valid header value"),
    );
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        false,
        client.ws_connector(),
    );
    let mut ws = match connecting.await {
        Ok((ws, _)) => ws,
        Err(e) => return Ok(Ended::Lost(e.to_string())),
    };
    let init = match client.token() {
        Some(t) => json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": t}}),
        None => json!({"type": "connection_init", "payload": {}}),
    };
    if let Err(e) = ws.send(Message::text(init.to_string())).await {
        return Ok(Ended::Lost(e.to_string()));
    }
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return match code {
                    4401 | 4403 => Err(ClientError::Auth(reason)),
                    4400 | 4406 | 4409 | 4429 => Err(ClientError::Server(reason)),
                    _ => Ok(Ended::Lost(format!("closed with {code} {reason}"))),
                };
            }
            Ok(_) => continue,
            Err(e) => return Ok(Ended::Lost(e.to_string())),
        };
        let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match frame["type"].as_str() {
            Some("connection_ack") => {
                let subscribe = json!({"id": "tail", "type": "subscribe", "payload": {
                    "query": SUBSCRIPTION.replace("FIELDS", EVENT_FIELDS),
                    "variables": filters.variables(after.as_deref()),
                }});
                if let Err(e) = ws.send(Message::text(subscribe.to_string())).await {
                    return Ok(Ended::Lost(e.to_string()));
                }
            }
            Some("ping") => {
                let _ = ws
                    .send(Message::text(json!({"type": "pong"}).to_string()))
                    .await;
            }
            Some("next") => {
                let event = &frame["payload"]["data"]["events"];
                if let Some(message) = frame["payload"]["errors"][0]["message"].as_str() {
                    return Err(ClientError::Server(message.to_owned()));
                }
                if let Some(id) = event["id"].as_str() {
                    *after = Some(id.to_owned());
                    if !deliver(event) {
                        let _ = ws.close(None).await;
                        return Ok(Ended::Stopped);
                    }
                }
            }
            Some("error") => {
                let message = frame["payload"][0]["message"]
                    .as_str()
                    .unwrap_or("the subscription was refused");
                return Err(ClientError::Server(message.to_owned()));
            }
            Some("complete") => return Ok(Ended::Lost("the server ended the subscription".into())),
            _ => {}
        }
    }
    Ok(Ended::Lost("the connection ended".into()))
}
