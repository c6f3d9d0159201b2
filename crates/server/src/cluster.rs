//! What this instance shares with the others on one PostgreSQL database, besides what the store
//! itself carries (the log, accounts, credential changes): locks (advisory locks) and artifact
//! content (the `objects` table). With the embedded store, both stay in the process.

use infrastream_config::{Settings, StoreBackend};
use infrastream_services::cluster::PostgresLocks;
use infrastream_services::{InProcessLocks, Locks, ObjectStore};
use std::sync::Arc;

/// Connections used for the objects table (the store has its own pool; each lock its own
/// connection).
const POOL_CONNECTIONS: u32 = 4;

/// The shared parts of the domain for the configured backend.
pub(crate) struct Shared {
    pub(crate) locks: Arc<dyn Locks>,
    pub(crate) objects: ObjectStore,
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
                });
            }
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .connect(url)
            .await
            .map_err(|e| format!("cannot connect to the database (setting database_url): {e}"))?;
        let objects = ObjectStore::postgres(pool)
            .await
            .map_err(|e| format!("cannot prepare the objects table: {e}"))?;
        Ok(Self {
            locks: Arc::new(PostgresLocks::new(url.clone())),
            objects,
        })
    }
}
