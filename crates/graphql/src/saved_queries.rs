//! Saved queries (`CoreGraphQLQuery`) in Infrahub's node shape; documents are validated
//! against the schema when saved.

use crate::context::{Res, gql, require_write, services, store_err};
use crate::node::{DeleteInput, OkResult, TextAttribute, TextAttributeInput};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::{Error, SavedQuery};
use infrastream_store::{Change, Commit};

/// A saved query.
pub(crate) struct CoreGraphQLQuery(pub(crate) SavedQuery);

#[Object(rename_fields = "snake_case")]
impl CoreGraphQLQuery {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> &str {
        &self.0.name
    }
    async fn name(&self) -> TextAttribute {
        TextAttribute::of(&self.0.name)
    }
    async fn query(&self) -> TextAttribute {
        TextAttribute::of(&self.0.query)
    }
    async fn description(&self) -> TextAttribute {
        TextAttribute::opt(self.0.description.as_deref())
    }
}

crate::node::paginated!(
    PaginatedCoreGraphQLQuery,
    EdgedCoreGraphQLQuery,
    CoreGraphQLQuery
);

#[derive(Default)]
pub(crate) struct SavedQueryQuery;

#[Object(rename_args = "snake_case")]
impl SavedQueryQuery {
    /// Saved queries, optionally by name or ids.
    #[graphql(name = "CoreGraphQLQuery")]
    async fn core_graphql_query(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreGraphQLQuery> {
        let all = services(ctx)
            .store
            .saved_queries()
            .await
            .map_err(store_err)?;
        let ids: Option<Vec<String>> = ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect());
        Ok(PaginatedCoreGraphQLQuery::of(
            all.into_iter()
                .filter(|q| name_value.as_ref().is_none_or(|n| *n == q.name))
                .filter(|q| ids.as_ref().is_none_or(|ids| ids.contains(&q.id)))
                .map(CoreGraphQLQuery)
                .collect(),
        ))
    }
}

/// Data of create, update and upsert (`id` required for update).
#[derive(InputObject)]
#[graphql(name = "CoreGraphQLQueryInput", rename_fields = "snake_case")]
pub(crate) struct SavedQueryInput {
    id: Option<String>,
    name: Option<TextAttributeInput>,
    query: Option<TextAttributeInput>,
    description: Option<TextAttributeInput>,
}

/// Result of a saved query mutation.
#[derive(SimpleObject)]
#[graphql(name = "CoreGraphQLQueryMutationResult", rename_fields = "snake_case")]
pub(crate) struct SavedQueryResult {
    ok: bool,
    object: Option<CoreGraphQLQuery>,
}

fn value(attr: Option<TextAttributeInput>) -> Option<String> {
    attr.and_then(TextAttributeInput::into_value)
}

/// Checks name and document; the document must be valid against this very schema.
async fn check(ctx: &Context<'_>, q: &SavedQuery) -> Res<()> {
    if q.name.trim().is_empty() {
        return Err(gql(Error::invalid("name.value is required")));
    }
    let schema = ctx.data_unchecked::<crate::SchemaHandle>().get();
    if let Err(why) = crate::validate_document(&schema, &q.query).await {
        return Err(gql(Error::invalid(format!(
            "The query is not valid: {why}"
        ))));
    }
    Ok(())
}

async fn save(
    ctx: &Context<'_>,
    q: SavedQuery,
    change: fn(SavedQuery) -> Change,
) -> Res<SavedQueryResult> {
    check(ctx, &q).await?;
    services(ctx)
        .store
        .commit(Commit {
            changes: vec![change(q.clone())],
            events: vec![],
        })
        .await
        .map_err(store_err)?;
    Ok(SavedQueryResult {
        ok: true,
        object: Some(CoreGraphQLQuery(q)),
    })
}

async fn find(ctx: &Context<'_>, id: Option<&str>, name: Option<&str>) -> Res<Option<SavedQuery>> {
    let all = services(ctx)
        .store
        .saved_queries()
        .await
        .map_err(store_err)?;
    Ok(all
        .into_iter()
        .find(|q| Some(q.id.as_str()) == id || (id.is_none() && Some(q.name.as_str()) == name)))
}

fn merge(existing: SavedQuery, data: SavedQueryInput) -> SavedQuery {
    SavedQuery {
        name: value(data.name).unwrap_or(existing.name),
        query: value(data.query).unwrap_or(existing.query),
        description: value(data.description).or(existing.description),
        id: existing.id,
    }
}

fn create(data: SavedQueryInput) -> Res<SavedQuery> {
    Ok(SavedQuery {
        id: data.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name: value(data.name).ok_or_else(|| gql(Error::invalid("name.value is required")))?,
        query: value(data.query).ok_or_else(|| gql(Error::invalid("query.value is required")))?,
        description: value(data.description),
    })
}

#[derive(Default)]
pub(crate) struct SavedQueryMutation;

#[Object(rename_args = "snake_case")]
impl SavedQueryMutation {
    /// Saves a new query.
    #[graphql(name = "CoreGraphQLQueryCreate")]
    async fn create(&self, ctx: &Context<'_>, data: SavedQueryInput) -> Res<SavedQueryResult> {
        require_write(ctx)?;
        save(ctx, create(data)?, Change::InsertSavedQuery).await
    }

    /// Changes a saved query, found by `id`.
    #[graphql(name = "CoreGraphQLQueryUpdate")]
    async fn update(&self, ctx: &Context<'_>, data: SavedQueryInput) -> Res<SavedQueryResult> {
        require_write(ctx)?;
        let id = data
            .id
            .clone()
            .ok_or_else(|| gql(Error::invalid("id is required")))?;
        let existing = find(ctx, Some(&id), None)
            .await?
            .ok_or_else(|| gql(Error::not_found(format!("GraphQL query {id} not found"))))?;
        save(ctx, merge(existing, data), Change::UpdateSavedQuery).await
    }

    /// Creates or changes a saved query, found by `id` or else by name.
    #[graphql(name = "CoreGraphQLQueryUpsert")]
    async fn upsert(&self, ctx: &Context<'_>, data: SavedQueryInput) -> Res<SavedQueryResult> {
        require_write(ctx)?;
        let name = data.name.as_ref().and_then(|n| n.value.clone());
        match find(ctx, data.id.as_deref(), name.as_deref()).await? {
            Some(existing) => save(ctx, merge(existing, data), Change::UpdateSavedQuery).await,
            None => save(ctx, create(data)?, Change::InsertSavedQuery).await,
        }
    }

    /// Removes a saved query.
    #[graphql(name = "CoreGraphQLQueryDelete")]
    async fn delete(&self, ctx: &Context<'_>, data: DeleteInput) -> Res<OkResult> {
        require_write(ctx)?;
        services(ctx)
            .store
            .commit(Commit {
                changes: vec![Change::DeleteSavedQuery { id: data.id }],
                events: vec![],
            })
            .await
            .map_err(store_err)?;
        Ok(OkResult { ok: true })
    }
}
