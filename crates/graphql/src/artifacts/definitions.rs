//! Artifact definitions (`CoreArtifactDefinition`) in Infrahub's node shape, produced by
//! [`node_kind!`](crate::node_kind::node_kind) from the domain's description
//! ([`infrastream_services::artifacts::Definition`]).

use crate::context::require_write;
use crate::node::{JsonAttribute, TextAttribute, ok_result};
use crate::node_kind::{anyone, node_kind};
use infrastream_services::artifacts::{Definition, DefinitionValues};

/// An artifact definition.
pub(crate) struct CoreArtifactDefinition(pub(crate) Definition);

crate::node::node_object!(CoreArtifactDefinition, name_doc: " Unique name.", {
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
});

ok_result!(CoreArtifactDefinitionDelete);

node_kind! {
    kind: Definition,
    values: DefinitionValues,
    object: CoreArtifactDefinition,
    query: DefinitionQuery,
    list: "CoreArtifactDefinition" => (PaginatedCoreArtifactDefinition, EdgedCoreArtifactDefinition),
    list_guard: anyone,
    mutation: DefinitionMutation,
    guard: require_write,
    attributes: [
        name,
        artifact_name,
        content_type,
        parameters: Json,
        #[doc = "Name of the saved query."]
        query,
        #[doc = "minijinja source."]
        template,
        description,
    ],
    create: "CoreArtifactDefinitionCreate" => (CoreArtifactDefinitionCreate, "CoreArtifactDefinitionCreateInput"),
    update: "CoreArtifactDefinitionUpdate" => (CoreArtifactDefinitionUpdate, "CoreArtifactDefinitionUpdateInput"),
    upsert: "CoreArtifactDefinitionUpsert" => (CoreArtifactDefinitionUpsert, "CoreArtifactDefinitionUpsertInput"),
    delete: "CoreArtifactDefinitionDelete" => (CoreArtifactDefinitionDelete, |_| CoreArtifactDefinitionDelete::done()),
    docs: {
        list: "Artifact definitions, optionally by name or ids.",
        create_input: "Data of `CoreArtifactDefinitionCreate`. `query` (name of the saved query providing the\ndata) and `template` (minijinja source) are infrastream's: they stand for Infrahub's\n`transformation`, which infrastream does not have.",
        update_input: "Data of `CoreArtifactDefinitionUpdate`: the definition is found by `id` or `hfid`\n(`[name]`).",
        upsert_input: "Data of `CoreArtifactDefinitionUpsert`: updates the definition found by `id`, `hfid` or\nname, or creates it.",
        create: "Creates an artifact definition.",
        update: "Changes an artifact definition, found by `id` or `hfid`.",
        upsert: "Creates or changes an artifact definition, found by `id`, `hfid` or else by name.",
        delete: "Removes an artifact definition and its artifacts; found by `id` or `hfid`.",
    },
    extra_mutations: {},
}
