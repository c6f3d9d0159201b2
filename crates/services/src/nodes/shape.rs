//! The parts of a node kind's description: how a node is designated ([`NodeKey`]) and
//! filtered ([`NodeFilter`]), its attributes and relationships, and the failures every kind
//! shares ([`NodeError`]).

use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_store::StoreError;

use super::NodeKind;

/// How a mutation designates an existing node: by `id`, or by its human friendly id. Every
/// kind served here whose nodes have an hfid uses the name alone (`hfid: [name]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKey {
    /// By id.
    Id(String),
    /// By name (the one-element hfid).
    Name(String),
}

impl NodeKey {
    /// `id` if given, else the name from `hfid`; `None` when neither is given.
    pub fn parse(
        id: Option<String>,
        hfid: Option<Vec<Option<String>>>,
        kind: &str,
    ) -> Result<Option<NodeKey>, NodeError> {
        if let Some(id) = id {
            return Ok(Some(NodeKey::Id(id)));
        }
        match hfid {
            None => Ok(None),
            Some(parts) => match parts.as_slice() {
                [Some(name)] => Ok(Some(NodeKey::Name(name.clone()))),
                _ => Err(NodeError::InvalidHfid {
                    kind: kind.to_owned(),
                    parts: format!("{parts:?}"),
                }),
            },
        }
    }

    /// Like [`NodeKey::parse`], but one of `id` and `hfid` is required.
    pub fn required(
        id: Option<String>,
        hfid: Option<Vec<Option<String>>>,
        kind: &str,
    ) -> Result<NodeKey, NodeError> {
        Self::parse(id, hfid, kind)?.ok_or_else(|| NodeError::KeyRequired(kind.to_owned()))
    }

    /// `id` if given, else the name from `hfid` — for kinds without hfid, `hfid` alone is
    /// refused; `None` when neither is given.
    pub fn parse_for<K: NodeKind>(
        id: Option<String>,
        hfid: Option<Vec<Option<String>>>,
    ) -> Result<Option<NodeKey>, NodeError> {
        match Self::parse(id, hfid, K::KIND)? {
            Some(NodeKey::Name(_)) if !K::HFID => Err(NodeError::NoHfid {
                kind: K::KIND,
                label: K::LABEL,
            }),
            key => Ok(key),
        }
    }

    /// Like [`NodeKey::parse_for`], but a key is required.
    pub fn required_for<K: NodeKind>(
        id: Option<String>,
        hfid: Option<Vec<Option<String>>>,
    ) -> Result<NodeKey, NodeError> {
        Self::parse_for::<K>(id, hfid)?.ok_or_else(|| match K::HFID {
            true => NodeError::KeyRequired(K::KIND.to_owned()),
            false => NodeError::IdRequired(K::KIND),
        })
    }

    /// Whether a node with this id and name is the one designated.
    pub fn matches(&self, id: &str, name: &str) -> bool {
        match self {
            NodeKey::Id(i) => i == id,
            NodeKey::Name(n) => n == name,
        }
    }
}

impl std::fmt::Display for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeKey::Id(id) => f.write_str(id),
            NodeKey::Name(name) => write!(f, "[{name:?}]"),
        }
    }
}

/// The filters of a kind's list query: `ids`, `name__value`, and `<rel>__ids` for the
/// relationships a kind is filtered by; absent filters match all.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Only the node with this name.
    pub name: Option<String>,
    /// Only nodes whose relationship (by name) points to one of these ids; every entry must
    /// pass.
    pub related: Vec<(&'static str, Vec<String>)>,
    /// For branch-local kinds: only the nodes of this branch.
    pub branch: Option<String>,
}

impl NodeFilter {
    /// Whether the node with this id and name passes.
    pub fn matches(&self, id: &str, name: &str) -> bool {
        self.name.as_ref().is_none_or(|n| n == name)
            && self
                .ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|i| i == id))
    }
}

impl NodeFilter {
    /// Whether `node` passes.
    pub fn passes<K: NodeKind>(&self, node: &K) -> bool {
        self.matches(node.id(), node.name())
            && self.related.iter().all(|(rel, ids)| {
                node.related(rel)
                    .is_some_and(|id| ids.iter().any(|i| i == id))
            })
            && match (&self.branch, node.branch()) {
                (Some(want), Some(b)) => want == b,
                _ => true,
            }
    }
}

/// A relationship input as given: the referenced node's `id` or `hfid`, and its `kind` if
/// given. The kind parses it (its messages name the relationship).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelatedRef {
    /// Node id.
    pub id: Option<String>,
    /// Human friendly id.
    pub hfid: Option<Vec<Option<String>>>,
    /// Node kind.
    pub kind: Option<String>,
}

impl RelatedRef {
    /// The referenced node's key; `relationship` names it in messages.
    pub fn key(&self, relationship: &str) -> Result<NodeKey, NodeError> {
        NodeKey::required(self.id.clone(), self.hfid.clone(), relationship)
    }
}

/// A declared relationship of a kind (one peer, given as a `RelatedNodeInput`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relationship {
    /// Its name in inputs (`definition`).
    pub name: &'static str,
    /// The peer's kind, when it is one kind.
    pub peer: Option<&'static str>,
}

/// How an attribute is shown (Infrahub's attribute kinds used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    /// `TextAttribute`.
    Text,
    /// `Dropdown` (a value from a fixed list).
    Dropdown,
    /// `JSONAttribute` (any JSON value).
    Json,
}

/// A declared attribute of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    /// Its name, as in GraphQL (`default_branch`).
    pub name: &'static str,
    /// How it is shown.
    pub kind: AttributeKind,
    /// Whether a create must give it.
    pub required: bool,
    /// Whether mutations may set it (`false`: computed, like a repository's `commit`).
    pub writable: bool,
    /// Whether it is never shown (a password).
    pub secret: bool,
}

impl Attribute {
    /// A writable, shown text attribute.
    pub const fn text(name: &'static str, required: bool) -> Self {
        Self {
            name,
            kind: AttributeKind::Text,
            required,
            writable: true,
            secret: false,
        }
    }
    /// A writable, shown JSON attribute.
    pub const fn json(name: &'static str, required: bool) -> Self {
        Self {
            name,
            kind: AttributeKind::Json,
            required,
            writable: true,
            secret: false,
        }
    }
    /// A read-only attribute.
    pub const fn computed(name: &'static str, kind: AttributeKind) -> Self {
        Self {
            name,
            kind,
            required: false,
            writable: false,
            secret: false,
        }
    }
    /// A writable attribute that is never shown.
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

/// The failures every kind shares.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The designated node does not exist.
    #[error("{label} {key} not found")]
    NotFound {
        /// The kind's label ([`NodeKind::LABEL`]).
        label: &'static str,
        /// The key as given.
        key: String,
    },
    /// `hfid` is not `[name]`.
    #[error("Invalid hfid for {kind}: expected [name], got {parts}")]
    InvalidHfid {
        /// The node kind.
        kind: String,
        /// The hfid as given.
        parts: String,
    },
    /// Neither `id` nor `hfid` was given.
    #[error("id or hfid is required for {0}")]
    KeyRequired(String),
    /// No `id` was given for a node of a kind without hfid.
    #[error("id is required for {0}")]
    IdRequired(&'static str),
    /// An `hfid` was given for a node of a kind without hfid.
    #[error("{kind} has no hfid: designate the {} by id", label.to_lowercase())]
    NoHfid {
        /// The node kind.
        kind: &'static str,
        /// The kind's label.
        label: &'static str,
    },
    /// A required attribute is missing (or, for a name, blank).
    #[error("{0}.value is required")]
    Required(&'static str),
    /// A node with the id exists already (in any kind).
    #[error("A node with id {0} already exists")]
    IdTaken(String),
    /// The store refused the change or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NodeError {
    /// The designated node of kind `K` does not exist.
    pub fn not_found<K: NodeKind>(key: impl std::fmt::Display) -> Self {
        NodeError::NotFound {
            label: K::LABEL,
            key: key.to_string(),
        }
    }
}

/// The code of a store failure: a rejection keeps its own, a full storage is
/// `STORAGE_FULL`, anything else is internal.
pub fn store_code(e: &StoreError) -> &'static Code {
    e.code()
}

impl DomainError for NodeError {
    fn code(&self) -> &'static Code {
        match self {
            NodeError::NotFound { .. } => &codes::NOT_FOUND,
            NodeError::InvalidHfid { .. }
            | NodeError::KeyRequired(_)
            | NodeError::IdRequired(_)
            | NodeError::NoHfid { .. }
            | NodeError::Required(_) => &codes::BAD_USER_INPUT,
            NodeError::IdTaken(_) => &codes::ALREADY_EXISTS,
            NodeError::Store(e) => store_code(e),
        }
    }
}
