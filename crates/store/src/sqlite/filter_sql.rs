//! [`EventFilter`] → SQL. Must agree with `EventFilter::matches`; the conformance suite checks.

use super::rows::{EVENT_COLUMNS, micros};
use infrastream_core::{EventFilter, SortOrder, event::EventName};
use sqlx::{QueryBuilder, Sqlite};

fn push_in(q: &mut QueryBuilder<Sqlite>, column: &str, values: impl Iterator<Item = String>) {
    q.push(column).push(" IN (");
    let mut sep = q.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    q.push(")");
}

fn push_where(q: &mut QueryBuilder<Sqlite>, f: &EventFilter) {
    q.push(" WHERE 1 = 1");
    if f.hide_account_events {
        // GLOB, not LIKE: case-sensitive, as `EventName::is_account`.
        q.push(" AND name NOT GLOB ")
            .push_bind(format!("{}*", EventName::ACCOUNT_PREFIX));
    }
    if !f.ids.is_empty() {
        q.push(" AND ");
        push_in(q, "id", f.ids.iter().map(|u| u.to_string()));
    }
    if let Some(level) = f.level {
        q.push(" AND level = ").push_bind(level as i64);
    }
    if let Some(h) = f.has_children {
        q.push(" AND has_children = ").push_bind(h);
    }
    if !f.any_type() {
        q.push(" AND (0 = 1");
        if !f.event_types.is_empty() {
            q.push(" OR ");
            push_in(q, "name", f.event_types.iter().cloned());
        }
        for (name, branches) in [
            (EventName::BRANCH_MERGED, &f.branch_merged),
            (EventName::BRANCH_REBASED, &f.branch_rebased),
        ] {
            if let Some(branches) = branches.as_ref().filter(|b| !b.is_empty()) {
                q.push(" OR (name = ").push_bind(name).push(" AND ");
                push_in(q, "subject_branch", branches.iter().cloned());
                q.push(")");
            }
        }
        q.push(")");
    }
    if !f.primary_node_ids.is_empty() {
        q.push(" AND ");
        push_in(q, "primary_node_id", f.primary_node_ids.iter().cloned());
    }
    if !f.related_node_ids.is_empty() {
        q.push(" AND position IN (SELECT position FROM event_related WHERE ");
        push_in(q, "node_id", f.related_node_ids.iter().cloned());
        q.push(")");
    }
    if !f.parent_ids.is_empty() {
        q.push(" AND ");
        push_in(q, "parent_id", f.parent_ids.iter().map(|u| u.to_string()));
    }
    if let Some(t) = &f.since {
        q.push(" AND occurred_at >= ").push_bind(micros(t));
    }
    if let Some(t) = &f.until {
        q.push(" AND occurred_at <= ").push_bind(micros(t));
    }
    if !f.branches.is_empty() {
        q.push(" AND ");
        push_in(q, "branch", f.branches.iter().cloned());
    }
    if !f.account_ids.is_empty() {
        q.push(" AND ");
        push_in(q, "account_id", f.account_ids.iter().cloned());
    }
}

pub(super) fn count(f: &EventFilter) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM events");
    push_where(&mut q, f);
    q
}

pub(super) fn page(
    f: &EventFilter,
    order: SortOrder,
    limit: u32,
    offset: u32,
) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::new(format!("SELECT {EVENT_COLUMNS} FROM events"));
    push_where(&mut q, f);
    q.push(match order {
        SortOrder::Asc => " ORDER BY position ASC",
        SortOrder::Desc => " ORDER BY position DESC",
    });
    q.push(" LIMIT ")
        .push_bind(limit as i64)
        .push(" OFFSET ")
        .push_bind(offset as i64);
    q
}
