//! Live delivery of `query` subscriptions: one task per group of identical subscriptions (one
//! saved query, params, branch, interval and account: the `QueryHub`'s group) writes each
//! tick's frame to every subscriber's socket, without waking one session per subscriber. The
//! payload is rendered once per distinct document (the renderer's cache is keyed by the
//! result), and `only_changes` is decided per subscriber.
//!
//! A subscription is handed over after its session delivered the first result: registration
//! is refused while the group's task has already dispatched a newer tick than the one the
//! session delivered, so no tick is skipped or sent twice at the seam.

use super::fanout::{Deliveries, Outlet};
use infrastream_graphql::{Latest, Metrics, TickResult};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A live `query` subscription.
pub(crate) struct LiveQuery {
    pub(crate) outlet: Outlet,
    pub(crate) only_changes: bool,
    /// The last result delivered (for `only_changes`).
    pub(crate) last: Mutex<Option<Arc<TickResult>>>,
}

struct Members {
    subs: HashMap<u64, Arc<LiveQuery>>,
    /// The last tick dispatched.
    dispatched: u64,
    /// False once the task has left (then a new registration starts a new group).
    running: bool,
}

struct Group {
    members: Mutex<Members>,
}

/// The groups with live `query` subscriptions.
pub(crate) struct TickFanout {
    groups: Mutex<HashMap<u64, Arc<Group>>>,
    next_key: AtomicU64,
    metrics: Arc<Metrics>,
}

/// A registered live `query` subscription; dropping it removes it from its group.
pub(crate) struct QueryRegistration {
    group: Arc<Group>,
    key: u64,
}

impl Drop for QueryRegistration {
    fn drop(&mut self) {
        let mut m = self.group.members.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sub) = m.subs.remove(&self.key) {
            sub.outlet.cancelled.store(true, Ordering::Relaxed);
        }
    }
}

impl TickFanout {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            groups: Mutex::default(),
            next_key: AtomicU64::new(1),
            metrics,
        }
    }

    /// Makes `sub` live in group `group` (whose results `rx` receives), the session having
    /// delivered everything up to tick `seen`. Refused (the subscription is given back) when
    /// the group's task already dispatched a later tick: the session delivers it and retries.
    pub(crate) fn register(
        self: &Arc<Self>,
        group: u64,
        rx: watch::Receiver<Latest>,
        seen: u64,
        sub: LiveQuery,
    ) -> Result<QueryRegistration, LiveQuery> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let entry = groups
            .get(&group)
            .cloned()
            .filter(|g| g.members.lock().unwrap_or_else(|e| e.into_inner()).running);
        let g = match entry {
            Some(g) => g,
            None => {
                let g = Arc::new(Group {
                    members: Mutex::new(Members {
                        subs: HashMap::new(),
                        dispatched: seen,
                        running: true,
                    }),
                });
                groups.insert(group, g.clone());
                tokio::spawn(self.clone().run(group, g.clone(), rx));
                g
            }
        };
        let mut m = g.members.lock().unwrap_or_else(|e| e.into_inner());
        if m.dispatched > seen {
            return Err(sub);
        }
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        m.subs.insert(key, Arc::new(sub));
        drop(m);
        Ok(QueryRegistration { group: g, key })
    }

    async fn run(self: Arc<Self>, id: u64, group: Arc<Group>, mut rx: watch::Receiver<Latest>) {
        loop {
            let changed = rx.changed().await;
            let latest = rx.borrow_and_update().clone();
            let subs: Vec<Arc<LiveQuery>> = {
                let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
                let mut m = group.members.lock().unwrap_or_else(|e| e.into_inner());
                if m.subs.is_empty() || changed.is_err() {
                    // Leaving drops `rx`, so the hub stops the group when nobody else reads it.
                    m.running = false;
                    if groups.get(&id).is_some_and(|g| Arc::ptr_eq(g, &group)) {
                        groups.remove(&id);
                    }
                    return;
                }
                let Some((tick, _)) = &latest else { continue };
                m.dispatched = *tick;
                m.subs.values().cloned().collect()
            };
            if let Some((_, result)) = latest {
                self.dispatch(&result, &subs).await;
            }
        }
    }

    async fn dispatch(&self, result: &Arc<TickResult>, subs: &[Arc<LiveQuery>]) {
        let now_us = infrastream_core::now().timestamp_micros();
        let mut deliveries = Deliveries::default();
        for sub in subs {
            {
                let mut last = sub.last.lock().unwrap_or_else(|e| e.into_inner());
                let unchanged = last
                    .as_ref()
                    .is_some_and(|l| Arc::ptr_eq(l, result) || **l == **result);
                if sub.only_changes && unchanged {
                    continue;
                }
                *last = Some(result.clone());
            }
            let out = &sub.outlet;
            if !out.socket.may_deliver(now_us) {
                continue;
            }
            let render = || out.renderer.render_tick(result, &out.caller);
            deliveries.send(out, render).await;
        }
        self.metrics
            .deliveries
            .fetch_add(deliveries.delivered, Ordering::Relaxed);
    }
}
