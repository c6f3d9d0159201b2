//! Credential changes across instances. A change to accounts or tokens made through one
//! instance clears its own [`CredentialCache`] at once; with a shared database it also sends
//! `NOTIFY infrastream_credentials`, and every other instance, listening on that channel,
//! clears its cache too. Clearing wakes each instance's credential watcher, which verifies the
//! credentials of its live sockets again and closes those that no longer verify (4403) — within
//! milliseconds of the notification, and in any case within the cache's TTL
//! (`token_check_interval_ms`), after which no instance serves a stale verification.
//!
//! Notifications are only a wake-up: the store is the truth. When the listening connection is
//! lost (notifications may have been missed), the instance clears its cache once it is back,
//! as if every credential had changed.

use crate::CredentialCache;
use sqlx::postgres::{PgListener, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The channel credential changes are announced on.
const CHANNEL: &str = "infrastream_credentials";

/// Announces this instance's credential changes and applies the other instances'.
pub struct CredentialSignal;

impl CredentialSignal {
    /// Connects `cache` to the other instances on the database of `pool`: local changes are
    /// announced through `pool`, and a listener task (until `stop`) clears `cache` on every
    /// change announced by another instance.
    pub async fn start(
        pool: PgPool,
        cache: Arc<CredentialCache>,
        stop: CancellationToken,
    ) -> Result<(), sqlx::Error> {
        let instance = uuid::Uuid::now_v7().to_string();
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let me = instance.clone();
        cache.on_local_change(Box::new(move || {
            let pool = pool.clone();
            let me = me.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let sent = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(&me)
                        .execute(&pool)
                        .await;
                    if let Err(e) = sent {
                        // The others re-verify within their cache's TTL anyway.
                        tracing::warn!(error = %e, "cannot announce a credential change");
                    }
                });
            }
        }));
        tokio::spawn(listen(listener, instance, cache, stop));
        Ok(())
    }
}

async fn listen(
    mut listener: PgListener,
    me: String,
    cache: Arc<CredentialCache>,
    stop: CancellationToken,
) {
    let mut lost = false;
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.try_recv() => r,
        };
        match received {
            Ok(Some(n)) => {
                if lost {
                    lost = false;
                    tracing::info!("credential changes: listening again");
                    cache.clear_from_peer();
                }
                if n.payload() != me {
                    cache.clear_from_peer();
                }
            }
            // The connection was lost; the next `try_recv` reconnects and listens again.
            Ok(None) => {
                if !lost {
                    tracing::warn!(
                        "credential changes: lost the database connection; reconnecting"
                    );
                    lost = true;
                }
                cache.clear_from_peer();
            }
            Err(e) => {
                if !lost {
                    tracing::warn!(error = %e, "credential changes: cannot listen; retrying");
                    lost = true;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Caller;

    #[tokio::test]
    async fn a_change_on_one_instance_clears_the_others() {
        let Some(url) =
            infrastream_store::conformance::postgres::fresh_database_url("credential_signal").await
        else {
            return;
        };
        let stop = CancellationToken::new();
        let cache = |_| Arc::new(CredentialCache::new(Duration::from_secs(60), 100));
        let (a, b) = (cache(0), cache(1));
        for c in [&a, &b] {
            let pool = PgPool::connect(&url).await.unwrap();
            CredentialSignal::start(pool, c.clone(), stop.clone())
                .await
                .unwrap();
        }
        b.insert("token:x".into(), Caller::anonymous(), None);
        let mut b_changes = b.changes();
        a.clear();
        tokio::time::timeout(Duration::from_secs(1), b_changes.changed())
            .await
            .expect("instance b hears of a's change within 1 s")
            .unwrap();
        assert!(b.get("token:x").is_none(), "b forgot what it had verified");
        // An instance does not react to its own announcements twice.
        let before = *a.changes().borrow();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(*a.changes().borrow(), before);
        stop.cancel();
    }
}
