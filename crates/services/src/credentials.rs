//! A short-lived cache of verified credentials (API token hash or JWT subject → caller), so
//! that a request does not read the store twice before it runs. Entries live for
//! `token_check_interval_ms`; any change to accounts or tokens made through this server —
//! or, with a shared database, through another server (`Store::credential_changes`) — clears
//! the cache at once, so revocations and role changes apply to the very next request.

use crate::Caller;
use infrastream_core::{Timestamp, now};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A cached verification: when it was made, the caller, and the credential's own expiry.
type Entry = (Instant, Caller, Option<Timestamp>);

/// Verified credentials, by key.
pub struct CredentialCache {
    ttl: Duration,
    /// Entries kept at most (`credential_cache_max_entries`); past it the cache starts over.
    max_entries: usize,
    map: Mutex<HashMap<String, Entry>>,
    /// Counts the changes to accounts and tokens; live sockets re-check on each.
    changes: tokio::sync::watch::Sender<u64>,
}

impl CredentialCache {
    /// An empty cache of at most `max_entries` whose entries live for `ttl`.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries,
            map: Mutex::new(HashMap::new()),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// The caller and credential expiry cached under `key`, if fresh and not expired.
    pub fn get(&self, key: &str) -> Option<(Caller, Option<Timestamp>)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (at, caller, expires) = map.get(key)?;
        if at.elapsed() > self.ttl || expires.is_some_and(|t| t <= now()) {
            return None;
        }
        Some((caller.clone(), *expires))
    }

    /// Remembers a verified credential.
    pub fn insert(&self, key: String, caller: Caller, expires_at: Option<Timestamp>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max_entries {
            map.clear();
        }
        map.insert(key, (Instant::now(), caller, expires_at));
    }

    /// Forgets everything (after an account or token changed, here or through another
    /// instance sharing the store) and signals the change.
    pub fn clear(&self) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.changes.send_modify(|n| *n += 1);
    }

    /// Wakes on every [`clear`](Self::clear): credentials held by live sockets must be
    /// checked again.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_with_ttl_and_credential() {
        let cache = CredentialCache::new(Duration::from_millis(30), 100);
        cache.insert("a".into(), Caller::anonymous(), None);
        cache.insert(
            "b".into(),
            Caller::anonymous(),
            Some(now() - chrono::Duration::seconds(1)),
        );
        assert!(cache.get("a").is_some());
        assert!(
            cache.get("b").is_none(),
            "an expired credential is never served"
        );
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
        cache.insert("c".into(), Caller::anonymous(), None);
        cache.clear();
        assert!(cache.get("c").is_none());
    }
}
