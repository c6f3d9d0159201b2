//! What this instance shares with the others on one PostgreSQL database, besides the log the
//! store follows: locks (advisory locks), artifact content (the `objects` table) and credential
//! changes (`NOTIFY`). With the embedded store, everything stays in the process.

use infrastream_config::{Settings, StoreBackend};
use infrastream_services::cluster::{CredentialSignal, PostgresLocks};
use infrastream_services::{CredentialCache, InProcessLocks, Locks, ObjectStore};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Connections used for the objects table and credential announcements (the store has its
/// own pool; each lock its own connection).
const POOL_CONNECTIONS: u32 = 4;

/// The shared parts of the domain for the configured backend.
pub(crate) struct Shared {
    pub(crate) locks: Arc<dyn Locks>,
    pub(crate) objects: ObjectStore,
    /// The database credential changes are announced on, with PostgreSQL.
    pool: Option<sqlx::PgPool>,
}

impl Shared {
    /// Connects to what the instances share, per `settings.store`.
    pub(crate) async fn connect(settings: &Settings) -> Result<Self, String> {
        let url = match (&settings.store, &settings.database_url) {
            (StoreBackend::Postgres, Some(url)) => url,
            _ => {
                return Ok(Self {
                    locks: Arc::new(InProcessLocks::default()),
                    objects: ObjectStore::new(&settings.data_dir),
                    pool: None,
                });
            }
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .connect(url)
            .await
            .map_err(|e| format!("cannot connect to the database (setting database_url): {e}"))?;
        let objects = ObjectStore::postgres(pool.clone())
            .await
            .map_err(|e| format!("cannot prepare the objects table: {e}"))?;
        Ok(Self {
            locks: Arc::new(PostgresLocks::new(url.clone())),
            objects,
            pool: Some(pool),
        })
    }

    /// Starts announcing this instance's credential changes and applying the others', until
    /// `stop`; nothing to do without a shared database.
    pub(crate) async fn start_credential_signal(
        &self,
        cache: Arc<CredentialCache>,
        stop: CancellationToken,
    ) -> Result<(), String> {
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        CredentialSignal::start(pool.clone(), cache, stop)
            .await
            .map_err(|e| format!("cannot listen for credential changes: {e}"))
    }
}
