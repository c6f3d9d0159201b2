//! The follower: the one task of an instance that publishes committed events — into the
//! commit feed, then `head()` — in position order, with no gap and no duplicate, whoever
//! committed them.
//!
//! It publishes this instance's own batches as the writer hands them over (nothing is read
//! back when nothing was committed in between), and reads `position > last published` from
//! the database when the listener says another instance committed, at every tick of the
//! fallback poll, and when an own batch does not follow the last published position (another
//! instance committed in between). Positions are the truth, not notifications: a missed or
//! coalesced notification delays an event by at most one poll interval and loses nothing.
//! Because writers commit in position order (see `writer`), a read never sees an event
//! without every event before it.
//!
//! The replies of an own batch are sent once its events are published, so when a commit
//! returns, `head()` has reached its events (as with the SQLite backend).

use super::rows;
use super::writer::Reply;
use crate::StoreError;
use infrastream_core::{Chain, Event, Position};
use sqlx::PgPool;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// Most events read per query while catching up.
const READ_BATCH: i64 = 512;
/// First and longest wait before retrying a failed read.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// An own committed batch: its events (in position order) and the answers to send once they
/// are published.
pub(crate) struct Delivery {
    pub(crate) events: Vec<Event>,
    pub(crate) replies: Vec<(Reply, Result<Vec<Event>, StoreError>)>,
}

/// Messages to the follower.
pub(crate) enum Msg {
    /// Publish an own batch, then answer its requests.
    Deliver(Delivery),
    /// Publish what is pending, answer every request, and stop.
    Close(oneshot::Sender<()>),
}

/// What the follower publishes to, and what wakes it.
pub(crate) struct Follower {
    pub(crate) pool: PgPool,
    /// The last published position.
    pub(crate) last: Position,
    pub(crate) head: watch::Sender<Position>,
    pub(crate) feed: mpsc::UnboundedSender<Vec<Event>>,
    /// Signalled by the listener: another instance committed, or the listener reconnected.
    pub(crate) wake: Arc<Notify>,
    /// The last published position, for the listener (to ignore notifications of what is
    /// already published).
    pub(crate) published: Arc<AtomicU64>,
    /// The fallback poll interval.
    pub(crate) poll: Duration,
}

impl Follower {
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pending: VecDeque<Delivery> = VecDeque::new();
        let mut retry = RETRY_MIN;
        let mut retry_at: Option<Instant> = None;
        let mut failing = false;
        loop {
            let mut read = false;
            tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    Some(Msg::Deliver(d)) => pending.push_back(d),
                    Some(Msg::Close(done)) => {
                        self.finish(pending).await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.finish(pending).await;
                        return;
                    }
                },
                () = self.wake.notified() => read = true,
                _ = tick.tick() => read = true,
                () = sleep_until(retry_at), if retry_at.is_some() => read = true,
            }
            // Everything the writer queued meanwhile, in one step.
            loop {
                match rx.try_recv() {
                    Ok(Msg::Deliver(d)) => pending.push_back(d),
                    Ok(Msg::Close(done)) => {
                        self.finish(pending).await;
                        let _ = done.send(());
                        return;
                    }
                    Err(_) => break,
                }
            }
            match self.step(&mut pending, read || retry_at.is_some()).await {
                Ok(()) => {
                    if failing {
                        tracing::info!(
                            position = self.last.0,
                            "the store follower reads committed events again"
                        );
                    }
                    failing = false;
                    retry = RETRY_MIN;
                    retry_at = None;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            error = %Chain(&e),
                            position = self.last.0,
                            "the store follower cannot read committed events; retrying until it can"
                        );
                    }
                    failing = true;
                    retry_at = Some(Instant::now() + retry);
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Publishes the pending own batches (reading what other instances committed before each
    /// one first), and with `read` everything committed since; answers every batch published.
    async fn step(
        &mut self,
        pending: &mut VecDeque<Delivery>,
        read: bool,
    ) -> Result<(), StoreError> {
        let mut answered = Vec::new();
        let result = async {
            while let Some(d) = pending.front() {
                let first = d.events.first().map_or(self.last, |e| e.position);
                if first > self.last.next() {
                    self.read_all().await?;
                    if first > self.last.next() {
                        return Err(StoreError::backend(format!(
                            "committed events {}.. are not readable after position {}",
                            first.0, self.last.0
                        )));
                    }
                }
                let d = pending.pop_front().expect("front exists");
                let fresh: Vec<Event> = d
                    .events
                    .into_iter()
                    .filter(|e| e.position > self.last)
                    .collect();
                self.publish(fresh);
                answered.extend(d.replies);
            }
            if read {
                self.read_all().await?;
            }
            Ok(())
        }
        .await;
        let last = self.last;
        self.head.send_if_modified(|head| {
            let moved = *head != last;
            *head = last;
            moved
        });
        for (reply, outcome) in answered {
            let _ = reply.send(outcome);
        }
        result
    }

    /// Reads and publishes every event committed after the last published one.
    async fn read_all(&mut self) -> Result<(), StoreError> {
        loop {
            let sql = format!(
                "SELECT {} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
                rows::EVENT_COLUMNS
            );
            let events = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(self.last.0 as i64)
                .bind(READ_BATCH)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(rows::event)
                .collect::<Result<Vec<_>, _>>()?;
            let full = events.len() as i64 == READ_BATCH;
            if let Some(first) = events.first()
                && first.position != self.last.next()
            {
                // Cannot happen while every writer numbers under the head lock.
                tracing::error!(
                    after = self.last.0,
                    found = first.position.0,
                    "the event log has a gap"
                );
            }
            self.publish(events);
            if !full {
                return Ok(());
            }
        }
    }

    /// Feeds events that follow the last published position (in order) and moves `last`;
    /// `head()` moves when the step ends.
    fn publish(&mut self, events: Vec<Event>) {
        let Some(last) = events.last().map(|e| e.position) else {
            return;
        };
        self.last = last;
        self.published.store(last.0, Ordering::Release);
        let _ = self.feed.send(events);
    }

    /// At close: publishes what it can in one step, then answers every request (their
    /// batches are committed, published or not).
    async fn finish(&mut self, mut pending: VecDeque<Delivery>) {
        if let Err(e) = self.step(&mut pending, false).await {
            tracing::warn!(error = %Chain(&e), "the store follower could not publish its last events before closing");
        }
        for d in pending {
            for (reply, outcome) in d.replies {
                let _ = reply.send(outcome);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
