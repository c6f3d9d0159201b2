//! Outgoing webhooks: Infrahub's `CoreStandardWebhook` / `CoreCustomWebhook`, delivered from
//! the log at least once, after commit, in log order per webhook, signed as Standard Webhooks
//! 1.0 specifies (or Infrahub's raw-key way), retried with backoff, dead-lettered after the
//! last attempt, with a delivery history and replay.
//!
//! The pure parts — signatures ([`signing`]), the request body ([`body`]), which
//! destinations are allowed ([`destination`]) and the retry schedule ([`retry`]) — are
//! separate from the engine that reads the log and sends.

pub mod body;
pub mod config;
pub mod delivery;
pub mod destination;
pub mod engine;
pub mod matching;
pub mod retry;
pub mod signing;

pub use engine::spawn;

use std::sync::LazyLock;
use tokio::sync::watch;

/// Bumped whenever deliveries may have become due here (created, replayed, an attempt
/// finished, a webhook changed): wakes every sender of the process.
static WAKE: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Wakes the senders.
pub fn wake() {
    WAKE.send_modify(|n| *n = n.wrapping_add(1));
}

fn wakes() -> watch::Receiver<u64> {
    WAKE.subscribe()
}
