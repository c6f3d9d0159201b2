//! Infrahub's node shape: attributes as `{value}` objects, lists as `{count, edges {node}}`.

use async_graphql::{InputObject, SimpleObject};

/// A text attribute.
#[derive(SimpleObject, Clone)]
#[graphql(name = "TextAttribute", rename_fields = "snake_case")]
pub(crate) struct TextAttribute {
    pub(crate) value: Option<String>,
}

impl TextAttribute {
    pub(crate) fn of(value: impl Into<String>) -> Self {
        Self {
            value: Some(value.into()),
        }
    }
    pub(crate) fn opt(value: Option<&str>) -> Self {
        Self {
            value: value.map(str::to_owned),
        }
    }
}

/// Input for a text attribute; Infrahub's metadata fields are accepted and ignored.
#[derive(InputObject, Clone)]
#[graphql(name = "TextAttributeCreate", rename_fields = "snake_case")]
pub(crate) struct TextAttributeInput {
    pub(crate) value: Option<String>,
    is_protected: Option<bool>,
    is_visible: Option<bool>,
    source: Option<String>,
    owner: Option<String>,
}

impl TextAttributeInput {
    /// The value, ignoring metadata.
    pub(crate) fn into_value(self) -> Option<String> {
        let _ = (self.is_protected, self.is_visible, self.source, self.owner);
        self.value
    }
}

/// `{id}` of the node to delete.
#[derive(InputObject)]
#[graphql(name = "DeleteInput", rename_fields = "snake_case")]
pub(crate) struct DeleteInput {
    pub(crate) id: String,
}

/// Declares Infrahub's `{count, edges {node}}` list type and its edge type for a node type.
macro_rules! paginated {
    ($list:ident, $edge:ident, $node:ty) => {
        /// `{node}`.
        #[derive(async_graphql::SimpleObject)]
        pub(crate) struct $edge {
            pub(crate) node: $node,
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
                    edges: nodes.into_iter().map(|node| $edge { node }).collect(),
                }
            }
        }
    };
}
pub(crate) use paginated;

/// `{ok}`.
#[derive(SimpleObject)]
#[graphql(name = "OkResult", rename_fields = "snake_case")]
pub(crate) struct OkResult {
    pub(crate) ok: bool,
}
