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
//! Neighbours: `store` below (head notifications, reads by position), `graphql` above
//! (the `events` subscription pulls from a [`Bus`]).

use infrastream_core::{Event, Position};
use infrastream_store::{Store, StoreError};
use std::collections::VecDeque;
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

/// Shared handle to the bus.
#[derive(Clone)]
pub struct Bus {
    store: Arc<dyn Store>,
    tail: Arc<RwLock<Tail>>,
    head: watch::Receiver<Position>,
}

impl Bus {
    /// Starts the tailer task following `store` and returns the bus.
    pub fn start(store: Arc<dyn Store>, capacity: usize) -> Self {
        let store_head = store.head();
        let start = *store_head.borrow();
        let (head_tx, head) = watch::channel(start);
        let tail = Arc::new(RwLock::new(Tail {
            events: VecDeque::new(),
            capacity: capacity.max(1),
        }));
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
        Self { store, tail, head }
    }

    /// Position of the newest event visible to subscribers; `changed()` on the receiver wakes
    /// when it moves.
    pub fn head(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }

    /// Up to `max` events after `after`, in position order: from the tail when it still holds
    /// them, otherwise from the store. Never skips an event.
    pub async fn read_after(
        &self,
        after: Position,
        max: usize,
    ) -> Result<Vec<Arc<Event>>, StoreError> {
        let head = *self.head.borrow();
        if after >= head {
            return Ok(Vec::new());
        }
        {
            let tail = self.tail.read().unwrap_or_else(|e| e.into_inner());
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

fn push(tail: &RwLock<Tail>, events: impl IntoIterator<Item = Arc<Event>>) {
    let mut t = tail.write().unwrap_or_else(|e| e.into_inner());
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
    tail: &RwLock<Tail>,
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
            Err(e) => {
                tracing::warn!(error = %e, "bus could not read committed events; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    seen
}

async fn follow_feed(
    store: Arc<dyn Store>,
    mut feed: infrastream_store::CommitFeed,
    tail: Arc<RwLock<Tail>>,
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
    tail: Arc<RwLock<Tail>>,
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
}
