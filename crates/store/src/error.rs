use infrastream_core::Error;

/// Failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change was refused for a reason the client can act on (conflict, not found, …).
    #[error(transparent)]
    Rejected(#[from] Error),
    /// The backend failed; the text is for logs only.
    #[error("storage backend failure: {0}")]
    Backend(String),
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
        StoreError::Backend(e.to_string())
    }
}

impl StoreError {
    /// The user-visible error: rejections as they are, anything else as a generic internal error.
    pub fn to_user_error(&self) -> Error {
        match self {
            StoreError::Rejected(e) => e.clone(),
            _ => Error::internal(),
        }
    }
}
