//! A node kind's GraphQL surface, produced from its description in the domain layer
//! ([`infrastream_services::nodes::NodeKind`]) by [`node_kind!`]: the list query with its
//! `ids` and `name__value` filters (and `<rel>__ids` filters on relationships, if the kind
//! has them), the create, update and upsert inputs (one `<Attr>Create`/`<Attr>Update` field
//! per declared attribute, text or JSON as the kind declares it, then one `RelatedNodeInput`
//! per relationship), and the Create, Update, Upsert and Delete mutations, each a call to the
//! generic operation of [`infrastream_services::nodes`] in the request's
//! [`Scope`](infrastream_services::nodes::Scope) (the guard's caller, the URL's branch). A
//! kind's GraphQL file declares its node type, its names and docs, and any mutation of its
//! own; a test checks that what is served matches the attributes and relationships each kind
//! declares.

use crate::context::Res;
use async_graphql::Context;

/// The guard of a list anyone may read.
pub(crate) fn anyone(_: &Context<'_>) -> Res<()> {
    Ok(())
}

/// The input types of an attribute declared `name: Kind` in [`node_kind!`] (a type of
/// [`crate::node`] implementing [`AttributeType`](crate::node::AttributeType)); `Text` when
/// no kind is given.
macro_rules! attribute_type {
    () => {
        $crate::node::Text
    };
    ($kind:ident) => {
        $crate::node::$kind
    };
}
pub(crate) use attribute_type;

/// Produces a node kind's GraphQL surface from its domain description (see the module
/// documentation): the paginated list types, the query object `$query` with the list field
/// (`name__value`, `ids`, then each of `filters`: `"<rel>__ids" => arg: "<rel>"`), the
/// create/update/upsert input types (`id`, `hfid`, one attribute per name in `attributes` —
/// text, or `name: Json`, with the doc comments given — and one `RelatedNodeInput` per name
/// in the optional `relationships`, whose values fill the kind's `Values`), their
/// `{object, ok}` results, and the mutation object `$mutation` with the four mutations (each
/// behind `guard`) followed by `extra_mutations`. Names and descriptions are given as they
/// are served.
macro_rules! node_kind {
    // An input that designates an existing node (`id` or `hfid`) and carries update values:
    // the Update and Upsert inputs, which Infrahub declares alike.
    (@keyed_input $input:ident, $input_name:tt, $input_doc:tt, $values:ident,
        [$($(#[doc = $attr_doc:literal])* $attr:ident $(: $attr_type:ident)?),+],
        [$($(#[doc = $rel_doc:literal])* $rel:ident),*]) => {
        #[doc = $input_doc]
        #[derive(async_graphql::InputObject)]
        #[graphql(name = $input_name, rename_fields = "snake_case")]
        pub(crate) struct $input {
            id: Option<String>,
            hfid: Option<Vec<Option<String>>>,
            $($(#[doc = $attr_doc])*
            $attr: Option<
                <$crate::node_kind::attribute_type!($($attr_type)?) as $crate::node::AttributeType>::Update
            >,)+
            $($(#[doc = $rel_doc])* $rel: Option<$crate::node::RelatedNodeInput>,)*
        }

        impl $input {
            /// The key (`id`, `hfid`) and the values to apply.
            fn split(self) -> (Option<String>, Option<Vec<Option<String>>>, $values) {
                let values = $values {
                    $($attr: $crate::node::AttributeValue::value(self.$attr),)+
                    $($rel: self.$rel.map($crate::node::RelatedNodeInput::into_ref),)*
                };
                (self.id, self.hfid, values)
            }
        }
    };
    (
        kind: $kind:ty,
        values: $values:ident,
        object: $object:ident,
        query: $query:ident,
        list: $list_name:tt => ($paginated:ident, $edged:ident),
        list_guard: $list_guard:path,
        mutation: $mutation:ident,
        guard: $guard:path,
        attributes: [$($(#[doc = $attr_doc:literal])* $attr:ident $(: $attr_type:ident)?),+ $(,)?],
        $(relationships: [$($(#[doc = $rel_doc:literal])* $rel:ident),+ $(,)?],)?
        $(filters: [$($filter_name:literal => $filter:ident: $filter_rel:literal),+ $(,)?],)?
        create: $create_name:tt => ($create:ident, $create_input:tt),
        update: $update_name:tt => ($update:ident, $update_input:tt),
        upsert: $upsert_name:tt => ($upsert:ident, $upsert_input:tt),
        delete: $delete_name:tt => ($delete:ty, $deleted:expr),
        docs: {
            list: $list_doc:tt,
            create_input: $create_input_doc:tt,
            update_input: $update_input_doc:tt,
            upsert_input: $upsert_input_doc:tt,
            create: $create_doc:tt,
            update: $update_doc:tt,
            upsert: $upsert_doc:tt,
            delete: $delete_doc:tt $(,)?
        },
        extra_mutations: { $($extra:tt)* } $(,)?
    ) => {
        $crate::node::paginated!($paginated, $edged, $object);

        #[derive(Default)]
        pub(crate) struct $query;

        #[async_graphql::Object(rename_args = "snake_case")]
        impl $query {
            #[doc = $list_doc]
            #[graphql(name = $list_name)]
            async fn list(
                &self,
                ctx: &async_graphql::Context<'_>,
                #[graphql(name = "name__value")] name_value: Option<String>,
                ids: Option<Vec<Option<async_graphql::ID>>>,
                $($(#[graphql(name = $filter_name)] $filter: Option<Vec<Option<async_graphql::ID>>>,)+)?
            ) -> $crate::context::Res<$paginated> {
                $list_guard(ctx)?;
                #[allow(unused_mut)]
                let mut related = Vec::new();
                $($(
                    if let Some(ids) = $crate::node::id_list($filter) {
                        related.push(($filter_rel, ids));
                    }
                )+)?
                let filter = infrastream_services::nodes::NodeFilter {
                    ids: $crate::node::id_list(ids),
                    name: name_value,
                    related,
                    branch: Some($crate::context::url_branch(ctx)),
                };
                let s = $crate::context::services(ctx);
                let nodes = infrastream_services::nodes::list::<$kind>(s, &filter)
                    .await
                    .map_err($crate::context::domain)?;
                Ok($paginated::of(nodes.into_iter().map($object).collect()))
            }
        }

        #[doc = $create_input_doc]
        #[derive(async_graphql::InputObject)]
        #[graphql(name = $create_input, rename_fields = "snake_case")]
        pub(crate) struct CreateInput {
            id: Option<String>,
            $($(#[doc = $attr_doc])*
            $attr: Option<
                <$crate::node_kind::attribute_type!($($attr_type)?) as $crate::node::AttributeType>::Create
            >,)+
            $($($(#[doc = $rel_doc])* $rel: Option<$crate::node::RelatedNodeInput>,)+)?
        }

        $crate::node_kind::node_kind!(@keyed_input UpdateInput, $update_input, $update_input_doc, $values,
            [$($(#[doc = $attr_doc])* $attr $(: $attr_type)?),+],
            [$($($(#[doc = $rel_doc])* $rel),+)?]);
        $crate::node_kind::node_kind!(@keyed_input UpsertInput, $upsert_input, $upsert_input_doc, $values,
            [$($(#[doc = $attr_doc])* $attr $(: $attr_type)?),+],
            [$($($(#[doc = $rel_doc])* $rel),+)?]);

        $crate::node::object_result!($create, $object);
        $crate::node::object_result!($update, $object);
        $crate::node::object_result!($upsert, $object);

        #[derive(Default)]
        pub(crate) struct $mutation;

        #[async_graphql::Object(rename_args = "snake_case")]
        impl $mutation {
            #[doc = $create_doc]
            #[graphql(name = $create_name)]
            async fn create(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: CreateInput,
            ) -> $crate::context::Res<Option<$create>> {
                let caller = $guard(ctx)?;
                let branch = $crate::context::url_branch(ctx);
                let at = infrastream_services::nodes::Scope { caller, branch: &branch };
                let values = $values {
                    $($attr: $crate::node::AttributeValue::value(data.$attr),)+
                    $($($rel: data.$rel.map($crate::node::RelatedNodeInput::into_ref),)+)?
                };
                let s = $crate::context::services(ctx);
                let node = infrastream_services::nodes::create::<$kind>(s, at, data.id, values)
                    .await
                    .map_err($crate::context::domain)?;
                Ok($create::done($object(node)))
            }

            #[doc = $update_doc]
            #[graphql(name = $update_name)]
            async fn update(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: UpdateInput,
            ) -> $crate::context::Res<Option<$update>> {
                let caller = $guard(ctx)?;
                let branch = $crate::context::url_branch(ctx);
                let at = infrastream_services::nodes::Scope { caller, branch: &branch };
                let (id, hfid, values) = data.split();
                let s = $crate::context::services(ctx);
                let node = infrastream_services::nodes::update::<$kind>(s, at, id, hfid, values)
                    .await
                    .map_err($crate::context::domain)?;
                Ok($update::done($object(node)))
            }

            #[doc = $upsert_doc]
            #[graphql(name = $upsert_name)]
            async fn upsert(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: UpsertInput,
            ) -> $crate::context::Res<Option<$upsert>> {
                let caller = $guard(ctx)?;
                let branch = $crate::context::url_branch(ctx);
                let at = infrastream_services::nodes::Scope { caller, branch: &branch };
                let (id, hfid, values) = data.split();
                let s = $crate::context::services(ctx);
                let node = infrastream_services::nodes::upsert::<$kind>(s, at, id, hfid, values)
                    .await
                    .map_err($crate::context::domain)?;
                Ok($upsert::done($object(node)))
            }

            #[doc = $delete_doc]
            #[graphql(name = $delete_name)]
            async fn delete(
                &self,
                ctx: &async_graphql::Context<'_>,
                data: $crate::node::DeleteInput,
            ) -> $crate::context::Res<Option<$delete>> {
                let caller = $guard(ctx)?;
                let branch = $crate::context::url_branch(ctx);
                let at = infrastream_services::nodes::Scope { caller, branch: &branch };
                let s = $crate::context::services(ctx);
                let removed = infrastream_services::nodes::delete::<$kind>(
                    s, at, data.id, data.hfid,
                )
                .await
                .map_err($crate::context::domain)?;
                let deleted = $deleted;
                Ok(deleted(removed.map($object)))
            }

            $($extra)*
        }
    };
}
pub(crate) use node_kind;

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    use infrastream_services::nodes::NodeKind;

    /// Names of the fields of the object or input type `name` in `sdl`.
    fn fields(sdl: &str, name: &str) -> Vec<String> {
        let doc = parse_schema(sdl).expect("the served SDL parses");
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            if t.node.name.node.as_str() != name {
                continue;
            }
            return match t.node.kind {
                TypeKind::Object(o) => o
                    .fields
                    .iter()
                    .map(|f| f.node.name.node.to_string())
                    .collect(),
                TypeKind::InputObject(i) => i
                    .fields
                    .iter()
                    .map(|f| f.node.name.node.to_string())
                    .collect(),
                _ => panic!("{name} is neither an object nor an input"),
            };
        }
        panic!("{name} is not served")
    }

    /// The served node type and inputs of `K` are its declared attributes.
    fn served_as_declared<K: NodeKind>(sdl: &str) {
        let writable = K::ATTRIBUTES.iter().filter(|a| a.writable).map(|a| a.name);
        for (input, keys) in [
            ("CreateInput", &["id"][..]),
            ("UpdateInput", &["id", "hfid"][..]),
            ("UpsertInput", &["id", "hfid"][..]),
        ] {
            let related = K::RELATIONSHIPS.iter().map(|r| r.name);
            let want: Vec<String> = keys
                .iter()
                .copied()
                .chain(writable.clone())
                .chain(related)
                .map(String::from)
                .collect();
            assert_eq!(fields(sdl, &format!("{}{input}", K::KIND)), want);
        }
        let shown = fields(sdl, K::KIND);
        for a in K::ATTRIBUTES {
            assert_eq!(
                shown.iter().any(|f| f == a.name),
                !a.secret,
                "{}.{}",
                K::KIND,
                a.name
            );
        }
    }

    #[test]
    fn node_kinds_are_served_as_declared() {
        let sdl = crate::schema_sdl();
        served_as_declared::<infrastream_core::SavedQuery>(&sdl);
        served_as_declared::<infrastream_services::repositories::Repository>(&sdl);
        served_as_declared::<infrastream_core::Account>(&sdl);
        served_as_declared::<infrastream_services::artifacts::Definition>(&sdl);
        served_as_declared::<infrastream_services::artifacts::Artifact>(&sdl);
    }
}
