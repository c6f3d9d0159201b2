//! Credentials of live sockets, checked by one task for all of them instead of a timer and a
//! store read per socket. Every authenticated session registers its credential here. When an
//! account or token changes (the credential cache signals it), the watcher verifies each
//! distinct credential once — 10,000 sockets sharing an API token cost one check — and revokes
//! the sockets whose credential no longer verifies or whose role changed; their sessions close
//! them with 4403. Expiry needs no check: each session sleeps until its credential's expiry.

use super::socket::Socket;
use crate::AppState;
use crate::auth::{Credential, authenticate};
use infrastream_core::Role;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

struct Watched {
    credential: Credential,
    role: Role,
    account: Option<String>,
    socket: Weak<Socket>,
}

/// A socket holding a credential, with the role and account it was authenticated as.
type Holder = (Role, Option<String>, Weak<Socket>);

/// The registry of live sockets' credentials.
#[derive(Default)]
pub(crate) struct CredentialWatch {
    entries: Mutex<HashMap<u64, Watched>>,
    next: AtomicU64,
}

/// A registered credential; dropping it unregisters.
pub(crate) struct Watching {
    watch: Arc<CredentialWatch>,
    key: u64,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.watch
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

impl CredentialWatch {
    /// Watches `credential`, which authenticated `socket` as `role` of `account`.
    pub(crate) fn register(
        self: &Arc<Self>,
        credential: Credential,
        role: Role,
        account: Option<String>,
        socket: &Arc<Socket>,
    ) -> Watching {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key,
                Watched {
                    credential,
                    role,
                    account,
                    socket: Arc::downgrade(socket),
                },
            );
        Watching {
            watch: self.clone(),
            key,
        }
    }

    /// Re-checks every watched credential after each account or token change, until the
    /// server stops.
    pub(crate) async fn run(self: Arc<Self>, state: AppState) {
        let mut changes = state.services.domain.credentials.changes();
        loop {
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            self.recheck(&state).await;
        }
    }

    async fn recheck(&self, state: &AppState) {
        let mut by_credential: HashMap<Credential, Vec<Holder>> = HashMap::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            for w in entries.values() {
                by_credential
                    .entry(w.credential.clone())
                    .or_default()
                    .push((w.role, w.account.clone(), w.socket.clone()));
            }
        }
        for (credential, sockets) in by_credential {
            let now = match authenticate(state, Some(credential)).await {
                Ok(a) => Some(a),
                // A store failure says nothing about the credential: keep the sockets.
                Err(e) if e.kind == infrastream_core::ErrorKind::Internal => continue,
                Err(_) => None,
            };
            for (role, account, socket) in sockets {
                let still = now
                    .as_ref()
                    .is_some_and(|a| a.caller.role == role && a.caller.account_id() == account);
                if !still && let Some(socket) = socket.upgrade() {
                    socket.revoke();
                }
            }
        }
    }
}
