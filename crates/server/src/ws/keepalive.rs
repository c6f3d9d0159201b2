//! Keep-alive for every established connection from one task, instead of a timer in each
//! session: an idle connection then costs one write per interval and the read of its pong,
//! and its session is woken only for that pong. Connections are spread over ten slots, one
//! served every tenth of `ws_keepalive_interval_ms`, so the writes do not come in bursts.

use super::socket::Socket;
use infrastream_protocol::{ping_frame, text_frame};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SLOTS: usize = 10;

/// What a connection is kept alive with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A WebSocket ping frame (graphql-transport-ws).
    PingFrame,
    /// This protocol message (legacy `ka`).
    Text(&'static str),
}

type Slot = Mutex<HashMap<u64, (Weak<Socket>, Kind)>>;

/// The connections to keep alive.
pub(crate) struct KeepAlives {
    slots: Vec<Slot>,
    next: AtomicU64,
}

/// A connection kept alive; dropping it stops the keep-alive.
pub(crate) struct KeptAlive {
    owner: Arc<KeepAlives>,
    key: u64,
}

impl Drop for KeptAlive {
    fn drop(&mut self) {
        let slot = &self.owner.slots[self.key as usize % SLOTS];
        slot.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl KeepAlives {
    pub(crate) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| Mutex::default()).collect(),
            next: AtomicU64::new(0),
        }
    }

    /// Keeps `socket` alive with `kind` until the returned guard is dropped.
    pub(crate) fn register(self: &Arc<Self>, socket: &Arc<Socket>, kind: Kind) -> KeptAlive {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.slots[key as usize % SLOTS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (Arc::downgrade(socket), kind));
        KeptAlive {
            owner: self.clone(),
            key,
        }
    }

    /// Serves one slot every tenth of `interval` until `stop` is cancelled.
    pub(crate) async fn run(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let ping = ping_frame();
        let mut texts: HashMap<&'static str, Vec<u8>> = HashMap::new();
        let mut ticker =
            tokio::time::interval((interval / SLOTS as u32).max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut sockets = Vec::new();
        for slot in (0..SLOTS).cycle() {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            {
                let entries = self.slots[slot].lock().unwrap_or_else(|e| e.into_inner());
                sockets.extend(entries.values().map(|(s, k)| (s.clone(), *k)));
            }
            for (socket, kind) in sockets.drain(..) {
                let Some(socket) = socket.upgrade() else {
                    continue;
                };
                let frame = match kind {
                    Kind::PingFrame => &ping,
                    Kind::Text(t) => texts.entry(t).or_insert_with(|| text_frame(t)),
                };
                // A connection that cannot take it is a slow consumer: its session is told.
                socket.send_raw(frame, false);
            }
        }
    }
}
