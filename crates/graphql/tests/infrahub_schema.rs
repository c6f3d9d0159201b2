//! The server's GraphQL declarations against Infrahub's.
//!
//! `infrahub_schema/shared.graphql` holds, verbatim from Infrahub's published schema, every
//! declaration infrastream shares with Infrahub; `infrahub_schema/extensions.graphql` declares
//! everything infrastream adds. Together they must describe the served schema exactly: every
//! shared declaration is served identically (kind, type with its nullability and list shape,
//! default values, deprecations, enum values, interfaces, argument lists), every extension is
//! served as declared, and nothing else is served. Each mismatch is reported, all at once.
//!
//! Run with `cargo test -p infrastream-graphql --test infrahub_schema`.

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    ConstDirective, FieldDefinition, InputValueDefinition, TypeDefinition, TypeKind,
    TypeSystemDefinition,
};
use std::collections::BTreeMap;

const SHARED: &str = include_str!("infrahub_schema/shared.graphql");
const EXTENSIONS: &str = include_str!("infrahub_schema/extensions.graphql");
const KNOWN: &str = include_str!("infrahub_schema/known_differences.txt");

/// Types every GraphQL schema has; they are not declarations of either side.
const BUILT_IN: &[&str] = &["String", "Int", "Float", "Boolean", "ID"];

/// Which file a declaration comes from, to say where an expectation was written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    Shared,
    Extension,
    Server,
}

impl Origin {
    fn file(self) -> &'static str {
        match self {
            Origin::Shared => "shared.graphql (Infrahub)",
            Origin::Extension => "extensions.graphql",
            Origin::Server => "the server",
        }
    }
}

/// A field, argument, input field or enum value, reduced to what must match.
#[derive(Clone, Debug)]
struct Member {
    origin: Origin,
    /// `[String!]!`-style type; empty for enum values.
    ty: String,
    /// Default value in GraphQL syntax, if any.
    default: Option<String>,
    /// `Some(reason)` when deprecated (`""` without a reason).
    deprecated: Option<String>,
    /// Arguments of a field.
    args: BTreeMap<String, Member>,
}

/// A type, reduced to what must match.
#[derive(Clone, Debug)]
struct Type {
    origin: Origin,
    /// `extend type …` in the extensions file: adds to a shared type.
    extend: bool,
    kind: &'static str,
    implements: BTreeMap<String, Origin>,
    /// Union members.
    members: BTreeMap<String, Origin>,
    /// Fields, input fields or enum values.
    fields: BTreeMap<String, Member>,
}

fn deprecation(directives: &[async_graphql::Positioned<ConstDirective>]) -> Option<String> {
    directives
        .iter()
        .find(|d| d.node.name.node.as_str() == "deprecated")
        .map(|d| {
            d.node
                .get_argument("reason")
                .map(|r| match &r.node {
                    async_graphql::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        })
}

fn input_value(v: &InputValueDefinition, origin: Origin) -> Member {
    Member {
        origin,
        ty: v.ty.node.to_string(),
        default: v.default_value.as_ref().map(|d| d.node.to_string()),
        deprecated: deprecation(&v.directives),
        args: BTreeMap::new(),
    }
}

fn field(f: &FieldDefinition, origin: Origin) -> Member {
    Member {
        origin,
        ty: f.ty.node.to_string(),
        default: None,
        deprecated: deprecation(&f.directives),
        args: f
            .arguments
            .iter()
            .map(|a| (a.node.name.node.to_string(), input_value(&a.node, origin)))
            .collect(),
    }
}

fn names(
    list: &[async_graphql::Positioned<async_graphql::Name>],
    o: Origin,
) -> BTreeMap<String, Origin> {
    list.iter().map(|n| (n.node.to_string(), o)).collect()
}

fn type_of(t: &TypeDefinition, origin: Origin) -> Type {
    let mut out = Type {
        origin,
        extend: t.extend,
        kind: "",
        implements: BTreeMap::new(),
        members: BTreeMap::new(),
        fields: BTreeMap::new(),
    };
    match &t.kind {
        TypeKind::Scalar => out.kind = "scalar",
        TypeKind::Object(o) => {
            out.kind = "type";
            out.implements = names(&o.implements, origin);
            out.fields = o
                .fields
                .iter()
                .map(|f| (f.node.name.node.to_string(), field(&f.node, origin)))
                .collect();
        }
        TypeKind::Interface(i) => {
            out.kind = "interface";
            out.implements = names(&i.implements, origin);
            out.fields = i
                .fields
                .iter()
                .map(|f| (f.node.name.node.to_string(), field(&f.node, origin)))
                .collect();
        }
        TypeKind::Union(u) => {
            out.kind = "union";
            out.members = names(&u.members, origin);
        }
        TypeKind::Enum(e) => {
            out.kind = "enum";
            out.fields = e
                .values
                .iter()
                .map(|v| {
                    let m = Member {
                        origin,
                        ty: String::new(),
                        default: None,
                        deprecated: deprecation(&v.node.directives),
                        args: BTreeMap::new(),
                    };
                    (v.node.value.node.to_string(), m)
                })
                .collect();
        }
        TypeKind::InputObject(i) => {
            out.kind = "input";
            out.fields = i
                .fields
                .iter()
                .map(|f| (f.node.name.node.to_string(), input_value(&f.node, origin)))
                .collect();
        }
    }
    out
}

/// Every type definition of an SDL document, by name; a name defined twice is a difference.
fn load(sdl: &str, origin: Origin, diffs: &mut Vec<String>) -> BTreeMap<String, Type> {
    let doc = match parse_schema(sdl) {
        Ok(d) => d,
        Err(e) => {
            diffs.push(format!("{} does not parse: {e}", origin.file()));
            return BTreeMap::new();
        }
    };
    let mut types = BTreeMap::new();
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            let name = t.node.name.node.to_string();
            let ty = type_of(&t.node, origin);
            match types.get_mut(&name) {
                None => {
                    types.insert(name, ty);
                }
                // Several `extend` blocks of one type (grouped by topic) add up.
                Some(previous) if previous.extend && ty.extend => {
                    add_all(&name, previous, ty, diffs);
                }
                Some(_) => diffs.push(format!("{name}: declared twice in {}", origin.file())),
            }
        }
    }
    types
}

/// Adds the members of a second `extend` block of `name` to the first.
fn add_all(name: &str, into: &mut Type, more: Type, diffs: &mut Vec<String>) {
    into.implements.extend(more.implements);
    into.members.extend(more.members);
    for (f, m) in more.fields {
        if into.fields.insert(f.clone(), m).is_some() {
            diffs.push(format!(
                "{name}.{f}: declared twice in {}",
                more.origin.file()
            ));
        }
    }
}

fn describe(m: &Member) -> String {
    let mut s = m.ty.clone();
    if let Some(d) = &m.default {
        s.push_str(&format!(" = {d}"));
    }
    if let Some(r) = &m.deprecated {
        s.push_str(&format!(" @deprecated(reason: {r:?})"));
    }
    s
}

/// Compares one member (field, argument, input field or enum value) with the server's.
fn compare_member(path: &str, expected: &Member, actual: &Member, diffs: &mut Vec<String>) {
    if expected.ty != actual.ty
        || expected.default != actual.default
        || expected.deprecated != actual.deprecated
    {
        diffs.push(format!(
            "{path}: {} declares `{}`, the server has `{}`",
            expected.origin.file(),
            describe(expected),
            describe(actual)
        ));
    }
    compare_set(
        |arg| format!("{path}({arg})"),
        "argument",
        &expected.args,
        &actual.args,
        diffs,
        compare_member,
    );
}

/// Compares named members both ways: missing on the server, or served but declared nowhere.
fn compare_set<T>(
    path_of: impl Fn(&str) -> String,
    what: &str,
    expected: &BTreeMap<String, T>,
    actual: &BTreeMap<String, T>,
    diffs: &mut Vec<String>,
    each: impl Fn(&str, &T, &T, &mut Vec<String>),
) where
    T: HasOrigin,
{
    for (name, e) in expected {
        let path = path_of(name);
        match actual.get(name) {
            Some(a) => each(&path, e, a, diffs),
            None => diffs.push(format!(
                "{path}: {what} declared in {} is missing from the server",
                e.origin().file()
            )),
        }
    }
    for name in actual.keys().filter(|n| !expected.contains_key(*n)) {
        diffs.push(format!(
            "{}: {what} served but declared in neither shared.graphql nor extensions.graphql",
            path_of(name)
        ));
    }
}

trait HasOrigin {
    fn origin(&self) -> Origin;
}

impl HasOrigin for Member {
    fn origin(&self) -> Origin {
        self.origin
    }
}

impl HasOrigin for Origin {
    fn origin(&self) -> Origin {
        *self
    }
}

fn compare_type(name: &str, expected: &Type, actual: &Type, diffs: &mut Vec<String>) {
    if expected.kind != actual.kind {
        diffs.push(format!(
            "{name}: {} declares a {}, the server has a {}",
            expected.origin.file(),
            expected.kind,
            actual.kind
        ));
        return;
    }
    let no = |_: &str, _: &Origin, _: &Origin, _: &mut Vec<String>| {};
    compare_set(
        |i| format!("{name} implements {i}"),
        "interface",
        &expected.implements,
        &actual.implements,
        diffs,
        no,
    );
    compare_set(
        |m| format!("{name} = {m}"),
        "union member",
        &expected.members,
        &actual.members,
        diffs,
        no,
    );
    let what = match expected.kind {
        "enum" => "enum value",
        "input" => "input field",
        _ => "field",
    };
    compare_set(
        |f| format!("{name}.{f}"),
        what,
        &expected.fields,
        &actual.fields,
        diffs,
        compare_member,
    );
}

/// Adds the declarations of `extension` (an `extend …` of a shared type) to `shared`. A field
/// named in both gains the extension's arguments; its type must be written the same.
fn merge(name: &str, shared: &mut Type, extension: &Type, diffs: &mut Vec<String>) {
    if shared.kind != extension.kind {
        diffs.push(format!(
            "{name}: extensions.graphql extends it as a {}, shared.graphql declares a {}",
            extension.kind, shared.kind
        ));
        return;
    }
    for (i, o) in &extension.implements {
        shared.implements.insert(i.clone(), *o);
    }
    for (m, o) in &extension.members {
        shared.members.insert(m.clone(), *o);
    }
    for (f, ext) in &extension.fields {
        match shared.fields.get_mut(f) {
            None => {
                shared.fields.insert(f.clone(), ext.clone());
            }
            Some(existing) => {
                if existing.ty != ext.ty {
                    diffs.push(format!(
                        "{name}.{f}: extensions.graphql adds arguments but writes the type `{}`, shared.graphql `{}`",
                        ext.ty, existing.ty
                    ));
                }
                if ext.args.is_empty() {
                    diffs.push(format!(
                        "{name}.{f}: declared in both files without adding an argument"
                    ));
                }
                for (a, arg) in &ext.args {
                    if existing.args.insert(a.clone(), arg.clone()).is_some() {
                        diffs.push(format!(
                            "{name}.{f}({a}): declared in both shared.graphql and extensions.graphql"
                        ));
                    }
                }
            }
        }
    }
}

/// Every difference between the served schema and the two declaration files.
fn differences(server_sdl: &str, shared_sdl: &str, extensions_sdl: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    let server = load(server_sdl, Origin::Server, &mut diffs);
    let mut expected = load(shared_sdl, Origin::Shared, &mut diffs);
    for (name, _) in expected.iter().filter(|(_, t)| t.extend) {
        diffs.push(format!(
            "{name}: shared.graphql copies Infrahub and never uses `extend`"
        ));
    }
    for (name, ext) in load(extensions_sdl, Origin::Extension, &mut diffs) {
        match (expected.get_mut(&name), ext.extend) {
            (Some(shared), true) => merge(&name, shared, &ext, &mut diffs),
            (Some(_), false) => diffs.push(format!(
                "{name}: declared in both shared.graphql and extensions.graphql (use `extend` to add to a shared type)"
            )),
            (None, true) => diffs.push(format!(
                "{name}: extensions.graphql extends a type that shared.graphql does not declare"
            )),
            (None, false) => {
                expected.insert(name, ext);
            }
        }
    }
    for (name, e) in &expected {
        match server.get(name) {
            Some(a) => compare_type(name, e, a, &mut diffs),
            None => diffs.push(format!(
                "{name}: {} declared in {} is missing from the server",
                e.kind,
                e.origin.file()
            )),
        }
    }
    for (name, a) in &server {
        if !expected.contains_key(name)
            && !BUILT_IN.contains(&name.as_str())
            && !name.starts_with("__")
        {
            diffs.push(format!(
                "{name}: {} served but declared in neither shared.graphql nor extensions.graphql",
                a.kind
            ));
        }
    }
    diffs
}

/// The differences `known_differences.txt` lists: each line, comments and blanks aside.
fn known_differences() -> Vec<&'static str> {
    KNOWN
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_server_serves_infrahubs_declarations_and_the_listed_extensions_only() {
    let known = known_differences();
    let (tolerated, unexpected): (Vec<String>, Vec<String>) =
        differences(&infrastream_graphql::schema_sdl(), SHARED, EXTENSIONS)
            .into_iter()
            .partition(|d| known.contains(&d.as_str()));
    // A fixed difference must leave the list, so that it cannot come back unnoticed.
    let stale: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| !tolerated.iter().any(|d| d == k))
        .collect();
    for d in &tolerated {
        eprintln!("known difference (see known_differences.txt): {d}");
    }
    let mut report = String::new();
    if !unexpected.is_empty() {
        report += &format!(
            "{} difference(s) between the server's schema and crates/graphql/tests/infrahub_schema/:\n  - {}\n",
            unexpected.len(),
            unexpected.join("\n  - ")
        );
    }
    if !stale.is_empty() {
        report += &format!(
            "{} line(s) of known_differences.txt no longer occur (remove them):\n  - {}\n",
            stale.len(),
            stale.join("\n  - ")
        );
    }
    assert!(report.is_empty(), "{report}");
}

/// The comparison itself: it must see every kind of difference, and all of them at once.
#[test]
fn every_kind_of_difference_is_reported() {
    let shared = r#"
        type Query { a(x: Int = 1, y: String): [String!]! b: Int c: Int @deprecated(reason: "old") }
        enum E { ONE TWO }
        input I { f: String = null g: Boolean! }
        interface N { id: String }
        type T implements N { id: String! }
    "#;
    let extensions = r#"
        extend type Query { a(z: Int): [String!]! extra: Int }
        extend enum E { THREE }
        type Ours { ok: Boolean }
    "#;
    // As declared: nothing to report.
    let served = r#"
        type Query { a(x: Int = 1, y: String, z: Int): [String!]! b: Int c: Int @deprecated(reason: "old") extra: Int ours: Ours }
        enum E { ONE TWO THREE }
        input I { f: String = null g: Boolean! }
        interface N { id: String }
        type T implements N { id: String! }
        type Ours { ok: Boolean }
    "#;
    let mut shared_with_ours = shared.to_string();
    shared_with_ours = shared_with_ours.replace("b: Int c", "b: Int ours: Ours c");
    assert_eq!(
        differences(served, &shared_with_ours, extensions),
        Vec::<String>::new()
    );

    let broken = r#"
        type Query { a(x: Int = 2, y: String!, w: Int): [String] b: Int! c: Int extra: String ours: Ours }
        enum E { ONE THREE FOUR }
        input I { f: String g: Boolean h: Int }
        interface N { id: String }
        type T { id: String! }
        type Ours { ok: Boolean }
        type Stray { x: Int }
    "#;
    let diffs = differences(broken, &shared_with_ours, extensions);
    let expect = [
        "Query.a: shared.graphql (Infrahub) declares `[String!]!`, the server has `[String]`",
        "Query.a(x): shared.graphql (Infrahub) declares `Int = 1`, the server has `Int = 2`",
        "Query.a(y): shared.graphql (Infrahub) declares `String`, the server has `String!`",
        "Query.a(z): argument declared in extensions.graphql is missing from the server",
        "Query.a(w): argument served but declared in neither shared.graphql nor extensions.graphql",
        "Query.b: shared.graphql (Infrahub) declares `Int`, the server has `Int!`",
        "Query.c: shared.graphql (Infrahub) declares `Int @deprecated(reason: \"old\")`, the server has `Int`",
        "Query.extra: extensions.graphql declares `Int`, the server has `String`",
        "E.TWO: enum value declared in shared.graphql (Infrahub) is missing from the server",
        "E.FOUR: enum value served but declared in neither shared.graphql nor extensions.graphql",
        "I.f: shared.graphql (Infrahub) declares `String = null`, the server has `String`",
        "I.g: shared.graphql (Infrahub) declares `Boolean!`, the server has `Boolean`",
        "I.h: input field served but declared in neither shared.graphql nor extensions.graphql",
        "T implements N: interface declared in shared.graphql (Infrahub) is missing from the server",
        "Stray: type served but declared in neither shared.graphql nor extensions.graphql",
    ];
    for e in expect {
        assert!(
            diffs.iter().any(|d| d == e),
            "not reported: {e}\nreported:\n  {}",
            diffs.join("\n  ")
        );
    }
    assert_eq!(diffs.len(), expect.len(), "{diffs:#?}");
}
