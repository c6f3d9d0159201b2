//! Retention of the event log: when `retention_max_age_secs` or `retention_max_events` is set,
//! a background task prunes the log at start and then every `retention_interval_secs`, until
//! shutdown. Each prune removes the oldest events beyond the limits ([`Store::prune`]), never
//! past what the live fan-out has dispatched (so live subscriptions never miss an event), and
//! tells the bus, whose readers before the new start then get `CURSOR_PRUNED`. Subscribers far
//! behind are not waited for.

use crate::AppState;
use infrastream_config::Settings;
use infrastream_core::{Chain, Position, Timestamp};
use infrastream_store::PrunePolicy;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The policy of `settings` at `now`, bounded by `dispatched`; `None` when retention is off.
pub(crate) fn policy(
    settings: &Settings,
    now: Timestamp,
    dispatched: Position,
) -> Option<PrunePolicy> {
    let policy = PrunePolicy {
        occurred_before: (settings.retention_max_age_secs > 0).then(|| {
            // Validation bounds the age to 100 years: this cannot overflow.
            now - chrono::Duration::seconds(settings.retention_max_age_secs as i64)
        }),
        keep_newest: (settings.retention_max_events > 0).then_some(settings.retention_max_events),
        through_at_most: Some(dispatched),
    };
    policy.limits_anything().then_some(policy)
}

/// Starts the pruning task when a retention limit is set; it stops when the server shuts
/// down (a prune in progress is abandoned between two of its transactions).
pub(crate) fn spawn(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    policy(state.settings(), infrastream_core::now(), Position::ZERO)?;
    let state = state.clone();
    Some(tokio::spawn(async move {
        let interval = Duration::from_secs(state.settings().retention_interval_secs);
        let stop = state.shutdown.clone();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = prune_once(&state) => {}
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }))
}

/// One prune of the log as the settings say.
async fn prune_once(state: &AppState) {
    let Some(policy) = policy(
        state.settings(),
        infrastream_core::now(),
        state.fanout.dispatched(),
    ) else {
        return;
    };
    let metrics = &state.services.metrics;
    match state.store().prune(policy).await {
        Ok(outcome) => {
            let through = outcome.log_start.pruned_through;
            metrics
                .events_pruned_through
                .fetch_max(through.0, Ordering::Relaxed);
            if outcome.removed > 0 {
                state.services.domain.bus.pruned(through);
                metrics
                    .events_pruned
                    .fetch_add(outcome.removed, Ordering::Relaxed);
                tracing::info!(
                    removed = outcome.removed,
                    pruned_through = through.0,
                    "pruned the event log"
                );
            }
        }
        Err(e) => tracing::warn!(
            error = %Chain(&e),
            "pruning the event log failed; it is tried again at the next interval"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_follows_the_settings() {
        let mut s = Settings::default();
        let now = infrastream_core::now();
        assert_eq!(policy(&s, now, Position(9)), None, "off by default");
        s.retention_max_events = 100;
        let p = policy(&s, now, Position(9)).unwrap();
        assert_eq!(
            (p.keep_newest, p.occurred_before, p.through_at_most),
            (Some(100), None, Some(Position(9)))
        );
        s.retention_max_age_secs = 3600;
        let p = policy(&s, now, Position(9)).unwrap();
        assert_eq!(p.occurred_before, Some(now - chrono::Duration::hours(1)));
        s.retention_max_events = 0;
        assert_eq!(policy(&s, now, Position(9)).unwrap().keep_newest, None);
    }
}
