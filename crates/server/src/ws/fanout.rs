//! Live delivery of `events` subscriptions: fan-out shards that write frames straight to the
//! sockets, without waking one task per subscriber.
//!
//! Each shard (one per core by default, setting `fanout_shards`) owns an index of the live
//! subscriptions assigned to it, keyed by the event names they filter on (subscriptions
//! without a type filter are checked for every event). For each committed event, in position
//! order, a shard takes the subscriptions the event can match, renders the payload once per
//! distinct document (shared with the other shards through the renderer's cache) and writes
//! `header + prefix + payload + }` to each matching socket with one `writev`. A socket that
//! cannot take it at once queues it in its outbox (see [`super::socket`]).
//!
//! A subscription becomes live only once its cursor has caught up with the shard
//! ([`Fanout::register`]): everything up to its position was written by the session, everything
//! after by the shard, so the seam has no gap and no duplicate.

use super::socket::{Sent, Socket};
use infrastream_bus::{Bus, READ_BATCH};
use infrastream_core::{Event, EventFilter, Position};
use infrastream_graphql::{Caller, EventRenderer, Metrics};
use infrastream_store::StoreError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Where the frames of a live subscription (`events` or `query`) go, and how they are made.
pub(crate) struct Outlet {
    pub(crate) socket: Arc<Socket>,
    /// `{"type":"next","id":…,"payload":` (or `data`) of this operation.
    pub(crate) prefix: Box<[u8]>,
    pub(crate) renderer: Arc<EventRenderer>,
    pub(crate) caller: Arc<Caller>,
    /// Set when the session stops the operation: no frame of it is written after that.
    pub(crate) cancelled: AtomicBool,
}

impl Outlet {
    pub(crate) fn new(
        socket: Arc<Socket>,
        prefix: &str,
        renderer: &Arc<EventRenderer>,
        caller: &Arc<Caller>,
    ) -> Self {
        Self {
            socket,
            prefix: prefix.as_bytes().into(),
            renderer: renderer.clone(),
            caller: caller.clone(),
            cancelled: AtomicBool::new(false),
        }
    }
}

/// A live `events` subscription.
pub(crate) struct LiveSubscription {
    pub(crate) outlet: Outlet,
    pub(crate) filter: EventFilter,
    /// Position of the last event written for this subscription (or skipped as not matching).
    pub(crate) at: AtomicU64,
}

#[derive(Default)]
struct Index {
    /// Position of the last event this shard dispatched.
    done: Position,
    subs: HashMap<u64, Arc<LiveSubscription>>,
    by_name: HashMap<String, Vec<u64>>,
    any: Vec<u64>,
}

impl Index {
    fn names(filter: &EventFilter) -> Option<Vec<String>> {
        if filter.any_type() {
            return None;
        }
        let mut names = filter.event_types.clone();
        if filter.branch_merged.is_some() {
            names.push("infrahub.branch.merged".into());
        }
        if filter.branch_rebased.is_some() {
            names.push("infrahub.branch.rebased".into());
        }
        names.sort();
        names.dedup();
        Some(names)
    }

    fn insert(&mut self, key: u64, sub: Arc<LiveSubscription>) {
        match Self::names(&sub.filter) {
            None => self.any.push(key),
            Some(names) => {
                for n in names {
                    self.by_name.entry(n).or_default().push(key);
                }
            }
        }
        self.subs.insert(key, sub);
    }

    fn remove(&mut self, key: u64) {
        let Some(sub) = self.subs.remove(&key) else {
            return;
        };
        match Self::names(&sub.filter) {
            None => self.any.retain(|k| *k != key),
            Some(names) => {
                for n in names {
                    if let Some(list) = self.by_name.get_mut(&n) {
                        list.retain(|k| *k != key);
                        if list.is_empty() {
                            self.by_name.remove(&n);
                        }
                    }
                }
            }
        }
    }

    /// The subscriptions `event` may match, into `out`.
    fn candidates(&self, event: &Event, out: &mut Vec<Arc<LiveSubscription>>) {
        let named = self.by_name.get(event.name.as_str()).into_iter().flatten();
        out.extend(
            named
                .chain(self.any.iter())
                .filter_map(|k| self.subs.get(k).cloned()),
        );
    }
}

struct Shard {
    index: Mutex<Index>,
}

/// The fan-out shards of a server.
pub(crate) struct Fanout {
    shards: Vec<Arc<Shard>>,
    next_key: AtomicU64,
    next_shard: AtomicUsize,
}

/// A registered live subscription; dropping it removes the subscription from its shard.
pub(crate) struct Registration {
    shard: Arc<Shard>,
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut index = self.shard.index.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sub) = index.subs.get(&self.key) {
            sub.outlet.cancelled.store(true, Ordering::Relaxed);
        }
        index.remove(self.key);
    }
}

impl Fanout {
    /// Starts `shards` shard tasks (at least one) following `bus` from its current head.
    pub(crate) fn start(bus: &Bus, shards: usize, metrics: Arc<Metrics>) -> Self {
        let start = *bus.head().borrow();
        let shards: Vec<Arc<Shard>> = (0..shards.max(1))
            .map(|_| {
                Arc::new(Shard {
                    index: Mutex::new(Index {
                        done: start,
                        ..Index::default()
                    }),
                })
            })
            .collect();
        for shard in &shards {
            tokio::spawn(run_shard(shard.clone(), bus.clone(), metrics.clone()));
        }
        Self {
            shards,
            next_key: AtomicU64::new(1),
            next_shard: AtomicUsize::new(0),
        }
    }

    /// The position every shard has dispatched: live delivery never reads an event up to it
    /// again, so pruning up to it cannot take anything from a live subscription.
    pub(crate) fn dispatched(&self) -> Position {
        self.shards
            .iter()
            .map(|s| s.index.lock().unwrap_or_else(|e| e.into_inner()).done)
            .min()
            .unwrap_or_default()
    }

    /// Makes `sub` live if its shard has not dispatched past `sub.at` yet; otherwise returns
    /// the shard's position: the caller catches up to it first, then tries again.
    pub(crate) fn register(&self, sub: LiveSubscription) -> Result<Registration, Position> {
        let n = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let shard = &self.shards[n];
        let mut index = shard.index.lock().unwrap_or_else(|e| e.into_inner());
        let at = Position(sub.at.load(Ordering::Relaxed));
        if index.done > at {
            return Err(index.done);
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        index.insert(key, Arc::new(sub));
        Ok(Registration {
            shard: shard.clone(),
            key,
        })
    }
}

async fn run_shard(shard: Arc<Shard>, bus: Bus, metrics: Arc<Metrics>) {
    let mut head = bus.head();
    let mut done = shard.index.lock().unwrap_or_else(|e| e.into_inner()).done;
    let mut candidates = Vec::new();
    loop {
        if *head.borrow_and_update() <= done {
            if head.changed().await.is_err() {
                return;
            }
            continue;
        }
        let batch = match bus.read_after(done, READ_BATCH).await {
            Ok(b) => b,
            Err(StoreError::Pruned { pruned_through, .. }) => {
                // Only when another process pruned past this shard (this server bounds its
                // own prunes by `Fanout::dispatched`): the live subscriptions would miss the
                // pruned events, so they are told to resume instead.
                done = drop_behind(&shard, pruned_through);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "fan-out could not read new events; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        for event in batch {
            {
                let mut index = shard.index.lock().unwrap_or_else(|e| e.into_inner());
                index.done = event.position;
                index.candidates(&event, &mut candidates);
            }
            done = event.position;
            if !candidates.is_empty() {
                dispatch(&event, &mut candidates, &metrics).await;
            }
        }
    }
}

/// Closes (1013, resume with `after`) the sockets of the shard's live subscriptions whose
/// next events were pruned up to `through`, and moves the shard past them; returns the
/// shard's new position. Resuming, they get `CURSOR_PRUNED`.
fn drop_behind(shard: &Shard, through: Position) -> Position {
    let mut index = shard.index.lock().unwrap_or_else(|e| e.into_inner());
    let behind: Vec<u64> = index
        .subs
        .iter()
        .filter(|(_, sub)| sub.at.load(Ordering::Relaxed) < through.0)
        .map(|(key, _)| *key)
        .collect();
    tracing::warn!(
        through = through.0,
        subscriptions = behind.len(),
        "events were pruned before live delivery read them; closing their subscribers' connections"
    );
    for key in behind {
        if let Some(sub) = index.subs.get(&key) {
            sub.outlet.socket.close_lagging();
        }
        index.remove(key);
    }
    index.done = index.done.max(through);
    index.done
}

/// Writes `event` to every candidate it matches; empties `candidates`.
async fn dispatch(
    event: &Arc<Event>,
    candidates: &mut Vec<Arc<LiveSubscription>>,
    metrics: &Metrics,
) {
    let mut deliveries = Deliveries::default();
    let now_us = infrastream_core::now().timestamp_micros();
    for sub in candidates.drain(..) {
        if sub.at.load(Ordering::Relaxed) >= event.position.0 {
            continue;
        }
        sub.at.store(event.position.0, Ordering::Relaxed);
        let out = &sub.outlet;
        if !sub.filter.matches(event) || !out.socket.may_deliver(now_us) {
            continue;
        }
        let render = || out.renderer.render(event, &out.caller);
        deliveries.send(out, render).await;
    }
    let delivered = deliveries.delivered;
    if delivered > 0 {
        metrics.deliveries.fetch_add(delivered, Ordering::Relaxed);
        // Commit → last frame of this event written (an upper bound for every frame).
        let age = infrastream_core::now() - event.occurred_at;
        metrics.observe_latencies(age.num_microseconds().unwrap_or(0) as f64 / 1e6, delivered);
    }
}

/// The writes for one event or tick: each payload rendered once per renderer (usually one
/// document for everyone), and how many frames the sockets accepted.
#[derive(Default)]
pub(super) struct Deliveries {
    rendered: Vec<(usize, Arc<str>)>,
    pub(super) delivered: u64,
}

impl Deliveries {
    /// Writes the outlet's prefix, the payload and `}` to its socket unless it is cancelled.
    /// The payload is the one its renderer already rendered here, or else what `render` makes.
    pub(super) async fn send<F: Future<Output = Arc<str>>>(
        &mut self,
        out: &Outlet,
        render: impl FnOnce() -> F,
    ) {
        let key = Arc::as_ptr(&out.renderer) as usize;
        let payload = match self.rendered.iter().find(|(k, _)| *k == key) {
            Some((_, p)) => p.clone(),
            None => {
                let p = render().await;
                self.rendered.push((key, p.clone()));
                p
            }
        };
        let frame: [&[u8]; 3] = [&out.prefix, payload.as_bytes(), b"}"];
        if out.socket.send_text_unless(Some(&out.cancelled), &frame) == Sent::Accepted {
            self.delivered += 1;
        }
    }
}
