//! What several instances sharing one PostgreSQL database coordinate through it, besides the
//! log, the accounts and the credential changes (which the store carries): locks on one
//! artifact or repository ([`PostgresLocks`]). The embedded store needs none:
//! [`crate::InProcessLocks`] serves one process.

mod locks;

pub use locks::PostgresLocks;
