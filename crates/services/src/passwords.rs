//! The password-hashing pool: every Argon2 hash and verification of the server runs on one of
//! a fixed number of threads (`password_hash_threads`), with room for `password_hash_queue`
//! more waiting. One Argon2 computation holds about 19 MiB and a core for tens of
//! milliseconds, so a flood of logins can take at most `threads × 19 MiB` and `threads` cores,
//! whatever its rate: the rest waits in the queue (a few bytes each) or is refused.
//!
//! Each thread keeps its Argon2 memory ([`HashingMemory`]) for its whole life, so the pool
//! holds exactly `threads × 19 MiB` whatever the allocator does with freed buffers.
//!
//! A login that finds every thread busy and the queue full is refused at once
//! ([`PasswordPool::verify_if`] answers [`PoolBusy`]) instead of waiting: its client is told
//! to retry. Half of the queue is kept for logins from trusted addresses ([`Origin::Trusted`]:
//! a login succeeded there recently and none failed since): other logins may fill only the
//! threads and the other half, so a flood from many addresses (which per-address backoff
//! alone does not stop) leaves room for users logging in from where they did before. A
//! queued verification whose caller no longer wants it when its turn comes (the client hung
//! up, or its address started backing off meanwhile) is skipped without hashing.
//! Hashing a new password ([`PasswordPool::hash`], account creation and password changes,
//! made by authenticated callers) waits for room instead, ahead of later logins.
//!
//! Not tokio's blocking pool: it grows to 512 threads, each holding its own Argon2 memory.

use infrastream_auth::{AuthError, HashingMemory};
use infrastream_config::Settings;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A unit of work for a hashing thread, given the thread's Argon2 memory.
type Job = Box<dyn FnOnce(&mut HashingMemory) + Send>;

/// Every hashing thread is busy and the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every password-hashing thread is busy and the queue is full")]
pub struct PoolBusy;

/// Where a login comes from, as far as the pool is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An address where a login succeeded recently, with no failure since: it may use the
    /// whole queue.
    Trusted,
    /// Any other address: it may not take the queue's reserved half.
    Other,
}

/// The hashing threads and their queue; the threads stop when the pool is dropped (after the
/// jobs already queued).
pub struct PasswordPool {
    jobs: Sender<Job>,
    /// One permit per job running or queued: `threads + queue` in all.
    slots: Arc<Semaphore>,
    /// Permits of [`Origin::Other`] jobs, taken besides a slot: `threads + queue − queue / 2`.
    untrusted: Arc<Semaphore>,
    threads: usize,
}

impl PasswordPool {
    /// `threads` hashing threads (at least 1) with room for `queue` waiting jobs.
    ///
    /// # Panics
    /// When the operating system refuses to start a thread.
    pub fn new(threads: usize, queue: usize) -> Self {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || work(&receiver))
                .unwrap_or_else(|e| panic!("cannot start a password-hashing thread: {e}"));
        }
        Self {
            jobs,
            slots: Arc::new(Semaphore::new(threads + queue)),
            untrusted: Arc::new(Semaphore::new(threads + queue - queue / 2)),
            threads,
        }
    }

    /// The pool of `password_hash_threads` (0: one per CPU core) and `password_hash_queue`.
    pub fn from_settings(s: &Settings) -> Self {
        let threads = match s.password_hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Self::new(threads, s.password_hash_queue)
    }

    /// The number of hashing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Checks `password` against the PHC string `phc` on a hashing thread: whether it
    /// matches (false on a mismatch or a malformed hash), or `None` when `wanted` (asked on
    /// the hashing thread when the job's turn comes) says it is no longer wanted.
    /// [`PoolBusy`] at once, without hashing, when the queue is full (for `origin`).
    pub async fn verify_if(
        &self,
        password: String,
        phc: String,
        origin: Origin,
        wanted: impl FnOnce() -> bool + Send + 'static,
    ) -> Result<Option<bool>, PoolBusy> {
        let untrusted = match origin {
            Origin::Trusted => None,
            Origin::Other => Some(
                self.untrusted
                    .clone()
                    .try_acquire_owned()
                    .map_err(|_| PoolBusy)?,
            ),
        };
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| PoolBusy)?;
        let verified = self
            .run(slot, move |memory| {
                let _untrusted = untrusted;
                wanted().then(|| memory.verify(&password, &phc))
            })
            .await;
        Ok(verified.unwrap_or_else(|| {
            tracing::error!("a password verification failed on its hashing thread");
            Some(false)
        }))
    }

    /// [`PasswordPool::verify_if`] from a trusted origin, always wanted: whether `password`
    /// matches `phc`.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, PoolBusy> {
        let verified = self
            .verify_if(password, phc, Origin::Trusted, || true)
            .await?;
        Ok(verified == Some(true))
    }

    /// Hashes `password` on a hashing thread, waiting for room in the queue if it is full.
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Hash("the password-hashing pool is closed".into()))?;
        self.run(slot, move |memory| memory.hash(&password))
            .await
            .unwrap_or_else(|| Err(AuthError::Hash("the hashing thread failed".into())))
    }

    /// Runs `f` on a hashing thread, holding `slot` until it is done; `None` if it panicked.
    /// A job whose caller has gone (its client hung up) is skipped.
    async fn run<T: Send + 'static>(
        &self,
        slot: OwnedSemaphorePermit,
        f: impl FnOnce(&mut HashingMemory) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _slot = slot;
            if tx.is_closed() {
                return;
            }
            if let Ok(out) = std::panic::catch_unwind(AssertUnwindSafe(|| f(memory))) {
                let _ = tx.send(out);
            }
        });
        // The receivers live as long as the threads, which outlive `self`.
        self.jobs.send(job).ok()?;
        rx.await.ok()
    }
}

/// A hashing thread: runs jobs in its own Argon2 memory until the pool is dropped and the
/// queue is empty.
fn work(receiver: &Mutex<Receiver<Job>>) {
    let mut memory = HashingMemory::new();
    loop {
        let job = receiver.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(&mut memory),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn hashes_and_verifies() {
        let pool = PasswordPool::new(1, 1);
        let phc = pool.hash("correct horse".into()).await.unwrap();
        assert_eq!(
            pool.verify("correct horse".into(), phc.clone()).await,
            Ok(true)
        );
        assert_eq!(pool.verify("wrong".into(), phc).await, Ok(false));
        assert_eq!(
            pool.verify("x".into(), "not a hash".into()).await,
            Ok(false)
        );
    }

    /// With 1 thread and a queue of 2, three jobs that hold their slots fill the pool: a
    /// verification is refused at once, without waiting for them; once they are done the pool
    /// takes work again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let pool = Arc::new(PasswordPool::new(1, 2));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let held: Vec<_> = (0..3)
            .map(|_| {
                let slot = pool.slots.clone().try_acquire_owned().unwrap();
                let (pool, released) = (pool.clone(), released.clone());
                tokio::spawn(async move {
                    pool.run(slot, move |_| released.lock().unwrap().recv().unwrap())
                        .await
                })
            })
            .collect();
        let phc = infrastream_auth::DUMMY_PASSWORD_HASH.to_owned();
        let refused = tokio::time::timeout(
            Duration::from_secs(10),
            pool.verify("guess".into(), phc.clone()),
        )
        .await
        .expect("a full pool answers at once");
        assert_eq!(refused, Err(PoolBusy));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for h in held {
            assert_eq!(h.await.unwrap(), Some(()));
        }
        assert_eq!(pool.verify("guess".into(), phc).await, Ok(false));
    }

    /// Logins from untrusted addresses may hold the threads and half of the queue; the other
    /// half stays for trusted addresses.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn half_the_queue_is_kept_for_trusted_addresses() {
        // 1 thread + 4 queued; untrusted origins get 1 + 2.
        let pool = Arc::new(PasswordPool::new(1, 4));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(Mutex::new(released));
        let phc = infrastream_auth::DUMMY_PASSWORD_HASH.to_owned();
        let mut held = Vec::new();
        for _ in 0..3 {
            let (pool, released, phc) = (pool.clone(), released.clone(), phc.clone());
            held.push(tokio::spawn(async move {
                pool.verify_if("x".into(), phc, Origin::Other, move || {
                    released.lock().unwrap().recv().unwrap();
                    true
                })
                .await
            }));
        }
        // Wait until the three hold their permits.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pool.untrusted.available_permits() > 0 {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let untrusted = pool
            .verify_if("x".into(), phc.clone(), Origin::Other, || true)
            .await;
        assert_eq!(
            untrusted,
            Err(PoolBusy),
            "an untrusted origin finds its share full"
        );
        // A trusted origin still gets one of the two reserved slots.
        let trusted = {
            let (pool, phc) = (pool.clone(), phc.clone());
            tokio::spawn(async move {
                pool.verify_if("x".into(), phc, Origin::Trusted, || true)
                    .await
            })
        };
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        assert_eq!(trusted.await.unwrap(), Ok(Some(false)));
        for h in held {
            assert_eq!(h.await.unwrap(), Ok(Some(false)));
        }
    }

    /// A queued verification that is no longer wanted when its turn comes is not computed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unwanted_verification_is_skipped() {
        let pool = PasswordPool::new(1, 1);
        let phc = pool.hash("right".into()).await.unwrap();
        let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = asked.clone();
        let skipped = pool
            .verify_if("right".into(), phc.clone(), Origin::Trusted, move || {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                false
            })
            .await;
        assert_eq!(skipped, Ok(None));
        assert!(asked.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(
            pool.verify_if("right".into(), phc, Origin::Trusted, || true)
                .await,
            Ok(Some(true))
        );
    }

    /// Hashing waits for room instead of failing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_waits_for_room() {
        let pool = Arc::new(PasswordPool::new(1, 1));
        let hashes: Vec<_> = (0..4)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.hash(format!("password {i}")).await })
            })
            .collect();
        for h in hashes {
            assert!(h.await.unwrap().unwrap().starts_with("$argon2id$"));
        }
    }

    #[test]
    fn threads_stop_when_the_pool_is_dropped() {
        let named = || {
            std::fs::read_dir("/proc/self/task")
                .map(|tasks| {
                    tasks
                        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                        .filter(|c| c.trim() == "password-hash-7")
                        .count()
                })
                .unwrap_or(0)
        };
        let pool = PasswordPool::new(8, 1);
        assert_eq!(pool.threads(), 8);
        if named() == 0 {
            return; // No /proc here: nothing to observe.
        }
        drop(pool);
        let deadline = Instant::now() + Duration::from_secs(5);
        while named() > 0 {
            assert!(Instant::now() < deadline, "the threads did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
