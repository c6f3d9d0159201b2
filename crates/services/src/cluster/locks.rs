//! [`Locks`] in PostgreSQL: a session-level advisory lock per key, on a connection of its
//! own, so holders on every instance sharing the database exclude each other.
//!
//! Each lock opens its own connection (not one of the store's pool): a waiter blocks in
//! `pg_advisory_lock` for as long as the holder works (a repository sync can take minutes), and
//! waiters must never starve the store of connections. The work behind these locks (artifact
//! generation, repository sync) costs far more than a connection. Releasing unlocks and closes
//! the connection; if the instance dies, PostgreSQL ends its sessions and their locks with them.
//! A key becomes two 32-bit halves of its SHA-256 (`pg_advisory_lock(int, int)`); two keys
//! that collide only serialize work that could have run together, never the reverse.

use crate::locks::{LockGuard, Locks};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::time::Duration;

/// Advisory locks in the database at `database_url`.
pub struct PostgresLocks {
    database_url: String,
}

impl PostgresLocks {
    /// Locks taken in the database at `database_url`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
        }
    }

    /// Connects (retrying with backoff while the database is unreachable) and waits for the
    /// lock of `key`.
    async fn acquire(&self, key: &str) -> PgConnection {
        let (a, b) = key_halves(key);
        let mut backoff = Duration::from_millis(100);
        let mut logged = false;
        loop {
            match self.try_acquire(a, b).await {
                Ok(conn) => return conn,
                Err(e) => {
                    if !logged {
                        tracing::warn!(key, error = %e, "cannot take a database lock; retrying");
                        logged = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn try_acquire(&self, a: i32, b: i32) -> Result<PgConnection, sqlx::Error> {
        let mut conn = PgConnection::connect(&self.database_url).await?;
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(a)
            .bind(b)
            .execute(&mut conn)
            .await?;
        Ok(conn)
    }
}

/// The two 32-bit halves of a key's SHA-256 prefix.
fn key_halves(key: &str) -> (i32, i32) {
    let d = Sha256::digest(key.as_bytes());
    (
        i32::from_be_bytes([d[0], d[1], d[2], d[3]]),
        i32::from_be_bytes([d[4], d[5], d[6], d[7]]),
    )
}

/// The connection holding one lock; dropping it releases the lock.
struct Held(Option<PgConnection>);

impl Drop for Held {
    fn drop(&mut self) {
        let Some(mut conn) = self.0.take() else {
            return;
        };
        // Unlocking needs the connection, which needs a runtime; without one (the process is
        // ending) dropping the connection ends the session, which releases its locks too.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            });
        }
    }
}

#[async_trait]
impl Locks for PostgresLocks {
    async fn lock(&self, key: &str) -> LockGuard {
        LockGuard::new(Held(Some(self.acquire(key).await)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keys_split_stably() {
        assert_eq!(key_halves("repository/1"), key_halves("repository/1"));
        assert_ne!(key_halves("repository/1"), key_halves("repository/2"));
    }

    #[tokio::test]
    async fn two_instances_exclude_each_other() {
        let Some(url) = infrastream_store::conformance::postgres::fresh_database_url("locks").await
        else {
            return;
        };
        // Two instances: two lock sets on one database.
        let a = Arc::new(PostgresLocks::new(url.clone()));
        let b = Arc::new(PostgresLocks::new(url));
        let held = a.lock("artifact/x").await;
        let other = b.lock("artifact/y").await;
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.lock("artifact/x").await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished(), "a second instance took a held lock");
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the lock is released when its guard drops")
            .unwrap();
        drop(again);
        drop(other);
    }
}
