//! The subscription root: `events` (push delivery from the log, with gap-free resume via
//! `after`) and `query` (a saved query run every interval, multiplexed through the
//! [`QueryHub`](crate::QueryHub)).

use crate::context::{Res, api, caller, gql, services, store_err, url_branch};
use crate::cursor_pruned;
use crate::events::{EventNode, EventTypeFilter, FilterArgs};
use crate::query_hub::{GroupKey, TickResult};
use crate::scalars::{DateTime, GenericScalar};
use async_graphql::{Context, Subscription};
use futures::stream::{self, BoxStream, StreamExt};
use infrastream_bus::{Bus, READ_BATCH};
use infrastream_config::IntervalUnit;
use infrastream_core::{Error, Event, EventFilter, Position};
use infrastream_store::StoreError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use uuid::Uuid;

/// Request data: resolve `events` for this one event only (used to render an event once for
/// every subscriber of the same document).
pub struct SingleEvent(pub Arc<Event>);

/// Request data: resolve `query` for this one tick only (used to render a tick once for every
/// subscriber of the same document).
pub struct SingleTick(pub Arc<TickResult>);

/// Request data: instead of streaming, put the `query` subscription's feed of ticks here, so
/// the WebSocket session can serve it with shared rendering.
#[derive(Clone, Default)]
pub struct CaptureQueryPlan(pub Arc<std::sync::Mutex<Option<QueryFeed>>>);

/// A `query` subscriber's view of its group's ticks.
pub struct QueryFeed {
    group: u64,
    rx: watch::Receiver<crate::query_hub::Latest>,
    last: Option<Arc<TickResult>>,
    seen: u64,
    first: bool,
    only_changes: bool,
    _gauge: SubscriptionGauge,
}

impl QueryFeed {
    /// The id of the group whose results this feed delivers.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// Another receiver of the group's results (which keeps the group running).
    pub fn receiver(&self) -> watch::Receiver<crate::query_hub::Latest> {
        self.rx.clone()
    }

    /// The number of the last tick seen (delivered or skipped as unchanged).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether results equal to the last delivered one are skipped.
    pub fn only_changes(&self) -> bool {
        self.only_changes
    }

    /// The last result delivered.
    pub fn last(&self) -> Option<Arc<TickResult>> {
        self.last.clone()
    }

    /// The next result to deliver: the latest at once, then each new tick's, skipping results
    /// equal to the last delivered with `only_changes`. `None` when the group stopped.
    pub async fn next(&mut self) -> Option<Arc<TickResult>> {
        loop {
            if self.first {
                self.first = false;
            } else {
                self.rx.changed().await.ok()?;
            }
            let Some((tick, result)) = self.rx.borrow_and_update().clone() else {
                continue;
            };
            if tick == self.seen {
                continue;
            }
            self.seen = tick;
            // The hub republishes the same `Arc` for an unchanged result: compare pointers first.
            let unchanged = self
                .last
                .as_ref()
                .is_some_and(|l| Arc::ptr_eq(l, &result) || **l == *result);
            if self.only_changes && unchanged {
                continue;
            }
            self.last = Some(result.clone());
            return Some(result);
        }
    }
}

fn tick_value(result: &TickResult) -> Res<Option<GenericScalar>> {
    match result {
        TickResult::Data(d) => Ok(Some(GenericScalar(d.clone()))),
        TickResult::Errors(e) => Err(async_graphql::Error::new(e.join("; "))),
    }
}

/// Request data: instead of streaming, put the `events` subscription's cursor here (validated
/// arguments, resolved `after`), so the WebSocket session can serve it with shared rendering.
#[derive(Clone, Default)]
pub struct CaptureEventsPlan(pub Arc<std::sync::Mutex<Option<EventCursor>>>);

/// Root subscription type.
#[derive(Default)]
pub struct Subscription;

/// One step of an [`EventCursor`].
pub enum CursorStep {
    /// The next matching event.
    Event(Arc<Event>),
    /// Nothing left up to the head of the log: the cursor is at [`EventCursor::position`].
    CaughtUp,
    /// The store failed (the next step tries again).
    Failed(async_graphql::Error),
    /// The events after the cursor were pruned (`CURSOR_PRUNED`): the subscription cannot go
    /// on without a gap and ends with this error; the cursor yields nothing more.
    Pruned(async_graphql::Error),
}

/// A subscriber's position in the log, its filter and what it has read but not yet delivered.
/// Replay from an old position runs at the consumer's pace: the cursor reads a batch only
/// when the previous one was delivered, so a subscriber far behind costs a cursor, never a
/// queue, and is never refused for being far behind.
pub struct EventCursor {
    bus: Bus,
    head: watch::Receiver<Position>,
    at: Position,
    filter: EventFilter,
    pending: VecDeque<Arc<Event>>,
    metrics: Arc<crate::Metrics>,
    lagging: bool,
    last_delivered: Option<Uuid>,
    gauge: Option<SubscriptionGauge>,
    /// Ended by a pruned range: nothing more comes.
    ended: bool,
}

impl EventCursor {
    fn set_lagging(&mut self, lagging: bool) {
        if lagging != self.lagging {
            self.lagging = lagging;
            let delta = if lagging { 1 } else { -1 };
            self.metrics
                .lagging_consumers
                .fetch_add(delta, Ordering::Relaxed);
        }
    }

    /// Position of the last event read (delivered or filtered out) when nothing is pending.
    pub fn position(&self) -> Position {
        self.at
    }

    /// The subscription's filter.
    pub fn filter(&self) -> &EventFilter {
        &self.filter
    }

    /// Id of the last event delivered (or the `after` the subscription started from).
    pub fn last_delivered(&self) -> Option<Uuid> {
        self.last_delivered
    }

    /// Takes the subscription's place in `infrastream_subscriptions`, to be held by whatever
    /// serves the subscription once the cursor is no longer needed.
    pub fn take_gauge(&mut self) -> Option<SubscriptionGauge> {
        self.gauge.take()
    }

    /// The bus the cursor reads from.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The next matching event up to the current head of the log, or `CaughtUp`.
    pub async fn step(&mut self) -> CursorStep {
        loop {
            if self.ended {
                return CursorStep::Pruned(async_graphql::Error::new("The subscription ended"));
            }
            if let Some(e) = self.pending.pop_front() {
                self.last_delivered = Some(e.id);
                return CursorStep::Event(e);
            }
            let head = *self.head.borrow_and_update();
            if self.at >= head {
                self.set_lagging(false);
                return CursorStep::CaughtUp;
            }
            self.set_lagging(head.0 - self.at.0 > READ_BATCH as u64);
            match self.bus.read_after(self.at, READ_BATCH).await {
                Ok(batch) => {
                    let Some(last) = batch.last() else {
                        return CursorStep::CaughtUp;
                    };
                    self.at = last.position;
                    let filter = &self.filter;
                    self.pending
                        .extend(batch.into_iter().filter(|e| filter.matches(e)));
                }
                Err(StoreError::Pruned { .. }) => {
                    self.ended = true;
                    self.set_lagging(false);
                    let store = self.bus.store().clone();
                    return CursorStep::Pruned(
                        cursor_pruned::replay_pruned(&*store, self.last_delivered).await,
                    );
                }
                Err(e) => return CursorStep::Failed(store_err(e)),
            }
        }
    }

    /// The next matching event; waits for commits when caught up. `None` when the bus stops,
    /// and after the error of a pruned range.
    pub async fn next(&mut self) -> Option<Res<Arc<Event>>> {
        if self.ended {
            return None;
        }
        loop {
            match self.step().await {
                CursorStep::Event(e) => return Some(Ok(e)),
                CursorStep::Failed(e) | CursorStep::Pruned(e) => return Some(Err(e)),
                CursorStep::CaughtUp => {
                    if self.head.changed().await.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

impl Drop for EventCursor {
    fn drop(&mut self) {
        self.set_lagging(false);
    }
}

/// Counts one subscription in `infrastream_subscriptions` for as long as it is held (it
/// outlives the cursor of an `events` subscription that went live).
pub struct SubscriptionGauge {
    metrics: Arc<crate::Metrics>,
    events: bool,
}

impl SubscriptionGauge {
    fn new(metrics: Arc<crate::Metrics>, events: bool) -> Self {
        let gauge = if events {
            &metrics.subscriptions_events
        } else {
            &metrics.subscriptions_query
        };
        gauge.fetch_add(1, Ordering::Relaxed);
        Self { metrics, events }
    }
}

impl Drop for SubscriptionGauge {
    fn drop(&mut self) {
        let gauge = if self.events {
            &self.metrics.subscriptions_events
        } else {
            &self.metrics.subscriptions_query
        };
        gauge.fetch_sub(1, Ordering::Relaxed);
    }
}

#[Subscription(rename_args = "snake_case")]
impl Subscription {
    /// Every committed event matching the filters, in position order, as it is committed.
    /// With `after: <event id>`, the stored events after that one come first, then live ones,
    /// with no gap and no duplicate. When that event (or one the replay is about to deliver)
    /// was pruned by the log's retention, the subscription fails with `CURSOR_PRUNED`.
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        ctx: &Context<'_>,
        level: Option<i32>,
        has_children: Option<bool>,
        event_type: Option<Vec<String>>,
        event_type_filter: Option<EventTypeFilter>,
        #[graphql(name = "primary_node__ids")] primary_node_ids: Option<Vec<String>>,
        #[graphql(name = "related_node__ids")] related_node_ids: Option<Vec<String>>,
        #[graphql(name = "parent__ids")] parent_ids: Option<Vec<String>>,
        since: Option<DateTime>,
        until: Option<DateTime>,
        branches: Option<Vec<String>>,
        #[graphql(name = "account__ids")] account_ids: Option<Vec<String>>,
        ids: Option<Vec<String>>,
        after: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, Res<EventNode>>> {
        if let Some(SingleEvent(e)) = ctx.data_opt::<SingleEvent>() {
            let node = EventNode::from(e.clone());
            return Ok(stream::once(async move { Ok(node) }).boxed());
        }
        let filter = FilterArgs {
            level,
            has_children,
            event_type,
            event_type_filter,
            primary_node_ids,
            related_node_ids,
            parent_ids,
            since,
            until,
            branches,
            account_ids,
            ids,
        }
        .into_filter(caller(ctx))?;
        let s = services(ctx);
        let mut head = s.bus.head();
        let resume_from = after.as_deref().and_then(|a| Uuid::parse_str(a).ok());
        let at = match after {
            None => *head.borrow_and_update(),
            Some(id) => {
                let uuid = Uuid::parse_str(&id).map_err(|_| {
                    gql(Error::invalid(format!(
                        "Invalid UUID '{id}' in argument 'after'"
                    )))
                })?;
                match s.store.event_position(uuid).await.map_err(store_err)? {
                    Some(position) => position,
                    // Not in the log: pruned, or never there (see `LogStart::covers`).
                    None if s.store.log_start().await.map_err(store_err)?.covers(uuid) => {
                        return Err(cursor_pruned::after_pruned(&*s.store, &id).await);
                    }
                    None => {
                        return Err(gql(Error::not_found(format!(
                            "Event {id} not found (argument 'after')"
                        ))));
                    }
                }
            }
        };
        let cursor = EventCursor {
            gauge: Some(SubscriptionGauge::new(api(ctx).metrics.clone(), true)),
            bus: s.bus.clone(),
            head,
            at,
            filter,
            pending: VecDeque::new(),
            metrics: api(ctx).metrics.clone(),
            lagging: false,
            last_delivered: resume_from,
            ended: false,
        };
        if let Some(capture) = ctx.data_opt::<CaptureEventsPlan>() {
            // The session serves this subscription itself (see `fanout`): hand it the cursor.
            *capture.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(cursor);
            return Ok(stream::empty().boxed());
        }
        Ok(stream::unfold(cursor, |mut c| async move {
            let item = c.next().await?;
            Some((item.map(EventNode::from), c))
        })
        .boxed())
    }

    /// Runs the saved query `name` on the URL's branch with `params` as variables: a result at
    /// once, then every `interval` milliseconds (or seconds, per `subscriptions.interval_unit`),
    /// raised to the configured minimum. `only_changes` skips results equal to the last one.
    async fn query(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        params: Option<GenericScalar>,
        interval: Option<i32>,
        #[graphql(default = false)] only_changes: bool,
    ) -> async_graphql::Result<BoxStream<'static, Res<Option<GenericScalar>>>> {
        if let Some(SingleTick(result)) = ctx.data_opt::<SingleTick>() {
            let value = tick_value(result);
            return Ok(stream::once(async move { value }).boxed());
        }
        // Optional in Infrahub's declaration, required in practice.
        let name = name.ok_or_else(|| {
            gql(Error::invalid(
                "The argument 'name' (the saved query to run) is required",
            ))
        })?;
        let s = services(ctx);
        let exists = s
            .store
            .saved_queries()
            .await
            .map_err(store_err)?
            .iter()
            .any(|q| q.name == name);
        if !exists {
            return Err(gql(Error::not_found(format!(
                "Saved query '{name}' not found"
            ))));
        }
        let settings = &s.settings.subscriptions;
        let interval_ms = match interval {
            Some(i) if i <= 0 => return Err(gql(Error::invalid("interval must be positive"))),
            Some(i) => match settings.interval_unit {
                IntervalUnit::Milliseconds => i as u64,
                IntervalUnit::Seconds => i as u64 * 1000,
            },
            None => settings.default_interval_ms,
        }
        .max(settings.min_interval_ms);
        let params = params.map(|p| p.0).unwrap_or_else(|| serde_json::json!({}));
        if !params.is_object() {
            return Err(gql(Error::invalid("params must be an object of variables")));
        }
        let who = caller(ctx).clone();
        let key = GroupKey {
            name,
            params: params.to_string(),
            branch: url_branch(ctx),
            interval_ms,
            account: who.account_id(),
        };
        let api = api(ctx);
        let gauge = SubscriptionGauge::new(api.metrics.clone(), false);
        let (group, rx) =
            api.query_hub
                .join(key, params, who, api.metrics.clone(), s.store.clone());
        let feed = QueryFeed {
            group,
            rx,
            last: None,
            seen: 0,
            first: true,
            only_changes,
            _gauge: gauge,
        };
        if let Some(capture) = ctx.data_opt::<CaptureQueryPlan>() {
            // The session serves this subscription itself, rendering each tick once per document.
            *capture.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(feed);
            return Ok(stream::empty().boxed());
        }
        Ok(stream::unfold(feed, |mut feed| async move {
            let result = feed.next().await?;
            Some((tick_value(&result), feed))
        })
        .boxed())
    }
}
