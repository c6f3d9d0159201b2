//! Accounts, roles and API tokens.

use crate::Timestamp;
use serde::{Deserialize, Serialize};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Queries and subscriptions only.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// Also mutations on branches, saved queries and events.
    #[serde(rename = "read-write")]
    ReadWrite,
    /// Everything, including accounts.
    #[serde(rename = "admin")]
    Admin,
}

impl Role {
    /// Spelling used in storage and in GraphQL (`admin`, `read-write`, `read-only`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::ReadWrite => "read-write",
            Role::Admin => "admin",
        }
    }

    /// Parses the spelling of [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "read-only" => Role::ReadOnly,
            "read-write" => Role::ReadWrite,
            "admin" => Role::Admin,
            _ => return None,
        })
    }

    /// Whether the role may change state (branches, queries, events).
    pub fn can_write(self) -> bool {
        self >= Role::ReadWrite
    }
}

/// A user or service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// UUID string.
    pub id: String,
    /// Unique login name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
}

/// An API token; the secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// UUID string.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Label given at creation.
    pub name: Option<String>,
    /// Hex SHA-256 of the secret.
    pub token_hash: String,
    /// After this instant the token is refused.
    pub expires_at: Option<Timestamp>,
    /// Revoked tokens are refused.
    pub revoked: bool,
}

/// A login session ended by `POST /api/auth/logout`: its refresh token (and every access token
/// of the session) is refused until `expires_at`, after which no token of the session can be
/// valid any more and the record may be pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    /// The session id carried by the session's JWTs (`session_id` claim).
    pub session_id: String,
    /// The account the session belonged to.
    pub account_id: String,
    /// When the record may be forgotten: no token of the session is valid after it.
    pub expires_at: Timestamp,
}
