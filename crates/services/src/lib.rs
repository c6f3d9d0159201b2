//! The domain layer of infrastream: what branches, accounts and tokens, saved queries,
//! artifacts and repositories *do* — their rules, the events they commit, the locks they take —
//! over the store and the bus; password login and its throttling; the pool every password hash
//! runs on. No GraphQL and no HTTP live here: the `graphql` crate's
//! resolvers and the `server` crate's REST handlers parse a request, call a service, and shape
//! its answer.
//!
//! What a service needs from outside the domain comes in through a trait: [`QueryRunner`] runs
//! saved GraphQL queries (implemented by the `graphql` crate), [`Locks`] serializes work on one
//! thing (in-process today; database-level for a shared PostgreSQL).

pub mod accounts;
pub mod artifacts;
pub mod branches;
mod caller;
pub mod cluster;
pub mod credentials;
pub mod data;
pub mod ingest;
pub mod locks;
pub mod login;
pub mod nodes;
pub mod object_store;
pub mod passwords;
pub mod queries;
pub mod repositories;
pub mod saved_queries;
pub mod schema;
pub mod sessions;
pub mod webhooks;

pub use caller::{Actor, Caller};
pub use credentials::CredentialCache;
pub use locks::{InProcessLocks, LockGuard, Locks};
pub use login::LoginThrottle;
pub use object_store::ObjectStore;
pub use passwords::PasswordPool;
pub use queries::{OperationKind, QueryOutcome, QueryRunner, QueryRunnerSlot};

use infrastream_auth::JwtKeys;
use infrastream_config::Settings;
use infrastream_store::Store;
use std::sync::Arc;

/// Everything the domain needs, one per server; cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Settings in force.
    pub settings: Arc<Settings>,
    /// JWT signing keys.
    pub jwt: Arc<JwtKeys>,
    /// Identifies this deployment (persisted at first start).
    pub deployment_id: String,
    /// Commit notifications and the in-memory tail of recent events.
    pub bus: infrastream_bus::Bus,
    /// Recently verified credentials; cleared on every account or token change.
    pub credentials: Arc<CredentialCache>,
    /// Locks that serialize work on one artifact or repository.
    pub locks: Arc<dyn Locks>,
    /// Artifact content and uploads.
    pub objects: ObjectStore,
    /// Runs saved GraphQL queries (set once the API layer is built).
    pub queries: QueryRunnerSlot,
    /// The threads every password hash and verification runs on.
    pub passwords: Arc<PasswordPool>,
    /// Backoff after failed logins.
    pub login_throttle: Arc<LoginThrottle>,
}
