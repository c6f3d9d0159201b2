//! The event model in GraphQL: `EventNodeInterface`, one concrete type per event family
//! (SPEC §3), `InfrahubEvent` (query) and `EventEmit` (mutation).

use crate::context::{Caller, Res, caller, event_context, gql, require_write, services, store_err};
use crate::node::RelatedNodeInput;
use crate::scalars::{DateTime, GenericScalar};
use async_graphql::{Context, Enum, InputObject, Interface, Object, SimpleObject};
use infrastream_core::{
    Error, ErrorKind, Event, EventFilter, EventName, NewEvent, ParentRef, RelatedNode as CoreNode,
    SortOrder, parse_timestamp,
};
use infrastream_store::Commit;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// `{id, kind}` of a node.
#[derive(SimpleObject, Clone, serde::Deserialize)]
#[graphql(name = "RelatedNode", rename_fields = "snake_case")]
pub(crate) struct RelatedNode {
    id: String,
    kind: String,
}

impl From<&CoreNode> for RelatedNode {
    fn from(n: &CoreNode) -> Self {
        Self {
            id: n.id.clone(),
            kind: n.kind.clone(),
        }
    }
}

/// What a node mutation did to an attribute or relationship.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "DiffAction")]
pub(crate) enum DiffAction {
    Added,
    Removed,
    Unchanged,
    Updated,
}

/// Stored payloads spell the action as Infrahub's events do (`added`, …); any case is read.
impl<'de> serde::Deserialize<'de> for DiffAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "added" => Ok(DiffAction::Added),
            "removed" => Ok(DiffAction::Removed),
            "unchanged" => Ok(DiffAction::Unchanged),
            "updated" => Ok(DiffAction::Updated),
            _ => Err(serde::de::Error::custom(format!("unknown action {s:?}"))),
        }
    }
}

/// An attribute changed by a node mutation.
#[derive(SimpleObject, Clone, serde::Deserialize)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct InfrahubMutatedAttribute {
    name: String,
    #[serde(default)]
    kind: String,
    action: DiffAction,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    value_previous: Option<String>,
}

/// A relationship changed by a node mutation.
#[derive(SimpleObject, Clone, serde::Deserialize)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct InfrahubMutatedRelationship {
    name: String,
    action: DiffAction,
    peer: RelatedNode,
}

fn text(e: &Event, key: &str) -> Option<String> {
    e.data.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn list<T: serde::de::DeserializeOwned>(e: &Event, key: &str) -> Vec<T> {
    e.data
        .get(key)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// `data.timestamp` of an account event; its commit time if absent or unreadable.
fn timestamp(e: &Event) -> DateTime {
    DateTime(
        text(e, "timestamp")
            .and_then(|t| parse_timestamp(&t))
            .unwrap_or(e.occurred_at),
    )
}

/// Declares a concrete event type: the interface fields plus `$extra`.
macro_rules! event_type {
    ($(#[$doc:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$doc])*
        pub(crate) struct $name(pub(crate) Arc<Event>);

        #[Object(rename_fields = "snake_case")]
        impl $name {
            /// UUID of the event.
            async fn id(&self) -> String { self.0.id.to_string() }
            /// Event name.
            async fn event(&self) -> &str { &self.0.name }
            /// Branch it occurred on; null for global events.
            async fn branch(&self) -> Option<&str> { self.0.branch.as_deref() }
            /// Account that caused it.
            async fn account_id(&self) -> Option<&str> { self.0.account_id.as_deref() }
            /// Commit time.
            async fn occurred_at(&self) -> DateTime { DateTime(self.0.occurred_at) }
            /// 0 for a root event.
            async fn level(&self) -> i32 { self.0.level as i32 }
            /// Parent event id.
            async fn parent_id(&self) -> Option<String> { self.0.parent_id.map(|p| p.to_string()) }
            /// Whether any event names this one as parent.
            async fn has_children(&self) -> bool { self.0.has_children }
            /// The node the event is about.
            async fn primary_node(&self) -> Option<RelatedNode> { self.0.primary_node.as_ref().map(Into::into) }
            /// Other nodes involved.
            async fn related_nodes(&self) -> Vec<RelatedNode> { self.0.related_nodes.iter().map(Into::into).collect() }
            /// `{"data": …, "context": …}`.
            async fn payload(&self) -> GenericScalar { GenericScalar(self.0.payload()) }
            $($extra)*
        }
    };
}

event_type!(
    /// `infrahub.branch.created`.
    BranchCreatedEvent {
        /// The created branch.
        async fn created_branch(&self) -> String { text(&self.0, "created_branch").unwrap_or_default() }
    }
);
event_type!(
    /// `infrahub.branch.deleted`.
    BranchDeletedEvent {
        /// The deleted branch.
        async fn deleted_branch(&self) -> String { text(&self.0, "deleted_branch").unwrap_or_default() }
        /// Proposed change that caused the deletion.
        async fn proposed_change_id(&self) -> Option<String> { text(&self.0, "proposed_change_id") }
    }
);
event_type!(
    /// `infrahub.branch.merged`.
    BranchMergedEvent {
        /// The merged branch.
        async fn source_branch(&self) -> String { text(&self.0, "source_branch").unwrap_or_default() }
    }
);
event_type!(
    /// `infrahub.branch.rebased`.
    BranchRebasedEvent {
        /// The rebased branch.
        async fn rebased_branch(&self) -> String { text(&self.0, "rebased_branch").unwrap_or_default() }
    }
);
event_type!(
    /// `infrahub.artifact.created` and `.updated`.
    ArtifactEvent {
        /// Definition the artifact comes from.
        async fn artifact_definition_id(&self) -> String { text(&self.0, "artifact_definition_id").unwrap_or_default() }
        /// MD5 of the content.
        async fn checksum(&self) -> String { text(&self.0, "checksum").unwrap_or_default() }
        /// MD5 of the previous content.
        async fn checksum_previous(&self) -> Option<String> { text(&self.0, "checksum_previous") }
        /// Object id of the content.
        async fn storage_id(&self) -> String { text(&self.0, "storage_id").unwrap_or_default() }
        /// Object id of the previous content.
        async fn storage_id_previous(&self) -> Option<String> { text(&self.0, "storage_id_previous") }
    }
);
event_type!(
    /// `infrahub.repository.sync_started` and `.sync_completed`.
    RepositorySyncEvent {
        /// Repository id.
        async fn repository_id(&self) -> String { text(&self.0, "repository_id").unwrap_or_default() }
        /// Repository name.
        async fn repository_name(&self) -> String { text(&self.0, "repository_name").unwrap_or_default() }
        /// `started`, `succeeded` or `failed`.
        async fn status(&self) -> String { text(&self.0, "status").unwrap_or_default() }
        /// Failure message.
        async fn message(&self) -> Option<String> { text(&self.0, "message") }
        /// Head commit after the sync.
        async fn commit(&self) -> Option<String> { text(&self.0, "commit") }
    }
);
event_type!(
    /// `infrahub.repository.update_commit`.
    RepositoryCommitEvent {
        /// Repository id.
        async fn repository_id(&self) -> String { text(&self.0, "repository_id").unwrap_or_default() }
        /// Repository name.
        async fn repository_name(&self) -> String { text(&self.0, "repository_name").unwrap_or_default() }
        /// New head.
        async fn commit(&self) -> String { text(&self.0, "commit").unwrap_or_default() }
        /// Previous head.
        async fn commit_previous(&self) -> Option<String> { text(&self.0, "commit_previous") }
        /// The ref that moved.
        #[graphql(name = "ref")]
        async fn git_ref(&self) -> String { text(&self.0, "ref").unwrap_or_default() }
    }
);
event_type!(
    /// `infrahub.node.created`, `.updated` and `.deleted`.
    NodeMutatedEvent {
        /// Changed attributes.
        async fn attributes(&self) -> Vec<InfrahubMutatedAttribute> { list(&self.0, "attributes") }
        /// Changed relationships.
        async fn relationships(&self) -> Vec<InfrahubMutatedRelationship> { list(&self.0, "relationships") }
    }
);
event_type!(
    /// `infrahub.group.member_added` and `.member_removed`.
    GroupEvent {
        /// Members added or removed.
        async fn members(&self) -> Vec<RelatedNode> {
            list::<CoreNode>(&self.0, "members").iter().map(Into::into).collect()
        }
        /// Ancestor groups.
        async fn ancestors(&self) -> Vec<RelatedNode> {
            list::<CoreNode>(&self.0, "ancestors").iter().map(Into::into).collect()
        }
    }
);
event_type!(
    /// `infrahub.account.logged_in` (only callers allowed to manage accounts see it).
    AccountLoggedInEventType {
        /// Username of the account.
        async fn account_name(&self) -> String { text(&self.0, "account_name").unwrap_or_default() }
        /// `User` (Infrahub's account types: USER or SCRIPT).
        async fn account_type(&self) -> String { text(&self.0, "account_type").unwrap_or_default() }
        /// How the account authenticated: `password`.
        async fn auth_method(&self) -> String { text(&self.0, "auth_method").unwrap_or_default() }
        /// Source IP address.
        async fn client_ip(&self) -> Option<String> { text(&self.0, "client_ip") }
        /// Groups of the account (none here).
        async fn groups(&self) -> Vec<String> { list(&self.0, "groups") }
        /// External identity provider; null for local accounts.
        async fn identity_source(&self) -> Option<String> { text(&self.0, "identity_source") }
        /// Kind of the account node: `CoreAccount`.
        async fn kind(&self) -> String { text(&self.0, "kind").unwrap_or_default() }
        /// Roles of the account: its role.
        async fn roles(&self) -> Vec<String> { list(&self.0, "roles") }
        /// Id of the session the login opened (the `session_id` of its tokens).
        async fn session_id(&self) -> String { text(&self.0, "session_id").unwrap_or_default() }
        /// When the login occurred (UTC).
        async fn timestamp(&self) -> DateTime { timestamp(&self.0) }
        /// The client's `User-Agent`.
        async fn user_agent(&self) -> Option<String> { text(&self.0, "user_agent") }
    }
);
event_type!(
    /// `infrahub.account.logged_out` (only callers allowed to manage accounts see it).
    AccountLoggedOutEventType {
        /// Username of the account.
        async fn account_name(&self) -> String { text(&self.0, "account_name").unwrap_or_default() }
        /// Source IP address.
        async fn client_ip(&self) -> Option<String> { text(&self.0, "client_ip") }
        /// Kind of the account node: `CoreAccount`.
        async fn kind(&self) -> String { text(&self.0, "kind").unwrap_or_default() }
        /// How the logout occurred: `user_initiated`.
        async fn logout_type(&self) -> String { text(&self.0, "logout_type").unwrap_or_default() }
        /// Id of the session that ended.
        async fn session_id(&self) -> String { text(&self.0, "session_id").unwrap_or_default() }
        /// When the logout occurred (UTC).
        async fn timestamp(&self) -> DateTime { timestamp(&self.0) }
        /// The client's `User-Agent`.
        async fn user_agent(&self) -> Option<String> { text(&self.0, "user_agent") }
    }
);
event_type!(
    /// Any other event, e.g. custom events published with `EventEmit`.
    StandardEvent {}
);

/// Every event, whatever its concrete type.
#[allow(clippy::duplicated_attributes, clippy::enum_variant_names)]
#[derive(Interface)]
#[graphql(
    name = "EventNodeInterface",
    rename_fields = "snake_case",
    field(name = "id", ty = "String"),
    field(name = "event", ty = "&str"),
    field(name = "branch", ty = "Option<&str>"),
    field(name = "account_id", ty = "Option<&str>"),
    field(name = "occurred_at", ty = "DateTime"),
    field(name = "level", ty = "i32"),
    field(name = "parent_id", ty = "Option<String>"),
    field(name = "has_children", ty = "bool"),
    field(name = "primary_node", ty = "Option<RelatedNode>"),
    field(name = "related_nodes", ty = "Vec<RelatedNode>"),
    field(name = "payload", ty = "GenericScalar")
)]
pub(crate) enum EventNode {
    BranchCreatedEvent(BranchCreatedEvent),
    BranchDeletedEvent(BranchDeletedEvent),
    BranchMergedEvent(BranchMergedEvent),
    BranchRebasedEvent(BranchRebasedEvent),
    ArtifactEvent(ArtifactEvent),
    RepositorySyncEvent(RepositorySyncEvent),
    RepositoryCommitEvent(RepositoryCommitEvent),
    NodeMutatedEvent(NodeMutatedEvent),
    GroupEvent(GroupEvent),
    AccountLoggedInEventType(AccountLoggedInEventType),
    AccountLoggedOutEventType(AccountLoggedOutEventType),
    StandardEvent(StandardEvent),
}

impl From<Arc<Event>> for EventNode {
    fn from(e: Arc<Event>) -> Self {
        match EventName::graphql_type(&e.name) {
            "BranchCreatedEvent" => EventNode::BranchCreatedEvent(BranchCreatedEvent(e)),
            "BranchDeletedEvent" => EventNode::BranchDeletedEvent(BranchDeletedEvent(e)),
            "BranchMergedEvent" => EventNode::BranchMergedEvent(BranchMergedEvent(e)),
            "BranchRebasedEvent" => EventNode::BranchRebasedEvent(BranchRebasedEvent(e)),
            "ArtifactEvent" => EventNode::ArtifactEvent(ArtifactEvent(e)),
            "RepositorySyncEvent" => EventNode::RepositorySyncEvent(RepositorySyncEvent(e)),
            "RepositoryCommitEvent" => EventNode::RepositoryCommitEvent(RepositoryCommitEvent(e)),
            "NodeMutatedEvent" => EventNode::NodeMutatedEvent(NodeMutatedEvent(e)),
            "GroupEvent" => EventNode::GroupEvent(GroupEvent(e)),
            "AccountLoggedInEventType" => {
                EventNode::AccountLoggedInEventType(AccountLoggedInEventType(e))
            }
            "AccountLoggedOutEventType" => {
                EventNode::AccountLoggedOutEventType(AccountLoggedOutEventType(e))
            }
            _ => EventNode::StandardEvent(StandardEvent(e)),
        }
    }
}

/// One edge of [`Events`].
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct EventNodes {
    node: Option<EventNode>,
}

/// A page of events.
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct Events {
    /// Matches regardless of paging.
    count: i64,
    edges: Vec<EventNodes>,
}

/// Result order.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "EventSortOrder")]
pub(crate) enum EventSortOrder {
    /// Oldest first.
    #[graphql(name = "ASC")]
    Asc,
    /// Newest first.
    #[graphql(name = "DESC")]
    Desc,
}

/// `{branches: [...]}`: the impacted branches.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "BranchEventTypeFilter", rename_fields = "snake_case")]
pub(crate) struct BranchesFilter {
    branches: Vec<String>,
}

/// Adds branch merge / rebase events restricted to branch names.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "EventTypeFilter", rename_fields = "snake_case")]
pub(crate) struct EventTypeFilter {
    #[graphql(default)]
    branch_merged: Option<BranchesFilter>,
    #[graphql(default)]
    branch_rebased: Option<BranchesFilter>,
}

/// The filter arguments shared by `InfrahubEvent` and the `events` subscription.
#[derive(Default)]
pub(crate) struct FilterArgs {
    pub(crate) level: Option<i32>,
    pub(crate) has_children: Option<bool>,
    pub(crate) event_type: Option<Vec<String>>,
    pub(crate) event_type_filter: Option<EventTypeFilter>,
    pub(crate) primary_node_ids: Option<Vec<String>>,
    pub(crate) related_node_ids: Option<Vec<String>>,
    pub(crate) parent_ids: Option<Vec<String>>,
    pub(crate) since: Option<DateTime>,
    pub(crate) until: Option<DateTime>,
    pub(crate) branches: Option<Vec<String>>,
    pub(crate) account_ids: Option<Vec<String>>,
    pub(crate) ids: Option<Vec<String>>,
}

fn uuids(values: Option<Vec<String>>, arg: &str) -> Res<Vec<Uuid>> {
    values
        .unwrap_or_default()
        .iter()
        .map(|v| {
            Uuid::parse_str(v).map_err(|_| {
                gql(Error::invalid(format!(
                    "Invalid UUID '{v}' in argument '{arg}'"
                )))
            })
        })
        .collect()
}

impl FilterArgs {
    /// Converts the arguments to the domain filter of `caller`; invalid values are user
    /// errors. Account events are left out for a caller who may not manage accounts, and
    /// naming one in `event_type` is refused (FORBIDDEN), as in Infrahub.
    pub(crate) fn into_filter(self, caller: &Caller) -> Res<EventFilter> {
        let mut filter = self.into_domain()?;
        if !caller.may_manage_accounts() {
            if filter.names_account_events() {
                return Err(gql(Error::new(
                    ErrorKind::Forbidden,
                    "Account events (infrahub.account.*) are visible only to accounts allowed \
                     to manage accounts (the admin role); remove them from event_type",
                )));
            }
            filter.hide_account_events = true;
        }
        Ok(filter)
    }

    fn into_domain(self) -> Res<EventFilter> {
        let level = match self.level {
            Some(l) if l < 0 => return Err(gql(Error::invalid("level must not be negative"))),
            l => l.map(|l| l as u32),
        };
        let tf = self.event_type_filter.unwrap_or_default();
        Ok(EventFilter {
            ids: uuids(self.ids, "ids")?,
            level,
            has_children: self.has_children,
            event_types: self.event_type.unwrap_or_default(),
            branch_merged: tf.branch_merged.map(|b| b.branches),
            branch_rebased: tf.branch_rebased.map(|b| b.branches),
            primary_node_ids: self.primary_node_ids.unwrap_or_default(),
            related_node_ids: self.related_node_ids.unwrap_or_default(),
            parent_ids: uuids(self.parent_ids, "parent__ids")?,
            since: self.since.map(|d| d.0),
            until: self.until.map(|d| d.0),
            branches: self.branches.unwrap_or_default(),
            account_ids: self.account_ids.unwrap_or_default(),
            hide_account_events: false,
        })
    }
}

#[derive(Default)]
pub(crate) struct EventQuery;

#[Object(rename_args = "snake_case")]
impl EventQuery {
    /// Events matching every given filter, paged (`limit` at most `event_page_max`).
    #[graphql(name = "InfrahubEvent")]
    #[allow(clippy::too_many_arguments)]
    async fn infrahub_event(
        &self,
        ctx: &Context<'_>,
        limit: Option<i32>,
        offset: Option<i32>,
        level: Option<i32>,
        has_children: Option<bool>,
        event_type: Option<Vec<String>>,
        event_type_filter: Option<EventTypeFilter>,
        #[graphql(name = "primary_node__ids")] primary_node_ids: Option<Vec<String>>,
        #[graphql(name = "related_node__ids")] related_node_ids: Option<Vec<String>>,
        #[graphql(name = "parent__ids")] parent_ids: Option<Vec<String>>,
        since: Option<DateTime>,
        until: Option<DateTime>,
        branches: Option<Vec<String>>,
        #[graphql(name = "account__ids")] account_ids: Option<Vec<String>>,
        ids: Option<Vec<String>>,
        #[graphql(default_with = "Some(EventSortOrder::Desc)")] order: Option<EventSortOrder>,
    ) -> Res<Events> {
        let s = services(ctx);
        let max = s.settings.event_page_max as i32;
        let limit = limit.unwrap_or(s.settings.event_page_default as i32);
        if !(1..=max).contains(&limit) {
            return Err(gql(Error::invalid(format!(
                "limit must be between 1 and {max}, got {limit}"
            ))));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            return Err(gql(Error::invalid("offset must not be negative")));
        }
        let filter = FilterArgs {
            level,
            has_children,
            event_type,
            event_type_filter,
            primary_node_ids,
            related_node_ids,
            parent_ids,
            since,
            until,
            branches,
            account_ids,
            ids,
        }
        .into_filter(caller(ctx))?;
        // An explicit `null` means the default order too.
        let order = match order.unwrap_or(EventSortOrder::Desc) {
            EventSortOrder::Asc => SortOrder::Asc,
            EventSortOrder::Desc => SortOrder::Desc,
        };
        let page = s
            .store
            .query_events(&filter, order, limit as u32, offset as u32)
            .await
            .map_err(store_err)?;
        Ok(Events {
            count: page.count as i64,
            edges: page
                .events
                .into_iter()
                .map(|e| EventNodes {
                    node: Some(Arc::new(e).into()),
                })
                .collect(),
        })
    }
}

/// Data of `EventEmit`.
#[derive(InputObject)]
#[graphql(name = "EventEmitInput", rename_fields = "snake_case")]
pub(crate) struct EventEmitInput {
    /// Event name, outside the `infrahub.` namespace.
    event: String,
    /// Branch it occurred on (must exist); null for a global event.
    branch: Option<String>,
    primary_node: Option<RelatedNodeInput>,
    related_nodes: Option<Vec<RelatedNodeInput>>,
    /// Any JSON; returned as `payload.data`.
    payload: Option<GenericScalar>,
    /// Parent event id.
    parent_id: Option<String>,
}

/// Result of `EventEmit`.
#[derive(SimpleObject)]
#[graphql(rename_fields = "snake_case")]
pub(crate) struct EventEmit {
    ok: bool,
    object: Option<EventNode>,
}

#[derive(Default)]
pub(crate) struct EventMutation;

#[Object(rename_args = "snake_case")]
impl EventMutation {
    /// Publishes a custom event.
    #[graphql(name = "EventEmit")]
    async fn event_emit(&self, ctx: &Context<'_>, data: EventEmitInput) -> Res<EventEmit> {
        let caller = require_write(ctx)?;
        EventName::check_custom(&data.event).map_err(gql)?;
        let s = services(ctx);
        if let Some(b) = &data.branch
            && s.store.branch(b).await.map_err(store_err)?.is_none()
        {
            return Err(gql(Error::branch_not_found(b)));
        }
        let parent = match data.parent_id {
            Some(p) => Some(ParentRef::Existing(Uuid::parse_str(&p).map_err(|_| {
                gql(Error::invalid(format!(
                    "Invalid UUID '{p}' in argument 'parent_id'"
                )))
            })?)),
            None => None,
        };
        // Infrahub's `RelatedNodeInput` makes both optional; an event's nodes need both.
        let node = |n: RelatedNodeInput, what: &str| match (n.id, n.kind) {
            (Some(id), Some(kind)) => Ok(CoreNode { id, kind }),
            _ => Err(gql(Error::invalid(format!(
                "{what} needs both id and kind"
            )))),
        };
        let primary_node = data
            .primary_node
            .map(|n| node(n, "primary_node"))
            .transpose()?;
        let related_nodes = data
            .related_nodes
            .unwrap_or_default()
            .into_iter()
            .map(|n| node(n, "related_nodes"))
            .collect::<Res<Vec<_>>>()?;
        let event = NewEvent {
            name: data.event,
            branch: data.branch,
            account_id: caller.account_id(),
            parent,
            primary_node,
            related_nodes,
            data: data
                .payload
                .map(|p| p.0)
                .unwrap_or_else(|| serde_json::json!({})),
            context: event_context(ctx),
        };
        let mut stored = s
            .store
            .commit(Commit::events(vec![event]))
            .await
            .map_err(store_err)?;
        let event = stored.pop().map(|e| EventNode::from(Arc::new(e)));
        Ok(EventEmit {
            ok: true,
            object: event,
        })
    }
}
