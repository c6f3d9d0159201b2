//! Saved queries (`CoreGraphQLQuery`) in Infrahub's node shape; documents are validated
//! against the schema when saved.

use crate::context::{Res, gql, require_write, services, store_err};
use crate::node::{
    DeleteInput, NodeKey, TextAttribute, TextAttributeCreate, TextAttributeUpdate, TextValue,
    object_result, ok_result,
};
use async_graphql::{Context, ID, InputObject, Object};
use infrastream_core::{Error, SavedQuery};
use infrastream_store::{Change, Commit};

/// Node kind of saved queries.
const KIND: &str = "CoreGraphQLQuery";

/// A saved query.
pub(crate) struct CoreGraphQLQuery(pub(crate) SavedQuery);

#[Object(rename_fields = "snake_case")]
impl CoreGraphQLQuery {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.name)
    }
    async fn query(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.query)
    }
    async fn description(&self) -> Option<TextAttribute> {
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

/// Data of `CoreGraphQLQueryCreate`.
#[derive(InputObject)]
#[graphql(name = "CoreGraphQLQueryCreateInput", rename_fields = "snake_case")]
pub(crate) struct CreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    query: Option<TextAttributeCreate>,
    description: Option<TextAttributeCreate>,
}

/// Data of `CoreGraphQLQueryUpdate`: the query is found by `id` or `hfid` (`[name]`).
#[derive(InputObject)]
#[graphql(name = "CoreGraphQLQueryUpdateInput", rename_fields = "snake_case")]
pub(crate) struct UpdateInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    query: Option<TextAttributeUpdate>,
    description: Option<TextAttributeUpdate>,
}

/// Data of `CoreGraphQLQueryUpsert`: updates the query found by `id`, `hfid` or name, or
/// creates it.
#[derive(InputObject)]
#[graphql(name = "CoreGraphQLQueryUpsertInput", rename_fields = "snake_case")]
pub(crate) struct UpsertInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    query: Option<TextAttributeUpdate>,
    description: Option<TextAttributeUpdate>,
}

object_result!(CoreGraphQLQueryCreate, CoreGraphQLQuery);
object_result!(CoreGraphQLQueryUpdate, CoreGraphQLQuery);
object_result!(CoreGraphQLQueryUpsert, CoreGraphQLQuery);
ok_result!(CoreGraphQLQueryDelete);

/// The attribute values of any of the three inputs.
struct Values {
    name: Option<String>,
    query: Option<String>,
    description: Option<String>,
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
) -> Res<SavedQuery> {
    check(ctx, &q).await?;
    services(ctx)
        .store
        .commit(Commit {
            changes: vec![change(q.clone())],
            events: vec![],
        })
        .await
        .map_err(store_err)?;
    Ok(q)
}

async fn find(ctx: &Context<'_>, key: &NodeKey) -> Res<Option<SavedQuery>> {
    let all = services(ctx)
        .store
        .saved_queries()
        .await
        .map_err(store_err)?;
    Ok(all.into_iter().find(|q| key.matches(&q.id, &q.name)))
}

async fn existing(ctx: &Context<'_>, key: &NodeKey) -> Res<SavedQuery> {
    find(ctx, key)
        .await?
        .ok_or_else(|| gql(Error::not_found(format!("GraphQL query {key} not found"))))
}

fn merge(existing: SavedQuery, data: Values) -> SavedQuery {
    SavedQuery {
        name: data.name.unwrap_or(existing.name),
        query: data.query.unwrap_or(existing.query),
        description: data.description.or(existing.description),
        id: existing.id,
    }
}

fn create(id: Option<String>, data: Values) -> Res<SavedQuery> {
    Ok(SavedQuery {
        id: id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        name: data
            .name
            .ok_or_else(|| gql(Error::invalid("name.value is required")))?,
        query: data
            .query
            .ok_or_else(|| gql(Error::invalid("query.value is required")))?,
        description: data.description,
    })
}

#[derive(Default)]
pub(crate) struct SavedQueryMutation;

#[Object(rename_args = "snake_case")]
impl SavedQueryMutation {
    /// Saves a new query.
    #[graphql(name = "CoreGraphQLQueryCreate")]
    async fn create(
        &self,
        ctx: &Context<'_>,
        data: CreateInput,
    ) -> Res<Option<CoreGraphQLQueryCreate>> {
        require_write(ctx)?;
        let values = Values {
            name: data.name.text(),
            query: data.query.text(),
            description: data.description.text(),
        };
        let q = save(ctx, create(data.id, values)?, Change::InsertSavedQuery).await?;
        Ok(CoreGraphQLQueryCreate::done(CoreGraphQLQuery(q)))
    }

    /// Changes a saved query, found by `id` or `hfid`.
    #[graphql(name = "CoreGraphQLQueryUpdate")]
    async fn update(
        &self,
        ctx: &Context<'_>,
        data: UpdateInput,
    ) -> Res<Option<CoreGraphQLQueryUpdate>> {
        require_write(ctx)?;
        let key = NodeKey::required(data.id, data.hfid, KIND)?;
        let values = Values {
            name: data.name.text(),
            query: data.query.text(),
            description: data.description.text(),
        };
        let q = merge(existing(ctx, &key).await?, values);
        let q = save(ctx, q, Change::UpdateSavedQuery).await?;
        Ok(CoreGraphQLQueryUpdate::done(CoreGraphQLQuery(q)))
    }

    /// Creates or changes a saved query, found by `id`, `hfid` or else by name.
    #[graphql(name = "CoreGraphQLQueryUpsert")]
    async fn upsert(
        &self,
        ctx: &Context<'_>,
        data: UpsertInput,
    ) -> Res<Option<CoreGraphQLQueryUpsert>> {
        require_write(ctx)?;
        let values = Values {
            name: data.name.text(),
            query: data.query.text(),
            description: data.description.text(),
        };
        let key = match NodeKey::from_input(data.id.clone(), data.hfid, KIND)? {
            Some(k) => Some(k),
            None => values.name.clone().map(NodeKey::Name),
        };
        let found = match &key {
            Some(k) => find(ctx, k).await?,
            None => None,
        };
        let q = match found {
            Some(existing) => save(ctx, merge(existing, values), Change::UpdateSavedQuery).await?,
            None => save(ctx, create(data.id, values)?, Change::InsertSavedQuery).await?,
        };
        Ok(CoreGraphQLQueryUpsert::done(CoreGraphQLQuery(q)))
    }

    /// Removes a saved query, found by `id` or `hfid`.
    #[graphql(name = "CoreGraphQLQueryDelete")]
    async fn delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreGraphQLQueryDelete>> {
        require_write(ctx)?;
        let id = match data.key(KIND)? {
            NodeKey::Id(id) => id,
            key => existing(ctx, &key).await?.id,
        };
        services(ctx)
            .store
            .commit(Commit {
                changes: vec![Change::DeleteSavedQuery { id }],
                events: vec![],
            })
            .await
            .map_err(store_err)?;
        Ok(CoreGraphQLQueryDelete::done())
    }
}
