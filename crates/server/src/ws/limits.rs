//! Connection limits: a global connection semaphore (RAII permits), per-account subscription
//! semaphores, and the rate of new connections per client address.

use infrastream_config::Settings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Shared limit state of the server.
pub(crate) struct Limits {
    connections: Arc<Semaphore>,
    per_account_subscriptions: usize,
    account_subscriptions: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_account_connections: usize,
    account_connections: Mutex<HashMap<String, Arc<Semaphore>>>,
    rate_per_address: u32,
    rates: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limits {
    pub(crate) fn new(s: &Settings) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(s.max_connections)),
            per_account_subscriptions: s.max_subscriptions_per_account,
            account_subscriptions: Mutex::new(HashMap::new()),
            per_account_connections: s.max_connections_per_account,
            account_connections: Mutex::new(HashMap::new()),
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
    pub(crate) fn subscription_permit(
        &self,
        account: Option<&str>,
    ) -> Option<OwnedSemaphorePermit> {
        keyed_permit(
            &self.account_subscriptions,
            account,
            self.per_account_subscriptions,
        )
    }

    /// A connection slot of `account`, or `None` at `max_connections_per_account`.
    pub(crate) fn account_connection_permit(
        &self,
        account: Option<&str>,
    ) -> Option<OwnedSemaphorePermit> {
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

/// A permit of the semaphore of `key` (created with `max` permits on first use). Semaphores
/// stay in the map for the life of the server: one per account that ever connected.
fn keyed_permit(
    map: &Mutex<HashMap<String, Arc<Semaphore>>>,
    key: Option<&str>,
    max: usize,
) -> Option<OwnedSemaphorePermit> {
    let sem = {
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key.unwrap_or("").to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(max)))
            .clone()
    };
    sem.try_acquire_owned().ok()
}
