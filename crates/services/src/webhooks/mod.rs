//! Outgoing webhooks: Infrahub's `CoreStandardWebhook` / `CoreCustomWebhook`, delivered from
//! the log at least once, after commit, in log order per webhook, signed as Standard Webhooks
//! 1.0 specifies (or Infrahub's raw-key way), retried with backoff, dead-lettered after the
//! last attempt, with a delivery history and replay.
//!
//! The pure parts — signatures ([`signing`]), the request body ([`body`]), which
//! destinations are allowed ([`destination`]) and the retry schedule ([`retry`]) — are
//! separate from the engine that reads the log and sends.

pub mod body;
pub mod destination;
pub mod retry;
pub mod signing;
