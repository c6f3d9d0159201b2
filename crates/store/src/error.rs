use infrastream_core::codes::{self, Code};
use infrastream_core::{DomainError, Error};
use std::fmt;

/// A backend failure's cause, kept for logs (`std::error::Error::source` walks the chain).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change was refused for a reason the client can act on (conflict, not found, …).
    #[error(transparent)]
    Rejected(#[from] Error),
    /// The backend failed; the cause (and its own sources) are for logs only.
    #[error("storage backend failure: {0}")]
    Backend(#[source] BoxError),
    /// The database was written by a newer binary.
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    TooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

impl StoreError {
    /// A backend failure caused by `cause` (an error, or a message: `String` and `&str`
    /// convert too).
    pub fn backend(cause: impl Into<BoxError>) -> Self {
        StoreError::Backend(cause.into())
    }

    /// A backend failure while doing `context`, caused by `source`: shown as
    /// `context: source`, with `source` kept as the error's source.
    pub fn backend_context(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend(Box::new(Context {
            context: context.into(),
            source: source.into(),
        }))
    }
}

/// Rejections keep their own code; anything else is an internal failure (logged with its
/// source chain and a correlation id by [`DomainError::user_error`]).
impl DomainError for StoreError {
    fn code(&self) -> &'static Code {
        match self {
            StoreError::Rejected(e) => e.code(),
            _ => &codes::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What the backend was doing when `source` happened.
#[derive(Debug)]
struct Context {
    context: String,
    source: BoxError,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn backend_errors_keep_their_source() {
        let e = StoreError::from(sqlx::Error::RowNotFound);
        assert!(e.source().is_some_and(|s| s.is::<sqlx::Error>()));
        let shown = e.user_error();
        assert_eq!(shown.code, "INTERNAL_SERVER_ERROR");
        assert!(!shown.message.contains("no rows"), "{shown}");

        let io = std::io::Error::other("disk on fire");
        let e = StoreError::backend_context("reading the log head", io);
        assert_eq!(
            e.to_string(),
            "storage backend failure: reading the log head: disk on fire"
        );
        let context = e.source().unwrap();
        assert!(context.source().unwrap().is::<std::io::Error>());

        let e = StoreError::backend("store is closed");
        assert_eq!(e.to_string(), "storage backend failure: store is closed");
    }
}
