//! Readiness: can the store commit now? Answered from the outcome of the last commit when it
//! is recent (a real commit, or the last probe), otherwise by a real probe commit through the
//! backend — at most one probe per interval whoever asks, so polling `/ready` is cheap and
//! cannot fill the disk (a probe rewrites one metadata row in place).

use crate::StoreError;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why the last commit failed, kept to answer readiness without another probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// [`StoreError::StorageFull`].
    StorageFull,
    /// Any other backend failure (rejections are not failures: the store committed).
    Backend,
}

/// The outcome of one commit attempt.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    at: Instant,
    failure: Option<Failure>,
}

/// The outcomes of a backend's commits, and the probe policy.
#[derive(Debug)]
pub struct Readiness {
    /// How long an outcome answers for the store without a new probe.
    interval: Duration,
    /// Longest wait for a probe's commit before the store is called not ready.
    timeout: Duration,
    last: Mutex<Option<Outcome>>,
    /// One probe at a time: concurrent checks wait for it and share its outcome.
    probing: tokio::sync::Mutex<()>,
}

impl Readiness {
    /// Outcomes answer for `interval`; a probe that takes longer than `timeout` fails.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            last: Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    /// Records the outcome of a commit attempt: `Ok` when the transaction committed (even if
    /// some of its requests were refused), else the failure.
    pub fn record(&self, outcome: Result<(), &StoreError>) {
        let failure = match outcome {
            Ok(()) | Err(StoreError::Rejected(_)) => None,
            Err(StoreError::StorageFull(_)) => Some(Failure::StorageFull),
            Err(_) => Some(Failure::Backend),
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Outcome {
            at: Instant::now(),
            failure,
        });
    }

    /// `Ok` when the store can commit, else why not: the last outcome if it is younger than
    /// the interval, otherwise the outcome of `probe` (a real, small commit), which is then
    /// recorded. A failing probe is logged (at most once per interval).
    pub async fn check<F, Fut>(&self, probe: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        if let Some(answer) = self.recent() {
            return answer;
        }
        let _one_probe = self.probing.lock().await;
        // Another check may have probed while this one waited.
        if let Some(answer) = self.recent() {
            return answer;
        }
        let outcome = match tokio::time::timeout(self.timeout, probe()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::backend(format!(
                "the readiness probe did not commit within {} ms (setting ready_probe_timeout_ms)",
                self.timeout.as_millis()
            ))),
        };
        if let Err(e) = &outcome {
            tracing::warn!(error = %infrastream_core::Chain(e), "readiness probe failed: the store cannot commit");
        }
        self.record(outcome.as_ref().map(|_| ()));
        outcome
    }

    /// The answer of the last outcome, if it is recent enough to stand for the store.
    fn recent(&self) -> Option<Result<(), StoreError>> {
        let last = (*self.last.lock().unwrap_or_else(|e| e.into_inner()))?;
        if last.at.elapsed() >= self.interval {
            return None;
        }
        Some(match last.failure {
            None => Ok(()),
            Some(Failure::StorageFull) => Err(StoreError::StorageFull(
                "the last commit failed: the storage is full".into(),
            )),
            Some(Failure::Backend) => Err(StoreError::Backend(
                "the last commit failed (its cause is in the log)".into(),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn full() -> StoreError {
        StoreError::StorageFull("no space".into())
    }

    #[tokio::test]
    async fn a_recent_outcome_answers_without_a_probe() {
        let r = Readiness::new(Duration::from_secs(60), Duration::from_secs(1));
        let probes = AtomicUsize::new(0);
        let probe = || async {
            probes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        // Nothing recorded yet: the first check probes, the next ones use its outcome.
        r.check(probe).await.unwrap();
        r.check(probe).await.unwrap();
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        // A failed commit is reported at once, with its cause's class, and no probe.
        r.record(Err(&full()));
        assert!(r.check(probe).await.unwrap_err().is_storage_full());
        r.record(Err(&StoreError::backend("broken")));
        let e = r.check(probe).await.unwrap_err();
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        // A refusal is the store committing.
        r.record(Err(&StoreError::Rejected(
            infrastream_core::Error::conflict("no"),
        )));
        r.check(probe).await.unwrap();
        assert_eq!(probes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_old_outcome_is_checked_by_one_probe() {
        let r = Arc::new(Readiness::new(
            Duration::from_millis(50),
            Duration::from_secs(1),
        ));
        r.record(Err(&full()));
        tokio::time::sleep(Duration::from_millis(60)).await;
        let probes = Arc::new(AtomicUsize::new(0));
        // Concurrent checks share one probe.
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let (r, probes) = (r.clone(), probes.clone());
                tokio::spawn(async move {
                    r.check(|| async {
                        probes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        for c in checks {
            c.await.unwrap().unwrap();
        }
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        // A probe that fails is the answer, and is remembered.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            r.check(|| async { Err(full()) })
                .await
                .unwrap_err()
                .is_storage_full()
        );
        assert!(
            r.check(|| async { Ok(()) })
                .await
                .unwrap_err()
                .is_storage_full()
        );
    }

    #[tokio::test]
    async fn a_probe_that_hangs_fails_after_the_timeout() {
        let r = Readiness::new(Duration::from_secs(60), Duration::from_millis(50));
        let e = r
            .check(std::future::pending::<Result<(), StoreError>>)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("ready_probe_timeout_ms"), "{e}");
    }
}
