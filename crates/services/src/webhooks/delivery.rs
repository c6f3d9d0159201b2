//! Deliveries: one durable record per (webhook, event), a generic stored node of kind
//! [`KIND`] whose id and name are `<webhook id>:<event id>` — unique, so creating one twice is
//! refused and the dispatcher's creates are idempotent. Its data keeps the status (`pending`,
//! `delivered`, `dead`), the attempts made, when the next one is due, the last answer and a
//! bounded history of attempts ([`HISTORY`]). Replays put a record back to `pending` with its
//! attempts reset and its history kept; the message id (`webhook-id`) derives from the event,
//! so it is the same on every retry and replay.

use super::config::{Webhook, WebhookError, webhook};
use super::matching;
use crate::Services;
use crate::nodes::NodeError;
use infrastream_core::{Event, Node, Position};
use infrastream_store::{Change, Commit};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Node kind of delivery records.
pub const KIND: &str = "InfrastreamWebhookDelivery";

/// Attempts kept in a record's history (the most recent ones).
pub const HISTORY: usize = 20;

/// Delivery status values.
pub mod status {
    /// Waiting for its (next) attempt.
    pub const PENDING: &str = "pending";
    /// A 2xx answer was received.
    pub const DELIVERED: &str = "delivered";
    /// No attempt left, or the webhook answered 410: never attempted again (unless replayed).
    pub const DEAD: &str = "dead";
}

/// One attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    /// When it started (RFC 3339).
    pub at: String,
    /// The HTTP status answered, if any.
    pub status_code: Option<u16>,
    /// How long it took.
    pub latency_ms: u64,
    /// Why it failed (no answer, refused destination, non-2xx).
    pub error: Option<String>,
}

/// What a delivery record keeps in its `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryData {
    /// The webhook.
    pub webhook_id: String,
    /// The event.
    pub event_id: Uuid,
    /// The event's position in the log.
    pub position: u64,
    /// One of [`status`].
    pub status: String,
    /// Attempts made since creation or the last replay.
    pub attempts: u32,
    /// When the next attempt is due (Unix milliseconds).
    pub next_attempt_at: i64,
    /// The last HTTP status answered.
    #[serde(default)]
    pub last_status_code: Option<u16>,
    /// The last failure.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The most recent attempts, oldest first.
    #[serde(default)]
    pub history: Vec<Attempt>,
}

/// A delivery record.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `<webhook id>:<event id>`.
    pub id: String,
    /// Everything else.
    pub data: DeliveryData,
}

/// The id (and name) of the delivery of `event_id` to webhook `webhook_id`.
pub fn delivery_id(webhook_id: &str, event_id: &Uuid) -> String {
    format!("{webhook_id}:{event_id}")
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    infrastream_core::now().timestamp_millis()
}

impl Delivery {
    /// A new pending delivery of `event` to `webhook_id`, due now.
    pub fn new(webhook_id: &str, event: &Event) -> Self {
        Self {
            id: delivery_id(webhook_id, &event.id),
            data: DeliveryData {
                webhook_id: webhook_id.to_owned(),
                event_id: event.id,
                position: event.position.0,
                status: status::PENDING.into(),
                attempts: 0,
                next_attempt_at: now_ms(),
                last_status_code: None,
                last_error: None,
                history: Vec::new(),
            },
        }
    }

    /// The record stored as `node`, if it is one.
    pub fn from_node(node: Node) -> Option<Self> {
        if node.kind != KIND {
            return None;
        }
        match serde_json::from_value(node.data) {
            Ok(data) => Some(Self { id: node.id, data }),
            Err(e) => {
                tracing::error!(id = %node.id, error = %e, "unreadable webhook delivery");
                None
            }
        }
    }

    /// The node that stores it.
    pub fn to_node(&self) -> Node {
        Node {
            id: self.id.clone(),
            kind: KIND.into(),
            name: self.id.clone(),
            data: serde_json::to_value(&self.data).unwrap_or(Value::Null),
        }
    }

    /// Whether it waits for an attempt.
    pub fn is_pending(&self) -> bool {
        self.data.status == status::PENDING
    }

    /// Records an attempt in the history, keeping the last [`HISTORY`].
    pub fn record(&mut self, attempt: Attempt) {
        self.data.attempts += 1;
        self.data.last_status_code = attempt.status_code;
        self.data.last_error = attempt.error.clone();
        self.data.history.push(attempt);
        let excess = self.data.history.len().saturating_sub(HISTORY);
        self.data.history.drain(..excess);
    }

    /// Back to `pending`, due now, attempts reset (history kept).
    pub fn requeue(&mut self) {
        self.data.status = status::PENDING.into();
        self.data.attempts = 0;
        self.data.next_attempt_at = now_ms();
    }
}

/// Every delivery record.
pub async fn all(s: &Services) -> Result<Vec<Delivery>, WebhookError> {
    Ok(s.store
        .nodes(KIND)
        .await?
        .into_iter()
        .filter_map(Delivery::from_node)
        .collect())
}

/// The delivery record with this id.
pub async fn by_id(s: &Services, id: &str) -> Result<Option<Delivery>, WebhookError> {
    Ok(s.store.node(id).await?.and_then(Delivery::from_node))
}

/// The deliveries of the webhooks `webhook_ids` (all when `None`) with one of `statuses`
/// (any when `None`), newest first (by event position, then id): the total and the page
/// `offset..offset + limit`.
pub async fn list(
    s: &Services,
    webhook_ids: Option<&[String]>,
    statuses: Option<&[String]>,
    offset: usize,
    limit: Option<usize>,
) -> Result<(usize, Vec<Delivery>), WebhookError> {
    let mut found: Vec<Delivery> = all(s)
        .await?
        .into_iter()
        .filter(|d| webhook_ids.is_none_or(|ids| ids.contains(&d.data.webhook_id)))
        .filter(|d| statuses.is_none_or(|st| st.contains(&d.data.status)))
        .collect();
    found.sort_by(|a, b| {
        b.data
            .position
            .cmp(&a.data.position)
            .then_with(|| a.id.cmp(&b.id))
    });
    let count = found.len();
    let page = found
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Ok((count, page))
}

/// Puts delivery `id` back to `pending` (attempts reset, history kept), under its webhook's
/// lock; the same `webhook-id` is sent again.
pub async fn replay_delivery(s: &Services, id: &str) -> Result<Delivery, WebhookError> {
    let not_found = || NodeError::NotFound {
        label: "Webhook delivery",
        key: id.to_owned(),
    };
    let d = by_id(s, id).await?.ok_or_else(not_found)?;
    let _guard = s
        .locks
        .lock(&super::engine::lock_key(&d.data.webhook_id))
        .await;
    let mut d = by_id(s, id).await?.ok_or_else(not_found)?;
    d.requeue();
    s.store
        .commit(Commit::change(Change::UpdateNode(d.to_node())))
        .await?;
    super::wake();
    Ok(d)
}

/// The position of event `id` (a UUID), or why not.
async fn position_of(s: &Services, what: &str, id: &str) -> Result<Position, WebhookError> {
    let uuid = Uuid::parse_str(id)
        .map_err(|_| WebhookError::Invalid(format!("Invalid UUID '{id}' in argument '{what}'")))?;
    s.store
        .event_position(uuid)
        .await?
        .ok_or_else(|| WebhookError::Invalid(format!("Event {id} ('{what}') not found")))
}

/// Re-queues the events of the log range (`after`, `until`] (event ids; from the log's
/// start, up to its head, when absent) that webhook `webhook_id` matches: existing deliveries
/// go back to `pending`, missing ones are created. Returns how many were queued.
pub async fn replay_range(
    s: &Services,
    webhook_id: &str,
    after: Option<&str>,
    until: Option<&str>,
) -> Result<usize, WebhookError> {
    let w: Webhook = webhook(s, webhook_id)
        .await?
        .ok_or_else(|| NodeError::NotFound {
            label: "Webhook",
            key: webhook_id.to_owned(),
        })?;
    let start = match after {
        Some(id) => position_of(s, "after", id).await?,
        None => Position::ZERO,
    };
    let end = match until {
        Some(id) => position_of(s, "until", id).await?,
        None => s.store.committed_head().await?,
    };
    let _guard = s.locks.lock(&super::engine::lock_key(webhook_id)).await;
    let mut cursor = start;
    let mut queued = 0;
    while cursor < end {
        let batch = s.store.read_after(cursor, 512).await?;
        let Some(last) = batch.last() else { break };
        cursor = last.position;
        let mut changes = Vec::new();
        for e in batch.iter().filter(|e| e.position <= end) {
            if !matching::matches(&w.data, e) {
                continue;
            }
            let id = delivery_id(&w.id, &e.id);
            match by_id(s, &id).await? {
                Some(mut d) => {
                    d.requeue();
                    changes.push(Change::UpdateNode(d.to_node()));
                }
                None => changes.push(Change::CreateNode(Delivery::new(&w.id, e).to_node())),
            }
        }
        queued += changes.len();
        if !changes.is_empty() {
            s.store
                .commit(Commit {
                    changes,
                    events: Vec::new(),
                })
                .await?;
        }
    }
    super::wake();
    Ok(queued)
}
