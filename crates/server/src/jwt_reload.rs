//! JWT key rotation without a restart: on SIGHUP the server re-reads `jwt_secret_file` and
//! puts the new key ring in force at once, for every token signed or verified from then on.
//!
//! A file that cannot be used (unreadable, shared with group or others, a short or repeated
//! key, no key at all) changes nothing: the keys in force stay, and the error, naming the file
//! and the line, is logged. When the ring changed, the credentials of live WebSocket sockets
//! are checked again, so sockets authenticated by a token whose key was removed are closed
//! (4403) like after a revocation. The ids of the keys in force are logged, never the keys.
//!
//! This task has its own SIGHUP listener: every listener of a process gets each signal, so
//! other reloads (e.g. TLS certificates) listen independently. Once any listener exists,
//! SIGHUP no longer terminates the process.

use crate::AppState;
use crate::jwt_keys::{describe, read_key_file};
use std::path::Path;

/// Reloads the JWT keys on every SIGHUP until the server shuts down.
pub(crate) fn spawn(state: &AppState) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: JWT keys reload only on restart");
            return;
        }
    };
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            reload(&state);
        }
    });
}

/// Re-reads `jwt_secret_file`, if set, and puts its keys in force; keeps the keys in force
/// when the file cannot be used.
fn reload(state: &AppState) {
    let Some(file) = &state.settings().jwt_secret_file else {
        tracing::info!(
            "SIGHUP: JWT keys not reloaded (they are read from a file only with jwt_secret_file)"
        );
        return;
    };
    let ring = match read_key_file(Path::new(file)) {
        Ok(ring) => ring,
        Err(e) => {
            tracing::error!("SIGHUP: JWT keys unchanged: {e}");
            return;
        }
    };
    let domain = &state.services.domain;
    let kids = describe(&ring);
    let signing = ring.signing_kid().to_owned();
    let previous = domain.jwt.replace(ring);
    if describe(&previous) == kids {
        tracing::info!(signing_kid = %signing, kids = %kids, "SIGHUP: JWT key file re-read, same keys");
        return;
    }
    tracing::info!(signing_kid = %signing, kids = %kids, "SIGHUP: JWT keys reloaded");
    // Sockets authenticated by a token of a removed key must not stay open.
    domain.credentials.clear();
}
