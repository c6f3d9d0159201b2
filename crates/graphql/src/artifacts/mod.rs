//! The GraphQL face of artifact definitions and artifacts (`CoreArtifactDefinition`,
//! `CoreArtifact`, `ArtifactGenerate`) in Infrahub's node shape. Resolvers parse their input,
//! call [`infrastream_services::artifacts`] (where the rules, the locks and generation live)
//! and shape its answer.

mod mutations;

pub(crate) use mutations::ArtifactMutation;

use crate::context::{Res, gql, services, url_branch};
use crate::events::RelatedNode;
use crate::node::TextAttribute;
use crate::scalars::GenericScalar;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use infrastream_core::error::DomainError;
use infrastream_services::artifacts::{self as domain, Artifact, ArtifactError, Definition};
use serde_json::Value;

/// An artifact domain error as a GraphQL error.
pub(crate) fn err(e: ArtifactError) -> async_graphql::Error {
    gql(e.user_error())
}

// ---------------------------------------------------------------------------------------------
// GraphQL: shapes
// ---------------------------------------------------------------------------------------------

/// A JSON attribute.
#[derive(SimpleObject, Clone)]
#[graphql(name = "JSONAttribute", rename_fields = "snake_case")]
pub(crate) struct JsonAttribute {
    value: Option<GenericScalar>,
}

impl JsonAttribute {
    fn of(v: &Value) -> Option<Self> {
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

/// The value of an optional JSON attribute input, whichever its flavour.
pub(super) trait JsonValue {
    fn json(self) -> Option<Value>;
}

impl JsonValue for Option<JsonAttributeCreate> {
    fn json(self) -> Option<Value> {
        self.and_then(|a| {
            let _ = (a.is_protected, a.is_visible, a.source, a.owner);
            a.value.map(|v| v.0)
        })
    }
}

impl JsonValue for Option<JsonAttributeUpdate> {
    fn json(self) -> Option<Value> {
        self.and_then(|a| {
            let _ = (
                a.is_default,
                a.is_protected,
                a.is_visible,
                a.source,
                a.owner,
            );
            a.value.map(|v| v.0)
        })
    }
}

/// An artifact definition.
pub(crate) struct CoreArtifactDefinition(Definition);

#[Object(rename_fields = "snake_case")]
impl CoreArtifactDefinition {
    async fn id(&self) -> &str {
        &self.0.id
    }
    async fn display_label(&self) -> Option<&str> {
        Some(&self.0.name)
    }
    /// Unique name.
    async fn name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.name)
    }
    /// Name given to the artifacts.
    async fn artifact_name(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.artifact_name)
    }
    /// MIME type of the artifacts.
    async fn content_type(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.content_type)
    }
    /// Passed to the query as variables (with `id`, the target's id).
    async fn parameters(&self) -> Option<JsonAttribute> {
        JsonAttribute::of(&self.0.d.parameters)
    }
    /// Name of the saved query (`CoreGraphQLQuery`) that provides the data.
    async fn query(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.query)
    }
    /// The minijinja template.
    async fn template(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.d.template)
    }
    async fn description(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.d.description.as_deref())
    }
}

crate::node::paginated!(
    PaginatedCoreArtifactDefinition,
    EdgedCoreArtifactDefinition,
    CoreArtifactDefinition
);

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
        let node = domain::definition(services(ctx), &id)
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
    /// Artifact definitions, optionally by name or ids.
    #[graphql(name = "CoreArtifactDefinition")]
    async fn core_artifact_definition(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "name__value")] name_value: Option<String>,
        ids: Option<Vec<Option<ID>>>,
    ) -> Res<PaginatedCoreArtifactDefinition> {
        let ids = id_list(ids);
        let all = domain::list_definitions(services(ctx)).await.map_err(err)?;
        Ok(PaginatedCoreArtifactDefinition::of(
            all.into_iter()
                .filter(|d| name_value.as_ref().is_none_or(|n| *n == d.name))
                .filter(|d| ids.as_ref().is_none_or(|ids| ids.contains(&d.id)))
                .map(CoreArtifactDefinition)
                .collect(),
        ))
    }

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
