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
//!   [`upsert`] and [`delete`] implement the shared rules over any [`NodeKind`]. They run in a
//!   [`Scope`]: the caller and the request's branch.
//!
//! What some kinds have beyond a flat set of text attributes is declared, not written out:
//!
//! * attribute kinds — text, dropdown, JSON ([`AttributeKind`]); read-only attributes
//!   ([`Attribute::computed`]) are shown but not in the inputs;
//! * relationships ([`NodeKind::RELATIONSHIPS`]): inputs that reference another node as
//!   Infrahub's `RelatedNodeInput` does (`{id, hfid, kind}`), carried to the kind's `Values`
//!   as [`RelatedRef`]s; a list may be filtered by the ids a relationship points to
//!   (`<rel>__ids`, see [`NodeFilter::related`] and [`NodeKind::related`]);
//! * branch-local nodes ([`NodeKind::branch`]): listed for the request's branch only;
//! * kinds without hfid ([`NodeKind::HFID`] false): designated by `id` alone, and an upsert
//!   without `id` finds its node by [`NodeKind::upsert_match`];
//! * checks of the values as given, before any node is looked up
//!   ([`NodeKind::check_values`]);
//! * building and merging that read other nodes or depend on the scope ([`NodeKind::build`]
//!   and [`NodeKind::merge`] are async and get the services), and storage hooks that hold
//!   locks or emit events ([`NodeKind::insert`], [`NodeKind::replace`], [`NodeKind::update`],
//!   [`NodeKind::remove`]).
//!
//! Saved queries ([`crate::saved_queries`]), repositories ([`crate::repositories`]),
//! accounts ([`crate::accounts`]), artifact definitions ([`crate::artifacts::Definition`]) and
//! artifacts ([`crate::artifacts::Artifact`]) are produced this way; the GraphQL layer turns the same
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
use infrastream_core::error::DomainError;

mod shape;

pub use shape::*;

/// Where an operation runs: for whom, and on which branch (the request's).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The caller.
    pub caller: &'a Caller,
    /// The request's branch.
    pub branch: &'a str,
}

/// `From<StoreError>` for a kind's error enum whose `Node` variant wraps [`NodeError`]: store
/// failures go through the failure every kind shares.
macro_rules! store_errors_via_node {
    ($error:ident) => {
        impl From<infrastream_store::StoreError> for $error {
            fn from(e: infrastream_store::StoreError) -> Self {
                $error::Node(e.into())
            }
        }
    };
}
pub(crate) use store_errors_via_node;

/// The identity accessors of a kind whose nodes have `id` and `name` fields and whose values
/// carry an optional `name`: `id`, `name` and `name_value` of [`NodeKind`], written once.
macro_rules! named_by_fields {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn name_value(values: &Self::Values) -> Option<&str> {
            values.name.as_deref()
        }
    };
}
pub(crate) use named_by_fields;

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
    /// The declared relationships, in the order the inputs give them (after the attributes).
    const RELATIONSHIPS: &'static [Relationship] = &[];
    /// Whether the name is the node's human friendly id (`hfid: [name]`), unique within the
    /// kind. Without hfid, nodes are designated by `id` alone.
    const HFID: bool = true;
    /// Attribute values of a create, update or upsert: one `Option` per writable attribute
    /// (and one [`RelatedRef`] per relationship).
    type Values: Send + Sync + 'static;
    /// The kind's errors; the shared ones come in through [`NodeError`].
    type Error: DomainError + From<NodeError>;

    /// The node's id.
    fn id(&self) -> &str;
    /// The node's name (what `name__value` filters; with [`HFID`](Self::HFID), its hfid).
    fn name(&self) -> &str;
    /// The name among mutation values, which an upsert without key looks nodes up by.
    fn name_value(values: &Self::Values) -> Option<&str>;
    /// The id of the node relationship `relationship` points to, for `<rel>__ids` filters.
    fn related(&self, relationship: &str) -> Option<&str> {
        let _ = relationship;
        None
    }
    /// The branch a branch-local node lives on (`None`: the node is on every branch).
    fn branch(&self) -> Option<&str> {
        None
    }
    /// Checks the values as given, before any node is looked up.
    fn check_values(values: &Self::Values) -> Result<(), Self::Error> {
        let _ = values;
        Ok(())
    }
    /// A new node from create values (`id` if the caller chose it).
    async fn build(
        s: &Services,
        at: Scope<'_>,
        id: Option<String>,
        values: Self::Values,
    ) -> Result<Self, Self::Error>;
    /// The node with update values applied (absent values keep the current ones).
    async fn merge(self, s: &Services, values: Self::Values) -> Result<Self, Self::Error>;

    /// Every node of the kind.
    async fn all(s: &Services) -> Result<Vec<Self>, Self::Error>;
    /// The node with this id.
    async fn by_id(s: &Services, id: &str) -> Result<Option<Self>, Self::Error> {
        Ok(Self::all(s).await?.into_iter().find(|n| n.id() == id))
    }
    /// The node an upsert given no key changes, if any: by default the one named as the
    /// values name it.
    async fn upsert_match(
        s: &Services,
        at: Scope<'_>,
        values: &Self::Values,
    ) -> Result<Option<Self>, Self::Error> {
        let _ = at;
        match Self::name_value(values) {
            Some(name) => Ok(Self::all(s).await?.into_iter().find(|n| n.name() == name)),
            None => Ok(None),
        }
    }
    /// Checks and stores a new node.
    async fn insert(s: &Services, at: Scope<'_>, node: Self) -> Result<Self, Self::Error>;
    /// Checks and stores a changed node.
    async fn replace(s: &Services, at: Scope<'_>, node: Self) -> Result<Self, Self::Error>;
    /// Applies `values` to the node with this id: read, [`merge`](Self::merge),
    /// [`replace`](Self::replace). Kinds that must serialize changes override it.
    async fn update(
        s: &Services,
        at: Scope<'_>,
        id: &str,
        values: Self::Values,
    ) -> Result<Self, Self::Error> {
        let node = Self::by_id(s, id)
            .await?
            .ok_or_else(|| NodeError::not_found::<Self>(id))?;
        Self::replace(s, at, node.merge(s, values).await?).await
    }
    /// Removes the node with this id; returns it if the kind shows removed nodes.
    async fn remove(s: &Services, at: Scope<'_>, id: String) -> Result<Option<Self>, Self::Error>;
}

/// The nodes of `K` that pass `filter`.
pub async fn list<K: NodeKind>(s: &Services, filter: &NodeFilter) -> Result<Vec<K>, K::Error> {
    Ok(K::all(s)
        .await?
        .into_iter()
        .filter(|n| filter.passes(n))
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
    at: Scope<'_>,
    id: Option<String>,
    values: K::Values,
) -> Result<K, K::Error> {
    K::check_values(&values)?;
    let node = K::build(s, at, id, values).await?;
    K::insert(s, at, node).await
}

/// Changes the node designated by `id` or `hfid` (one is required).
pub async fn update<K: NodeKind>(
    s: &Services,
    at: Scope<'_>,
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    values: K::Values,
) -> Result<K, K::Error> {
    let key = NodeKey::required_for::<K>(id, hfid)?;
    K::check_values(&values)?;
    let id = existing_id::<K>(s, key).await?;
    K::update(s, at, &id, values).await
}

/// Changes the node designated by `id`, `hfid` or else by
/// [`upsert_match`](NodeKind::upsert_match), or creates it (with `id`, if given) when there
/// is none.
pub async fn upsert<K: NodeKind>(
    s: &Services,
    at: Scope<'_>,
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    values: K::Values,
) -> Result<K, K::Error> {
    let key = NodeKey::parse_for::<K>(id.clone(), hfid)?;
    K::check_values(&values)?;
    let found = match &key {
        Some(k) => find::<K>(s, k).await?,
        None => K::upsert_match(s, at, &values).await?,
    };
    match found {
        Some(existing) => K::update(s, at, existing.id(), values).await,
        None => create(s, at, id, values).await,
    }
}

/// Removes the node designated by `id` or `hfid` (one is required).
pub async fn delete<K: NodeKind>(
    s: &Services,
    at: Scope<'_>,
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
) -> Result<Option<K>, K::Error> {
    let key = NodeKey::required_for::<K>(id, hfid)?;
    let id = existing_id::<K>(s, key).await?;
    K::remove(s, at, id).await
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
            ..Default::default()
        };
        assert!(f.matches("1", "x") && !f.matches("2", "x"));
    }

    #[test]
    fn kinds_without_hfid_are_designated_by_id() {
        use crate::artifacts::{Artifact, Definition};
        let name = || Some(vec![Some("a".to_owned())]);
        let e = NodeKey::parse_for::<Artifact>(None, name()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CoreArtifact has no hfid: designate the artifact by id"
        );
        assert_eq!(e.code().name, "BAD_USER_INPUT");
        let e = NodeKey::required_for::<Artifact>(None, None).unwrap_err();
        assert_eq!(e.to_string(), "id is required for CoreArtifact");
        assert_eq!(
            NodeKey::parse_for::<Artifact>(Some("i".into()), name()).unwrap(),
            Some(NodeKey::Id("i".into()))
        );
        assert_eq!(
            NodeKey::required_for::<Definition>(None, name()).unwrap(),
            NodeKey::Name("a".into())
        );
    }
}
