//! Applying one [`Change`] inside the batch's transaction; refusals name what was refused.

use super::super::rows::micros;
use super::{exists, rejected};
use crate::{Change, StoreError};
use infrastream_core::{Error, ErrorKind};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgQueryResult};

pub(super) async fn apply_change(
    conn: &mut PgConnection,
    change: &Change,
) -> Result<(), StoreError> {
    match change {
        Change::InsertBranch(b) => {
            if exists(
                &mut *conn,
                "SELECT 1 FROM branches WHERE name = $1",
                &b.name,
            )
            .await?
            {
                return Err(rejected(
                    ErrorKind::AlreadyExists,
                    format!("The branch {} already exists", b.name),
                ));
            }
            write_branch(conn, b, "INSERT INTO branches (id, name, description, origin_branch, branched_from, created_at, status, sync_with_git, is_default, has_schema_changes, graph_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)").await?;
        }
        Change::UpdateBranch {
            branch: b,
            expect_status,
        } => {
            let row = sqlx::query("SELECT status FROM branches WHERE id = $1")
                .bind(&b.id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::Rejected(Error::branch_not_found(&b.name)));
            };
            let status: String = row.try_get("status")?;
            if let Some(expected) = expect_status
                && status != expected.as_str()
            {
                return Err(rejected(
                    ErrorKind::Conflict,
                    format!(
                        "Branch {} is {status}, expected {}",
                        b.name,
                        expected.as_str()
                    ),
                ));
            }
            write_branch(conn, b, "UPDATE branches SET name = $2, description = $3, origin_branch = $4, branched_from = $5, created_at = $6, status = $7, sync_with_git = $8, is_default = $9, has_schema_changes = $10, graph_version = $11 WHERE id = $1").await?;
        }
        Change::DeleteBranch { name } => {
            let done = sqlx::query("DELETE FROM branches WHERE name = $1")
                .bind(name)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Rejected(Error::branch_not_found(name)));
            }
        }
        Change::InsertSavedQuery(q) | Change::UpdateSavedQuery(q) => {
            let taken = "SELECT 1 FROM saved_queries WHERE name = $1 AND id <> $2";
            name_free(conn, taken, &q.name, &q.id, "A GraphQL query").await?;
            let sql = if matches!(change, Change::InsertSavedQuery(_)) {
                "INSERT INTO saved_queries (id, name, query, description) VALUES ($1, $2, $3, $4)"
            } else {
                "UPDATE saved_queries SET name = $2, query = $3, description = $4 WHERE id = $1"
            };
            let done = sqlx::query(sql)
                .bind(&q.id)
                .bind(&q.name)
                .bind(&q.query)
                .bind(&q.description)
                .execute(&mut *conn)
                .await?;
            found(&done, "GraphQL query", &q.id)?;
        }
        Change::DeleteSavedQuery { id } => {
            delete_by_id(
                conn,
                "DELETE FROM saved_queries WHERE id = $1",
                id,
                "GraphQL query",
            )
            .await?;
        }
        Change::InsertAccount(a) | Change::UpdateAccount(a) => {
            let taken = "SELECT 1 FROM accounts WHERE name = $1 AND id <> $2";
            name_free(conn, taken, &a.name, &a.id, "An account").await?;
            let sql = if matches!(change, Change::InsertAccount(_)) {
                "INSERT INTO accounts (id, name, role, password_hash) VALUES ($1, $2, $3, $4)"
            } else {
                "UPDATE accounts SET name = $2, role = $3, password_hash = $4 WHERE id = $1"
            };
            let done = sqlx::query(sql)
                .bind(&a.id)
                .bind(&a.name)
                .bind(a.role.as_str())
                .bind(&a.password_hash)
                .execute(&mut *conn)
                .await?;
            found(&done, "Account", &a.id)?;
        }
        Change::DeleteAccount { id } => {
            delete_by_id(conn, "DELETE FROM accounts WHERE id = $1", id, "Account").await?;
            sqlx::query("UPDATE api_tokens SET revoked = TRUE WHERE account_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
        }
        Change::InsertToken(t) => {
            sqlx::query("INSERT INTO api_tokens (id, account_id, name, token_hash, expires_at, revoked) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&t.id)
                .bind(&t.account_id)
                .bind(&t.name)
                .bind(&t.token_hash)
                .bind(t.expires_at.as_ref().map(micros))
                .bind(t.revoked)
                .execute(&mut *conn)
                .await?;
        }
        Change::RevokeToken { id, account_id } => {
            let done = sqlx::query(
                "UPDATE api_tokens SET revoked = TRUE WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)",
            )
            .bind(id)
            .bind(account_id)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(rejected(
                    ErrorKind::NotFound,
                    format!("Token {id} not found"),
                ));
            }
        }
        Change::RevokeSession(r) => {
            let done = sqlx::query(
                "INSERT INTO revoked_sessions (session_id, account_id, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (session_id) DO NOTHING",
            )
            .bind(&r.session_id)
            .bind(&r.account_id)
            .bind(micros(&r.expires_at))
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(rejected(
                    ErrorKind::Conflict,
                    format!("Session {} is already logged out", r.session_id),
                ));
            }
        }
        Change::PruneRevokedSessions { expired_before } => {
            sqlx::query("DELETE FROM revoked_sessions WHERE expires_at < $1")
                .bind(micros(expired_before))
                .execute(&mut *conn)
                .await?;
        }
        Change::CreateNode(n) | Change::UpdateNode(n) | Change::PutNode(n) => {
            // Inside the writer's transaction: nothing can change between check and write.
            let stored: Option<String> = sqlx::query_scalar("SELECT kind FROM nodes WHERE id = $1")
                .bind(&n.id)
                .fetch_optional(&mut *conn)
                .await?;
            match (change, stored) {
                (Change::CreateNode(_), Some(_)) => {
                    return Err(rejected(
                        ErrorKind::AlreadyExists,
                        format!("A node with id {} already exists", n.id),
                    ));
                }
                (Change::UpdateNode(_), None) => {
                    return Err(rejected(
                        ErrorKind::NotFound,
                        format!("Node {} not found", n.id),
                    ));
                }
                (_, Some(kind)) if kind != n.kind => {
                    return Err(rejected(
                        ErrorKind::Conflict,
                        format!(
                            "Node {} is a {kind}; it cannot become a {} (a node's kind never changes)",
                            n.id, n.kind
                        ),
                    ));
                }
                _ => {}
            }
            let taken =
                sqlx::query("SELECT 1 FROM nodes WHERE kind = $1 AND name = $2 AND id <> $3")
                    .bind(&n.kind)
                    .bind(&n.name)
                    .bind(&n.id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if taken.is_some() {
                return Err(rejected(
                    ErrorKind::AlreadyExists,
                    format!("A {} named {} already exists", n.kind, n.name),
                ));
            }
            sqlx::query(
                "INSERT INTO nodes (id, kind, name, data) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, data = excluded.data",
            )
            .bind(&n.id)
            .bind(&n.kind)
            .bind(&n.name)
            .bind(n.data.to_string())
            .execute(&mut *conn)
            .await?;
        }
        Change::DeleteNode { id } => {
            delete_by_id(conn, "DELETE FROM nodes WHERE id = $1", id, "Node").await?;
        }
        Change::SetMeta {
            key,
            value,
            only_if_absent,
        } => {
            let sql = if *only_if_absent {
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
            } else {
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            };
            sqlx::query(sql)
                .bind(key)
                .bind(value)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn delete_by_id(
    conn: &mut PgConnection,
    sql: &'static str,
    id: &str,
    what: &str,
) -> Result<(), StoreError> {
    let done = sqlx::query(sql).bind(id).execute(&mut *conn).await?;
    found(&done, what, id)
}

/// `{what} {id} not found` when a write by id touched no row.
fn found(done: &PgQueryResult, what: &str, id: &str) -> Result<(), StoreError> {
    if done.rows_affected() == 0 {
        return Err(rejected(
            ErrorKind::NotFound,
            format!("{what} {id} not found"),
        ));
    }
    Ok(())
}

/// Refuses `name` for row `id` when another row has it: `taken` selects such a row by name
/// and id; `what` names the kind of row with its article (`An account`).
async fn name_free(
    conn: &mut PgConnection,
    taken: &'static str,
    name: &str,
    id: &str,
    what: &str,
) -> Result<(), StoreError> {
    let row = sqlx::query(taken)
        .bind(name)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if row.is_some() {
        return Err(rejected(
            ErrorKind::AlreadyExists,
            format!("{what} named {name} already exists"),
        ));
    }
    Ok(())
}

async fn write_branch(
    conn: &mut PgConnection,
    b: &infrastream_core::Branch,
    sql: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(&b.id)
        .bind(&b.name)
        .bind(&b.description)
        .bind(&b.origin_branch)
        .bind(micros(&b.branched_from))
        .bind(micros(&b.created_at))
        .bind(b.status.as_str())
        .bind(b.sync_with_git)
        .bind(b.is_default)
        .bind(b.has_schema_changes)
        .bind(b.graph_version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
