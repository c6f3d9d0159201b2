//! GraphQL for the node kinds a loaded schema declares, built at run time
//! (`async_graphql::dynamic`) from the request branch's schema and cached by the digest of its
//! stored text, so a schema load takes effect at the next request:
//!
//! - per node kind `<Kind>(ids, hfid, offset, limit, <attribute>__value, <attribute>__values)`
//!   → `{count, edges {node}}` (`count` is the total before paging); a node has `id`, `hfid`,
//!   `display_label`, one attribute object per attribute (`{value, is_default, is_protected,
//!   source, owner, updated_at}`) and its relationships to node kinds (`{node}` for cardinality
//!   one, `{count, edges {node}}` for many);
//! - `<Kind>Create(data: <Kind>CreateInput!)`, `<Kind>Update(data: <Kind>UpdateInput!)` →
//!   `{ok, object}`, `<Kind>Upsert(data: <Kind>UpsertInput!)` → `{ok, created, object}`,
//!   `<Kind>Delete(data: DeleteInput!)` → `{ok}`, and `RelationshipAdd` / `RelationshipRemove`
//!   `(data: {id, name, nodes: [{id}]})` → `{ok}` for relationships of cardinality many.
//!
//! [`route`] decides which schema runs a request: the built-in one unless the operation's root
//! fields are fields of schema-defined kinds; one operation cannot mix both (a clear error).
//! - per generic with nodes, `<Generic>(ids, hfid, offset, limit, <attribute>__value(s))`
//!   listing the nodes of every kind that inherits from it (an interface they implement).
//!
//! Not built yet: relationships to generics or built-in kinds, ordering.

use crate::context::{Caller, UrlBranch};
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Interface, InterfaceField, Object,
    ResolverContext, Scalar, Schema, SchemaError, TypeRef,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection};
use async_graphql::{Name, Value as GqlValue};
use infrastream_services::data::{self, DataNode};
use infrastream_services::schema::builtin;
use infrastream_services::schema::registry::BranchSchema;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// A built schema and its root field names.
pub struct DataSchema {
    /// The executable schema.
    pub schema: Schema,
    roots: BTreeSet<String>,
}

impl DataSchema {
    /// Checks `document` against this schema without executing it; `Err` is the reason.
    pub async fn validate(&self, document: &str) -> Result<(), String> {
        let request = async_graphql::Request::new(document).data(crate::ValidateOnly);
        crate::validated(self.schema.execute(request).await)
    }
}

/// Which schema runs a request.
pub enum Route {
    /// The built-in one.
    Builtin,
    /// The one of the branch's schema-defined kinds.
    Data(Arc<DataSchema>),
    /// Both: refused with this message.
    Mixed(String),
}

/// Root field names of the built-in schema (computed once by the caller).
pub type BuiltinRoots = BTreeSet<String>;

/// Root fields of `document`'s operation `operation` (or its only one).
fn root_fields(document: &ExecutableDocument, operation: Option<&str>) -> Vec<String> {
    let op = match (&document.operations, operation) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(&Name::new(name)),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    let Some(op) = op else { return Vec::new() };
    op.node
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        })
        .collect()
}

/// Most schemas one server keeps built (one per branch schema in use).
const CACHE_ENTRIES: usize = 32;

/// What one server routes with: the root fields of its built-in schema, and the schemas of
/// loaded kinds it built, by the digest of their stored text.
pub struct DataSchemas {
    builtin: BuiltinRoots,
    cache: Mutex<HashMap<String, Arc<DataSchema>>>,
}

impl DataSchemas {
    /// For the built-in schema `schema`.
    pub async fn new(schema: &crate::InfraSchema) -> Self {
        Self {
            builtin: builtin_roots(schema).await,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Which schema runs `document` on `branch`. Reads the branch's schema only when a root
    /// field is not one of the built-in schema's.
    pub async fn route(
        &self,
        services: &infrastream_services::Services,
        branch: &str,
        document: &ExecutableDocument,
        operation: Option<&str>,
    ) -> Route {
        route(
            &self.cache,
            services,
            &self.builtin,
            branch,
            document,
            operation,
        )
        .await
    }
}

async fn route(
    cache: &Mutex<HashMap<String, Arc<DataSchema>>>,
    services: &infrastream_services::Services,
    builtin: &BuiltinRoots,
    branch: &str,
    document: &ExecutableDocument,
    operation: Option<&str>,
) -> Route {
    let roots = root_fields(document, operation);
    let others: Vec<&String> = roots
        .iter()
        .filter(|r| !builtin.contains(*r) && !r.starts_with("__"))
        .collect();
    if others.is_empty() {
        return Route::Builtin;
    }
    let Ok(Some(text)) = infrastream_services::schema::branch_schema_text(services, branch).await
    else {
        return Route::Builtin;
    };
    // Keyed by the stored text itself: a hit costs one metadata read and one digest.
    let key = infrastream_services::object_store::md5_hex(text.as_bytes());
    let cached = cache.lock().expect("data schema cache").get(&key).cloned();
    let built = match cached {
        Some(b) => b,
        None => {
            let Ok(schema) = infrastream_services::schema::parse(&text) else {
                return Route::Builtin;
            };
            match build(services.clone(), Arc::new(schema)) {
                Ok(b) => {
                    let b = Arc::new(b);
                    let mut cache = cache.lock().expect("data schema cache");
                    if cache.len() >= CACHE_ENTRIES {
                        cache.clear();
                    }
                    cache.insert(key, b.clone());
                    b
                }
                Err(e) => {
                    tracing::error!(error = %e, branch, "cannot build the GraphQL schema of the loaded kinds");
                    return Route::Builtin;
                }
            }
        }
    };
    if !others.iter().all(|r| built.roots.contains(*r)) {
        return Route::Builtin;
    }
    let mixed: Vec<&String> = roots
        .iter()
        .filter(|r| builtin.contains(*r) && !r.starts_with("__"))
        .collect();
    if !mixed.is_empty() {
        return Route::Mixed(format!(
            "Fields of schema-defined kinds ({}) cannot be combined with other fields ({}) in one operation yet; send them as separate requests",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            mixed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    Route::Data(built)
}

/// A node and the schema it was read with, as a resolver's parent value.
struct NodeValue {
    node: DataNode,
    schema: Arc<BranchSchema>,
    /// Whether an upsert created it.
    created: bool,
}

fn s(e: &Map<String, Value>, key: &str) -> String {
    e.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The attribute object type and the input type of an attribute kind.
fn attribute_types(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "Number" | "NumberPool" | "Bandwidth" => {
            ("NumberAttribute", "NumberAttributeCreate", "BigInt")
        }
        "Boolean" | "Checkbox" => ("CheckboxAttribute", "CheckboxAttributeCreate", "Boolean"),
        "JSON" | "Any" | "List" => ("JSONAttribute", "GenericAttributeCreate", "GenericScalar"),
        "Dropdown" => ("Dropdown", "TextAttributeCreate", "String"),
        _ => ("TextAttribute", "TextAttributeCreate", "String"),
    }
}

fn to_gql(v: &Value) -> GqlValue {
    GqlValue::from_json(v.clone()).unwrap_or(GqlValue::Null)
}

fn err(e: infrastream_core::Error) -> async_graphql::Error {
    crate::context::gql(e)
}

fn caller<'a>(ctx: &ResolverContext<'a>) -> Caller {
    ctx.data_opt::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}

fn branch(ctx: &ResolverContext<'_>) -> String {
    ctx.data_opt::<UrlBranch>()
        .map(|b| b.0.clone())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "main".to_owned())
}

fn domain<'a>(ctx: &ResolverContext<'a>) -> &'a infrastream_services::Services {
    ctx.data_unchecked::<infrastream_services::Services>()
}

/// Builds the schema of `schema`'s node kinds.
fn build(
    services: infrastream_services::Services,
    schema: Arc<BranchSchema>,
) -> Result<DataSchema, SchemaError> {
    let mut query = Object::new("Query");
    let mut mutation = Object::new("Mutation");
    let mut builder_types: Vec<async_graphql::dynamic::Type> = Vec::new();
    let mut roots = BTreeSet::new();

    for scalar in ["BigInt", "GenericScalar"] {
        builder_types.push(Scalar::new(scalar).into());
    }
    for (name, value_type) in [
        ("TextAttribute", "String"),
        ("Dropdown", "String"),
        ("NumberAttribute", "BigInt"),
        ("CheckboxAttribute", "Boolean"),
        ("JSONAttribute", "GenericScalar"),
    ] {
        let mut o = Object::new(name);
        for (field, ty) in [
            ("value", value_type),
            ("is_default", "Boolean"),
            ("is_protected", "Boolean"),
            ("source", "GenericScalar"),
            ("owner", "GenericScalar"),
            ("updated_at", "String"),
        ] {
            let key = field.to_owned();
            o = o.field(Field::new(field, TypeRef::named(ty), move |ctx| {
                let key = key.clone();
                FieldFuture::new(async move {
                    let attr = ctx.parent_value.try_downcast_ref::<Value>()?;
                    let v = match key.as_str() {
                        "is_protected" => json!(false),
                        "is_default" => attr.get("is_default").cloned().unwrap_or(json!(false)),
                        k => attr.get(k).cloned().unwrap_or(Value::Null),
                    };
                    Ok(Some(FieldValue::value(to_gql(&v))))
                })
            }));
        }
        builder_types.push(o.into());
    }
    for (name, value_type) in [
        ("TextAttributeCreate", "String"),
        ("NumberAttributeCreate", "BigInt"),
        ("CheckboxAttributeCreate", "Boolean"),
        ("GenericAttributeCreate", "GenericScalar"),
    ] {
        builder_types.push(
            InputObject::new(name)
                .field(InputValue::new("value", TypeRef::named(value_type)))
                .field(InputValue::new(
                    "is_protected",
                    TypeRef::named(TypeRef::BOOLEAN),
                ))
                .field(InputValue::new("source", TypeRef::named(TypeRef::STRING)))
                .field(InputValue::new("owner", TypeRef::named(TypeRef::STRING)))
                .into(),
        );
    }
    builder_types.push(
        InputObject::new("RelatedNodeInput")
            .field(InputValue::new("id", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new(
                "hfid",
                TypeRef::named_list(TypeRef::STRING),
            ))
            .field(InputValue::new("kind", TypeRef::named(TypeRef::STRING)))
            .into(),
    );
    builder_types.push(
        InputObject::new("DeleteInput")
            .field(InputValue::new("id", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new(
                "hfid",
                TypeRef::named_list(TypeRef::STRING),
            ))
            .into(),
    );

    for kind in schema.nodes.keys() {
        let mut node = Object::new(kind.as_str())
            .field(Field::new("id", TypeRef::named_nn(TypeRef::ID), |ctx| {
                FieldFuture::new(async move {
                    let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                    Ok(Some(FieldValue::value(n.node.id.clone())))
                })
            }))
            .field(Field::new(
                "hfid",
                TypeRef::named_list(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                        Ok(n.node
                            .hfid(&n.schema)
                            .map(|h| FieldValue::value(to_gql(&json!(h)))))
                    })
                },
            ))
            .field(Field::new(
                "display_label",
                TypeRef::named(TypeRef::STRING),
                |ctx| {
                    FieldFuture::new(async move {
                        let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                        Ok(Some(FieldValue::value(n.node.display_label(&n.schema))))
                    })
                },
            ));
        let mut create = InputObject::new(format!("{kind}CreateInput"))
            .field(InputValue::new("id", TypeRef::named(TypeRef::STRING)));
        let mut upsert = InputObject::new(format!("{kind}UpsertInput"))
            .field(InputValue::new("id", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new(
                "hfid",
                TypeRef::named_list(TypeRef::STRING),
            ));
        let mut update = InputObject::new(format!("{kind}UpdateInput"))
            .field(InputValue::new("id", TypeRef::named(TypeRef::STRING)))
            .field(InputValue::new(
                "hfid",
                TypeRef::named_list(TypeRef::STRING),
            ));
        let mut query_field = Field::new(
            kind.as_str(),
            TypeRef::named_nn(format!("Paginated{kind}")),
            {
                let kind = kind.clone();
                let schema = schema.clone();
                move |ctx| {
                    let (kind, schema) = (kind.clone(), schema.clone());
                    FieldFuture::new(async move { list(ctx, &kind, schema).await })
                }
            },
        );
        query_field = list_arguments(query_field, &schema, kind);
        for attr in schema.fields(kind, "attributes") {
            let name = s(&attr, "name");
            let (object, input, _) = attribute_types(&s(&attr, "kind"));
            let key = name.clone();
            node = node.field(Field::new(
                name.as_str(),
                TypeRef::named(object),
                move |ctx| {
                    let key = key.clone();
                    FieldFuture::new(async move {
                        let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                        let attr = n
                            .node
                            .attributes
                            .get(&key)
                            .cloned()
                            .unwrap_or_else(|| json!({"value": null, "is_default": false}));
                        Ok(Some(FieldValue::owned_any(attr)))
                    })
                },
            ));
            create = create.field(InputValue::new(name.as_str(), TypeRef::named(input)));
            upsert = upsert.field(InputValue::new(name.as_str(), TypeRef::named(input)));
            update = update.field(InputValue::new(name.as_str(), TypeRef::named(input)));
        }
        for rel in schema.fields(kind, "relationships") {
            let (name, peer) = (s(&rel, "name"), s(&rel, "peer"));
            if schema.element(&peer).is_none() {
                continue;
            }
            let many = s(&rel, "cardinality") != "one";
            let input = if many {
                TypeRef::named_list("RelatedNodeInput")
            } else {
                TypeRef::named("RelatedNodeInput")
            };
            create = create.field(InputValue::new(name.as_str(), input.clone()));
            upsert = upsert.field(InputValue::new(name.as_str(), input.clone()));
            update = update.field(InputValue::new(name.as_str(), input));
            let ty = if many {
                format!("NestedPaginated{peer}")
            } else {
                format!("NestedEdged{peer}")
            };
            let key = name.clone();
            node = node.field(Field::new(name.as_str(), TypeRef::named(ty), move |ctx| {
                let key = key.clone();
                FieldFuture::new(async move {
                    let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                    let services = domain(&ctx);
                    let mut peers = Vec::new();
                    for id in n.node.peers(&key) {
                        let found = data::get(services, &n.schema, &branch(&ctx), &id).await;
                        if let Some(p) = found.map_err(err)? {
                            peers.push(NodeValue {
                                node: p,
                                schema: n.schema.clone(),
                                created: false,
                            });
                        }
                    }
                    if many {
                        Ok(Some(FieldValue::owned_any(Page {
                            count: peers.len(),
                            nodes: peers,
                        })))
                    } else {
                        Ok(peers.into_iter().next().map(FieldValue::owned_any))
                    }
                })
            }));
        }
        for g in schema.nodes[kind]
            .get("inherit_from")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if schema.generics.contains_key(g) {
                node = node.implement(g);
            }
        }
        if schema.generics.contains_key(builtin::NODE) {
            node = node.implement(builtin::NODE);
        }
        builder_types.push(node.into());
        builder_types.push(create.into());
        builder_types.push(upsert.into());
        builder_types.push(update.into());
        // Edges and pages of this kind, as a list and as a peer.
        builder_types.push(
            Object::new(format!("Edged{kind}"))
                .field(Field::new("node", TypeRef::named(kind.as_str()), |ctx| {
                    FieldFuture::new(async move {
                        let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                        Ok(Some(FieldValue::borrowed_any(n)))
                    })
                }))
                .into(),
        );
        builder_types.push(
            Object::new(format!("NestedEdged{kind}"))
                .field(Field::new("node", TypeRef::named(kind.as_str()), |ctx| {
                    FieldFuture::new(async move {
                        let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                        Ok(Some(FieldValue::borrowed_any(n)))
                    })
                }))
                .into(),
        );
        for prefix in ["", "Nested"] {
            builder_types.push(page_type(
                format!("{prefix}Paginated{kind}"),
                format!("{prefix}Edged{kind}"),
            ));
        }
        query = query.field(query_field);
        roots.insert(kind.clone());

        for (op, input) in [
            ("Create", format!("{kind}CreateInput")),
            ("Update", format!("{kind}UpdateInput")),
            ("Upsert", format!("{kind}UpsertInput")),
            ("Delete", "DeleteInput".to_owned()),
        ] {
            let payload = format!("{kind}{op}");
            let mut o = Object::new(payload.as_str()).field(Field::new(
                "ok",
                TypeRef::named(TypeRef::BOOLEAN),
                |_| FieldFuture::new(async move { Ok(Some(FieldValue::value(true))) }),
            ));
            if op != "Delete" {
                o = o.field(Field::new("object", TypeRef::named(kind.as_str()), |ctx| {
                    FieldFuture::new(async move {
                        let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                        Ok(Some(FieldValue::borrowed_any(n)))
                    })
                }));
            }
            if op == "Upsert" {
                o = o.field(Field::new(
                    "created",
                    TypeRef::named(TypeRef::BOOLEAN),
                    |ctx| {
                        FieldFuture::new(async move {
                            let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                            Ok(Some(FieldValue::value(n.created)))
                        })
                    },
                ));
            }
            builder_types.push(o.into());
            let (target, schema, op_name) = (kind.clone(), schema.clone(), op);
            mutation = mutation.field(
                Field::new(
                    payload.as_str(),
                    TypeRef::named(payload.as_str()),
                    move |ctx| {
                        let (kind, schema) = (target.clone(), schema.clone());
                        FieldFuture::new(async move { mutate(ctx, op_name, &kind, schema).await })
                    },
                )
                .argument(InputValue::new("data", TypeRef::named_nn(input))),
            );
            roots.insert(payload);
        }
    }

    // Each generic with nodes: an interface its nodes implement, and a list of them all.
    for g in schema.generics.keys() {
        let mut interface = Interface::new(g.as_str())
            .field(InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID)))
            .field(InterfaceField::new(
                "hfid",
                TypeRef::named_list(TypeRef::STRING),
            ))
            .field(InterfaceField::new(
                "display_label",
                TypeRef::named(TypeRef::STRING),
            ));
        let field = Field::new(g.as_str(), TypeRef::named_nn(format!("Paginated{g}")), {
            let (kind, schema) = (g.clone(), schema.clone());
            move |ctx| {
                let (kind, schema) = (kind.clone(), schema.clone());
                FieldFuture::new(async move { list(ctx, &kind, schema).await })
            }
        });
        let field = list_arguments(field, &schema, g);
        for attr in schema.fields(g, "attributes") {
            let name = s(&attr, "name");
            let (object, _, _) = attribute_types(&s(&attr, "kind"));
            interface = interface.field(InterfaceField::new(name.as_str(), TypeRef::named(object)));
        }
        builder_types.push(interface.into());
        // Edges and pages of the generic, as a list and as a peer: each node as its kind.
        for prefix in ["", "Nested"] {
            builder_types.push(
                Object::new(format!("{prefix}Edged{g}"))
                    .field(Field::new("node", TypeRef::named(g.as_str()), |ctx| {
                        FieldFuture::new(async move {
                            let n = ctx.parent_value.try_downcast_ref::<NodeValue>()?;
                            Ok(Some(
                                FieldValue::borrowed_any(n).with_type(n.node.kind.clone()),
                            ))
                        })
                    }))
                    .into(),
            );
            builder_types.push(page_type(
                format!("{prefix}Paginated{g}"),
                format!("{prefix}Edged{g}"),
            ));
        }
        query = query.field(field);
        roots.insert(g.clone());
    }
    builder_types.push(
        InputObject::new("RelationshipNodesInput")
            .field(InputValue::new("id", TypeRef::named_nn(TypeRef::STRING)))
            .field(InputValue::new("name", TypeRef::named_nn(TypeRef::STRING)))
            .field(InputValue::new(
                "nodes",
                TypeRef::named_list("RelatedNodeInput"),
            ))
            .into(),
    );
    for op in ["RelationshipAdd", "RelationshipRemove"] {
        builder_types.push(
            Object::new(op)
                .field(Field::new("ok", TypeRef::named(TypeRef::BOOLEAN), |_| {
                    FieldFuture::new(async move { Ok(Some(FieldValue::value(true))) })
                }))
                .into(),
        );
        let schema = schema.clone();
        mutation = mutation.field(
            Field::new(op, TypeRef::named(op), move |ctx| {
                let schema = schema.clone();
                FieldFuture::new(async move { mutate(ctx, op, "", schema).await })
            })
            .argument(InputValue::new(
                "data",
                TypeRef::named_nn("RelationshipNodesInput"),
            )),
        );
        roots.insert(op.to_owned());
    }
    let limits = services.settings.clone();
    let mut builder = Schema::build("Query", Some("Mutation"), None)
        .register(query)
        .register(mutation)
        .data(services)
        .extension(crate::extension::TagRequestErrors)
        .limit_depth(limits.max_query_depth)
        .limit_complexity(limits.max_query_complexity)
        .limit_recursive_depth(limits.max_query_recursion);
    for t in builder_types {
        builder = builder.register(t);
    }
    Ok(DataSchema {
        schema: builder.finish()?,
        roots,
    })
}

/// The filters and paging of a list of `kind`'s nodes: `ids`, `hfid`, `<attribute>__value(s)`,
/// `any__value(s)` (any attribute), `<relationship>__ids` (any of these peers),
/// `partial_match` (substring match of text values), `offset`, `limit`.
fn list_arguments(mut field: Field, schema: &BranchSchema, kind: &str) -> Field {
    field = field
        .argument(InputValue::new("ids", TypeRef::named_list(TypeRef::ID)))
        .argument(InputValue::new(
            "hfid",
            TypeRef::named_list(TypeRef::STRING),
        ))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new(
            "partial_match",
            TypeRef::named(TypeRef::BOOLEAN),
        ))
        .argument(InputValue::new(
            "any__value",
            TypeRef::named(TypeRef::STRING),
        ))
        .argument(InputValue::new(
            "any__values",
            TypeRef::named_list(TypeRef::STRING),
        ));
    for attr in schema.fields(kind, "attributes") {
        let name = s(&attr, "name");
        field = field
            .argument(InputValue::new(
                format!("{name}__value"),
                TypeRef::named("GenericScalar"),
            ))
            .argument(InputValue::new(
                format!("{name}__values"),
                TypeRef::named_list("GenericScalar"),
            ));
    }
    for rel in schema.fields(kind, "relationships") {
        field = field.argument(InputValue::new(
            format!("{}__ids", s(&rel, "name")),
            TypeRef::named_list(TypeRef::ID),
        ));
    }
    field
}

/// One page of a list, with the total.
struct Page {
    count: usize,
    nodes: Vec<NodeValue>,
}

async fn list<'a>(
    ctx: ResolverContext<'a>,
    kind: &str,
    schema: Arc<BranchSchema>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let services = domain(&ctx);
    // A node kind's nodes; a generic's, those of every kind inheriting from it.
    let kinds = if schema.nodes.contains_key(kind) {
        vec![kind.to_owned()]
    } else {
        schema.used_by(kind)
    };
    let mut nodes = Vec::new();
    for k in kinds {
        nodes.extend(
            data::list(services, &schema, &branch(&ctx), &k)
                .await
                .map_err(err)?,
        );
    }
    let arg = |name: &str| {
        ctx.args
            .get(name)
            .and_then(|v| v.deserialize::<Value>().ok())
    };
    if let Some(Value::Array(ids)) = arg("ids") {
        nodes.retain(|n| ids.iter().any(|i| i.as_str() == Some(n.id.as_str())));
    }
    if let Some(Value::Array(hfid)) = arg("hfid") {
        let wanted: Vec<String> = hfid
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        nodes.retain(|n| n.hfid(&schema).as_ref() == Some(&wanted));
    }
    let partial = arg("partial_match")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    for attr in schema.fields(kind, "attributes") {
        let name = s(&attr, "name");
        if let Some(wanted) = arg(&format!("{name}__value")).filter(|v| !v.is_null()) {
            nodes.retain(|n| matches(&n.value(&name), &wanted, partial));
        }
        if let Some(Value::Array(wanted)) = arg(&format!("{name}__values")) {
            nodes.retain(|n| wanted.iter().any(|w| matches(&n.value(&name), w, partial)));
        }
    }
    // Any attribute: compared as text (a number or a boolean by its text too).
    let attributes: Vec<String> = schema
        .fields(kind, "attributes")
        .iter()
        .map(|a| s(a, "name"))
        .collect();
    let any = |n: &DataNode, w: &Value| {
        attributes.iter().any(|a| match n.value(a) {
            Value::Null => false,
            Value::String(v) => matches(&Value::String(v), w, partial),
            v => matches(&Value::String(v.to_string()), w, partial),
        })
    };
    if let Some(wanted) = arg("any__value").filter(|v| !v.is_null()) {
        nodes.retain(|n| any(n, &wanted));
    }
    if let Some(Value::Array(wanted)) = arg("any__values") {
        nodes.retain(|n| wanted.iter().any(|w| any(n, w)));
    }
    for rel in schema.fields(kind, "relationships") {
        let name = s(&rel, "name");
        if let Some(Value::Array(ids)) = arg(&format!("{name}__ids")) {
            nodes.retain(|n| {
                let peers = n.peers(&name);
                ids.iter()
                    .any(|i| i.as_str().is_some_and(|i| peers.iter().any(|p| p == i)))
            });
        }
    }
    let count = nodes.len();
    let offset = arg("offset").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let limit = arg("limit")
        .and_then(|v| v.as_u64())
        .map_or(usize::MAX, |l| l as usize);
    let nodes = nodes
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|node| NodeValue {
            node,
            schema: schema.clone(),
            created: false,
        })
        .collect();
    Ok(Some(FieldValue::owned_any(Page { count, nodes })))
}

fn matches(value: &Value, wanted: &Value, partial: bool) -> bool {
    match (value, wanted, partial) {
        (Value::String(v), Value::String(w), true) => v.contains(w.as_str()),
        _ => value == wanted,
    }
}

async fn mutate<'a>(
    ctx: ResolverContext<'a>,
    op: &str,
    kind: &str,
    schema: Arc<BranchSchema>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let services = domain(&ctx);
    let who = caller(&ctx);
    if !who.role.can_write() {
        return Err(err(infrastream_core::Error::new(
            infrastream_core::ErrorKind::Forbidden,
            "You do not have permission to change data (read-only access)",
        )));
    }
    let input: Value = ctx.args.try_get("data")?.deserialize()?;
    let input = input.as_object().cloned().unwrap_or_default();
    let branch = branch(&ctx);
    let at = data::At {
        services,
        caller: &who,
        branch: &branch,
        schema: &schema,
    };
    let (created, node) = match op {
        "Create" => data::create(&at, kind, &input).await.map(|n| (true, n)),
        "Update" => data::update(&at, kind, &input).await.map(|n| (false, n)),
        "Upsert" => data::upsert(&at, kind, &input).await,
        "RelationshipAdd" | "RelationshipRemove" => {
            let add = op == "RelationshipAdd";
            data::change_relationship(&at, &input, add)
                .await
                .map(|n| (false, n))
        }
        _ => data::delete(&at, kind, &input).await.map(|n| (false, n)),
    }
    .map_err(err)?;
    Ok(Some(FieldValue::owned_any(NodeValue {
        node,
        schema,
        created,
    })))
}

/// The root field names (queries and mutations) of the built-in schema.
async fn builtin_roots(schema: &crate::InfraSchema) -> BuiltinRoots {
    let response = schema
        .execute(
            async_graphql::Request::new(
                "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }",
            )
            .data(Caller::anonymous()),
        )
        .await;
    let data = response.data.into_json().unwrap_or(Value::Null);
    let mut roots = BTreeSet::new();
    for root in ["queryType", "mutationType"] {
        if let Some(Value::Array(fields)) = data["__schema"][root].get("fields") {
            roots.extend(
                fields
                    .iter()
                    .filter_map(|f| f["name"].as_str().map(str::to_owned)),
            );
        }
    }
    roots
}

/// `<name> {count, edges: [<edge>!]!}` over a [`Page`].
fn page_type(name: String, edge: String) -> async_graphql::dynamic::Type {
    Object::new(name)
        .field(Field::new(
            "count",
            TypeRef::named_nn(TypeRef::INT),
            |ctx| {
                FieldFuture::new(async move {
                    let page = ctx.parent_value.try_downcast_ref::<Page>()?;
                    Ok(Some(FieldValue::value(page.count as i64)))
                })
            },
        ))
        .field(Field::new(
            "edges",
            TypeRef::named_nn_list_nn(edge),
            |ctx| {
                FieldFuture::new(async move {
                    let page = ctx.parent_value.try_downcast_ref::<Page>()?;
                    Ok(Some(FieldValue::list(
                        page.nodes.iter().map(|n| FieldValue::borrowed_any(n)),
                    )))
                })
            },
        ))
        .into()
}
