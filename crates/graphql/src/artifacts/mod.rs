//! The GraphQL face of artifact definitions and artifacts (`CoreArtifactDefinition`,
//! `CoreArtifact`) in Infrahub's node shape, both produced by
//! [`node_kind!`](crate::node_kind::node_kind) from the domain's descriptions
//! ([`infrastream_services::artifacts`], where the rules, the locks and generation live), and
//! `ArtifactGenerate`.

mod definitions;

pub(crate) use definitions::{DefinitionMutation, DefinitionQuery};

use definitions::CoreArtifactDefinition;

use crate::context::{Res, domain, require_write, services, url_branch};
use crate::events::RelatedNode;
use crate::node::{JsonAttribute, TextAttribute, ok_result};
use crate::node_kind::{anyone, node_kind};
use async_graphql::{Context, Object, SimpleObject};
use infrastream_services::artifacts::{
    self as artifacts, Artifact, ArtifactValues, Definition, GenerateOutcome,
};
use infrastream_services::nodes::NodeKind;

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
            .map_err(domain)?
            .map(CoreArtifactDefinition);
        Ok(DefinitionRef { id, node })
    }
}

ok_result!(CoreArtifactDelete);

/// One artifact of an `ArtifactGenerate`.
#[derive(SimpleObject)]
#[graphql(name = "ArtifactGenerateItem", rename_fields = "snake_case")]
pub(crate) struct GenerateItem {
    /// `created`, `updated`, `unchanged` or `error`.
    result: String,
    /// The artifact event emitted, if any.
    event_id: Option<String>,
    object: CoreArtifact,
}

/// Result of `ArtifactGenerate`: `ok` is false when any artifact ended in `Error`.
#[derive(SimpleObject)]
#[graphql(name = "ArtifactGenerateResult", rename_fields = "snake_case")]
pub(crate) struct GenerateResult {
    ok: bool,
    count: i64,
    artifacts: Vec<GenerateItem>,
}

node_kind! {
    kind: Artifact,
    values: ArtifactValues,
    object: CoreArtifact,
    query: ArtifactQuery,
    list: "CoreArtifact" => (PaginatedCoreArtifact, EdgedCoreArtifact),
    list_guard: anyone,
    mutation: ArtifactMutation,
    guard: require_write,
    attributes: [name, status, content_type, checksum, storage_id, parameters: Json],
    relationships: [
        definition,
        object,
        #[doc = "The target under infrastream's older name; same as `object`."]
        target,
    ],
    filters: [
        "definition__ids" => definition_ids: "definition",
        "object__ids" => object_ids: "object",
        "target__ids" => target_ids: "target",
    ],
    create: "CoreArtifactCreate" => (CoreArtifactCreate, "CoreArtifactCreateInput"),
    update: "CoreArtifactUpdate" => (CoreArtifactUpdate, "CoreArtifactUpdateInput"),
    upsert: "CoreArtifactUpsert" => (CoreArtifactUpsert, "CoreArtifactUpsertInput"),
    delete: "CoreArtifactDelete" => (CoreArtifactDelete, |_| CoreArtifactDelete::done()),
    docs: {
        list: "Artifacts of the request's branch, optionally by name, ids, definition or target\n(`object__ids`, or `target__ids`: the same filter under infrastream's older name).",
        create_input: "Data of `CoreArtifactCreate`: `definition` and the target (`object`, or `target`, its\ninfrastream name) are required; the target needs its `kind` unless infrastream stores it.",
        update_input: "Data of `CoreArtifactUpdate`: the artifact is found by `id` (artifacts have no hfid).",
        upsert_input: "Data of `CoreArtifactUpsert`: updates the artifact found by `id`, or else by (definition,\ntarget, branch), or creates it.",
        create: "Creates an artifact on the request's branch (`definition` and the target required).\nWith `storage_id` (an uploaded object) it has content, and `infrahub.artifact.created`\nis emitted.",
        update: "Changes an artifact, found by `id`; a new `storage_id` emits `infrahub.artifact.updated`.",
        upsert: "Creates or changes an artifact, found by `id` or else by (definition, target, branch).",
        delete: "Removes an artifact, found by `id` (its content stays in the object store).",
    },
    extra_mutations: {
        /// Generates the artifacts of `definition` (id or name) on the request's branch: for each
        /// of `targets` (node ids, or `Kind:id`; the artifact is created when missing), or for all
        /// existing artifacts of the definition on that branch when `targets` is omitted or empty.
        #[graphql(name = "ArtifactGenerate")]
        async fn artifact_generate(
            &self,
            ctx: &Context<'_>,
            definition: String,
            targets: Option<Vec<String>>,
        ) -> Res<GenerateResult> {
            let caller = require_write(ctx)?;
            let done = artifacts::generate(
                services(ctx),
                caller,
                &url_branch(ctx),
                &definition,
                targets,
            )
            .await
            .map_err(domain)?;
            Ok(GenerateResult {
                ok: done.iter().all(|g| g.outcome != GenerateOutcome::Error),
                count: done.len() as i64,
                artifacts: done
                    .into_iter()
                    .map(|g| GenerateItem {
                        result: g.outcome.as_str().into(),
                        event_id: g.event_id,
                        object: CoreArtifact(g.artifact),
                    })
                    .collect(),
            })
        }
    },
}
