//! The data diff of a branch in Infrahub's shape: `DiffTree` and `DiffTreeSummary`, the
//! conflicts in it, `ResolveDiffConflict` to choose a side, and `DiffUpdate`. The diff is
//! computed when asked (it is never stale), so `DiffUpdate` only checks the branch; the domain
//! is [`infrastream_services::data::diff`].

use crate::branches::TaskInfo;
use crate::context::{Res, domain, require_write, services, url_branch};
use crate::events::DiffAction;
use crate::scalars::DateTime;
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use infrastream_core::{Timestamp, now, parse_timestamp};
use infrastream_services::data::diff::{self, Action, NodeDiff, PropertyDiff, PropertyKind};
use serde_json::Value;

impl From<Action> for DiffAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Added => DiffAction::Added,
            Action::Removed => DiffAction::Removed,
            Action::Updated => DiffAction::Updated,
            Action::Unchanged => DiffAction::Unchanged,
        }
    }
}

/// Infrahub's `ConflictSelection`.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "ConflictSelection")]
pub(crate) enum ConflictSelection {
    BaseBranch,
    DiffBranch,
}

/// An enumeration.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RelationshipCardinality")]
pub(crate) enum RelationshipCardinality {
    Many,
    One,
}

/// Both sides of a conflict.
#[derive(SimpleObject)]
#[graphql(name = "ConflictDetails", rename_fields = "snake_case")]
pub(crate) struct ConflictDetails {
    base_branch_action: DiffAction,
    base_branch_changed_at: DateTime,
    base_branch_label: Option<String>,
    base_branch_value: Option<String>,
    diff_branch_action: DiffAction,
    diff_branch_changed_at: DateTime,
    diff_branch_label: Option<String>,
    diff_branch_value: Option<String>,
    resolvable: Option<bool>,
    selected_branch: Option<ConflictSelection>,
    uuid: String,
}

/// One property of an attribute or a relationship element.
#[derive(SimpleObject)]
#[graphql(name = "DiffProperty", rename_fields = "snake_case")]
pub(crate) struct DiffProperty {
    conflict: Option<ConflictDetails>,
    last_changed_at: DateTime,
    new_value: Option<String>,
    path_identifier: String,
    previous_value: Option<String>,
    property_type: String,
    status: DiffAction,
}

/// An attribute the branch changed.
#[derive(SimpleObject)]
#[graphql(name = "DiffAttribute", rename_fields = "snake_case")]
pub(crate) struct DiffAttribute {
    conflict: Option<ConflictDetails>,
    contains_conflict: bool,
    last_changed_at: DateTime,
    name: String,
    num_added: i32,
    num_conflicts: i32,
    num_removed: i32,
    num_updated: i32,
    path_identifier: String,
    properties: Option<Vec<DiffProperty>>,
    status: DiffAction,
}

/// One peer of a relationship the branch changed.
#[derive(SimpleObject)]
#[graphql(name = "DiffSingleRelationship", rename_fields = "snake_case")]
pub(crate) struct DiffSingleRelationship {
    conflict: Option<ConflictDetails>,
    contains_conflict: bool,
    last_changed_at: Option<DateTime>,
    num_added: i32,
    num_conflicts: i32,
    num_removed: i32,
    num_updated: i32,
    path_identifier: String,
    peer_id: String,
    properties: Option<Vec<DiffProperty>>,
    status: DiffAction,
}

/// A relationship the branch changed.
#[derive(SimpleObject)]
#[graphql(name = "DiffRelationship", rename_fields = "snake_case")]
pub(crate) struct DiffRelationship {
    cardinality: RelationshipCardinality,
    contains_conflict: bool,
    elements: Vec<DiffSingleRelationship>,
    last_changed_at: Option<DateTime>,
    name: String,
    num_added: i32,
    num_conflicts: i32,
    num_removed: i32,
    num_updated: i32,
    path_identifier: String,
    status: DiffAction,
}

/// A node the branch changed.
#[derive(SimpleObject)]
#[graphql(name = "DiffNode", rename_fields = "snake_case")]
pub(crate) struct DiffNode {
    attributes: Vec<DiffAttribute>,
    conflict: Option<ConflictDetails>,
    contains_conflict: bool,
    kind: String,
    label: String,
    last_changed_at: Option<DateTime>,
    num_added: i32,
    num_conflicts: i32,
    num_removed: i32,
    num_updated: i32,
    path_identifier: String,
    relationships: Vec<DiffRelationship>,
    status: DiffAction,
    uuid: String,
}

/// What a branch changed, node by node.
#[derive(SimpleObject)]
#[graphql(name = "DiffTree", rename_fields = "snake_case")]
pub(crate) struct DiffTree {
    base_branch: String,
    diff_branch: String,
    from_time: DateTime,
    name: Option<String>,
    nodes: Option<Vec<DiffNode>>,
    num_added: i32,
    num_conflicts: i32,
    num_removed: i32,
    num_updated: i32,
    to_time: DateTime,
}

/// The counts of a branch's diff.
#[derive(SimpleObject)]
#[graphql(name = "DiffTreeSummary", rename_fields = "snake_case")]
pub(crate) struct DiffTreeSummary {
    base_branch: String,
    diff_branch: String,
    from_time: DateTime,
    num_added: i32,
    num_conflicts: i32,
    num_removed: i32,
    num_unchanged: i32,
    num_updated: i32,
    to_time: DateTime,
}

/// Names to keep (`includes`) and to leave out (`excludes`).
#[derive(InputObject, Default)]
#[graphql(name = "IncExclFilterOptions", rename_fields = "snake_case")]
pub(crate) struct IncExclFilterOptions {
    excludes: Option<Vec<Option<String>>>,
    includes: Option<Vec<Option<String>>>,
}

/// Statuses to keep (`includes`) and to leave out (`excludes`).
#[derive(InputObject, Default)]
#[graphql(name = "IncExclFilterStatusOptions", rename_fields = "snake_case")]
pub(crate) struct IncExclFilterStatusOptions {
    excludes: Option<Vec<Option<DiffAction>>>,
    includes: Option<Vec<Option<DiffAction>>>,
}

/// Which nodes of the diff to return.
#[derive(InputObject, Default)]
#[graphql(name = "DiffTreeQueryFilters", rename_fields = "snake_case")]
pub(crate) struct DiffTreeQueryFilters {
    ids: Option<Vec<Option<String>>>,
    kind: Option<IncExclFilterOptions>,
    namespace: Option<IncExclFilterOptions>,
    status: Option<IncExclFilterStatusOptions>,
}

fn kept<T: PartialEq>(v: &T, inc: &Option<Vec<Option<T>>>, exc: &Option<Vec<Option<T>>>) -> bool {
    let has = |l: &Option<Vec<Option<T>>>| l.iter().flatten().flatten().any(|x| x == v);
    (inc.is_none() || has(inc)) && !has(exc)
}

impl DiffTreeQueryFilters {
    fn keeps(&self, d: &NodeDiff) -> bool {
        let namespace = split_namespace(&d.kind);
        self.ids
            .as_ref()
            .is_none_or(|ids| ids.iter().flatten().any(|i| *i == d.id))
            && self
                .kind
                .as_ref()
                .is_none_or(|f| kept(&d.kind, &f.includes, &f.excludes))
            && self
                .namespace
                .as_ref()
                .is_none_or(|f| kept(&namespace, &f.includes, &f.excludes))
            && self
                .status
                .as_ref()
                .is_none_or(|f| kept(&DiffAction::from(d.action), &f.includes, &f.excludes))
    }
}

/// The namespace of a kind name (`InfraDevice` → `Infra`): up to its second capital.
fn split_namespace(kind: &str) -> String {
    let second = kind
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_uppercase());
    second.map_or(kind, |(i, _)| &kind[..i]).to_owned()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// When a property was last changed on the branch: its attribute's `updated_at`, else now.
fn changed_at(node: Option<&infrastream_services::data::DataNode>, name: &str) -> Timestamp {
    node.and_then(|n| n.attributes.get(name))
        .and_then(|a| a.get("updated_at"))
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .unwrap_or_else(now)
}

fn details(d: &NodeDiff, c: &diff::Conflict, name: &str) -> ConflictDetails {
    ConflictDetails {
        base_branch_action: c.main_action.into(),
        base_branch_changed_at: DateTime(changed_at(d.main.as_ref(), name)),
        base_branch_label: None,
        base_branch_value: text(&c.main_value),
        diff_branch_action: c.branch_action.into(),
        diff_branch_changed_at: DateTime(changed_at(d.branch.as_ref(), name)),
        diff_branch_label: None,
        diff_branch_value: text(&c.branch_value),
        resolvable: Some(true),
        selected_branch: c.selected.map(|s| match s {
            diff::Selection::Base => ConflictSelection::BaseBranch,
            diff::Selection::Diff => ConflictSelection::DiffBranch,
        }),
        uuid: c.id.clone(),
    }
}

/// Counts (added, updated, removed) of `actions`.
fn counts(actions: impl Iterator<Item = Action>) -> (i32, i32, i32) {
    actions.fold((0, 0, 0), |(a, u, r), x| match x {
        Action::Added => (a + 1, u, r),
        Action::Updated => (a, u + 1, r),
        Action::Removed => (a, u, r + 1),
        Action::Unchanged => (a, u, r),
    })
}

fn attribute(d: &NodeDiff, p: &PropertyDiff) -> DiffAttribute {
    let path = format!("data/{}/{}", d.id, p.name);
    let at = changed_at(d.branch.as_ref(), &p.name);
    let conflict = p.conflict.as_ref().map(|c| details(d, c, &p.name));
    let (a, u, r) = counts(std::iter::once(p.action));
    DiffAttribute {
        contains_conflict: conflict.is_some(),
        num_conflicts: i32::from(conflict.is_some()),
        properties: Some(vec![DiffProperty {
            conflict,
            last_changed_at: DateTime(at),
            new_value: text(&p.new),
            path_identifier: format!("{path}/value"),
            previous_value: text(&p.previous),
            property_type: "HAS_VALUE".into(),
            status: p.action.into(),
        }]),
        conflict: None,
        last_changed_at: DateTime(at),
        name: p.name.clone(),
        num_added: a,
        num_removed: r,
        num_updated: u,
        path_identifier: path,
        status: p.action.into(),
    }
}

fn element(
    d: &NodeDiff,
    p: &PropertyDiff,
    peer: String,
    action: Action,
    previous: Option<String>,
    new: Option<String>,
) -> DiffSingleRelationship {
    let path = format!("data/{}/{}/{peer}", d.id, p.name);
    let conflict = p.conflict.as_ref().map(|c| details(d, c, &p.name));
    let (a, u, r) = counts(std::iter::once(action));
    DiffSingleRelationship {
        contains_conflict: conflict.is_some(),
        num_conflicts: i32::from(conflict.is_some()),
        properties: Some(vec![DiffProperty {
            conflict: None,
            last_changed_at: DateTime(now()),
            new_value: new,
            path_identifier: format!("{path}/property/IS_RELATED"),
            previous_value: previous,
            property_type: "IS_RELATED".into(),
            status: action.into(),
        }]),
        conflict,
        last_changed_at: None,
        num_added: a,
        num_removed: r,
        num_updated: u,
        path_identifier: path,
        peer_id: peer,
        status: action.into(),
    }
}

fn relationship(d: &NodeDiff, p: &PropertyDiff) -> DiffRelationship {
    let ids = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let (before, after) = (ids(&p.previous), ids(&p.new));
    let mut elements = Vec::new();
    if p.kind == PropertyKind::One {
        let peer = after
            .first()
            .or(before.first())
            .cloned()
            .unwrap_or_default();
        elements.push(element(
            d,
            p,
            peer,
            p.action,
            text(&p.previous),
            text(&p.new),
        ));
    } else {
        for id in after.iter().filter(|i| !before.contains(i)) {
            elements.push(element(
                d,
                p,
                id.clone(),
                Action::Added,
                None,
                Some(id.clone()),
            ));
        }
        for id in before.iter().filter(|i| !after.contains(i)) {
            elements.push(element(
                d,
                p,
                id.clone(),
                Action::Removed,
                Some(id.clone()),
                None,
            ));
        }
    }
    let (a, u, r) = counts(elements.iter().map(|e| match e.status {
        DiffAction::Added => Action::Added,
        DiffAction::Removed => Action::Removed,
        DiffAction::Updated => Action::Updated,
        DiffAction::Unchanged => Action::Unchanged,
    }));
    let conflicts = elements.iter().filter(|e| e.contains_conflict).count() as i32;
    DiffRelationship {
        cardinality: if p.kind == PropertyKind::One {
            RelationshipCardinality::One
        } else {
            RelationshipCardinality::Many
        },
        contains_conflict: conflicts > 0,
        elements,
        last_changed_at: None,
        name: p.name.clone(),
        num_added: a,
        num_conflicts: conflicts,
        num_removed: r,
        num_updated: u,
        path_identifier: format!("data/{}/{}", d.id, p.name),
        status: p.action.into(),
    }
}

fn node(d: &NodeDiff) -> DiffNode {
    let attributes: Vec<DiffAttribute> = d
        .properties
        .iter()
        .filter(|p| p.kind == PropertyKind::Attribute)
        .map(|p| attribute(d, p))
        .collect();
    let relationships: Vec<DiffRelationship> = d
        .properties
        .iter()
        .filter(|p| p.kind != PropertyKind::Attribute)
        .map(|p| relationship(d, p))
        .collect();
    let (a, u, r) = counts(d.properties.iter().map(|p| p.action));
    let conflicts = d.conflicts().count() as i32;
    DiffNode {
        attributes,
        conflict: d.conflict.as_ref().map(|c| details(d, c, "")),
        contains_conflict: conflicts > 0,
        kind: d.kind.clone(),
        label: d.label.clone(),
        last_changed_at: None,
        num_added: a,
        num_conflicts: conflicts,
        num_removed: r,
        num_updated: u,
        path_identifier: format!("data/{}", d.id),
        relationships,
        status: d.action.into(),
        uuid: d.id.clone(),
    }
}

/// The branch the request names: the `branch` argument, else the URL's.
fn branch_named(ctx: &Context<'_>, branch: Option<String>) -> String {
    branch.unwrap_or_else(|| url_branch(ctx))
}

#[derive(Default)]
pub(crate) struct DiffQuery;

#[Object(rename_args = "snake_case")]
impl DiffQuery {
    /// What a branch changed in its data since `branched_from`, node by node, with conflicts.
    #[graphql(name = "DiffTree")]
    #[allow(clippy::too_many_arguments)]
    async fn diff_tree(
        &self,
        ctx: &Context<'_>,
        branch: Option<String>,
        filters: Option<DiffTreeQueryFilters>,
        from_time: Option<DateTime>,
        include_parents: Option<bool>,
        limit: Option<i32>,
        name: Option<String>,
        offset: Option<i32>,
        proposed_change_id: Option<String>,
        #[graphql(deprecation = "replaced by filters")] root_node_uuids: Option<
            Vec<Option<String>>,
        >,
        to_time: Option<DateTime>,
    ) -> Res<Option<DiffTree>> {
        // The diff is always the branch's whole one, computed now: the time range, the name
        // of a tracked diff and the proposed change select nothing else here.
        let _ = (from_time, to_time, include_parents, proposed_change_id);
        let mut filters = filters.unwrap_or_default();
        if let Some(ids) = root_node_uuids.filter(|_| filters.ids.is_none()) {
            filters.ids = Some(ids);
        }
        let diff_name = name;
        let name = branch_named(ctx, branch);
        let (b, diffs) = diff::of_branch(services(ctx), &name)
            .await
            .map_err(domain)?;
        let diffs: Vec<&NodeDiff> = diffs.iter().filter(|d| filters.keeps(d)).collect();
        let (a, u, r) = counts(diffs.iter().map(|d| d.action));
        let conflicts = diffs.iter().map(|d| d.conflicts().count()).sum::<usize>() as i32;
        let nodes = diffs
            .iter()
            .skip(offset.unwrap_or(0).max(0) as usize)
            .take(limit.map_or(usize::MAX, |l| l.max(0) as usize))
            .map(|d| node(d))
            .collect();
        Ok(Some(DiffTree {
            base_branch: infrastream_core::branch::DEFAULT_BRANCH.into(),
            diff_branch: b.name,
            from_time: DateTime(b.branched_from),
            name: diff_name,
            nodes: Some(nodes),
            num_added: a,
            num_conflicts: conflicts,
            num_removed: r,
            num_updated: u,
            to_time: DateTime(now()),
        }))
    }

    /// The counts of what a branch changed in its data.
    #[graphql(name = "DiffTreeSummary")]
    #[allow(clippy::too_many_arguments)]
    async fn diff_tree_summary(
        &self,
        ctx: &Context<'_>,
        branch: Option<String>,
        filters: Option<DiffTreeQueryFilters>,
        from_time: Option<DateTime>,
        name: Option<String>,
        proposed_change_id: Option<String>,
        to_time: Option<DateTime>,
    ) -> Res<Option<DiffTreeSummary>> {
        let _ = (from_time, to_time, name, proposed_change_id);
        let name = branch_named(ctx, branch);
        let (b, diffs) = diff::of_branch(services(ctx), &name)
            .await
            .map_err(domain)?;
        let filters = filters.unwrap_or_default();
        let diffs: Vec<&NodeDiff> = diffs.iter().filter(|d| filters.keeps(d)).collect();
        let (a, u, r) = counts(diffs.iter().map(|d| d.action));
        Ok(Some(DiffTreeSummary {
            base_branch: infrastream_core::branch::DEFAULT_BRANCH.into(),
            diff_branch: b.name,
            from_time: DateTime(b.branched_from),
            num_added: a,
            num_conflicts: diffs.iter().map(|d| d.conflicts().count()).sum::<usize>() as i32,
            num_removed: r,
            num_unchanged: 0,
            num_updated: u,
            to_time: DateTime(now()),
        }))
    }
}

/// Data of `ResolveDiffConflict`.
#[derive(InputObject)]
#[graphql(name = "ResolveDiffConflictInput", rename_fields = "snake_case")]
pub(crate) struct ResolveDiffConflictInput {
    /// ID of the diff conflict to resolve
    conflict_id: Option<String>,
    /// Which version of the conflict to select
    selected_branch: Option<ConflictSelection>,
}

/// Result of `ResolveDiffConflict`.
#[derive(SimpleObject)]
#[graphql(name = "ResolveDiffConflict")]
pub(crate) struct ResolveDiffConflict {
    ok: Option<bool>,
}

/// Data of `DiffUpdate`.
#[derive(InputObject)]
#[graphql(name = "DiffUpdateInput", rename_fields = "snake_case")]
pub(crate) struct DiffUpdateInput {
    branch: String,
    from_time: Option<DateTime>,
    name: Option<String>,
    to_time: Option<DateTime>,
    #[graphql(deprecation = "Please use `wait_until_completion` instead")]
    wait_for_completion: Option<bool>,
}

/// Result of `DiffUpdate`.
#[derive(SimpleObject)]
#[graphql(name = "DiffUpdateMutation")]
pub(crate) struct DiffUpdateMutation {
    ok: Option<bool>,
    task: Option<TaskInfo>,
}

#[derive(Default)]
pub(crate) struct DiffMutation;

#[Object(rename_args = "snake_case")]
impl DiffMutation {
    /// Chooses a side for a conflict of a branch's diff (`BASE_BRANCH`: keep the default
    /// branch's value; `DIFF_BRANCH`: take the branch's).
    #[graphql(name = "ResolveDiffConflict")]
    async fn resolve_diff_conflict(
        &self,
        ctx: &Context<'_>,
        data: ResolveDiffConflictInput,
    ) -> Res<Option<ResolveDiffConflict>> {
        require_write(ctx)?;
        let bad = |m: &str| {
            domain(infrastream_core::Error::new(
                infrastream_core::ErrorKind::InvalidInput,
                m,
            ))
        };
        let id = data
            .conflict_id
            .ok_or_else(|| bad("conflict_id is required"))?;
        let selection = match data.selected_branch {
            Some(ConflictSelection::BaseBranch) => diff::Selection::Base,
            Some(ConflictSelection::DiffBranch) => diff::Selection::Diff,
            None => return Err(bad("selected_branch is required")),
        };
        diff::resolve_conflict(services(ctx), &url_branch(ctx), &id, selection)
            .await
            .map_err(domain)?;
        Ok(Some(ResolveDiffConflict { ok: Some(true) }))
    }

    /// Brings a branch's diff up to date. Diffs here are computed when read, so this only
    /// checks that the branch exists and has a diff.
    #[graphql(name = "DiffUpdate")]
    async fn diff_update(
        &self,
        ctx: &Context<'_>,
        data: DiffUpdateInput,
        wait_until_completion: Option<bool>,
    ) -> Res<Option<DiffUpdateMutation>> {
        require_write(ctx)?;
        let _ = (
            data.from_time,
            data.to_time,
            data.name,
            data.wait_for_completion,
        );
        let _ = wait_until_completion;
        diff::of_branch(services(ctx), &data.branch)
            .await
            .map_err(domain)?;
        Ok(Some(DiffUpdateMutation {
            ok: Some(true),
            task: None,
        }))
    }
}
