//! [`EventFilter`] → SQL. Must agree with `EventFilter::matches`; the conformance suite checks.
//! Lists are bound as one array each (`= ANY($n)`), so the statement text depends only on
//! which criteria are set, never on how many values they hold. A value containing NUL, which
//! no stored text can (see `text`), is left out of its list: it matches nothing, while its
//! criterion stays (an empty array matches nothing).

use super::rows::{EVENT_COLUMNS, micros};
use infrastream_core::{EventFilter, SortOrder, event::EventName};
use sqlx::{Postgres, QueryBuilder};

fn push_any<T>(q: &mut QueryBuilder<Postgres>, column: &str, values: Vec<T>)
where
    Vec<T>: for<'a> sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send + 'static,
{
    q.push(column).push(" = ANY(").push_bind(values).push(")");
}

/// The values of `list` that stored text can equal.
fn storable(list: &[String]) -> Vec<String> {
    list.iter().filter(|v| !v.contains('\0')).cloned().collect()
}

fn push_where(q: &mut QueryBuilder<Postgres>, f: &EventFilter) {
    q.push(" WHERE TRUE");
    if f.hide_account_events {
        // `starts_with`, not LIKE: a plain, case-sensitive prefix, as `EventName::is_account`.
        q.push(" AND NOT starts_with(name, ")
            .push_bind(EventName::ACCOUNT_PREFIX)
            .push(")");
    }
    if !f.ids.is_empty() {
        q.push(" AND ");
        push_any(q, "id", f.ids.clone());
    }
    if let Some(level) = f.level {
        q.push(" AND level = ").push_bind(level as i64);
    }
    if let Some(h) = f.has_children {
        q.push(" AND has_children = ").push_bind(h);
    }
    if !f.any_type() {
        q.push(" AND (FALSE");
        if !f.event_types.is_empty() {
            q.push(" OR ");
            push_any(q, "name", storable(&f.event_types));
        }
        for (name, branches) in [
            (EventName::BRANCH_MERGED, &f.branch_merged),
            (EventName::BRANCH_REBASED, &f.branch_rebased),
        ] {
            if let Some(branches) = branches.as_ref().filter(|b| !b.is_empty()) {
                q.push(" OR (name = ").push_bind(name).push(" AND ");
                push_any(q, "subject_branch", storable(branches));
                q.push(")");
            }
        }
        q.push(")");
    }
    if !f.primary_node_ids.is_empty() {
        q.push(" AND ");
        push_any(q, "primary_node_id", storable(&f.primary_node_ids));
    }
    if !f.related_node_ids.is_empty() {
        q.push(" AND position IN (SELECT position FROM event_related WHERE ");
        push_any(q, "node_id", storable(&f.related_node_ids));
        q.push(")");
    }
    if !f.parent_ids.is_empty() {
        q.push(" AND ");
        push_any(q, "parent_id", f.parent_ids.clone());
    }
    if let Some(t) = &f.since {
        q.push(" AND occurred_at >= ").push_bind(micros(t));
    }
    if let Some(t) = &f.until {
        q.push(" AND occurred_at <= ").push_bind(micros(t));
    }
    if !f.branches.is_empty() {
        q.push(" AND ");
        push_any(q, "branch", storable(&f.branches));
    }
    if !f.account_ids.is_empty() {
        q.push(" AND ");
        push_any(q, "account_id", storable(&f.account_ids));
    }
}

pub(super) fn count(f: &EventFilter) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new("SELECT COUNT(*) FROM events");
    push_where(&mut q, f);
    q
}

pub(super) fn page(
    f: &EventFilter,
    order: SortOrder,
    limit: u32,
    offset: u32,
) -> QueryBuilder<Postgres> {
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
