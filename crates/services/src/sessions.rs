//! Login sessions, as Infrahub 1.11 records them: a password login commits
//! `infrahub.account.logged_in`, a logout revokes the session (its refresh token, and here its
//! access tokens too) and commits `infrahub.account.logged_out` in the same commit. The events'
//! fields are Infrahub's (`AccountLoggedInEventType`, `AccountLoggedOutEventType`); they occur
//! on the default branch, are caused by the account, and have the account as primary node.
//! Only callers allowed to manage accounts see them (`EventFilter::hide_account_events`).

use crate::Services;
use infrastream_core::branch::DEFAULT_BRANCH;
use infrastream_core::codes::{self, Code};
use infrastream_core::error::DomainError;
use infrastream_core::{
    Account, EventName, NewEvent, RelatedNode, RevokedSession, Timestamp, format_timestamp, now,
};
use infrastream_store::{Change, Commit, StoreError};
use serde_json::{Value, json};

/// `auth_method` of a login with name and password (Infrahub's `AuthMethod.PASSWORD`).
pub const AUTH_METHOD_PASSWORD: &str = "password";
/// `account_type` of the accounts this server has (Infrahub's `AccountType.USER`).
pub const ACCOUNT_TYPE_USER: &str = "User";
/// `logout_type` of a logout the account asked for (Infrahub's only value so far).
pub const LOGOUT_USER_INITIATED: &str = "user_initiated";

/// What went wrong with a logout.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session was logged out meanwhile (two logouts raced).
    #[error("This session has already been logged out")]
    AlreadyLoggedOut,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DomainError for SessionError {
    fn code(&self) -> &'static Code {
        match self {
            SessionError::AlreadyLoggedOut => &codes::UNAUTHENTICATED,
            SessionError::Store(e) => e.code(),
        }
    }
}

/// Where a login or logout request came from, as recorded in its event.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The TCP peer's address.
    pub ip: Option<String>,
    /// The `User-Agent` header, as sent.
    pub user_agent: Option<String>,
}

/// The event of `name` about `account`'s session: on the default branch, caused by the account,
/// with the account as primary node and `data` as its fields.
fn session_event(name: &str, account: &Account, data: Value) -> NewEvent {
    NewEvent {
        branch: Some(DEFAULT_BRANCH.into()),
        account_id: Some(account.id.clone()),
        primary_node: Some(RelatedNode {
            id: account.id.clone(),
            kind: crate::accounts::KIND.into(),
        }),
        data,
        context: json!({"account_id": account.id, "branch": DEFAULT_BRANCH}),
        ..NewEvent::new(name)
    }
}

/// The fields of `infrahub.account.logged_in` (`AccountLoggedInEventType`). Accounts here
/// belong to no group; their one role is their role (`admin`, `read-write`, `read-only`); a
/// local account has no external `identity_source`.
pub fn logged_in_data(
    account: &Account,
    session_id: &str,
    client: &Client,
    at: Timestamp,
) -> Value {
    json!({
        "kind": crate::accounts::KIND,
        "account_id": account.id,
        "account_name": account.name,
        "account_type": ACCOUNT_TYPE_USER,
        "auth_method": AUTH_METHOD_PASSWORD,
        "session_id": session_id,
        "groups": [],
        "roles": [account.role.as_str()],
        "identity_source": null,
        "client_ip": client.ip,
        "user_agent": client.user_agent,
        "timestamp": format_timestamp(&at),
    })
}

/// The fields of `infrahub.account.logged_out` (`AccountLoggedOutEventType`).
pub fn logged_out_data(
    account: &Account,
    session_id: &str,
    client: &Client,
    at: Timestamp,
) -> Value {
    json!({
        "kind": crate::accounts::KIND,
        "account_id": account.id,
        "account_name": account.name,
        "session_id": session_id,
        "logout_type": LOGOUT_USER_INITIATED,
        "client_ip": client.ip,
        "user_agent": client.user_agent,
        "timestamp": format_timestamp(&at),
    })
}

/// Records that `account` logged in with its password and opened session `session_id`.
pub async fn record_login(
    s: &Services,
    account: &Account,
    session_id: &str,
    client: &Client,
) -> Result<(), StoreError> {
    let data = logged_in_data(account, session_id, client, now());
    let event = session_event(EventName::ACCOUNT_LOGGED_IN, account, data);
    s.store.commit(Commit::events(vec![event])).await?;
    Ok(())
}

/// Ends session `session_id` of `account`: from now on its refresh token and its access tokens
/// are refused. The revocation is kept for `refresh_token_lifetime_secs` (no token of the
/// session outlives it), expired revocations are pruned in the same commit, and
/// `infrahub.account.logged_out` is committed with it. Verified credentials are forgotten, so
/// sockets authenticated by the session are closed.
pub async fn logout(
    s: &Services,
    account: &Account,
    session_id: &str,
    client: &Client,
) -> Result<(), SessionError> {
    let at = now();
    let lifetime = chrono::Duration::seconds(s.settings.refresh_token_lifetime_secs as i64);
    let revoked = RevokedSession {
        session_id: session_id.to_owned(),
        account_id: account.id.clone(),
        expires_at: at + lifetime,
    };
    let data = logged_out_data(account, session_id, client, at);
    let commit = Commit {
        changes: vec![
            Change::PruneRevokedSessions { expired_before: at },
            Change::RevokeSession(revoked),
        ],
        events: vec![session_event(EventName::ACCOUNT_LOGGED_OUT, account, data)],
    };
    let result = s.store.commit(commit).await;
    s.credentials.clear();
    match result {
        Ok(_) => Ok(()),
        Err(StoreError::Rejected(e)) if e.kind == infrastream_core::ErrorKind::Conflict => {
            Err(SessionError::AlreadyLoggedOut)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether session `session_id` was logged out.
pub async fn is_logged_out(s: &Services, session_id: &str) -> Result<bool, StoreError> {
    Ok(s.store.revoked_session(session_id).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use infrastream_core::Role;

    #[test]
    fn login_and_logout_fields_are_infrahubs() {
        let account = Account {
            id: "a1".into(),
            name: "alice".into(),
            role: Role::ReadOnly,
            password_hash: "h".into(),
        };
        let client = Client {
            ip: Some("127.0.0.1".into()),
            user_agent: None,
        };
        let at = infrastream_core::parse_timestamp("2024-01-01T12:00:00Z").unwrap();
        let mut keys: Vec<String> = logged_in_data(&account, "s1", &client, at)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "account_id",
                "account_name",
                "account_type",
                "auth_method",
                "client_ip",
                "groups",
                "identity_source",
                "kind",
                "roles",
                "session_id",
                "timestamp",
                "user_agent"
            ]
        );
        let out = logged_out_data(&account, "s1", &client, at);
        assert_eq!(out["logout_type"], "user_initiated");
        assert_eq!(out["timestamp"], "2024-01-01T12:00:00.000000Z");
        let e = session_event(EventName::ACCOUNT_LOGGED_OUT, &account, out);
        assert_eq!(e.branch.as_deref(), Some("main"));
        assert_eq!(e.primary_node.unwrap().kind, "CoreAccount");
    }
}
