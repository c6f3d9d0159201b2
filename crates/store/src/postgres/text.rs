//! PostgreSQL's `text` cannot hold the NUL character (U+0000): a commit carrying one in a
//! stored string is refused up front, as invalid input, before it joins a batch — so it
//! cannot fail the group commit of its neighbours. (JSON values are stored as their encoding,
//! where NUL is escaped as `\u0000`, so they may contain it.)

use crate::{Change, Commit, StoreError};
use infrastream_core::{Error, ErrorKind};

/// `Err` (invalid input, naming the field) when a stored string of `commit` contains NUL.
pub(crate) fn refuse_nul(commit: &Commit) -> Result<(), StoreError> {
    for change in &commit.changes {
        for (field, value) in change_texts(change) {
            check(field, value)?;
        }
    }
    for e in &commit.events {
        check("event name", &e.name)?;
        check("event branch", opt(&e.branch))?;
        check("event account id", opt(&e.account_id))?;
        for n in e.primary_node.iter().chain(&e.related_nodes) {
            check("node id", &n.id)?;
            check("node kind", &n.kind)?;
        }
    }
    Ok(())
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn check(field: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::Rejected(Error::new(
            ErrorKind::InvalidInput,
            format!("The {field} contains the NUL character (U+0000), which cannot be stored"),
        )));
    }
    Ok(())
}

/// The stored strings of a change, with what they are.
fn change_texts(change: &Change) -> Vec<(&'static str, &str)> {
    match change {
        Change::InsertBranch(b) | Change::UpdateBranch { branch: b, .. } => vec![
            ("branch id", &b.id),
            ("branch name", &b.name),
            ("branch description", opt(&b.description)),
            ("branch origin", &b.origin_branch),
        ],
        Change::DeleteBranch { name } => vec![("branch name", name)],
        Change::InsertSavedQuery(q) | Change::UpdateSavedQuery(q) => vec![
            ("query id", &q.id),
            ("query name", &q.name),
            ("query", &q.query),
            ("query description", opt(&q.description)),
        ],
        Change::DeleteSavedQuery { id } => vec![("query id", id)],
        Change::InsertAccount(a) | Change::UpdateAccount(a) => vec![
            ("account id", &a.id),
            ("account name", &a.name),
            ("password hash", &a.password_hash),
        ],
        Change::DeleteAccount { id } => vec![("account id", id)],
        Change::InsertToken(t) => vec![
            ("token id", &t.id),
            ("account id", &t.account_id),
            ("token name", opt(&t.name)),
            ("token hash", &t.token_hash),
        ],
        Change::RevokeToken { id, account_id } => {
            vec![("token id", id), ("account id", opt(account_id))]
        }
        Change::RevokeSession(r) => {
            vec![("session id", &r.session_id), ("account id", &r.account_id)]
        }
        Change::PruneRevokedSessions { .. } => vec![],
        Change::CreateNode(n) | Change::UpdateNode(n) | Change::PutNode(n) => vec![
            ("node id", &n.id),
            ("node kind", &n.kind),
            ("node name", &n.name),
        ],
        Change::DeleteNode { id } => vec![("node id", id)],
        Change::SetMeta { key, value, .. } => {
            vec![("metadata key", key), ("metadata value", value)]
        }
    }
}
