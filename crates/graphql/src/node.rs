//! Infrahub's node shape: attributes as `{value}` objects, lists as `{count, edges {node}}`,
//! create inputs with `<Attr>Create` and update/upsert inputs with `<Attr>Update` attributes,
//! nodes designated by `id` or by `hfid` (human friendly id), mutation results named after
//! their mutation.
//!
//! [`node_kind!`] turns the description of a node kind in the domain layer
//! ([`infrastream_services::nodes::NodeKind`]) into its GraphQL surface: the list query with
//! its `ids` and `name__value` filters, the create, update and upsert inputs (one
//! `<Attr>Create`/`<Attr>Update` field per declared attribute), and the Create, Update,
//! Upsert and Delete mutations, each a call to the generic operation of
//! [`infrastream_services::nodes`]. A kind's GraphQL file declares its node type, its names
//! and docs, and any mutation of its own.

use crate::context::{Res, domain};
use async_graphql::{Context, ID, InputObject, SimpleObject};
use infrastream_services::nodes::NodeError;

/// A text attribute.
#[derive(SimpleObject, Clone)]
#[graphql(name = "TextAttribute", rename_fields = "snake_case")]
pub(crate) struct TextAttribute {
    pub(crate) value: Option<String>,
}

impl TextAttribute {
    /// An attribute with a value. Attribute fields are nullable in Infrahub's node types, hence
    /// the `Option`.
    pub(crate) fn of(value: impl Into<String>) -> Option<Self> {
        Some(Self {
            value: Some(value.into()),
        })
    }
    /// An attribute whose value may be null (the attribute itself is always there).
    pub(crate) fn opt(value: Option<&str>) -> Option<Self> {
        Some(Self {
            value: value.map(str::to_owned),
        })
    }
}

/// A dropdown attribute (a value from a fixed list); only the value is kept.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Dropdown", rename_fields = "snake_case")]
pub(crate) struct Dropdown {
    pub(crate) value: Option<String>,
}

/// Text attribute of a create input. Infrahub's metadata (`is_protected`, `owner`, `source`,
/// and the older `is_visible`) is accepted and ignored: nodes here carry no metadata.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "TextAttributeCreate", rename_fields = "snake_case")]
pub(crate) struct TextAttributeCreate {
    pub(crate) value: Option<String>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// Text attribute of an update or upsert input; metadata is accepted and ignored, as for
/// [`TextAttributeCreate`].
#[derive(InputObject, Clone, Default)]
#[graphql(name = "TextAttributeUpdate", rename_fields = "snake_case")]
pub(crate) struct TextAttributeUpdate {
    pub(crate) value: Option<String>,
    is_default: Option<bool>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// The value of an optional text attribute input, whichever its flavour.
pub(crate) trait TextValue {
    /// The value, metadata dropped.
    fn text(self) -> Option<String>;
}

impl TextValue for Option<TextAttributeCreate> {
    fn text(self) -> Option<String> {
        self.and_then(|a| {
            let _ = (a.is_protected, a.is_visible, a.source, a.owner);
            a.value
        })
    }
}

impl TextValue for Option<TextAttributeUpdate> {
    fn text(self) -> Option<String> {
        self.and_then(|a| {
            let _ = (
                a.is_default,
                a.is_protected,
                a.is_visible,
                a.source,
                a.owner,
            );
            a.value
        })
    }
}

/// How a mutation designates an existing node: by `id`, or by its human friendly id
/// (`hfid: [name]`); parsed by the domain's [`infrastream_services::nodes::NodeKey`]. Kinds
/// produced by [`node_kind!`] use the domain's key directly; this one serves the resolvers
/// written by hand (artifacts) until they adopt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKey {
    Id(String),
    Name(String),
}

impl NodeKey {
    /// `id` if given, else the name from `hfid`; `None` when neither is given.
    pub(crate) fn from_input(
        id: Option<String>,
        hfid: Option<Vec<Option<String>>>,
        kind: &str,
    ) -> Res<Option<NodeKey>> {
        use infrastream_services::nodes::NodeKey as Key;
        Ok(match Key::parse(id, hfid, kind).map_err(domain)? {
            None => None,
            Some(Key::Id(id)) => Some(NodeKey::Id(id)),
            Some(Key::Name(name)) => Some(NodeKey::Name(name)),
        })
    }

    /// Like [`NodeKey::from_input`], but one of `id` and `hfid` is required.
    pub(crate) fn required(
        id: Option<String>,
        hfid: Option<Vec<Option<String>>>,
        kind: &str,
    ) -> Res<NodeKey> {
        Self::from_input(id, hfid, kind)?
            .ok_or_else(|| domain(NodeError::KeyRequired(kind.to_owned())))
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

/// The node a delete removes: `id`, or `hfid`.
#[derive(InputObject)]
#[graphql(name = "DeleteInput", rename_fields = "snake_case")]
pub(crate) struct DeleteInput {
    pub(crate) id: Option<String>,
    pub(crate) hfid: Option<Vec<Option<String>>>,
}

impl DeleteInput {
    /// The designated node; one of `id` and `hfid` is required.
    pub(crate) fn key(self, kind: &str) -> Res<NodeKey> {
        NodeKey::required(self.id, self.hfid, kind)
    }
}

/// A reference to another node, as Infrahub's relationship inputs take it. The relationship
/// metadata (`_relation__*`) is accepted and ignored.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "RelatedNodeInput")]
pub(crate) struct RelatedNodeInput {
    pub(crate) id: Option<String>,
    pub(crate) kind: Option<String>,
    #[graphql(default)]
    pub(crate) hfid: Option<Vec<Option<String>>>,
    #[graphql(name = "_relation__is_protected")]
    relation_is_protected: Option<bool>,
    #[graphql(name = "_relation__owner")]
    relation_owner: Option<String>,
    #[graphql(name = "_relation__source")]
    relation_source: Option<String>,
}

impl RelatedNodeInput {
    /// The referenced node: `id`, or a one-element `hfid`.
    pub(crate) fn key(&self, what: &str) -> Res<NodeKey> {
        let _ = (
            self.relation_is_protected,
            &self.relation_owner,
            &self.relation_source,
        );
        NodeKey::required(self.id.clone(), self.hfid.clone(), what)
    }
}

/// Declares Infrahub's `{count, edges {node}}` list type and its edge type for a node type.
macro_rules! paginated {
    ($list:ident, $edge:ident, $node:ty) => {
        /// `{node}`.
        #[derive(async_graphql::SimpleObject)]
        pub(crate) struct $edge {
            pub(crate) node: Option<$node>,
        }

        /// `{count, edges}`.
        #[derive(async_graphql::SimpleObject)]
        pub(crate) struct $list {
            pub(crate) count: i64,
            pub(crate) edges: Vec<$edge>,
        }

        impl $list {
            pub(crate) fn of(nodes: Vec<$node>) -> Self {
                Self {
                    count: nodes.len() as i64,
                    edges: nodes
                        .into_iter()
                        .map(|node| $edge { node: Some(node) })
                        .collect(),
                }
            }
        }
    };
}
pub(crate) use paginated;

/// Declares the result type of a create, update or upsert (`{object, ok}`), named after the
/// mutation as Infrahub names it.
macro_rules! object_result {
    ($name:ident, $node:ty) => {
        /// `{object, ok}`.
        #[derive(async_graphql::SimpleObject)]
        #[graphql(rename_fields = "snake_case")]
        pub(crate) struct $name {
            ok: Option<bool>,
            object: Option<$node>,
        }

        impl $name {
            pub(crate) fn done(object: $node) -> Option<Self> {
                Some(Self {
                    ok: Some(true),
                    object: Some(object),
                })
            }
        }
    };
}
pub(crate) use object_result;

/// Declares the result type of a delete (`{ok}`), named after the mutation.
macro_rules! ok_result {
    ($name:ident) => {
        /// `{ok}`.
        #[derive(async_graphql::SimpleObject)]
        #[graphql(rename_fields = "snake_case")]
        pub(crate) struct $name {
            ok: Option<bool>,
        }

        impl $name {
            pub(crate) fn done() -> Option<Self> {
                Some(Self { ok: Some(true) })
            }
        }
    };
}
pub(crate) use ok_result;

/// The ids of an `ids` filter, nulls dropped.
pub(crate) fn id_list(ids: Option<Vec<Option<ID>>>) -> Option<Vec<String>> {
    ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect())
}

/// The guard of a list anyone may read.
pub(crate) fn anyone(_: &Context<'_>) -> Res<()> {
    Ok(())
}

/// Produces a node kind's GraphQL surface from its domain description (see the module
/// documentation): the paginated list types, the query object `$query` with the list field
/// (`name__value`, `ids`), the create/update/upsert input types (`id`, `hfid` and one text
/// attribute per name in `attributes`, whose values fill the kind's `Values`), their
/// `{object, ok}` results, and the mutation object `$mutation` with the four mutations (each
/// behind `guard`) followed by `extra_mutations`. Names and descriptions are given as they
/// are served.
macro_rules! node_kind {
    (
        kind: $kind:ty,
        values: $values:ident,
        object: $object:ident,
        query: $query:ident,
        list: $list_name:tt => ($paginated:ident, $edged:ident),
        list_guard: $list_guard:path,
        mutation: $mutation:ident,
        guard: $guard:path,
        attributes: [$($attr:ident),+ $(,)?],
        create: $create_name:tt => ($create:ident, $create_input:tt),
        update: $update_name:tt => ($update:ident, $update_input:tt),
        upsert: $upsert_name:tt => ($upsert:ident, $upsert_input:tt),
        delete: $delete_name:tt => ($delete:ty, $deleted:expr),
        docs: {
            list: $list_doc:tt,
            create_input: $create_input_doc:tt,
            update_input: $update_input_doc:tt,
            upsert_input: $upsert_input_doc:tt,
            create: $create_doc:tt,
            update: $update_doc:tt,
            upsert: $upsert_doc:tt,
            delete: $delete_doc:tt $(,)?
        },
        extra_mutations: { $($extra:tt)* } $(,)?
    ) => {
        $crate::node::paginated!($paginated, $edged, $object);

        #[derive(Default)]
        pub(crate) struct $query;

        #[async_graphql::Object(rename_args = "snake_case")]
        impl $query {
            #[doc = $list_doc]
            #[graphql(name = $list_name)]
            async fn list(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(name = "name__value")] name_value: Option<String>,
                ids: Option<Vec<Option<async_graphql::ID>>>,
            ) -> $crate::context::Res<$paginated> {
                $list_guard(ctx)?;
                let filter = infrastream_services::nodes::NodeFilter {
                    ids: $crate::node::id_list(ids),
                    name: name_value,
                };
                let s = $crate::context::services(ctx);
                let nodes = infrastream_services::nodes::list::<$kind>(s, &filter)
                    .await
                    .map_err($crate::context::domain)?;
                Ok($paginated::of(nodes.into_iter().map($object).collect()))
            }
        }

        #[doc = $create_input_doc]
        #[derive(async_graphql::InputObject)]
        #[graphql(name = $create_input, rename_fields = "snake_case")]
        pub(crate) struct CreateInput {
            id: Option<String>,
            $($attr: Option<$crate::node::TextAttributeCreate>,)+
        }

        #[doc = $update_input_doc]
        #[derive(async_graphql::InputObject)]
        #[graphql(name = $update_input, rename_fields = "snake_case")]
        pub(crate) struct UpdateInput {
            id: Option<String>,
            hfid: Option<Vec<Option<String>>>,
            $($attr: Option<$crate::node::TextAttributeUpdate>,)+
        }

        #[doc = $upsert_input_doc]
        #[derive(async_graphql::InputObject)]
        #[graphql(name = $upsert_input, rename_fields = "snake_case")]
        pub(crate) struct UpsertInput {
            id: Option<String>,
            hfid: Option<Vec<Option<String>>>,
            $($attr: Option<$crate::node::TextAttributeUpdate>,)+
        }

        $crate::node::object_result!($create, $object);
        $crate::node::object_result!($update, $object);
        $crate::node::object_result!($upsert, $object);

        #[derive(Default)]
        pub(crate) struct $mutation;

        #[async_graphql::Object(rename_args = "snake_case")]
        impl $mutation {
            #[doc = $create_doc]
            #[graphql(name = $create_name)]
            async fn create(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: CreateInput,
            ) -> $crate::context::Res<Option<$create>> {
                $guard(ctx)?;
                let values = $values {
                    $($attr: $crate::node::TextValue::text(data.$attr),)+
                };
                let s = $crate::context::services(ctx);
                let node = infrastream_services::nodes::create::<$kind>(s, data.id, values)
                    .await
                    .map_err($crate::context::domain)?;
                Ok($create::done($object(node)))
            }

            #[doc = $update_doc]
            #[graphql(name = $update_name)]
            async fn update(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: UpdateInput,
            ) -> $crate::context::Res<Option<$update>> {
                $guard(ctx)?;
                let values = $values {
                    $($attr: $crate::node::TextValue::text(data.$attr),)+
                };
                let s = $crate::context::services(ctx);
                let node =
                    infrastream_services::nodes::update::<$kind>(s, data.id, data.hfid, values)
                        .await
                        .map_err($crate::context::domain)?;
                Ok($update::done($object(node)))
            }

            #[doc = $upsert_doc]
            #[graphql(name = $upsert_name)]
            async fn upsert(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: UpsertInput,
            ) -> $crate::context::Res<Option<$upsert>> {
                $guard(ctx)?;
                let values = $values {
                    $($attr: $crate::node::TextValue::text(data.$attr),)+
                };
                let s = $crate::context::services(ctx);
                let node =
                    infrastream_services::nodes::upsert::<$kind>(s, data.id, data.hfid, values)
                        .await
                        .map_err($crate::context::domain)?;
                Ok($upsert::done($object(node)))
            }

            #[doc = $delete_doc]
            #[graphql(name = $delete_name)]
            async fn delete(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: $crate::node::DeleteInput,
            ) -> $crate::context::Res<Option<$delete>> {
                let caller = $guard(ctx)?;
                let s = $crate::context::services(ctx);
                let removed = infrastream_services::nodes::delete::<$kind>(
                    s, caller, data.id, data.hfid,
                )
                .await
                .map_err($crate::context::domain)?;
                let deleted = $deleted;
                Ok(deleted(removed.map($object)))
            }

            $($extra)*
        }
    };
}
pub(crate) use node_kind;

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    use infrastream_services::nodes::NodeKind;

    /// Names of the fields of the object or input type `name` in `sdl`.
    fn fields(sdl: &str, name: &str) -> Vec<String> {
        let doc = parse_schema(sdl).expect("the served SDL parses");
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            if t.node.name.node.as_str() != name {
                continue;
            }
            return match t.node.kind {
                TypeKind::Object(o) => o
                    .fields
                    .iter()
                    .map(|f| f.node.name.node.to_string())
                    .collect(),
                TypeKind::InputObject(i) => i
                    .fields
                    .iter()
                    .map(|f| f.node.name.node.to_string())
                    .collect(),
                _ => panic!("{name} is neither an object nor an input"),
            };
        }
        panic!("{name} is not served")
    }

    /// The served node type and inputs of `K` are its declared attributes.
    fn served_as_declared<K: NodeKind>(sdl: &str) {
        let writable = K::ATTRIBUTES.iter().filter(|a| a.writable).map(|a| a.name);
        for (input, keys) in [
            ("CreateInput", &["id"][..]),
            ("UpdateInput", &["id", "hfid"][..]),
            ("UpsertInput", &["id", "hfid"][..]),
        ] {
            let want: Vec<String> = keys
                .iter()
                .copied()
                .chain(writable.clone())
                .map(String::from)
                .collect();
            assert_eq!(fields(sdl, &format!("{}{input}", K::KIND)), want);
        }
        let shown = fields(sdl, K::KIND);
        for a in K::ATTRIBUTES {
            assert_eq!(
                shown.iter().any(|f| f == a.name),
                !a.secret,
                "{}.{}",
                K::KIND,
                a.name
            );
        }
    }

    #[test]
    fn node_kinds_are_served_as_declared() {
        let sdl = crate::schema_sdl();
        served_as_declared::<infrastream_core::SavedQuery>(&sdl);
        served_as_declared::<infrastream_services::repositories::Repository>(&sdl);
        served_as_declared::<infrastream_core::Account>(&sdl);
    }
}
