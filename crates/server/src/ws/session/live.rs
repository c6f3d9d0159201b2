//! How a subscription is prepared and made live: `events` subscriptions replay from their
//! cursor in the session, then go to a fan-out shard; `query` subscriptions deliver their
//! first result from the session, then go to their group's tick task. The hand-over is
//! refused (and retried after more catching up) whenever it could skip or repeat anything.

use super::{Flow, Output, Session};
use crate::ws::fanout::{LiveSubscription, Outlet, Registration};
use crate::ws::ticks::{LiveQuery, QueryRegistration};
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use infrastream_graphql::{
    Caller, CaptureEventsPlan, CaptureQueryPlan, CursorStep, EventCursor, EventRenderer,
    InfraSchema, QueryFeed, SubscriptionGauge,
};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// A `query` subscription whose latest result the session delivered.
pub(super) struct QueryStart {
    pub(super) feed: QueryFeed,
    pub(super) renderer: Arc<EventRenderer>,
    pub(super) caller: Arc<Caller>,
}

/// How a live subscription is served; dropping it ends the service.
pub(super) enum Live {
    /// By a fan-out shard; the gauge keeps the subscription counted.
    Events {
        _registration: Registration,
        _gauge: Option<SubscriptionGauge>,
    },
    /// By its group's tick task; the feed keeps the subscription counted. Boxed: every
    /// operation holds a `Live`, and most are `events`.
    Query(#[allow(dead_code)] Box<(QueryRegistration, QueryFeed)>),
}

/// An `events` subscription being served by this task.
pub(super) struct CatchUp {
    pub(super) cursor: EventCursor,
    pub(super) renderer: Arc<EventRenderer>,
    /// Shared by every live subscription of the connection.
    pub(super) caller: Arc<Caller>,
}

impl Session {
    /// Prepares an `events` subscription: async-graphql validates the document and resolves
    /// the arguments (capturing the cursor), and the renderer shared by every subscriber of
    /// the same document is looked up.
    pub(super) fn events_catch_up(
        &self,
        request: async_graphql::Request,
        doc: Document<'_>,
        caller: Arc<Caller>,
    ) -> impl std::future::Future<Output = Result<CatchUp, Vec<async_graphql::ServerError>>>
    + Send
    + 'static {
        let (schema, renderer) = self.renderer(doc);
        async move {
            let capture = CaptureEventsPlan::default();
            probe(&schema, request.data(capture.clone())).await?;
            let cursor = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            Ok(CatchUp {
                cursor: cursor.ok_or_else(internal)?,
                renderer,
                caller,
            })
        }
    }

    /// Prepares a `query` subscription the same way: its feed of ticks is captured, and each
    /// tick is rendered once for every subscriber of the same document.
    pub(super) fn query_ticks(
        &self,
        request: async_graphql::Request,
        doc: Document<'_>,
        caller: Arc<Caller>,
    ) -> impl std::future::Future<
        Output = Result<BoxStream<'static, Output>, Vec<async_graphql::ServerError>>,
    > + Send
    + 'static {
        let (schema, renderer) = self.renderer(doc);
        async move {
            let capture = CaptureQueryPlan::default();
            probe(&schema, request.data(capture.clone())).await?;
            let feed = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take();
            let start = QueryStart {
                feed: feed.ok_or_else(internal)?,
                renderer,
                caller,
            };
            Ok(query_stream(start))
        }
    }

    pub(super) fn renderer(&self, doc: Document<'_>) -> (InfraSchema, Arc<EventRenderer>) {
        let schema = self.state.schema.clone();
        let renderer = self.state.services.renderers.get(
            &schema,
            doc.query,
            doc.variables,
            doc.operation_name,
        );
        (schema, renderer)
    }

    /// Hands a caught-up `events` subscription to a fan-out shard, or keeps replaying when
    /// the shard has already dispatched past the cursor.
    pub(super) fn go_live(&mut self, id: &str, mut catch_up: CatchUp) -> Flow {
        let Some(op) = self.ops.get_mut(id) else {
            return Flow::Continue;
        };
        let (renderer, caller) = (&catch_up.renderer, &catch_up.caller);
        let live = LiveSubscription {
            outlet: Outlet::new(self.socket.clone(), op.prefix.as_str(), renderer, caller),
            filter: catch_up.cursor.filter().clone(),
            at: AtomicU64::new(catch_up.cursor.position().0),
        };
        match self.state.fanout.register(live) {
            Ok(registration) => {
                op.live = Some(Live::Events {
                    _registration: registration,
                    _gauge: catch_up.cursor.take_gauge(),
                });
                Flow::Continue
            }
            Err(_) => self.stay_on_stream(id, catch_up_stream(catch_up)),
        }
    }

    /// Keeps operation `id` on its own stream of `responses` when the shared fanout refuses
    /// it.
    fn stay_on_stream(&mut self, id: &str, responses: BoxStream<'static, Output>) -> Flow {
        if let Some(op) = self.ops.get_mut(id) {
            op.streams += 1;
        }
        let abort = self.push_stream(id, responses);
        if let Some(op) = self.ops.get_mut(id) {
            op.aborts.push(abort);
        }
        Flow::Continue
    }

    /// Hands a `query` subscription whose latest result was delivered to its group's tick
    /// task, or delivers the newer result the task already sent to the others first.
    pub(super) fn go_live_query(&mut self, id: &str, start: QueryStart) -> Flow {
        let Some(op) = self.ops.get_mut(id) else {
            return Flow::Continue;
        };
        let (renderer, caller) = (&start.renderer, &start.caller);
        let live = LiveQuery {
            outlet: Outlet::new(self.socket.clone(), op.prefix.as_str(), renderer, caller),
            only_changes: start.feed.only_changes(),
            last: std::sync::Mutex::new(start.feed.last()),
        };
        let group = start.feed.group();
        let seen = start.feed.seen();
        match self
            .state
            .ticks
            .register(group, start.feed.receiver(), seen, live)
        {
            Ok(registration) => {
                op.live = Some(Live::Query(Box::new((registration, start.feed))));
                Flow::Continue
            }
            Err(_) => self.stay_on_stream(id, query_stream(start)),
        }
    }
}

/// A subscription document: its text, variables and operation name.
#[derive(Clone, Copy)]
pub(super) struct Document<'a> {
    pub(super) query: &'a str,
    pub(super) variables: &'a serde_json::Value,
    pub(super) operation_name: Option<&'a str>,
}

/// Validates and starts `request` without streaming it: the resolver hands its plan to the
/// capture in the request data. Errors before the start (validation, arguments) come back.
async fn probe(
    schema: &InfraSchema,
    request: async_graphql::Request,
) -> Result<(), Vec<async_graphql::ServerError>> {
    let mut probe = schema.execute_stream(request);
    match probe.next().await {
        Some(response) => Err(response.errors),
        None => Ok(()),
    }
}

fn internal() -> Vec<async_graphql::ServerError> {
    vec![async_graphql::ServerError::new(
        "Internal server error",
        None,
    )]
}

/// Delivers a `query` subscription's next result (the latest, at first), then yields
/// `QueryStarted` and ends.
pub(super) fn query_stream(start: QueryStart) -> BoxStream<'static, Output> {
    stream::unfold((Some(start), false), |(state, delivered)| async move {
        let mut q = state?;
        if delivered {
            return Some((Output::QueryStarted(Box::new(q)), (None, true)));
        }
        let result = q.feed.next().await?;
        let payload = q.renderer.render_tick(&result, &q.caller).await;
        Some((Output::Shared(payload), (Some(q), true)))
    })
    .boxed()
}

/// Replays an `events` subscription up to the head of the log, one rendered payload per
/// matching event, then yields `CaughtUp` and ends. When the events it is to replay were
/// pruned, it yields `Failed` (`CURSOR_PRUNED`) and ends.
pub(super) fn catch_up_stream(catch_up: CatchUp) -> BoxStream<'static, Output> {
    stream::unfold(Some(catch_up), |state| async move {
        let mut c = state?;
        match c.cursor.step().await {
            CursorStep::Event(e) => {
                let payload = c.renderer.render(&e, &c.caller).await;
                Some((Output::Shared(payload), Some(c)))
            }
            CursorStep::Failed(e) => {
                let errors = vec![e.into_server_error(Default::default())];
                let response = async_graphql::Response::from_errors(errors);
                Some((Output::Response(Box::new(response)), Some(c)))
            }
            CursorStep::Pruned(e) => {
                // Not about a place in the document: no `locations`.
                let mut error = e.into_server_error(Default::default());
                error.locations.clear();
                Some((Output::Failed(vec![error]), None))
            }
            CursorStep::CaughtUp => Some((Output::CaughtUp(Box::new(c)), None)),
        }
    })
    .boxed()
}
