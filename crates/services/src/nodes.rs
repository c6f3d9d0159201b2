//! One description of a node kind, and the operations every kind shares.
//!
//! Infrahub serves every kind of node the same way: a list query filtered by `ids` and
//! `name__value`, and four mutations — Create, Update, Upsert, Delete — that find an existing
//! node by `id`, by its human friendly id (`hfid: [name]`) or, for an upsert, by the name it
//! is given, and say "`<Label> <key> not found`" when it is not there. This module holds that
//! shape once:
//!
//! * [`NodeKind`] describes a kind: its `KIND`, the label used in messages, its declared
//!   [`Attribute`]s, the type of the attribute values a mutation carries (`Values`, one
//!   optional value per attribute), how a node is built from create values and how update
//!   values are merged into it, and where its nodes are kept (list, read by id, insert,
//!   update, remove — defaults cover the simple cases).
//! * The generic operations [`list`], [`find`], [`existing_id`], [`create`], [`update`],
//!   [`upsert`] and [`delete`] implement the shared rules over any [`NodeKind`].
//!
//! Saved queries ([`crate::saved_queries`]), repositories ([`crate::repositories`]),
//! accounts ([`crate::accounts`]) and artifact definitions ([`crate::artifacts::Definition`])
//! are produced this way; the GraphQL layer turns the same
//! description into the kind's query field and four mutations with one macro
//! (`node_kind!`, in the `graphql` crate's `node_kind.rs`), so a kind's GraphQL file holds only
//! declarations.
//!
//! Error messages are the kind's: "`<LABEL> <key> not found`", "`<attr>.value is required`",
//! "`id or hfid is required for <KIND>`" come from [`NodeError`], wrapped by the kind's own
//! error enum. Authorization stays with the caller of an operation (the GraphQL guard);
//! rules that need the caller (an account never deletes itself) get it in
//! [`NodeKind::remove`]. Schema-defined nodes are the next step: a kind whose `Values` and
//! attributes come from a schema rather than from Rust.

use crate::{Caller, Services};
use async_trait::async_trait;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_store::StoreError;

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

/// The filters of a kind's list query: `ids` and `name__value`; absent filters match all.
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Only these ids.
    pub ids: Option<Vec<String>>,
    /// Only the node with this name.
    pub name: Option<String>,
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

/// The code of a store failure: a rejection keeps its own, anything else is internal.
pub fn store_code(e: &StoreError) -> &'static Code {
    match e {
        StoreError::Rejected(e) => codes::find(e.code).unwrap_or(e.kind.general_code()),
        _ => &codes::INTERNAL_SERVER_ERROR,
    }
}

impl DomainError for NodeError {
    fn code(&self) -> &'static Code {
        match self {
            NodeError::NotFound { .. } => &codes::NOT_FOUND,
            NodeError::InvalidHfid { .. } | NodeError::KeyRequired(_) | NodeError::Required(_) => {
                &codes::BAD_USER_INPUT
            }
            NodeError::IdTaken(_) => &codes::ALREADY_EXISTS,
            NodeError::Store(e) => store_code(e),
        }
    }
}

/// The description of a node kind (see the module documentation).
#[async_trait]
pub trait NodeKind: Sized + Clone + Send + Sync + 'static {
    /// The node kind, e.g. `CoreRepository`.
    const KIND: &'static str;
    /// What messages call a node of the kind ("Repository", "GraphQL query").
    const LABEL: &'static str;
    /// The declared attributes, in the order GraphQL shows them (`id` and `display_label`
    /// are implied; `name` is always first).
    const ATTRIBUTES: &'static [Attribute];
    /// Attribute values of a create, update or upsert: one `Option` per writable attribute.
    type Values: Send + 'static;
    /// The kind's errors; the shared ones come in through [`NodeError`].
    type Error: DomainError + From<NodeError>;

    /// The node's id.
    fn id(&self) -> &str;
    /// The node's name (unique within the kind; its hfid).
    fn name(&self) -> &str;
    /// The name among mutation values, which an upsert without key looks nodes up by.
    fn name_value(values: &Self::Values) -> Option<&str>;
    /// A new node from create values (`id` if the caller chose it).
    fn build(id: Option<String>, values: Self::Values) -> Result<Self, Self::Error>;
    /// The node with update values applied (absent values keep the current ones).
    fn merge(self, values: Self::Values) -> Result<Self, Self::Error>;

    /// Every node of the kind.
    async fn all(s: &Services) -> Result<Vec<Self>, Self::Error>;
    /// The node with this id.
    async fn by_id(s: &Services, id: &str) -> Result<Option<Self>, Self::Error> {
        Ok(Self::all(s).await?.into_iter().find(|n| n.id() == id))
    }
    /// Checks and stores a new node.
    async fn insert(s: &Services, node: Self) -> Result<Self, Self::Error>;
    /// Checks and stores a changed node.
    async fn replace(s: &Services, node: Self) -> Result<Self, Self::Error>;
    /// Applies `values` to the node with this id: read, [`merge`](Self::merge),
    /// [`replace`](Self::replace). Kinds that must serialize changes override it.
    async fn update(s: &Services, id: &str, values: Self::Values) -> Result<Self, Self::Error> {
        let node = Self::by_id(s, id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(id))?;
        Self::replace(s, node.merge(values)?).await
    }
    /// Removes the node with this id on behalf of `caller`; returns it if the kind shows
    /// removed nodes.
    async fn remove(s: &Services, caller: &Caller, id: String)
    -> Result<Option<Self>, Self::Error>;
}

/// The nodes of `K` that pass `filter`.
pub async fn list<K: NodeKind>(s: &Services, filter: &NodeFilter) -> Result<Vec<K>, K::Error> {
    Ok(K::all(s)
        .await?
        .into_iter()
        .filter(|n| filter.matches(n.id(), n.name()))
        .collect())
}

/// The node of `K` designated by `key`.
pub async fn find<K: NodeKind>(s: &Services, key: &NodeKey) -> Result<Option<K>, K::Error> {
    match key {
        NodeKey::Id(id) => K::by_id(s, id).await,
        NodeKey::Name(name) => Ok(K::all(s).await?.into_iter().find(|n| n.name() == name)),
    }
}

/// The id of the node designated by `key`: an id as given (its existence is checked by the
/// operation), a name looked up ("`<Label> <key> not found`").
pub async fn existing_id<K: NodeKind>(s: &Services, key: NodeKey) -> Result<String, K::Error> {
    match key {
        NodeKey::Id(id) => Ok(id),
        key => match find::<K>(s, &key).await? {
            Some(n) => Ok(n.id().to_owned()),
            None => Err(NodeError::not_found::<K>(&key).into()),
        },
    }
}

/// Creates a node from `values`.
pub async fn create<K: NodeKind>(
    s: &Services,
    id: Option<String>,
    values: K::Values,
) -> Result<K, K::Error> {
    K::insert(s, K::build(id, values)?).await
}

/// Changes the node designated by `id` or `hfid` (one is required).
pub async fn update<K: NodeKind>(
    s: &Services,
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    values: K::Values,
) -> Result<K, K::Error> {
    let key = NodeKey::required(id, hfid, K::KIND)?;
    let id = existing_id::<K>(s, key).await?;
    K::update(s, &id, values).await
}

/// Changes the node designated by `id`, `hfid` or else by the name among `values`, or
/// creates it (with `id`, if given) when there is none.
pub async fn upsert<K: NodeKind>(
    s: &Services,
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    values: K::Values,
) -> Result<K, K::Error> {
    let key = match NodeKey::parse(id.clone(), hfid, K::KIND)? {
        Some(k) => Some(k),
        None => K::name_value(&values).map(|n| NodeKey::Name(n.to_owned())),
    };
    let found = match &key {
        Some(k) => find::<K>(s, k).await?,
        None => None,
    };
    match found {
        Some(existing) => K::update(s, existing.id(), values).await,
        None => create(s, id, values).await,
    }
}

/// Removes the node designated by `id` or `hfid` (one is required).
pub async fn delete<K: NodeKind>(
    s: &Services,
    caller: &Caller,
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
) -> Result<Option<K>, K::Error> {
    let key = NodeKey::required(id, hfid, K::KIND)?;
    let id = existing_id::<K>(s, key).await?;
    K::remove(s, caller, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_show_as_before() {
        assert_eq!(
            NodeKey::parse(None, Some(vec![Some("a".into())]), "K").unwrap(),
            Some(NodeKey::Name("a".into()))
        );
        assert_eq!(
            NodeKey::required(None, None, "K").unwrap_err().to_string(),
            "id or hfid is required for K"
        );
        assert_eq!(
            NodeKey::parse(None, Some(vec![None]), "K")
                .unwrap_err()
                .to_string(),
            "Invalid hfid for K: expected [name], got [None]"
        );
        assert_eq!(NodeKey::Name("a".into()).to_string(), "[\"a\"]");
        let f = NodeFilter {
            ids: Some(vec!["1".into()]),
            name: None,
        };
        assert!(f.matches("1", "x") && !f.matches("2", "x"));
    }
}
