//! Saved queries (`CoreGraphQLQuery`) in Infrahub's node shape, produced by
//! [`node_kind!`](crate::node_kind::node_kind) from the domain's description
//! ([`infrastream_services::saved_queries`]); documents are validated against the schema when
//! saved.

use crate::context::require_write;
use crate::node::{TextAttribute, ok_result};
use crate::node_kind::{anyone, node_kind};
use infrastream_core::SavedQuery;
use infrastream_services::saved_queries::Values;

/// A saved query.
pub(crate) struct CoreGraphQLQuery(pub(crate) SavedQuery);

crate::node::node_object!(CoreGraphQLQuery, {
    async fn query(&self) -> Option<TextAttribute> {
        TextAttribute::of(&self.0.query)
    }
    async fn description(&self) -> Option<TextAttribute> {
        TextAttribute::opt(self.0.description.as_deref())
    }
});

ok_result!(CoreGraphQLQueryDelete);

node_kind! {
    kind: SavedQuery,
    values: Values,
    object: CoreGraphQLQuery,
    query: SavedQueryQuery,
    list: "CoreGraphQLQuery" => (PaginatedCoreGraphQLQuery, EdgedCoreGraphQLQuery),
    list_guard: anyone,
    mutation: SavedQueryMutation,
    guard: require_write,
    attributes: [name, query, description],
    create: "CoreGraphQLQueryCreate" => (CoreGraphQLQueryCreate, "CoreGraphQLQueryCreateInput"),
    update: "CoreGraphQLQueryUpdate" => (CoreGraphQLQueryUpdate, "CoreGraphQLQueryUpdateInput"),
    upsert: "CoreGraphQLQueryUpsert" => (CoreGraphQLQueryUpsert, "CoreGraphQLQueryUpsertInput"),
    delete: "CoreGraphQLQueryDelete" => (CoreGraphQLQueryDelete, |_| CoreGraphQLQueryDelete::done()),
    docs: {
        list: "Saved queries, optionally by name or ids.",
        create_input: "Data of `CoreGraphQLQueryCreate`.",
        update_input: "Data of `CoreGraphQLQueryUpdate`: the query is found by `id` or `hfid` (`[name]`).",
        upsert_input: "Data of `CoreGraphQLQueryUpsert`: updates the query found by `id`, `hfid` or name, or\ncreates it.",
        create: "Saves a new query.",
        update: "Changes a saved query, found by `id` or `hfid`.",
        upsert: "Creates or changes a saved query, found by `id`, `hfid` or else by name.",
        delete: "Removes a saved query, found by `id` or `hfid`.",
    },
    extra_mutations: {},
}
