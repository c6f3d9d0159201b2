//! Saved queries (`CoreGraphQLQuery`): named GraphQL documents, validated against the
//! server's schema (through [`crate::QueryRunner::validate`]) whenever they are saved. A
//! [`NodeKind`]: listed, created, changed and removed by the operations of [`crate::nodes`].

use crate::Services;
use crate::nodes::{Attribute, NodeError, NodeKind, Scope};
use async_trait::async_trait;
use infrastream_core::SavedQuery;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_store::{Change, Commit};

/// Node kind of saved queries.
pub const KIND: &str = "CoreGraphQLQuery";

/// What went wrong with a saved query.
#[derive(Debug, thiserror::Error)]
pub enum SavedQueryError {
    /// The document is not valid against the schema; the reasons.
    #[error("The query is not valid: {0}")]
    Invalid(String),
    /// A failure every kind shares.
    #[error(transparent)]
    Node(#[from] NodeError),
}

crate::nodes::store_errors_via_node!(SavedQueryError);

impl DomainError for SavedQueryError {
    fn code(&self) -> &'static Code {
        match self {
            SavedQueryError::Invalid(_) => &codes::BAD_USER_INPUT,
            SavedQueryError::Node(e) => e.code(),
        }
    }
}

/// The attribute values of a saved-query mutation.
#[derive(Debug, Default)]
pub struct Values {
    /// `name`.
    pub name: Option<String>,
    /// `query`: the document.
    pub query: Option<String>,
    /// `description`.
    pub description: Option<String>,
}

/// Checks name and document; the document must be valid against the schema.
async fn check(s: &Services, q: &SavedQuery) -> Result<(), SavedQueryError> {
    if q.name.trim().is_empty() {
        return Err(NodeError::Required("name").into());
    }
    s.queries
        .get()
        .validate(&q.query)
        .await
        .map_err(SavedQueryError::Invalid)
}

async fn save(
    s: &Services,
    q: SavedQuery,
    change: fn(SavedQuery) -> Change,
) -> Result<SavedQuery, SavedQueryError> {
    check(s, &q).await?;
    s.store.commit(Commit::change(change(q.clone()))).await?;
    Ok(q)
}

#[async_trait]
impl NodeKind for SavedQuery {
    const KIND: &'static str = KIND;
    const LABEL: &'static str = "GraphQL query";
    const ATTRIBUTES: &'static [Attribute] = &[
        Attribute::text("name", true),
        Attribute::text("query", true),
        Attribute::text("description", false),
    ];
    type Values = Values;
    type Error = SavedQueryError;

    crate::nodes::named_by_fields!();

    async fn build(
        _: &Services,
        _: Scope<'_>,
        id: Option<String>,
        data: Values,
    ) -> Result<Self, SavedQueryError> {
        Ok(SavedQuery {
            id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            name: data.name.ok_or(NodeError::Required("name"))?,
            query: data.query.ok_or(NodeError::Required("query"))?,
            description: data.description,
        })
    }

    async fn merge(self, _: &Services, data: Values) -> Result<Self, SavedQueryError> {
        Ok(SavedQuery {
            name: data.name.unwrap_or(self.name),
            query: data.query.unwrap_or(self.query),
            description: data.description.or(self.description),
            id: self.id,
        })
    }

    async fn all(s: &Services) -> Result<Vec<Self>, SavedQueryError> {
        Ok(s.store.saved_queries().await?)
    }

    async fn insert(s: &Services, _: Scope<'_>, q: Self) -> Result<Self, SavedQueryError> {
        save(s, q, Change::InsertSavedQuery).await
    }

    async fn replace(s: &Services, _: Scope<'_>, q: Self) -> Result<Self, SavedQueryError> {
        save(s, q, Change::UpdateSavedQuery).await
    }

    async fn remove(
        s: &Services,
        _: Scope<'_>,
        id: String,
    ) -> Result<Option<Self>, SavedQueryError> {
        s.store
            .commit(Commit::change(Change::DeleteSavedQuery { id }))
            .await?;
        Ok(None)
    }
}
