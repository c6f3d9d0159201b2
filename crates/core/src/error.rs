//! Errors shared by every layer. Each domain has its own error type (an enum whose variants
//! say what went wrong in its terms) implementing [`DomainError`]: every variant names a stable
//! [`Code`] from the registry in [`crate::codes`]. [`DomainError::user_error`] is the one
//! conversion to what a client sees ([`Error`]: code, HTTP status, message); the HTTP and
//! GraphQL layers only format that. Internal failures keep their source, are logged once with
//! a correlation id, and show the client only that id.

use crate::codes::{self, Code};

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or a value is invalid.
    InvalidInput,
    /// The named thing does not exist.
    NotFound,
    /// The thing already exists.
    AlreadyExists,
    /// The change conflicts with the current state (e.g. merging a merged branch).
    Conflict,
    /// No valid credentials.
    Unauthenticated,
    /// Valid credentials without the permission needed.
    Forbidden,
    /// A configured limit was exceeded.
    LimitExceeded,
    /// The server's storage is full: nothing was recorded; the operator must free space.
    StorageFull,
    /// A failure of the server itself; details are logged, never shown.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 9] = [
        Self::InvalidInput,
        Self::NotFound,
        Self::AlreadyExists,
        Self::Conflict,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::LimitExceeded,
        Self::StorageFull,
        Self::Internal,
    ];

    /// The general code of the kind (the registry may have more specific ones).
    pub fn general_code(self) -> &'static Code {
        match self {
            ErrorKind::InvalidInput => &codes::BAD_USER_INPUT,
            ErrorKind::NotFound => &codes::NOT_FOUND,
            ErrorKind::AlreadyExists => &codes::ALREADY_EXISTS,
            ErrorKind::Conflict => &codes::CONFLICT,
            ErrorKind::Unauthenticated => &codes::UNAUTHENTICATED,
            ErrorKind::Forbidden => &codes::FORBIDDEN,
            ErrorKind::LimitExceeded => &codes::LIMIT_EXCEEDED,
            ErrorKind::StorageFull => &codes::STORAGE_FULL,
            ErrorKind::Internal => &codes::INTERNAL_SERVER_ERROR,
        }
    }

    /// Name of [`ErrorKind::general_code`], as carried in `extensions.code`.
    pub fn code(self) -> &'static str {
        self.general_code().name
    }

    /// HTTP status that matches the kind, carried in `extensions.http_status`.
    pub const fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::LimitExceeded => 429,
            // 507 Insufficient Storage (RFC 4918): the server cannot store what the request
            // needs; retrying once space is freed succeeds.
            ErrorKind::StorageFull => 507,
            ErrorKind::Internal => 500,
        }
    }
}

/// A user-visible error: a code and a message that is safe to show to any client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// The registered code, carried in `extensions.code`.
    pub code: &'static str,
    /// Message for the client; never contains secrets, SQL or paths.
    pub message: String,
}

impl Error {
    /// Creates an error of `kind` (with its general code) with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::coded(kind.general_code(), message)
    }
    /// Creates an error with a registered `code`.
    pub fn coded(code: &'static Code, message: impl Into<String>) -> Self {
        Self {
            kind: code.kind,
            code: code.name,
            message: message.into(),
        }
    }
    /// HTTP status of the answer that carries this error: its registered code's (some codes
    /// name their own, e.g. `PAYLOAD_TOO_LARGE` is 413), else its kind's.
    pub fn http_status(&self) -> u16 {
        crate::codes::find(self.code).map_or(self.kind.http_status(), |c| c.http_status())
    }
    /// Invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// Something named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// Conflicts with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Internal failure; the message shown is generic. Prefer [`Error::internal_from`],
    /// which logs the cause with a correlation id.
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "Internal server error")
    }
    /// Internal failure caused by `source`: logged once (with its whole source chain) under a
    /// new correlation id, which is the only thing the client is shown.
    pub fn internal_from(source: &(dyn std::error::Error + 'static)) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..12];
        tracing::error!(correlation_id = id, error = %Chain(source), "internal error");
        Self::new(
            ErrorKind::Internal,
            format!("Internal server error (correlation id {id})"),
        )
    }
    /// The server's storage is full ([`crate::storage_full::MESSAGE`]).
    pub fn storage_full() -> Self {
        Self::new(ErrorKind::StorageFull, crate::storage_full::MESSAGE)
    }
    /// Branch lookup failure with Infrahub's exact wording.
    pub fn branch_not_found(name: &str) -> Self {
        Self::not_found(format!("Branch: {name} not found."))
    }
}

/// An error of one domain (branches, artifacts, repositories, …): each variant names its
/// registered code, and [`DomainError::user_error`] turns it into what the client sees.
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    /// The registered code of this variant.
    fn code(&self) -> &'static Code;

    /// What the client sees. Internal failures are logged here, once, with their source and
    /// a correlation id; everything else shows its own message.
    fn user_error(&self) -> Error
    where
        Self: Sized,
    {
        let code = self.code();
        if code.kind == ErrorKind::Internal {
            Error::internal_from(self)
        } else {
            Error::coded(code, self.to_string())
        }
    }
}

impl DomainError for Error {
    fn code(&self) -> &'static Code {
        codes::find(self.code).unwrap_or(self.kind.general_code())
    }
    fn user_error(&self) -> Error {
        self.clone()
    }
}

/// Displays an error and its sources: `outer: inner: root`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the object failed")]
    struct Broken(#[source] std::io::Error);

    impl DomainError for Broken {
        fn code(&self) -> &'static Code {
            &codes::INTERNAL_SERVER_ERROR
        }
    }

    #[test]
    fn internal_errors_show_a_correlation_id_and_not_their_cause() {
        let e = Broken(std::io::Error::other("/secret/path: disk full")).user_error();
        assert_eq!(e.code, "INTERNAL_SERVER_ERROR");
        assert_eq!(e.http_status(), 500);
        assert!(
            e.message
                .starts_with("Internal server error (correlation id ")
        );
        assert!(!e.message.contains("secret"), "{}", e.message);
    }

    #[test]
    fn chains_show_every_source() {
        let e = Broken(std::io::Error::other("disk full"));
        assert_eq!(
            Chain(&e).to_string(),
            "reading the object failed: disk full"
        );
    }

    #[test]
    fn coded_errors_keep_their_code_and_status() {
        let e = Error::coded(&codes::TOO_MANY_SUBSCRIPTIONS, "too many");
        assert_eq!((e.code, e.http_status()), ("TOO_MANY_SUBSCRIPTIONS", 429));
        assert_eq!(e.user_error(), e);
    }
}
