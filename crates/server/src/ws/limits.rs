//! Connection limits: a global connection semaphore (RAII permits), per-account subscription
//! and connection semaphores, and the rate of new connections per client address. An
//! account's semaphore exists while one of its permits is held: the last [`AccountPermit`]
//! to go removes it, so the maps hold only accounts that are connected now.

use infrastream_config::Settings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Semaphores of the accounts holding permits, by account id (`""` for anonymous sessions).
type AccountSemaphores = Arc<Mutex<HashMap<String, Arc<Semaphore>>>>;

/// Shared limit state of the server.
pub(crate) struct Limits {
    connections: Arc<Semaphore>,
    per_account_subscriptions: usize,
    account_subscriptions: AccountSemaphores,
    per_account_connections: usize,
    account_connections: AccountSemaphores,
    rate_per_address: u32,
    rates: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limits {
    pub(crate) fn new(s: &Settings) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(s.max_connections)),
            per_account_subscriptions: s.max_subscriptions_per_account,
            account_subscriptions: AccountSemaphores::default(),
            per_account_connections: s.max_connections_per_account,
            account_connections: AccountSemaphores::default(),
            rate_per_address: s.connection_rate_per_address,
            rates: Mutex::new(HashMap::new()),
        }
    }

    /// A connection slot, or `None` at `max_connections`.
    pub(crate) fn connection_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    /// A subscription slot of `account` (anonymous sessions share one pool), or `None` at
    /// `max_subscriptions_per_account`.
    pub(crate) fn subscription_permit(&self, account: Option<&str>) -> Option<AccountPermit> {
        keyed_permit(
            &self.account_subscriptions,
            account,
            self.per_account_subscriptions,
        )
    }

    /// A connection slot of `account`, or `None` at `max_connections_per_account`.
    pub(crate) fn account_connection_permit(&self, account: Option<&str>) -> Option<AccountPermit> {
        keyed_permit(
            &self.account_connections,
            account,
            self.per_account_connections,
        )
    }

    /// Counts a new connection from `ip` in the current one-second window.
    pub(crate) fn allow_new_connection(&self, ip: IpAddr) -> bool {
        if self.rate_per_address == 0 {
            return true;
        }
        let now = Instant::now();
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        if rates.len() > 100_000 {
            rates.retain(|_, (start, _)| now.duration_since(*start).as_secs() < 1);
        }
        let entry = rates.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0).as_secs() >= 1 {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.rate_per_address
    }
}

/// A permit of one account's semaphore. Dropping the last permit of an account removes the
/// account's semaphore from its map.
pub(crate) struct AccountPermit {
    /// `Some` until dropped; released under the map's lock (see `Drop`).
    permit: Option<OwnedSemaphorePermit>,
    key: String,
    map: AccountSemaphores,
}

impl Drop for AccountPermit {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        // Released under the lock: permits are only taken under it too, so no other permit
        // of this account can appear between the release and the check below.
        drop(self.permit.take());
        // The map's own reference is the only one left: no permit of this account is held.
        if map
            .get(&self.key)
            .is_some_and(|sem| Arc::strong_count(sem) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// A permit of the semaphore of `key` (created with `max` permits when the account holds
/// none), or `None` when all `max` are held. The semaphore stays in the map while a permit of
/// it is held (see [`AccountPermit`]).
fn keyed_permit(map: &AccountSemaphores, key: Option<&str>, max: usize) -> Option<AccountPermit> {
    let key = key.unwrap_or("");
    let mut semaphores = map.lock().unwrap_or_else(|e| e.into_inner());
    // Taken under the lock, so that a semaphore is never shared outside the map without a
    // permit of it (which would keep it alive past its last permit's drop).
    let permit = match semaphores.get(key) {
        Some(sem) => sem.clone().try_acquire_owned().ok()?,
        None => {
            let sem = Arc::new(Semaphore::new(max));
            let permit = sem.clone().try_acquire_owned().ok()?;
            semaphores.insert(key.to_owned(), sem);
            permit
        }
    };
    Some(AccountPermit {
        permit: Some(permit),
        key: key.to_owned(),
        map: map.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_account: usize) -> Limits {
        Limits::new(&Settings {
            max_subscriptions_per_account: per_account,
            max_connections_per_account: per_account,
            ..Settings::default()
        })
    }

    fn accounts(map: &AccountSemaphores) -> usize {
        map.lock().unwrap().len()
    }

    #[test]
    fn account_semaphores_go_with_their_last_permit() {
        let l = limits(2);
        let a1 = l.subscription_permit(Some("a")).unwrap();
        let a2 = l.subscription_permit(Some("a")).unwrap();
        // The limit holds while the permits are held.
        assert!(l.subscription_permit(Some("a")).is_none());
        let b = l.subscription_permit(Some("b")).unwrap();
        let anonymous = l.subscription_permit(None).unwrap();
        assert_eq!(accounts(&l.account_subscriptions), 3);
        // A refused request leaves the account's entry as it was.
        assert!(l.subscription_permit(Some("a")).is_none());
        assert_eq!(accounts(&l.account_subscriptions), 3);

        drop(a1);
        assert_eq!(accounts(&l.account_subscriptions), 3, "a still holds one");
        let a3 = l.subscription_permit(Some("a")).unwrap();
        assert!(l.subscription_permit(Some("a")).is_none());
        drop((a2, a3, b, anonymous));
        assert_eq!(accounts(&l.account_subscriptions), 0);

        // A new permit after the entry was removed starts from the full limit again.
        let again: Vec<_> = (0..2)
            .map(|_| l.subscription_permit(Some("a")).unwrap())
            .collect();
        assert!(l.subscription_permit(Some("a")).is_none());
        drop(again);
        assert_eq!(accounts(&l.account_subscriptions), 0);
    }

    #[test]
    fn account_connection_semaphores_go_with_their_last_permit() {
        let l = limits(1);
        let a = l.account_connection_permit(Some("a")).unwrap();
        assert!(l.account_connection_permit(Some("a")).is_none());
        // Subscriptions and connections are counted apart.
        let s = l.subscription_permit(Some("a")).unwrap();
        assert_eq!(accounts(&l.account_connections), 1);
        drop(a);
        assert_eq!(accounts(&l.account_connections), 0);
        assert_eq!(accounts(&l.account_subscriptions), 1);
        drop(s);
        assert_eq!(accounts(&l.account_subscriptions), 0);
    }

    #[test]
    fn permits_dropped_on_other_threads_empty_the_map() {
        let l = Arc::new(limits(1000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let account = format!("acct-{}", (t + i) % 3);
                        let p = l.subscription_permit(Some(&account)).unwrap();
                        let q = l.account_connection_permit(Some(&account)).unwrap();
                        drop((q, p));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(accounts(&l.account_subscriptions), 0);
        assert_eq!(accounts(&l.account_connections), 0);
    }
}
