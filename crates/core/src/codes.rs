//! The registry of error codes: every `extensions.code` a client can receive, with the HTTP
//! status it goes with and what it means. Domain errors name their code from here
//! ([`crate::error::DomainError::code`]), the HTTP and GraphQL layers write it as it is, and
//! `docs/errors.md` is generated from [`ALL`] (a test fails when it is stale).

use crate::error::ErrorKind;

/// One stable error code.
#[derive(Debug, PartialEq, Eq)]
pub struct Code {
    /// The code as clients see it in `extensions.code`.
    pub name: &'static str,
    /// The class of failure, which decides the HTTP status unless the code names its own.
    pub kind: ErrorKind,
    /// HTTP status of answers with this code.
    status: u16,
    /// What it means and what a client can do about it.
    pub doc: &'static str,
}

impl Code {
    /// HTTP status of answers with this code.
    pub fn http_status(&self) -> u16 {
        self.status
    }
}

macro_rules! codes {
    // `NAME = Kind;` answers with the kind's status, `NAME = Kind(413);` with its own.
    ($($(#[doc = $doc:literal])+ $ident:ident = $kind:ident $(($status:literal))?;)+) => {
        $(
            $(#[doc = $doc])+
            pub const $ident: Code = Code {
                name: stringify!($ident),
                kind: ErrorKind::$kind,
                status: {
                    #[allow(unused_variables)]
                    let status = ErrorKind::$kind.http_status();
                    $(let status = $status;)?
                    status
                },
                doc: concat!($($doc, "\n"),+),
            };
        )+
        /// Every code, in the order of `docs/errors.md`.
        pub const ALL: &[&Code] = &[$(&$ident),+];
    };
}

codes! {
    /// The request is malformed or a value is invalid; the message names the value and the
    /// rule. Fix the request.
    BAD_USER_INPUT = InvalidInput;
    /// The GraphQL document does not parse.
    GRAPHQL_PARSE_FAILED = InvalidInput;
    /// The GraphQL document parses but is not valid against the schema (unknown field, wrong
    /// argument type, missing variable, …).
    GRAPHQL_VALIDATION_FAILED = InvalidInput;
    /// The named thing (branch, node, account, token, saved query, artifact content) does not
    /// exist.
    NOT_FOUND = NotFound;
    /// An `events` subscription's cursor is older than the log's retention: the event named
    /// by `after` (or the events a replay was about to deliver) were pruned
    /// (`retention_max_age_secs`, `retention_max_events`), so the subscription cannot go on
    /// without a gap. Resubscribe without `after` (from now), or from an event still in the
    /// log (`InfrahubEvent` lists them); the message says where the log now starts.
    CURSOR_PRUNED = NotFound(410);
    /// Something with that id or name already exists.
    ALREADY_EXISTS = AlreadyExists;
    /// The change conflicts with the current state (merging a merged branch, changing a
    /// node's kind, an operation already running).
    CONFLICT = Conflict;
    /// No valid credentials: missing, unknown, revoked or expired.
    UNAUTHENTICATED = Unauthenticated;
    /// Valid credentials without the permission needed.
    FORBIDDEN = Forbidden;
    /// A configured limit was exceeded (rate, size, count); the message names the setting.
    LIMIT_EXCEEDED = LimitExceeded;
    /// The connection or account already has the most subscriptions its limits allow
    /// (`max_subscriptions_per_connection`, `max_subscriptions_per_account`).
    TOO_MANY_SUBSCRIPTIONS = LimitExceeded;
    /// The request body is larger than `max_body_bytes`.
    PAYLOAD_TOO_LARGE = LimitExceeded(413);
    /// The server's storage (its data directory's file system, or its database) is full:
    /// the change was not recorded, nothing of it was kept. The operator frees space; the
    /// same request then succeeds, with no restart. `/ready` answers 503 meanwhile.
    STORAGE_FULL = StorageFull;
    /// A failure of the server itself. The message carries a correlation id that is also in
    /// the server's log next to the cause; nothing else about the cause is shown.
    INTERNAL_SERVER_ERROR = Internal;
}

/// The code named `name`, if it is registered.
pub fn find(name: &str) -> Option<&'static Code> {
    ALL.iter().copied().find(|c| c.name == name)
}

/// The reference of every code as Markdown, the content of `docs/errors.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Error codes\n\n\
         <!-- Generated from crates/core/src/codes.rs; `cargo test -p infrastream-core` fails \
         when this file is stale, and rewrites it when run with INFRASTREAM_UPDATE_DOCS=1. -->\n\n\
         Every error answer, over HTTP or GraphQL (also inside WebSocket `error` and `next` \
         messages), carries `extensions.code` and `extensions.http_status`. The codes are \
         stable; messages may be reworded.\n\n\
         | code | HTTP status | meaning |\n|---|---|---|\n",
    );
    for c in ALL {
        let doc = c.doc.trim().replace('\n', " ");
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.name,
            c.http_status(),
            doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_documented_and_upper_snake_case() {
        let mut seen = HashSet::new();
        for c in ALL {
            assert!(seen.insert(c.name), "{} is registered twice", c.name);
            assert!(c.doc.trim().len() > 20, "{} has no documentation", c.name);
            assert!(
                c.name
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch == '_'),
                "{} is not UPPER_SNAKE_CASE",
                c.name
            );
        }
    }

    #[test]
    fn every_error_kind_names_a_registered_code_of_its_own_kind() {
        for kind in ErrorKind::ALL {
            let code = find(kind.code()).unwrap_or_else(|| panic!("{kind:?} has no code"));
            assert_eq!(code.kind, kind);
        }
    }

    #[test]
    fn docs_errors_md_is_generated_from_the_registry() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        let want = markdown();
        if std::env::var_os("INFRASTREAM_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).expect("write docs/errors.md");
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/errors.md is stale: run `INFRASTREAM_UPDATE_DOCS=1 cargo test -p infrastream-core` and commit it"
        );
    }
}
