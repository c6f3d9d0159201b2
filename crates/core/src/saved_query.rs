//! Saved GraphQL queries (`CoreGraphQLQuery`).

/// A named GraphQL document, run by the `query` subscription and by artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedQuery {
    /// UUID string.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The GraphQL document, validated when saved.
    pub query: String,
    /// Free text.
    pub description: Option<String>,
}
