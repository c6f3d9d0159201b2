//! What several instances sharing one PostgreSQL database coordinate through it, besides the
//! log itself (which the store follows): locks on one artifact or repository
//! ([`PostgresLocks`]), and changes to credentials ([`CredentialSignal`]), so that a token
//! revoked or an account changed through one instance closes the affected sockets on every
//! instance. The embedded store needs neither: [`crate::InProcessLocks`] and the
//! [`crate::CredentialCache`] alone serve one process.

mod credentials;
mod locks;

pub use credentials::CredentialSignal;
pub use locks::PostgresLocks;
