//! Infrahub's node shape: attributes as `{value}` objects, lists as `{count, edges {node}}`,
//! create inputs with `<Attr>Create` and update/upsert inputs with `<Attr>Update` attributes,
//! nodes designated by `id` or by `hfid` (human friendly id), mutation results named after
//! their mutation.
//! [`crate::node_kind`] builds a whole kind from these.

use crate::scalars::GenericScalar;
use async_graphql::{ID, InputObject, SimpleObject};
use infrastream_services::nodes::RelatedRef;
use serde_json::Value;

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

/// A JSON attribute.
#[derive(SimpleObject, Clone)]
#[graphql(name = "JSONAttribute", rename_fields = "snake_case")]
pub(crate) struct JsonAttribute {
    value: Option<GenericScalar>,
}

impl JsonAttribute {
    /// An attribute whose value is `v` (null shown as a null value).
    pub(crate) fn of(v: &Value) -> Option<Self> {
        Some(Self {
            value: (!v.is_null()).then(|| GenericScalar(v.clone())),
        })
    }
}

/// JSON attribute of a create input; metadata is accepted and ignored (see
/// [`TextAttributeCreate`]).
#[derive(InputObject, Clone)]
#[graphql(name = "JSONAttributeCreate", rename_fields = "snake_case")]
pub(crate) struct JsonAttributeCreate {
    value: Option<GenericScalar>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// JSON attribute of an update or upsert input; metadata is accepted and ignored.
#[derive(InputObject, Clone)]
#[graphql(name = "JSONAttributeUpdate", rename_fields = "snake_case")]
pub(crate) struct JsonAttributeUpdate {
    value: Option<GenericScalar>,
    is_default: Option<bool>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

/// The input types of an attribute kind (the domain's
/// [`AttributeKind`](infrastream_services::nodes::AttributeKind)): [`Text`] or [`Json`].
pub(crate) trait AttributeType {
    /// Its field in create inputs.
    type Create;
    /// Its field in update and upsert inputs.
    type Update;
}

/// Text attributes (`TextAttributeCreate`, `TextAttributeUpdate`).
pub(crate) struct Text;
/// JSON attributes (`JSONAttributeCreate`, `JSONAttributeUpdate`).
pub(crate) struct Json;

impl AttributeType for Text {
    type Create = TextAttributeCreate;
    type Update = TextAttributeUpdate;
}

impl AttributeType for Json {
    type Create = JsonAttributeCreate;
    type Update = JsonAttributeUpdate;
}

/// The value of an optional attribute input, whichever its kind and flavour; metadata is
/// dropped.
pub(crate) trait AttributeValue {
    /// A text attribute's `String`, a JSON attribute's `Value`.
    type Value;
    /// The value, if given.
    fn value(self) -> Option<Self::Value>;
}

impl AttributeValue for Option<TextAttributeCreate> {
    type Value = String;
    fn value(self) -> Option<String> {
        self.and_then(|a| {
            let _ = (a.is_protected, a.is_visible, a.source, a.owner);
            a.value
        })
    }
}

impl AttributeValue for Option<TextAttributeUpdate> {
    type Value = String;
    fn value(self) -> Option<String> {
        self.and_then(|a| {
            let _ = (a.is_default, a.is_protected, a.is_visible);
            let _ = (a.source, a.owner);
            a.value
        })
    }
}

impl AttributeValue for Option<JsonAttributeCreate> {
    type Value = Value;
    fn value(self) -> Option<Value> {
        self.and_then(|a| {
            let _ = (a.is_protected, a.is_visible, a.source, a.owner);
            a.value.map(|v| v.0)
        })
    }
}

impl AttributeValue for Option<JsonAttributeUpdate> {
    type Value = Value;
    fn value(self) -> Option<Value> {
        self.and_then(|a| {
            let _ = (a.is_default, a.is_protected, a.is_visible);
            let _ = (a.source, a.owner);
            a.value.map(|v| v.0)
        })
    }
}

/// The node a delete removes: `id`, or `hfid`.
#[derive(InputObject)]
#[graphql(name = "DeleteInput", rename_fields = "snake_case")]
pub(crate) struct DeleteInput {
    pub(crate) id: Option<String>,
    pub(crate) hfid: Option<Vec<Option<String>>>,
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
    /// The reference as the domain takes it (metadata dropped); the kind parses it.
    pub(crate) fn into_ref(self) -> RelatedRef {
        let _ = (
            self.relation_is_protected,
            self.relation_owner,
            self.relation_source,
        );
        RelatedRef {
            id: self.id,
            hfid: self.hfid,
            kind: self.kind,
        }
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

/// A node's output type: `id`, `display_label` (its name) and `name`, then the kind's own
/// fields, for a wrapper `$object(node)` whose node has `id` and `name` fields. The `name`
/// field may carry a description (`name_doc`).
macro_rules! node_object {
    ($object:ident $(, name_doc: $name_doc:literal)?, { $($fields:tt)* }) => {
        #[async_graphql::Object(rename_fields = "snake_case")]
        impl $object {
            async fn id(&self) -> &str {
                &self.0.id
            }
            async fn display_label(&self) -> Option<&str> {
                Some(&self.0.name)
            }
            $(#[doc = $name_doc])?
            async fn name(&self) -> Option<$crate::node::TextAttribute> {
                $crate::node::TextAttribute::of(&self.0.name)
            }
            $($fields)*
        }
    };
}
pub(crate) use node_object;
