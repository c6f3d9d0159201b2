//! The `CURSOR_PRUNED` error of an `events` subscription whose cursor is older than the log's
//! retention: its `after` names a pruned event, or its replay reached events pruned while it
//! ran. The message says what happened, where the log starts now and what to do.

use crate::context::gql;
use infrastream_core::{Error, codes, format_timestamp};
use infrastream_store::{Store, StoreError};
use uuid::Uuid;

/// What to do about it, the end of every such message.
const ADVICE: &str = "resubscribe without `after` (from now), or from a newer event";

/// Where the log starts now, in words: its first event, or that every event was pruned.
async fn log_start(store: &dyn Store) -> String {
    // A prune between the two reads moves the start on: read again (a few times at most).
    for _ in 0..3 {
        let start = match store.log_start().await {
            Ok(s) => s,
            Err(_) => break,
        };
        match store.read_after(start.pruned_through, 1).await {
            Ok(events) => {
                return match events.first() {
                    Some(e) => format!(
                        "the log now starts at event {} of {}",
                        e.id,
                        format_timestamp(&e.occurred_at)
                    ),
                    None => "every event was pruned; the log goes on with the next one".into(),
                };
            }
            Err(StoreError::Pruned { .. }) => continue,
            Err(_) => break,
        }
    }
    "the log's start could not be read".into()
}

/// `after` names an event that was pruned.
pub(crate) async fn after_pruned(store: &dyn Store, after: &str) -> async_graphql::Error {
    let start = log_start(store).await;
    gql(Error::coded(
        &codes::CURSOR_PRUNED,
        format!(
            "Event {after} (argument 'after') is older than the log's retention and was \
             pruned ({start}): {ADVICE}"
        ),
    ))
}

/// A replay reached events that were pruned while it ran; `last` is the last event it
/// delivered (or the `after` it started from).
pub(crate) async fn replay_pruned(store: &dyn Store, last: Option<Uuid>) -> async_graphql::Error {
    let start = log_start(store).await;
    let from = match last {
        Some(id) => format!("after event {id}"),
        None => "this subscription was about to replay".into(),
    };
    gql(Error::coded(
        &codes::CURSOR_PRUNED,
        format!(
            "The events {from} were pruned by the log's retention before they could be \
             delivered ({start}): {ADVICE}"
        ),
    ))
}
