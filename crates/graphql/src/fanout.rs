//! Serialize once, fan out bytes: every `events` (or `query`) subscriber with the same
//! document and variables shares one [`EventRenderer`], which executes the document for one
//! event (or one tick of a saved query) once and caches the JSON payload; each subscriber then
//! frames the shared bytes with its own id.
//! Running async-graphql once per subscriber per event would cost tens of microseconds each,
//! hundreds of milliseconds per event at 10,000 subscribers.

use crate::query_hub::TickResult;
use crate::subscriptions::{SingleEvent, SingleTick};
use crate::{Caller, InfraSchema};
use async_graphql::parser::types::{OperationType, Selection};
use async_graphql::{Request, Variables};
use futures::StreamExt;
use infrastream_core::{Event, Position};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

/// Whether the document's operation is a subscription whose only root field is `events`.
pub fn is_events_subscription(query: &str, operation_name: Option<&str>) -> bool {
    single_root_field(query, operation_name).as_deref() == Some("events")
}

/// Whether the document's operation is a subscription whose only root field is `query`.
pub fn is_query_subscription(query: &str, operation_name: Option<&str>) -> bool {
    single_root_field(query, operation_name).as_deref() == Some("query")
}

/// The name of the only root field of a subscription operation, if it has exactly one.
fn single_root_field(query: &str, operation_name: Option<&str>) -> Option<String> {
    let op = crate::selected_operation(query, operation_name)?;
    let items = &op.node.selection_set.node.items;
    if op.node.ty != OperationType::Subscription || items.len() != 1 {
        return None;
    }
    match &items[0].node {
        Selection::Field(f) => Some(f.node.name.node.to_string()),
        _ => None,
    }
}

/// What a cached payload was rendered from.
enum Rendered {
    /// The event at this position (the same event for every subscriber).
    Event(Position),
    /// This result of a saved query. Groups of different accounts or branches run the same
    /// document to different results with the same tick numbers, so the result itself is the
    /// key (held, so its address cannot be reused while cached); an unchanged result keeps its
    /// `Arc` from tick to tick.
    Tick(Arc<TickResult>),
}

impl PartialEq for Rendered {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Rendered::Event(a), Rendered::Event(b)) => a == b,
            (Rendered::Tick(a), Rendered::Tick(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// Renders events (or saved-query ticks) for one (document, variables, operation name).
pub struct EventRenderer {
    schema: InfraSchema,
    query: String,
    variables: serde_json::Value,
    operation_name: Option<String>,
    cache: tokio::sync::Mutex<VecDeque<(Rendered, Arc<str>)>>,
    /// Renderings kept (`renderer_cache_events`).
    cache_events: usize,
}

impl EventRenderer {
    /// The GraphQL response JSON (`{"data":{…}}`) of this document for `event`.
    pub async fn render(&self, event: &Arc<Event>, caller: &Caller) -> Arc<str> {
        self.render_with(
            Rendered::Event(event.position),
            SingleEvent(event.clone()),
            caller,
        )
        .await
    }

    /// The response JSON of this `query` subscription document for one result of its saved
    /// query.
    pub async fn render_tick(&self, result: &Arc<TickResult>, caller: &Caller) -> Arc<str> {
        self.render_with(
            Rendered::Tick(result.clone()),
            SingleTick(result.clone()),
            caller,
        )
        .await
    }

    async fn render_with(
        &self,
        key: Rendered,
        data: impl std::any::Any + Send + Sync,
        caller: &Caller,
    ) -> Arc<str> {
        let mut cache = self.cache.lock().await;
        if let Some((_, payload)) = cache.iter().rev().find(|(p, _)| *p == key) {
            return payload.clone();
        }
        let mut request = Request::new(self.query.clone())
            .variables(Variables::from_json(self.variables.clone()))
            .data(data)
            .data(caller.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        let response = self.schema.execute_stream(request).next().await;
        let payload: Arc<str> = match response.map(|r| serde_json::to_string(&r)) {
            Some(Ok(json)) => json.into(),
            _ => r#"{"errors":[{"message":"Internal server error"}]}"#.into(),
        };
        if cache.len() >= self.cache_events {
            cache.pop_front();
        }
        cache.push_back((key, payload.clone()));
        payload
    }
}

/// The shared renderers, by document.
pub struct Renderers {
    map: Mutex<HashMap<String, Weak<EventRenderer>>>,
    /// Renderings each renderer keeps (`renderer_cache_events`).
    cache_events: usize,
    /// Registry size past which renderers nobody uses are swept
    /// (`renderer_registry_sweep_threshold`).
    sweep_threshold: usize,
}

impl Renderers {
    /// An empty registry whose renderers keep `cache_events` renderings each.
    pub fn new(cache_events: usize, sweep_threshold: usize) -> Self {
        Self {
            map: Mutex::default(),
            cache_events: cache_events.max(1),
            sweep_threshold,
        }
    }

    /// The renderer for this document, shared with every other subscriber of it.
    pub fn get(
        &self,
        schema: &InfraSchema,
        query: &str,
        variables: &serde_json::Value,
        operation_name: Option<&str>,
    ) -> Arc<EventRenderer> {
        let key = format!(
            "{query}\u{0}{variables}\u{0}{}",
            operation_name.unwrap_or("")
        );
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = map.get(&key).and_then(Weak::upgrade) {
            return r;
        }
        if map.len() > self.sweep_threshold {
            map.retain(|_, w| w.strong_count() > 0);
        }
        let r = Arc::new(EventRenderer {
            schema: schema.clone(),
            query: query.to_owned(),
            variables: variables.clone(),
            operation_name: operation_name.map(str::to_owned),
            cache: tokio::sync::Mutex::new(VecDeque::new()),
            cache_events: self.cache_events,
        });
        map.insert(key, Arc::downgrade(&r));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::is_events_subscription as is;

    #[test]
    fn recognizes_single_events_root() {
        assert!(is("subscription { events { id } }", None));
        assert!(is(
            "subscription S($t: [String!]) { e: events(event_type: $t) { id } }",
            Some("S")
        ));
        assert!(!is("subscription { query(name: \"x\") }", None));
        assert!(!is("subscription { events { id } __typename }", None));
        assert!(!is("{ events }", None));
        // One named operation and no operation name: that operation (GraphQL's rule), as
        // graphql-ws sends it when the caller gives no `operationName`.
        assert!(is("subscription Named { events { id } }", None));
        assert!(!is(
            "subscription A { events { id } } subscription B { events { id } }",
            None
        ));
    }
}
