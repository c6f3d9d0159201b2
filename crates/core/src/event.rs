//! Events: what the log stores, in the one total order given by [`Position`].

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Gap-free, strictly increasing sequence number assigned at commit; the first event is 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position(pub u64);

impl Position {
    /// The position before any event.
    pub const ZERO: Position = Position(0);

    /// The next position.
    pub fn next(self) -> Position {
        Position(self.0 + 1)
    }
}

/// A node an event is about or involves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelatedNode {
    /// Node id.
    pub id: String,
    /// Node kind, e.g. `CoreArtifact`.
    pub kind: String,
}

/// A committed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Place in the log.
    pub position: Position,
    /// UUID (v7) of the event.
    pub id: Uuid,
    /// Event name, e.g. `infrahub.branch.created`.
    pub name: String,
    /// Branch the event occurred on; `None` for global events.
    pub branch: Option<String>,
    /// Account that caused it.
    pub account_id: Option<String>,
    /// When it was committed.
    pub occurred_at: Timestamp,
    /// 0 for a root event, parent's level + 1 for a child.
    pub level: u32,
    /// Parent event for nested events.
    pub parent_id: Option<Uuid>,
    /// Whether any event names this one as parent.
    pub has_children: bool,
    /// The node the event is about.
    pub primary_node: Option<RelatedNode>,
    /// Other nodes involved, without the primary node, de-duplicated.
    pub related_nodes: Vec<RelatedNode>,
    /// Event-specific fields (`payload.data`).
    pub data: Value,
    /// Context of the change (`payload.context`).
    pub context: Value,
}

impl Event {
    /// The branch an event is *about*, as opposed to the branch it occurred on: the created,
    /// deleted, merged (source) or rebased branch. Used by `event_type_filter`.
    pub fn subject_branch(&self) -> Option<&str> {
        subject_branch(&self.name, &self.data)
    }

    /// `{"data": …, "context": …}`, the GraphQL `payload` field.
    pub fn payload(&self) -> Value {
        serde_json::json!({ "data": self.data, "context": self.context })
    }
}

/// See [`Event::subject_branch`].
pub fn subject_branch<'a>(name: &str, data: &'a Value) -> Option<&'a str> {
    let key = match name {
        EventName::BRANCH_CREATED => "created_branch",
        EventName::BRANCH_DELETED => "deleted_branch",
        EventName::BRANCH_MERGED => "source_branch",
        EventName::BRANCH_REBASED => "rebased_branch",
        _ => return None,
    };
    data.get(key).and_then(Value::as_str)
}

/// Where the parent of a new event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentRef {
    /// An event already in the log.
    Existing(Uuid),
    /// An earlier event of the same commit, by index.
    InBatch(usize),
}

/// An event to append; the store assigns id, position, time, level and `has_children`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Event name.
    pub name: String,
    /// Branch it occurred on, `None` for global events.
    pub branch: Option<String>,
    /// Account that caused it.
    pub account_id: Option<String>,
    /// Parent event, if nested.
    pub parent: Option<ParentRef>,
    /// The node it is about.
    pub primary_node: Option<RelatedNode>,
    /// Other nodes involved.
    pub related_nodes: Vec<RelatedNode>,
    /// Event-specific fields.
    pub data: Value,
    /// Context of the change.
    pub context: Value,
}

impl NewEvent {
    /// A root event with no nodes and empty data.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            branch: None,
            account_id: None,
            parent: None,
            primary_node: None,
            related_nodes: Vec::new(),
            data: Value::Object(Default::default()),
            context: Value::Object(Default::default()),
        }
    }

    /// Removes the primary node and duplicates from `related_nodes`, keeping first occurrences.
    pub fn normalize_related(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let primary = self.primary_node.clone();
        self.related_nodes
            .retain(|n| Some(n) != primary.as_ref() && seen.insert(n.clone()));
    }
}

/// Event names produced by infrastream itself, and their GraphQL types.
pub struct EventName;

impl EventName {
    /// Reserved namespace: custom events may not use it.
    pub const RESERVED_PREFIX: &'static str = "infrahub.";
    /// A branch was created.
    pub const BRANCH_CREATED: &'static str = "infrahub.branch.created";
    /// A branch was deleted.
    pub const BRANCH_DELETED: &'static str = "infrahub.branch.deleted";
    /// A branch was merged into `main`.
    pub const BRANCH_MERGED: &'static str = "infrahub.branch.merged";
    /// A branch was rebased onto `main`.
    pub const BRANCH_REBASED: &'static str = "infrahub.branch.rebased";
    /// An artifact was generated for the first time.
    pub const ARTIFACT_CREATED: &'static str = "infrahub.artifact.created";
    /// An artifact's content changed.
    pub const ARTIFACT_UPDATED: &'static str = "infrahub.artifact.updated";
    /// A repository sync started.
    pub const REPOSITORY_SYNC_STARTED: &'static str = "infrahub.repository.sync_started";
    /// A repository sync ended.
    pub const REPOSITORY_SYNC_COMPLETED: &'static str = "infrahub.repository.sync_completed";
    /// A repository ref moved.
    pub const REPOSITORY_UPDATE_COMMIT: &'static str = "infrahub.repository.update_commit";
    /// A node was created.
    pub const NODE_CREATED: &'static str = "infrahub.node.created";
    /// A node was updated.
    pub const NODE_UPDATED: &'static str = "infrahub.node.updated";
    /// A node was deleted.
    pub const NODE_DELETED: &'static str = "infrahub.node.deleted";
    /// Members were added to a group.
    pub const GROUP_MEMBER_ADDED: &'static str = "infrahub.group.member_added";
    /// Members were removed from a group.
    pub const GROUP_MEMBER_REMOVED: &'static str = "infrahub.group.member_removed";
    /// Namespace of account events, which only callers allowed to manage accounts see.
    pub const ACCOUNT_PREFIX: &'static str = "infrahub.account.";
    /// An account logged in (`POST /api/auth/login`).
    pub const ACCOUNT_LOGGED_IN: &'static str = "infrahub.account.logged_in";
    /// An account logged out (`POST /api/auth/logout`).
    pub const ACCOUNT_LOGGED_OUT: &'static str = "infrahub.account.logged_out";

    /// Whether `name` is in the account namespace (`infrahub.account.…`): such events are
    /// shown only to callers allowed to manage accounts.
    pub fn is_account(name: &str) -> bool {
        name.starts_with(Self::ACCOUNT_PREFIX)
    }

    /// The concrete GraphQL type an event of this name is shown as.
    pub fn graphql_type(name: &str) -> &'static str {
        match name {
            Self::BRANCH_CREATED => "BranchCreatedEvent",
            Self::BRANCH_DELETED => "BranchDeletedEvent",
            Self::BRANCH_MERGED => "BranchMergedEvent",
            Self::BRANCH_REBASED => "BranchRebasedEvent",
            Self::ARTIFACT_CREATED | Self::ARTIFACT_UPDATED => "ArtifactEvent",
            Self::REPOSITORY_SYNC_STARTED | Self::REPOSITORY_SYNC_COMPLETED => {
                "RepositorySyncEvent"
            }
            Self::REPOSITORY_UPDATE_COMMIT => "RepositoryCommitEvent",
            Self::NODE_CREATED | Self::NODE_UPDATED | Self::NODE_DELETED => "NodeMutatedEvent",
            Self::GROUP_MEMBER_ADDED | Self::GROUP_MEMBER_REMOVED => "GroupEvent",
            Self::ACCOUNT_LOGGED_IN => "AccountLoggedInEventType",
            Self::ACCOUNT_LOGGED_OUT => "AccountLoggedOutEventType",
            _ => "StandardEvent",
        }
    }

    /// Whether a custom event may use this name: non-empty, at most 255 bytes, printable,
    /// and outside the reserved `infrahub.` namespace.
    pub fn check_custom(name: &str) -> Result<(), crate::Error> {
        if name.trim().is_empty() {
            return Err(crate::Error::invalid("Event name must not be empty"));
        }
        if name.len() > 255 || name.chars().any(char::is_control) {
            return Err(crate::Error::invalid(
                "Event name must be at most 255 printable characters",
            ));
        }
        if name.starts_with(Self::RESERVED_PREFIX) {
            return Err(crate::Error::invalid(format!(
                "Event name '{name}' is in the reserved namespace 'infrahub.'"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_names_outside_reserved_namespace() {
        assert!(EventName::check_custom("acme.deploy.done").is_ok());
        assert!(EventName::check_custom("infrahub.branch.created").is_err());
        assert!(EventName::check_custom("  ").is_err());
    }

    #[test]
    fn related_nodes_lose_primary_and_duplicates() {
        let n = |id: &str| RelatedNode {
            id: id.into(),
            kind: "K".into(),
        };
        let mut e = NewEvent::new("x");
        e.primary_node = Some(n("a"));
        e.related_nodes = vec![n("b"), n("a"), n("b"), n("c")];
        e.normalize_related();
        assert_eq!(e.related_nodes, vec![n("b"), n("c")]);
    }

    #[test]
    fn graphql_types_cover_the_table() {
        assert_eq!(
            EventName::graphql_type("infrahub.branch.rebased"),
            "BranchRebasedEvent"
        );
        assert_eq!(
            EventName::graphql_type("infrahub.artifact.updated"),
            "ArtifactEvent"
        );
        assert_eq!(EventName::graphql_type("acme.x"), "StandardEvent");
        assert_eq!(
            EventName::graphql_type("infrahub.account.logged_out"),
            "AccountLoggedOutEventType"
        );
    }

    #[test]
    fn account_namespace_is_a_prefix() {
        assert!(EventName::is_account(EventName::ACCOUNT_LOGGED_IN));
        assert!(EventName::is_account("infrahub.account.anything"));
        assert!(!EventName::is_account("infrahub.accounts.x"));
        assert!(!EventName::is_account("Infrahub.Account.logged_in"));
    }
}
