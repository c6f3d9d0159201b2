//! The bus: says "the log grew to position P" and keeps a shared in-memory tail of the most
//! recent events, so that subscribers pull what they have not seen from memory instead of
//! the store. A subscriber is a cursor (a [`Position`]); a slow one costs nothing but its
//! cursor and, once it falls out of the tail, reads from the store until it catches up.
//!
//! One tailer task per server fills the tail. Both backends hand it the committed events
//! directly (the store's commit feed: the embedded store's writer batches; PostgreSQL's
//! follower, with the events other servers committed): the bus reads nothing back. A backend
//! without a feed is followed by its committed head, reading new events by position. Either
//! way events reach the tail in position order with no gap: a hole in the feed is filled from
//! the store.
//!
//! Pruning ([`Store::prune`]) removes the oldest events: [`Bus::pruned`] drops them from the
//! tail too, and a reader whose cursor is before the log's new start gets
//! [`StoreError::Pruned`] instead of a silent jump over the pruned events.
//!
//! Neighbours: `store` below (head notifications, reads by position), `graphql` above
//! (the `events` subscription pulls from a [`Bus`]).

use infrastream_core::{Event, Position};
use infrastream_store::{Store, StoreError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// Events kept in memory by default.
pub const DEFAULT_TAIL_CAPACITY: usize = 65_536;

/// Most events a reader gets per read.
pub const READ_BATCH: usize = 512;

struct Tail {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
}

impl Tail {
    fn first(&self) -> Option<Position> {
        self.events.front().map(|e| e.position)
    }
}

/// The tail and the last pruned position, shared by the bus handles and the tailer.
struct Shared {
    tail: RwLock<Tail>,
    /// The last pruned position this bus knows of: reads from before it are refused.
    pruned_through: AtomicU64,
}

impl Shared {
    /// Forgets the events up to `through` (pruned from the store).
    fn forget_through(&self, through: Position) {
        self.pruned_through.fetch_max(through.0, Ordering::Relaxed);
        let mut t = self.tail.write().unwrap_or_else(|e| e.into_inner());
        while t.first().is_some_and(|p| p <= through) {
            t.events.pop_front();
        }
    }
}

/// Shared handle to the bus.
#[derive(Clone)]
pub struct Bus {
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    head: watch::Receiver<Position>,
}

impl Bus {
    /// Starts the tailer task following `store` and returns the bus.
    pub fn start(store: Arc<dyn Store>, capacity: usize) -> Self {
        let store_head = store.head();
        let start = *store_head.borrow();
        let (head_tx, head) = watch::channel(start);
        let tail = Arc::new(Shared {
            tail: RwLock::new(Tail {
                events: VecDeque::new(),
                capacity: capacity.max(1),
            }),
            pruned_through: AtomicU64::new(0),
        });
        match store.take_commit_feed() {
            Some(feed) => {
                tokio::spawn(follow_feed(
                    store.clone(),
                    feed,
                    tail.clone(),
                    head_tx,
                    start,
                ));
            }
            None => {
                tokio::spawn(follow(
                    store.clone(),
                    store_head,
                    tail.clone(),
                    head_tx,
                    start,
                ));
            }
        }
        Self {
            store,
            shared: tail,
            head,
        }
    }

    /// The store the bus follows.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Tells the bus that the store pruned the log up to `through` (inclusive): those events
    /// leave the tail, and reads from before `through` fail with [`StoreError::Pruned`].
    pub fn pruned(&self, through: Position) {
        self.shared.forget_through(through);
    }

    /// Position of the newest event visible to subscribers; `changed()` on the receiver wakes
    /// when it moves.
    pub fn head(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }

    /// Up to `max` events after `after`, in position order: from the tail when it still holds
    /// them, otherwise from the store. Never skips an event: when the events after `after`
    /// were pruned, fails with [`StoreError::Pruned`].
    pub async fn read_after(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<Arc<Event>>, StoreError> {
        let head = *self.head.borrow();
        if after >= head {
            return Ok(Vec::new());
        }
        let pruned_through = Position(self.shared.pruned_through.load(Ordering::Relaxed));
        if after < pruned_through {
            return Err(StoreError::Pruned {
                after,
                pruned_through,
            });
        }
        {
            let tail = self.shared.tail.read().unwrap_or_else(|e| e.into_inner());
            if let Some(first) = tail.first()
                && first <= after.next()
            {
                let skip = (after.next().0 - first.0) as usize;
                return Ok(tail.events.iter().skip(skip).take(max).cloned().collect());
            }
        }
        let events = self.store.read_after(after, max.min(READ_BATCH)).await?;
        Ok(events
            .into_iter()
            .filter(|e| e.position <= head)
            .map(Arc::new)
            .collect())
    }
}

fn push(shared: &Shared, events: impl IntoIterator<Item = Arc<Event>>) {
    let mut t = shared.tail.write().unwrap_or_else(|e| e.into_inner());
    for e in events {
        if t.events.len() == t.capacity {
            t.events.pop_front();
        }
        t.events.push_back(e);
    }
}

/// Reads `(seen, until]` from the store into the tail; the new `seen`.
async fn fill_from_store(
    store: &dyn Store,
    tail: &Shared,
    mut seen: Position,
    until: Position,
) -> Position {
    while seen < until {
        let limit = (until.0 - seen.0).min(READ_BATCH as u64) as usize;
        match store.read_after(seen, limit).await {
            Ok(batch) if !batch.is_empty() => {
                seen = batch.last().map_or(seen, |e| e.position);
                push(tail, batch.into_iter().map(Arc::new));
            }
            Ok(_) => break,
            Err(StoreError::Pruned { pruned_through, .. }) => {
                seen = skip_pruned(tail, seen, pruned_through);
            }
            Err(e) => {
                tracing::warn!(error = %e, "bus could not read committed events; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    seen
}

/// The tailer's answer to events pruned before it read them: they are gone for every reader,
/// so the tail (emptied of everything up to them) continues after them. The new `seen`.
fn skip_pruned(tail: &Shared, seen: Position, pruned_through: Position) -> Position {
    tracing::warn!(
        from = seen.0,
        through = pruned_through.0,
        "events were pruned before the bus read them; readers before them get CURSOR_PRUNED"
    );
    tail.forget_through(pruned_through);
    seen.max(pruned_through)
}

async fn follow_feed(
    store: Arc<dyn Store>,
    mut feed: infrastream_store::CommitFeed,
    tail: Arc<Shared>,
    head_tx: watch::Sender<Position>,
    mut seen: Position,
) {
    while let Some(mut batch) = feed.recv().await {
        loop {
            if let Some(first) = batch.iter().map(|e| e.position).find(|p| *p > seen)
                && first > seen.next()
            {
                // Committed before the bus took the feed: read the hole.
                seen = fill_from_store(&*store, &tail, seen, Position(first.0 - 1)).await;
            }
            let fresh: Vec<Arc<Event>> = batch
                .into_iter()
                .filter(|e| e.position > seen)
                .map(Arc::new)
                .collect();
            if let Some(last) = fresh.last() {
                seen = last.position;
            }
            push(&tail, fresh);
            // Publish once for everything already waiting.
            match feed.try_recv() {
                Ok(next) => batch = next,
                Err(_) => break,
            }
        }
        head_tx.send_replace(seen);
    }
}

async fn follow(
    store: Arc<dyn Store>,
    mut store_head: watch::Receiver<Position>,
    tail: Arc<Shared>,
    head_tx: watch::Sender<Position>,
    mut seen: Position,
) {
    loop {
        let target = *store_head.borrow_and_update();
        while seen < target {
            match store.read_after(seen, READ_BATCH).await {
                Ok(batch) if !batch.is_empty() => {
                    seen = batch.last().map(|e| e.position).unwrap_or(seen);
                    push(&tail, batch.into_iter().map(Arc::new));
                    head_tx.send_replace(seen);
                }
                Ok(_) => break,
                Err(StoreError::Pruned { pruned_through, .. }) => {
                    seen = skip_pruned(&tail, seen, pruned_through);
                    head_tx.send_replace(seen);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bus could not read new events; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
        if store_head.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infrastream_core::NewEvent;
    use infrastream_store::Commit;
    use infrastream_store::sqlite::{SqliteOptions, SqliteStore};

    #[tokio::test]
    async fn readers_see_every_event_in_order_from_tail_and_store() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(SqliteOptions::new(dir.path().join("db")))
                .await
                .unwrap(),
        );
        let bus = Bus::start(store.clone(), 8);
        let mut head = bus.head();
        for i in 0..30 {
            store
                .commit(Commit::events(vec![NewEvent::new(format!("t.{i}"))]))
                .await
                .unwrap();
        }
        while *head.borrow_and_update() < Position(30) {
            head.changed().await.unwrap();
        }
        // The tail holds only the last 8; older reads come from the store.
        let mut cursor = Position::ZERO;
        let mut names = Vec::new();
        loop {
            let batch = bus.read_after(cursor, 5).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                assert_eq!(e.position, cursor.next(), "no gap, no duplicate");
                cursor = e.position;
                names.push(e.name.clone());
            }
        }
        assert_eq!(names, (0..30).map(|i| format!("t.{i}")).collect::<Vec<_>>());
    }

    /// After a prune, a reader before the log's new start is refused (from the tail as from
    /// the store), and a reader at the start continues without a gap.
    #[tokio::test]
    async fn readers_before_a_prune_are_refused_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(SqliteOptions::new(dir.path().join("db")))
                .await
                .unwrap(),
        );
        // A tail of 16 holds every event: refusals come from the bus itself.
        let bus = Bus::start(store.clone(), 16);
        let mut head = bus.head();
        for i in 0..10 {
            store
                .commit(Commit::events(vec![NewEvent::new(format!("t.{i}"))]))
                .await
                .unwrap();
        }
        while *head.borrow_and_update() < Position(10) {
            head.changed().await.unwrap();
        }
        let policy = infrastream_store::PrunePolicy {
            keep_newest: Some(4),
            ..Default::default()
        };
        let outcome = store.prune(policy).await.unwrap();
        assert_eq!(outcome.log_start.pruned_through, Position(6));
        bus.pruned(outcome.log_start.pruned_through);
        for after in [0, 3, 5] {
            match bus.read_after(Position(after), 5).await {
                Err(StoreError::Pruned {
                    after: a,
                    pruned_through,
                }) => assert_eq!((a.0, pruned_through.0), (after, 6)),
                other => panic!("read from {after}: {other:?}"),
            }
        }
        let read = bus.read_after(Position(6), 10).await.unwrap();
        assert_eq!(
            read.iter().map(|e| e.position.0).collect::<Vec<_>>(),
            [7, 8, 9, 10]
        );
        // A bus started after the prune (nothing in its tail) is refused by the store.
        let fresh = Bus::start(store.clone(), 16);
        assert!(matches!(
            fresh.read_after(Position(2), 5).await,
            Err(StoreError::Pruned { .. })
        ));
        assert_eq!(fresh.read_after(Position(8), 5).await.unwrap().len(), 2);
    }
}
