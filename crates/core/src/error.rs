//! Error kinds shared by every layer: each has a stable machine code and an HTTP status.

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
    /// A failure of the server itself; details are logged, never shown.
    Internal,
}

impl ErrorKind {
    /// Stable code carried in `extensions.code`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "BAD_USER_INPUT",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::Forbidden => "FORBIDDEN",
            ErrorKind::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorKind::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    /// HTTP status that matches the kind, carried in `extensions.http_status`.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidInput => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::LimitExceeded => 429,
            ErrorKind::Internal => 500,
        }
    }
}

/// A user-visible error: a kind and a message that is safe to show to any client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// Message for the client; never contains secrets, SQL or paths.
    pub message: String,
}

impl Error {
    /// Creates an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
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
    /// Internal failure; the message shown is generic.
    pub fn internal() -> Self {
        Self::new(ErrorKind::Internal, "Internal server error")
    }
    /// Branch lookup failure with Infrahub's exact wording.
    pub fn branch_not_found(name: &str) -> Self {
        Self::not_found(format!("Branch: {name} not found."))
    }
}
