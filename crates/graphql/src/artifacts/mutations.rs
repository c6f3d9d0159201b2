//! `CoreArtifactCreate/Update/Upsert/Delete` and `ArtifactGenerate`: inputs, their conversion to the domain's values, and the
//! resolvers.

use super::{CoreArtifact, err};
use crate::context::{Res, gql, require_write, services, url_branch};
use crate::node::{
    AttributeValue, DeleteInput, JsonAttributeCreate, JsonAttributeUpdate, NodeKey,
    RelatedNodeInput, TextAttributeCreate, TextAttributeUpdate, object_result, ok_result,
};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use infrastream_core::Error;
use infrastream_services::artifacts::{
    self as domain, ARTIFACT_KIND, ArtifactValues, GenerateOutcome, TargetRef,
};

// ---------------------------------------------------------------------------------------------
// GraphQL: mutations
// ---------------------------------------------------------------------------------------------

/// Data of `CoreArtifactCreate`: `definition` and the target (`object`, or `target`, its
/// infrastream name) are required; the target needs its `kind` unless infrastream stores it.
#[derive(InputObject)]
#[graphql(name = "CoreArtifactCreateInput", rename_fields = "snake_case")]
pub(crate) struct ArtifactCreateInput {
    id: Option<String>,
    name: Option<TextAttributeCreate>,
    status: Option<TextAttributeCreate>,
    content_type: Option<TextAttributeCreate>,
    checksum: Option<TextAttributeCreate>,
    storage_id: Option<TextAttributeCreate>,
    parameters: Option<JsonAttributeCreate>,
    definition: Option<RelatedNodeInput>,
    object: Option<RelatedNodeInput>,
    /// The target under infrastream's older name; same as `object`.
    target: Option<RelatedNodeInput>,
}

/// Data of `CoreArtifactUpdate`: the artifact is found by `id` (artifacts have no hfid).
#[derive(InputObject)]
#[graphql(name = "CoreArtifactUpdateInput", rename_fields = "snake_case")]
pub(crate) struct ArtifactUpdateInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    status: Option<TextAttributeUpdate>,
    content_type: Option<TextAttributeUpdate>,
    checksum: Option<TextAttributeUpdate>,
    storage_id: Option<TextAttributeUpdate>,
    parameters: Option<JsonAttributeUpdate>,
    definition: Option<RelatedNodeInput>,
    object: Option<RelatedNodeInput>,
    /// The target under infrastream's older name; same as `object`.
    target: Option<RelatedNodeInput>,
}

/// Data of `CoreArtifactUpsert`: updates the artifact found by `id`, or else by (definition,
/// target, branch), or creates it.
#[derive(InputObject)]
#[graphql(name = "CoreArtifactUpsertInput", rename_fields = "snake_case")]
pub(crate) struct ArtifactUpsertInput {
    id: Option<String>,
    hfid: Option<Vec<Option<String>>>,
    name: Option<TextAttributeUpdate>,
    status: Option<TextAttributeUpdate>,
    content_type: Option<TextAttributeUpdate>,
    checksum: Option<TextAttributeUpdate>,
    storage_id: Option<TextAttributeUpdate>,
    parameters: Option<JsonAttributeUpdate>,
    definition: Option<RelatedNodeInput>,
    object: Option<RelatedNodeInput>,
    /// The target under infrastream's older name; same as `object`.
    target: Option<RelatedNodeInput>,
}

/// Converts any of the three artifact inputs, checking the node references.
macro_rules! artifact_values {
    ($data:expr) => {{
        let definition = match &$data.definition {
            Some(d) => Some(match d.key("definition")? {
                NodeKey::Id(id) => id,
                NodeKey::Name(name) => name,
            }),
            None => None,
        };
        let target = match ($data.object, $data.target) {
            (Some(_), Some(_)) => {
                return Err(gql(Error::invalid(
                    "Give the artifact's target as object or as target, not both",
                )));
            }
            (Some(t), None) | (None, Some(t)) => Some(target_ref(t)?),
            (None, None) => None,
        };
        ArtifactValues {
            name: $data.name.value(),
            status: $data.status.value(),
            content_type: $data.content_type.value(),
            checksum: $data.checksum.value(),
            storage_id: $data.storage_id.value(),
            parameters: $data.parameters.value(),
            definition,
            target,
        }
    }};
}

/// The target of an artifact input: by `id` (a target's hfid cannot be resolved here).
fn target_ref(t: RelatedNodeInput) -> Res<TargetRef> {
    match t.key("object")? {
        NodeKey::Id(id) => Ok(TargetRef { id, kind: t.kind }),
        NodeKey::Name(_) => Err(gql(Error::invalid(
            "The artifact's target must be given by id (object.id)",
        ))),
    }
}

/// The id of the artifact an update or upsert designates: artifacts have no hfid.
fn artifact_id(id: Option<String>, hfid: Option<Vec<Option<String>>>) -> Res<Option<String>> {
    match NodeKey::from_input(id, hfid, ARTIFACT_KIND)? {
        None => Ok(None),
        Some(NodeKey::Id(id)) => Ok(Some(id)),
        Some(NodeKey::Name(_)) => Err(gql(Error::invalid(
            "CoreArtifact has no hfid: designate the artifact by id",
        ))),
    }
}

object_result!(CoreArtifactCreate, CoreArtifact);
object_result!(CoreArtifactUpdate, CoreArtifact);
object_result!(CoreArtifactUpsert, CoreArtifact);
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

#[derive(Default)]
pub(crate) struct ArtifactMutation;

#[Object(rename_args = "snake_case")]
impl ArtifactMutation {
    /// Creates an artifact on the request's branch (`definition` and the target required).
    /// With `storage_id` (an uploaded object) it has content, and `infrahub.artifact.created`
    /// is emitted.
    #[graphql(name = "CoreArtifactCreate")]
    async fn artifact_create(
        &self,
        ctx: &Context<'_>,
        data: ArtifactCreateInput,
    ) -> Res<Option<CoreArtifactCreate>> {
        let caller = require_write(ctx)?;
        let id = data.id.clone();
        let values = artifact_values!(data);
        let a = domain::create_artifact(services(ctx), caller, &url_branch(ctx), id, values)
            .await
            .map_err(err)?;
        Ok(CoreArtifactCreate::done(CoreArtifact(a)))
    }

    /// Changes an artifact, found by `id`; a new `storage_id` emits `infrahub.artifact.updated`.
    #[graphql(name = "CoreArtifactUpdate")]
    async fn artifact_update(
        &self,
        ctx: &Context<'_>,
        data: ArtifactUpdateInput,
    ) -> Res<Option<CoreArtifactUpdate>> {
        let caller = require_write(ctx)?;
        let id = artifact_id(data.id.clone(), data.hfid.clone())?
            .ok_or_else(|| gql(Error::invalid("id is required for CoreArtifact")))?;
        let values = artifact_values!(data);
        let a = domain::update_artifact(services(ctx), caller, &id, values)
            .await
            .map_err(err)?;
        Ok(CoreArtifactUpdate::done(CoreArtifact(a)))
    }

    /// Creates or changes an artifact, found by `id` or else by (definition, target, branch).
    #[graphql(name = "CoreArtifactUpsert")]
    async fn artifact_upsert(
        &self,
        ctx: &Context<'_>,
        data: ArtifactUpsertInput,
    ) -> Res<Option<CoreArtifactUpsert>> {
        let caller = require_write(ctx)?;
        let id = artifact_id(data.id.clone(), data.hfid.clone())?;
        let values = artifact_values!(data);
        let a = domain::upsert_artifact(services(ctx), caller, &url_branch(ctx), id, values)
            .await
            .map_err(err)?;
        Ok(CoreArtifactUpsert::done(CoreArtifact(a)))
    }

    /// Removes an artifact, found by `id` (its content stays in the object store).
    #[graphql(name = "CoreArtifactDelete")]
    async fn artifact_delete(
        &self,
        ctx: &Context<'_>,
        data: DeleteInput,
    ) -> Res<Option<CoreArtifactDelete>> {
        require_write(ctx)?;
        let id = artifact_id(data.id, data.hfid)?
            .ok_or_else(|| gql(Error::invalid("id is required for CoreArtifact")))?;
        domain::delete_artifact(services(ctx), &id)
            .await
            .map_err(err)?;
        Ok(CoreArtifactDelete::done())
    }

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
        let done = domain::generate(
            services(ctx),
            caller,
            &url_branch(ctx),
            &definition,
            targets,
        )
        .await
        .map_err(err)?;
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
}
