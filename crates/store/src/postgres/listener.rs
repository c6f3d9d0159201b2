//! The listener: one connection per instance that `LISTEN`s on the events channel and wakes
//! the follower when another instance committed. It only says "look": the follower reads the
//! positions itself, so a lost or coalesced notification costs a poll interval, no event.
//!
//! It also listens for other instances' changes to accounts, tokens and revoked sessions and
//! counts them (`Store::credential_changes`), so the server re-checks credentials at once.
//!
//! When its connection drops it reconnects with backoff (logged once per outage, and once
//! when it is back), and wakes the follower after every (re)connection to catch up on what was
//! committed while it was not listening; a reconnection also counts as a credential change
//! (one may have been missed).

use super::writer::{CHANNEL, CREDENTIALS_CHANNEL};
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// `application_name` of the listening connection (how operators and tests find it in
/// `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "infrastream-listener";

/// First and longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Whom the listener wakes.
pub(crate) struct Wakes {
    /// The follower, when another instance committed events.
    pub(crate) follower: Arc<Notify>,
    /// The follower's last published position.
    pub(crate) published: Arc<AtomicU64>,
    /// Counts other instances' credential changes.
    pub(crate) credentials: watch::Sender<u64>,
    /// This instance's id (its own credential notifications are ignored).
    pub(crate) instance: String,
}

/// Listens until the task is aborted (at close). `published` is the follower's last published
/// position: a notification of a head it already published (its own commits) is ignored. A
/// connection attempt gives up after `connect_timeout`.
pub(crate) async fn run(options: PgConnectOptions, connect_timeout: Duration, wakes: Wakes) {
    let Wakes {
        follower: wake,
        published,
        credentials,
        instance,
    } = wakes;
    // A pool of one, only to open (and reopen) the listening connection.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(connect_timeout)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options.application_name(APPLICATION_NAME));
    let mut backoff = BACKOFF_MIN;
    let mut outage: Option<Instant> = None;
    let mut connected_before = false;
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.ignore_pool_close_event(true);
            l.eager_reconnect(false);
            l.listen_all([CHANNEL, CREDENTIALS_CHANNEL]).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        let lost = match listener {
            Ok(mut listener) => {
                if let Some(since) = outage.take() {
                    tracing::info!(
                        after_ms = since.elapsed().as_millis() as u64,
                        "the store listener is connected again; catching up"
                    );
                }
                backoff = BACKOFF_MIN;
                // Whatever was committed while nobody listened.
                wake.notify_one();
                if connected_before {
                    credentials.send_modify(|n| *n += 1);
                }
                connected_before = true;
                let heard = Heard {
                    wake: &wake,
                    published: &published,
                    credentials: &credentials,
                    instance: &instance,
                };
                listen(&mut listener, heard).await
            }
            Err(e) => e,
        };
        if outage.is_none() {
            tracing::warn!(
                error = %lost,
                "the store listener lost its connection; reconnecting (events from other \
                 instances arrive by the fallback poll meanwhile)"
            );
            outage = Some(Instant::now());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// What a notification wakes.
struct Heard<'a> {
    wake: &'a Notify,
    published: &'a AtomicU64,
    credentials: &'a watch::Sender<u64>,
    instance: &'a str,
}

/// Wakes the follower for every notification of a position it has not published, and counts
/// other instances' credential changes, until the connection fails; returns why.
async fn listen(listener: &mut PgListener, heard: Heard<'_>) -> sqlx::Error {
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => {
                let mut events = None;
                let mut credentials = false;
                let mut note = |n: &PgNotification| {
                    if n.channel() == CREDENTIALS_CHANNEL {
                        credentials |= n.payload() != heard.instance;
                    } else {
                        let p = n.payload().parse::<u64>().unwrap_or(u64::MAX);
                        events = Some(events.map_or(p, |e: u64| e.max(p)));
                    }
                };
                note(&n);
                while let Some(n) = listener.next_buffered() {
                    note(&n);
                }
                if events.is_some_and(|p| p > heard.published.load(Ordering::Acquire)) {
                    heard.wake.notify_one();
                }
                if credentials {
                    heard.credentials.send_modify(|n| *n += 1);
                }
            }
            Ok(None) => {
                return sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the listening connection was closed",
                ));
            }
            Err(e) => return e,
        }
    }
}
