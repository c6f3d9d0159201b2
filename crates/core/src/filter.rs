//! `EventFilter`: the filters of `InfrahubEvent` and the `events` subscription, and the one
//! in-memory definition of what matches. Store backends translate the same filter to SQL; the
//! store conformance suite checks that both agree.

use crate::event::EventName;
use crate::{Event, Timestamp};
use uuid::Uuid;

/// Result order of `InfrahubEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Oldest first.
    Asc,
    /// Newest first (Infrahub's default).
    #[default]
    Desc,
}

/// Filters combine with AND; the values of one list filter combine with OR. An empty list
/// means "no constraint".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Event ids.
    pub ids: Vec<Uuid>,
    /// Exact nesting level.
    pub level: Option<u32>,
    /// Whether the event has children.
    pub has_children: Option<bool>,
    /// Event names.
    pub event_types: Vec<String>,
    /// `event_type_filter.branch_merged.branches`: adds merged events of these source branches.
    pub branch_merged: Option<Vec<String>>,
    /// `event_type_filter.branch_rebased.branches`: adds rebased events of these branches.
    pub branch_rebased: Option<Vec<String>>,
    /// Primary node ids.
    pub primary_node_ids: Vec<String>,
    /// Related node ids (not the primary node).
    pub related_node_ids: Vec<String>,
    /// Parent event ids.
    pub parent_ids: Vec<Uuid>,
    /// Occurred at or after (inclusive).
    pub since: Option<Timestamp>,
    /// Occurred at or before (inclusive).
    pub until: Option<Timestamp>,
    /// Branch the event occurred on (global events have none and never match).
    pub branches: Vec<String>,
    /// Causing accounts.
    pub account_ids: Vec<String>,
    /// Leaves out account events (`infrahub.account.…`): set for every caller that may not
    /// manage accounts, so that they are filtered like any other condition (in SQL, in replay
    /// and in the live fan-out) at the cost of one comparison per event.
    pub hide_account_events: bool,
}

impl EventFilter {
    /// Whether the event-type condition is unconstrained.
    pub fn any_type(&self) -> bool {
        self.event_types.is_empty() && self.branch_merged.is_none() && self.branch_rebased.is_none()
    }

    /// Whether the filter names an account event (`infrahub.account.…`) in `event_type`:
    /// asking for them explicitly needs the permission to manage accounts.
    pub fn names_account_events(&self) -> bool {
        self.event_types.iter().any(|t| EventName::is_account(t))
    }

    /// Whether `event` passes every filter.
    pub fn matches(&self, event: &Event) -> bool {
        fn within<T: PartialEq>(list: &[T], value: Option<&T>) -> bool {
            list.is_empty() || value.is_some_and(|v| list.contains(v))
        }
        let in_strings = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
        };
        !(self.hide_account_events && EventName::is_account(&event.name))
            && within(&self.ids, Some(&event.id))
            && self.level.is_none_or(|l| l == event.level)
            && self.has_children.is_none_or(|h| h == event.has_children)
            && self.type_matches(event)
            && in_strings(
                &self.primary_node_ids,
                event.primary_node.as_ref().map(|n| n.id.as_str()),
            )
            && (self.related_node_ids.is_empty()
                || event
                    .related_nodes
                    .iter()
                    .any(|n| self.related_node_ids.contains(&n.id)))
            && within(&self.parent_ids, event.parent_id.as_ref())
            && self.since.is_none_or(|t| event.occurred_at >= t)
            && self.until.is_none_or(|t| event.occurred_at <= t)
            && in_strings(&self.branches, event.branch.as_deref())
            && in_strings(&self.account_ids, event.account_id.as_deref())
    }

    fn type_matches(&self, event: &Event) -> bool {
        if self.any_type() {
            return true;
        }
        if self.event_types.contains(&event.name) {
            return true;
        }
        let subject_in = |branches: &Option<Vec<String>>, name: &str| {
            event.name == name
                && branches.as_ref().is_some_and(|b| {
                    event
                        .subject_branch()
                        .is_some_and(|s| b.iter().any(|x| x == s))
                })
        };
        subject_in(&self.branch_merged, EventName::BRANCH_MERGED)
            || subject_in(&self.branch_rebased, EventName::BRANCH_REBASED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Position, RelatedNode, parse_timestamp};
    use serde_json::json;

    fn event(name: &str, branch: Option<&str>) -> Event {
        Event {
            position: Position(1),
            id: Uuid::now_v7(),
            name: name.into(),
            branch: branch.map(Into::into),
            account_id: Some("acc".into()),
            occurred_at: parse_timestamp("2024-01-01T12:00:00Z").unwrap(),
            level: 0,
            parent_id: None,
            has_children: false,
            primary_node: Some(RelatedNode {
                id: "p".into(),
                kind: "K".into(),
            }),
            related_nodes: vec![RelatedNode {
                id: "r".into(),
                kind: "K".into(),
            }],
            data: json!({"source_branch": "feat"}),
            context: json!({}),
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(EventFilter::default().matches(&event("x", None)));
    }

    #[test]
    fn since_and_until_are_inclusive() {
        let e = event("x", None);
        let f = EventFilter {
            since: Some(e.occurred_at),
            until: Some(e.occurred_at),
            ..Default::default()
        };
        assert!(f.matches(&e));
        let later = e.occurred_at + chrono::Duration::microseconds(1);
        let f = EventFilter {
            since: Some(later),
            ..Default::default()
        };
        assert!(!f.matches(&e));
    }

    #[test]
    fn event_type_filter_adds_merged_events_of_named_branches() {
        let merged = event(EventName::BRANCH_MERGED, None);
        let f = EventFilter {
            event_types: vec!["acme.x".into()],
            branch_merged: Some(vec!["feat".into()]),
            ..Default::default()
        };
        assert!(f.matches(&merged));
        assert!(f.matches(&event("acme.x", None)));
        let f = EventFilter {
            branch_merged: Some(vec!["other".into()]),
            ..Default::default()
        };
        assert!(!f.matches(&merged));
    }

    #[test]
    fn branches_never_match_global_events() {
        let f = EventFilter {
            branches: vec!["main".into()],
            ..Default::default()
        };
        assert!(!f.matches(&event("x", None)));
        assert!(f.matches(&event("x", Some("main"))));
    }

    #[test]
    fn account_events_are_hidden_whatever_else_matches() {
        let login = event(EventName::ACCOUNT_LOGGED_IN, Some("main"));
        let hidden = EventFilter {
            hide_account_events: true,
            ..Default::default()
        };
        assert!(EventFilter::default().matches(&login));
        assert!(!hidden.matches(&login));
        assert!(hidden.matches(&event("acme.x", None)));
        let by_id = EventFilter {
            ids: vec![login.id],
            hide_account_events: true,
            ..Default::default()
        };
        assert!(!by_id.matches(&login), "not even by its id");
        let named = EventFilter {
            event_types: vec!["acme.x".into(), EventName::ACCOUNT_LOGGED_OUT.into()],
            ..Default::default()
        };
        assert!(named.names_account_events());
        assert!(!hidden.names_account_events());
    }

    #[test]
    fn related_filter_ignores_primary_node() {
        let f = EventFilter {
            related_node_ids: vec!["p".into()],
            ..Default::default()
        };
        assert!(!f.matches(&event("x", None)));
        let f = EventFilter {
            related_node_ids: vec!["r".into()],
            ..Default::default()
        };
        assert!(f.matches(&event("x", None)));
    }
}
