//! Retention of the event log: what [`Store::prune`](crate::Store::prune) removes
//! ([`PrunePolicy`]), what it did ([`PruneOutcome`]), and where the log starts afterwards
//! ([`LogStart`]), which is also how a pruned event id is told from one that never existed.
//!
//! Pruning removes a *prefix* of the log, oldest positions first: the log stays gap-free from
//! its new start, positions are never reused, and the head does not move. Nothing but the log
//! is touched (branches, nodes, accounts, … are tables of their own, not derived from events).

use infrastream_core::{Position, Timestamp};
use uuid::Uuid;

/// What to prune. Each limit that is set marks events as prunable; the prefix removed is the
/// longest one whose events are all prunable by at least one limit (the stricter limit wins).
/// With no limit set, nothing is pruned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Age limit: the events that occurred strictly before this instant go — the longest
    /// prefix of the log whose events all occurred before it (`None`: no age limit).
    pub occurred_before: Option<Timestamp>,
    /// Count limit: at most this many of the newest events stay, i.e. positions up to
    /// `head - keep_newest` go (`None`: no count limit; `Some(0)` prunes everything).
    pub keep_newest: Option<u64>,
    /// Nothing after this position goes, whatever the limits (`None`: no bound). The server
    /// passes the position its live fan-out has dispatched, so live delivery never has to
    /// read a pruned event.
    pub through_at_most: Option<Position>,
}

impl PrunePolicy {
    /// Whether any limit is set (without one, pruning does nothing).
    pub fn limits_anything(&self) -> bool {
        self.occurred_before.is_some() || self.keep_newest.is_some()
    }

    /// The end of the next chunk of a prune whose log starts after `lo`, with `head` the last
    /// committed position and at most `max_rows` events per chunk; `None` when the policy
    /// leaves nothing to look at. Every backend prunes `(lo, end]` at most.
    pub fn chunk_end(&self, lo: u64, head: u64, max_rows: u64) -> Option<u64> {
        let mut hi = head.min(lo.saturating_add(max_rows.max(1)));
        if let Some(bound) = self.through_at_most {
            hi = hi.min(bound.0);
        }
        (hi > lo && self.limits_anything()).then_some(hi)
    }

    /// The last position to remove from `(lo, hi]` (`lo`: nothing): by count, everything up to
    /// `head - keep_newest`; by age, everything before `first_younger`, the smallest position in
    /// `(lo, hi]` that occurred at or after the cutoff (read only with an age limit; `None`
    /// when every event there is older). Whichever limit removes more wins.
    pub fn prune_through(&self, lo: u64, hi: u64, head: u64, first_younger: Option<u64>) -> u64 {
        let by_count = self
            .keep_newest
            .map_or(lo, |keep| head.saturating_sub(keep).min(hi));
        let by_age = match self.occurred_before {
            None => lo,
            Some(_) => first_younger.map_or(hi, |p| p - 1),
        };
        by_count.max(by_age)
    }
}

/// Where the log starts: what pruning has removed so far. Persisted by the store, so a pruned
/// cursor is recognised after a restart too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStart {
    /// The last pruned position: events at positions up to this one are gone, the log
    /// continues at the next one. [`Position::ZERO`] when nothing was ever pruned.
    pub pruned_through: Position,
    /// The greatest id among the pruned events (`None` when nothing was ever pruned). Event
    /// ids are UUID v7, ordered by their creation time, and the log's single writer creates
    /// them in position order.
    pub newest_pruned_id: Option<Uuid>,
}

impl LogStart {
    /// Whether an event id that is *not* in the log names a pruned event: a version-7 id that
    /// sorts at or before the newest pruned id. Such an id was pruned, or is older than
    /// everything pruned (a made-up old id is reported as pruned, which tells its holder the
    /// right thing: the log no longer reaches back that far). Any other unknown id (newer, or
    /// not a v7 UUID) was never in the log.
    pub fn covers(&self, id: Uuid) -> bool {
        id.get_version_num() == 7 && self.newest_pruned_id.is_some_and(|newest| id <= newest)
    }
}

/// What one [`Store::prune`](crate::Store::prune) call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Events removed by this call.
    pub removed: u64,
    /// Where the log starts now.
    pub log_start: LogStart,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_older_v7_ids_are_covered() {
        let old = Uuid::now_v7();
        let newest = Uuid::now_v7();
        let newer = Uuid::now_v7();
        let start = LogStart {
            pruned_through: Position(2),
            newest_pruned_id: Some(newest),
        };
        assert!(start.covers(old));
        assert!(start.covers(newest));
        assert!(!start.covers(newer));
        assert!(
            !start.covers(Uuid::new_v4()),
            "not a v7 id: never in the log"
        );
        assert!(!LogStart::default().covers(old), "nothing pruned");
    }
}
