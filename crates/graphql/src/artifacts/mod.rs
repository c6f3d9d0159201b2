//! The GraphQL face of artifact definitions and artifacts (`CoreArtifactDefinition`,
//! `CoreArtifact`, `ArtifactGenerate`) in Infrahub's node shape. Resolvers parse their input,
//! call [`infrastream_services::artifacts`] (where the rules, the locks and generation live)
//! and shape its answer.

mod definitions;
mod mutations;

pub(crate) use definitions::{DefinitionMutation, DefinitionQuery};
pub(crate) use mutations::ArtifactMutation;

use definitions::CoreArtifactDefinition;

use crate::context::{Res, gql, services, url_branch};
use crate::events::RelatedNode;
use crate::node::{JsonAttribute, TextAttribute};
use async_graphql::{Context, ID, Object, SimpleObject};
use infrastream_core::error::DomainError;
use infrastream_services::artifacts::{self as domain, Artifact, ArtifactError, Definition};
use infrastream_services::nodes::NodeKind;

/// An artifact domain error as a GraphQL error.
pub(crate) fn err(e: ArtifactError) -> async_graphql::Error {
    gql(e.user_error())
}

// ---------------------------------------------------------------------------------------------
// GraphQL: shapes
// ---------------------------------------------------------------------------------------------

/// An artifact's definition: `{node}`, and its `id` even when the definition is gone.
#[derive(SimpleObject)]
#[graphql(
    name = "NestedEdgedCoreArtifactDefinition",
    rename_fields = "snake_case"
)]
pub(crate) struct DefinitionRef {
    /// Id of the definition (an infrastream extension).
    id: String,
    node: Option<CoreArtifactDefinition>,
}

/// An artifact.
pub(crate) struct CoreArtifact(Artifact);

#[Object(rename_fields = "snake_case")]
impl CoreArtifact {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.data.name)
    }
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.name)
    }
    /// `Pending`, `Processing`, `Ready` or `Error`.
    async fn status(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.status)
    }
    async fn content_type(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.data.content_type)
    }
    /// MD5 hex of the content.
    async fn checksum(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.checksum.as_deref())
    }
    /// Object id of the content (`GET /api/storage/object/{id}`).
    async fn storage_id(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.storage_id.as_deref())
    }
    async fn parameters(&self) -> Option<JsonAttribute> {
        JsonAttribute::of(&self.0.data.parameters)
    }
    /// Why the last generation failed (status `Error`).
    async fn error_message(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.data.error.as_deref())
    }
    /// Branch the artifact lives on.
    async fn branch(&self) -> &str {
        &self.0.data.branch
    }
    /// The node the artifact is generated for (Infrahub's `object`, as `{id, kind}`).
    async fn target(&self) -> RelatedNode {
        RelatedNode::from(&self.0.data.target)
    }
    /// The definition it is generated from.
    async fn definition(&self, ctx: &Context<'_>) -> Res<DefinitionRef> {
        let id = self.0.data.definition_id.clone();
        let node = Definition::by_id(services(ctx), &id)
            .await
            .map_err(err)?
            .map(CoreArtifactDefinition);
        Ok(DefinitionRef { id, node })
    }
}

crate::node::paginated!(PaginatedCoreArtifact, EdgedCoreArtifact, CoreArtifact);

fn id_list(ids: Option<Vec<Option<ID>>>) -> Option<Vec<String>> {
    ids.map(|v| v.into_iter().flatten().map(|i| i.0).collect())
}

#[derive(Default)]
pub(crate) struct ArtifactQuery;

#[Object(rename_args = "snake_case")]
impl ArtifactQuery {
    /// Artifacts of the request's branch, optionally by name, ids, definition or target
    /// (`object__ids`, or `target__ids`: the same filter under infrastream's older name).
    #[graphql(name = "CoreArtifact")]
    async fn core_artifact(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
        #[graphql(name = "definition__ids")] definition_ids: Option<Vec<Option<ID>>>,
        #[graphql(name = "object__ids")] object_ids: Option<Vec<Option<ID>>>,
        #[graphql(name = "target__ids")] target_ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreArtifact> {
        let branch = url_branch(ctx);
        let (ids, definition_ids) = (id_list(ids), id_list(definition_ids));
        let (object_ids, target_ids) = (id_list(object_ids), id_list(target_ids));
        let all = domain::list_artifacts(services(ctx)).await.map_err(err)?;
        Ok(PaginatedCoreArtifact::of(
            all.into_iter()
                .filter(|a| a.data.branch == branch)
                .filter(|a| name_value.as_ref().is_none_or(|n| *n == a.data.name))
                .filter(|a| ids.as_ref().is_none_or(|ids| ids.contains(&a.id)))
                .filter(|a| {
                    definition_ids
                        .as_ref()
                        .is_none_or(|ids| ids.contains(&a.data.definition_id))
                })
                .filter(|a| {
                    [&object_ids, &target_ids]
                        .into_iter()
                        .flatten()
                        .all(|ids| ids.contains(&a.data.target.id))
                })
                .map(CoreArtifact)
                .collect(),
        ))
    }
}
