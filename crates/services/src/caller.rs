//! Who is acting: the caller of a request (its account and role) and the actor recorded on the
//! events a change commits.

use infrastream_core::{Account, Role};
use serde_json::Value;

/// Who is making the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The account, `None` for an anonymous session.
    pub account: Option<Account>,
    /// What the caller may do.
    pub role: Role,
}

impl Caller {
    /// An anonymous, read-only caller.
    pub fn anonymous() -> Self {
        Self {
            account: None,
            role: Role::ReadOnly,
        }
    }

    /// Id of the calling account.
    pub fn account_id(&self) -> Option<String> {
        self.account.as_ref().map(|a| a.id.clone())
    }

    /// Whether the caller may manage accounts (create, change and delete them, and see
    /// account events): the admin role.
    pub fn may_manage_accounts(&self) -> bool {
        self.role == Role::Admin
    }

    /// The actor of a change this caller makes on `branch`.
    pub fn actor(&self, branch: &str) -> Actor {
        Actor {
            account_id: self.account_id(),
            context: serde_json::json!({"account_id": self.account_id(), "branch": branch}),
        }
    }
}

/// What the events of a change record about who made it: the account and the request's
/// context (`{"account_id", "branch"}`).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The account that made the change, if any.
    pub account_id: Option<String>,
    /// JSON context stored with every event of the change.
    pub context: Value,
}
