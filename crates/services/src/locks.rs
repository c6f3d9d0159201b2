//! Locks that serialize work on one thing — generating one artifact, syncing one repository —
//! behind a trait, so that a backend shared by several instances can take them in the
//! database. [`InProcessLocks`] is the embedded store's: one async mutex per key, forgotten
//! with its last holder.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// A held lock; dropping it releases the lock.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl LockGuard {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(release_on_drop: impl Send + Sync + 'static) -> Self {
        Self(Box::new(release_on_drop))
    }
}

/// Mutual exclusion by key (e.g. `artifact/<definition>/<branch>/<target>`,
/// `repository/<id>`).
#[async_trait]
pub trait Locks: Send + Sync {
    /// Waits until the lock of `key` is free and takes it.
    async fn lock(&self, key: &str) -> LockGuard;
}

type Entry = Weak<tokio::sync::Mutex<()>>;

/// Locks of one process: an async mutex per key, held weakly, so a key's entry goes away
/// once nobody holds or waits for it.
#[derive(Default)]
pub struct InProcessLocks {
    keys: Mutex<HashMap<String, Entry>>,
}

impl InProcessLocks {
    fn mutex(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = keys.get(key).and_then(Weak::upgrade) {
            return m;
        }
        keys.retain(|_, m| m.strong_count() > 0);
        let m = Arc::new(tokio::sync::Mutex::new(()));
        keys.insert(key.to_owned(), Arc::downgrade(&m));
        m
    }

    /// Keys with a holder or a waiter (for tests).
    pub fn held(&self) -> usize {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.values().filter(|m| m.strong_count() > 0).count()
    }
}

#[async_trait]
impl Locks for InProcessLocks {
    async fn lock(&self, key: &str) -> LockGuard {
        LockGuard::new(self.mutex(key).lock_owned().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_keys_are_forgotten() {
        let locks = Arc::new(InProcessLocks::default());
        let a = locks.lock("a").await;
        let _b = locks.lock("b").await;
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.lock("a").await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a second holder of `a` got in");
        drop(a);
        let again = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter gets `a` once it is free")
            .expect("join");
        drop(again);
        drop(_b);
        assert_eq!(locks.held(), 0);
    }
}
