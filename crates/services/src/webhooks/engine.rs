//! The webhook engine: a dispatcher that follows the log and records deliveries, and a
//! sender that makes them.
//!
//! **Dispatcher.** Follows the bus from a durable cursor (meta `webhooks.cursor`, the last
//! position handled; at first start the head, so history is not flooded out). For each batch
//! of events it loads the active webhooks afresh (a configuration change takes effect at the
//! next event), creates one pending [`Delivery`] per (event, matching webhook) and advances the
//! cursor in the same commit. Deliveries are created after their events commit, and the
//! cursor moves only with them: delivery is at least once. A batch without deliveries moves
//! the durable cursor at most once a second (re-handling a few non-matching events after a
//! crash is harmless). While no webhook is active nothing is written at all (the server makes
//! no commits of its own); each webhook records the log's head at its creation (`since`) and
//! is given only later events, so a restart from an older cursor cannot deliver events that
//! predate it. Batches are dispatched under the `webhooks/dispatcher` lock with the
//! cursor re-read under it, so instances sharing a PostgreSQL database never dispatch an
//! event twice; a create refused because the record exists is skipped (ids are
//! `<webhook>:<event>`).
//!
//! **Sender.** Per webhook, deliveries go strictly in log order: the earliest pending one is
//! attempted when due, and while it waits for a retry the later ones of that webhook wait
//! too. Up to `webhooks.concurrency` webhooks are served at once. A webhook's deliveries go in
//! runs (up to [`RUN`]) under the webhook's lock (`webhook/<id>`, cluster-wide on
//! PostgreSQL); each record is re-read under it (skipped unless still pending), so each
//! attempt is made by exactly one instance. The destination is checked and the client and
//! keys prepared once per run, and outcomes are committed [`COMMIT_EVERY`] at a time, so a
//! fast receiver is not held to one fsync per delivery. The outcome follows [`retry::next`]: delivered, retried later, dead-lettered, or
//! (410) the webhook is deactivated and the delivery dead. The sender wakes when deliveries
//! are created or replayed ([`super::wake`]), at the earliest due retry, and at least every
//! [`POLL`] (deliveries created by another instance).

use super::config::{Webhook, config_lock, webhook, webhooks};
use super::delivery::{self, Attempt, Delivery, now_ms, status};
use super::retry::{self, Next, RetryPolicy};
use super::{body, destination, matching, signing};
use crate::Services;
use infrastream_core::{Chain, Event, Position};
use infrastream_store::{Change, Commit, StoreError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// Meta key of the dispatcher's cursor.
pub const CURSOR: &str = "webhooks.cursor";

/// Lock of the dispatcher (one batch at a time across instances).
const DISPATCH_LOCK: &str = "webhooks/dispatcher";

/// Events read per dispatched batch.
const BATCH: usize = 512;

/// Longest the sender sleeps without a wake-up.
pub const POLL: Duration = Duration::from_secs(1);

/// How often the durable cursor moves when no delivery is created.
const CURSOR_WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// Finished (delivered or dead) records kept per webhook; older ones are removed.
pub const KEEP_FINISHED: usize = 1000;

/// The lock a delivery attempt of webhook `webhook_id` runs under.
pub fn lock_key(webhook_id: &str) -> String {
    format!("webhook/{webhook_id}")
}

/// Starts the dispatcher and the sender; both stop at `stop` (an attempt in progress is
/// abandoned: its delivery stays pending and is made again).
pub fn spawn(s: Services, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::join!(dispatcher(s.clone(), stop.clone()), sender(s, stop));
    })
}

/// Sleeps `d` unless stopped first; whether stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

async fn read_cursor(s: &Services) -> Result<Option<Position>, StoreError> {
    Ok(s.store
        .meta(CURSOR)
        .await?
        .and_then(|v| v.parse().ok())
        .map(Position))
}

fn set_cursor(p: Position) -> Change {
    Change::SetMeta {
        key: CURSOR.into(),
        value: p.0.to_string(),
        only_if_absent: false,
    }
}

/// The durable cursor; at first start, the head.
async fn initial_cursor(s: &Services) -> Result<Position, StoreError> {
    if let Some(c) = read_cursor(s).await? {
        return Ok(c);
    }
    let head = *s.bus.head().borrow();
    s.store
        .commit(Commit::change(Change::SetMeta {
            key: CURSOR.into(),
            value: head.0.to_string(),
            only_if_absent: true,
        }))
        .await?;
    Ok(read_cursor(s).await?.unwrap_or(head))
}

/// The dispatcher's progress.
struct Cursor {
    /// Handled through here.
    at: Position,
    /// Durable through here.
    written: Position,
    /// When it was last written.
    written_at: Instant,
}

impl Cursor {
    async fn flush(&mut self, s: &Services) -> Result<(), StoreError> {
        if self.written < self.at {
            s.store.commit(Commit::change(set_cursor(self.at))).await?;
            self.written = self.at;
            self.written_at = Instant::now();
        }
        Ok(())
    }
}

async fn dispatcher(s: Services, stop: CancellationToken) {
    let start = loop {
        match initial_cursor(&s).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "webhooks: cannot read the dispatcher's cursor; retrying");
                if pause(&stop, Duration::from_secs(1)).await {
                    return;
                }
            }
        }
    };
    let mut cursor = Cursor {
        at: start,
        written: start,
        written_at: Instant::now(),
    };
    let mut head = s.bus.head();
    loop {
        if stop.is_cancelled() {
            return;
        }
        let h = *head.borrow_and_update();
        if h <= cursor.at {
            if let Err(e) = cursor.flush(&s).await {
                tracing::warn!(error = %Chain(&e), "webhooks: cannot record the dispatcher's cursor");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                r = head.changed() => if r.is_err() { return },
            }
            continue;
        }
        match dispatch(&s, &mut cursor).await {
            Ok(Dispatched::Events) => {}
            // No active webhook: later events are looked at in a while, not one commit at a
            // time, so a server without webhooks pays (almost) nothing per commit. A webhook
            // created meanwhile gets its first events at most `IDLE_PAUSE` later.
            Ok(Dispatched::NoWebhooks) => {
                if pause(&stop, IDLE_PAUSE).await {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "webhooks: dispatching events failed; retrying");
                if pause(&stop, Duration::from_millis(500)).await {
                    return;
                }
            }
        }
    }
}

/// How long the dispatcher rests after finding no active webhook.
const IDLE_PAUSE: Duration = Duration::from_millis(100);

/// What [`dispatch`] did.
enum Dispatched {
    /// It looked at events (maybe none matched).
    Events,
    /// There was no active webhook: the cursor moved to the head.
    NoWebhooks,
}

/// Dispatches the next batch after the cursor.
async fn dispatch(s: &Services, cursor: &mut Cursor) -> Result<Dispatched, StoreError> {
    let _guard = s.locks.lock(DISPATCH_LOCK).await;
    // Another instance may have dispatched further.
    if let Some(stored) = read_cursor(s).await?
        && stored > cursor.at
    {
        cursor.at = stored;
        cursor.written = stored;
    }
    // The head is read before the webhooks: when none is active, every event up to it was
    // committed before any webhook that could match it exists, so the cursor skips to it
    // without reading a single event (the common case: a server without webhooks).
    let head = *s.bus.head().borrow();
    let hooks: Vec<Webhook> = webhooks(s)
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
        .into_iter()
        .filter(|w| w.data.active)
        .collect();
    if hooks.is_empty() {
        // Nothing is written: a server without webhooks makes no commits of its own (which
        // would also answer for the store's readiness on a full disk), and a webhook created
        // later only gets events after its `since`, whatever the stored cursor.
        cursor.at = cursor.at.max(head);
        cursor.written = cursor.at; // (in memory only: see above)
        return Ok(Dispatched::NoWebhooks);
    }
    let events = match s.bus.read_after(cursor.at, BATCH).await {
        Ok(events) => events,
        Err(StoreError::Pruned { pruned_through, .. }) => {
            tracing::warn!(
                after = cursor.at.0,
                pruned_through = pruned_through.0,
                "webhooks: events not yet dispatched were pruned from the log; they are not delivered"
            );
            cursor.at = pruned_through;
            return cursor.flush(s).await.map(|()| Dispatched::Events);
        }
        Err(e) => return Err(e),
    };
    let Some(last) = events.last().map(|e| e.position) else {
        return Ok(Dispatched::Events);
    };
    let creates: Vec<Change> = events
        .iter()
        .flat_map(|e| {
            hooks
                .iter()
                .filter(|w| e.position.0 > w.data.since && matching::matches(&w.data, e))
                .map(|w| Change::CreateNode(Delivery::new(&w.id, e).to_node()))
        })
        .collect();
    cursor.at = last;
    if creates.is_empty() {
        if cursor.written_at.elapsed() >= CURSOR_WRITE_INTERVAL {
            cursor.flush(s).await?;
        }
        return Ok(Dispatched::Events);
    }
    let mut changes = creates.clone();
    changes.push(set_cursor(last));
    match s
        .store
        .commit(Commit {
            changes,
            events: Vec::new(),
        })
        .await
    {
        Ok(_) => {}
        Err(StoreError::Rejected(_)) => {
            // A record exists already (a replay created it meanwhile): one by one.
            for c in creates {
                match s.store.commit(Commit::change(c)).await {
                    Ok(_) | Err(StoreError::Rejected(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            s.store.commit(Commit::change(set_cursor(last))).await?;
        }
        Err(e) => return Err(e),
    }
    cursor.written = last;
    cursor.written_at = Instant::now();
    super::wake();
    Ok(Dispatched::Events)
}

/// The HTTP clients of the sender.
struct Clients {
    /// The trusted roots for `https://` (or why there are none).
    tls: Result<rustls::ClientConfig, String>,
    /// `https://` with certificate verification, to IP-literal hosts.
    verified: Result<reqwest::Client, String>,
    /// `http://`, and `https://` without verification, to IP-literal hosts.
    unverified: Result<reqwest::Client, String>,
}

fn builder(s: &Services) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(s.settings.webhooks.timeout_ms))
        // A redirect could lead anywhere, past the destination check: not followed.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("infrastream/", env!("CARGO_PKG_VERSION")))
}

/// The CA bundle: `webhooks.ca_file`, else `SSL_CERT_FILE`, else the system's.
fn tls_config(ca_file: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let path = match ca_file {
        Some(p) => p.to_owned(),
        None => std::env::var("SSL_CERT_FILE")
            .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into()),
    };
    let unreadable = |e: &dyn std::fmt::Display| format!("cannot read CA file {path}: {e}");
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(unreadable(&"no certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Clients {
    fn new(s: &Services) -> Self {
        let tls = tls_config(s.settings.webhooks.ca_file.as_deref());
        if let Err(e) = &tls {
            tracing::warn!(error = %e, "webhooks: https:// URLs with validate_certificates cannot be delivered to");
        }
        let verified = Self::build(s, &tls, true, None);
        let unverified = Self::build(s, &tls, false, None);
        Self {
            tls,
            verified,
            unverified,
        }
    }

    /// A client; with `pinned`, connecting to that vetted address for that host name.
    fn build(
        s: &Services,
        tls: &Result<rustls::ClientConfig, String>,
        verify: bool,
        pinned: Option<(&str, SocketAddr)>,
    ) -> Result<reqwest::Client, String> {
        let mut b = builder(s);
        if verify {
            b = b.use_preconfigured_tls(tls.clone()?);
        } else {
            b = b.use_rustls_tls().danger_accept_invalid_certs(true);
        }
        if let Some((host, addr)) = pinned {
            b = b.resolve(host, addr);
        }
        b.build()
            .map_err(|e| format!("cannot build the HTTP client: {}", Chain(&e)))
    }

    /// The client for `url`, connecting to `addr` (the address the destination check
    /// vetted: the name is not resolved again).
    fn for_url(
        &self,
        s: &Services,
        url: &str,
        addr: SocketAddr,
        validate: bool,
    ) -> Result<reqwest::Client, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid url: {e}"))?;
        let verify = validate && parsed.scheme() == "https";
        match parsed.domain() {
            Some(host) => Self::build(s, &self.tls, verify, Some((host, addr))),
            _ if verify => self.verified.clone(),
            _ => self.unverified.clone(),
        }
    }
}

/// What the sender shares with its attempts.
struct Sender {
    s: Services,
    clients: Clients,
    permits: Arc<Semaphore>,
    /// Webhooks with an attempt running here.
    busy: Mutex<HashSet<String>>,
}

async fn sender(s: Services, stop: CancellationToken) {
    let mut wakes = super::wakes();
    let this = Arc::new(Sender {
        clients: Clients::new(&s),
        permits: Arc::new(Semaphore::new(
            s.settings.webhooks.concurrency.max(1) as usize
        )),
        busy: Mutex::default(),
        s,
    });
    let mut tasks = JoinSet::new();
    loop {
        wakes.borrow_and_update();
        while tasks.try_join_next().is_some() {}
        let wait = match pass(&this, &mut tasks).await {
            Ok(Some(due)) => Duration::from_millis((due - now_ms()).max(0) as u64).min(POLL),
            Ok(None) => POLL,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: reading deliveries failed; retrying");
                POLL
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = wakes.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// Starts the due deliveries: per webhook, a run of its pending deliveries in log order (see
/// [`run`]); when the next retry is due, if any.
async fn pass(this: &Arc<Sender>, tasks: &mut JoinSet<()>) -> Result<Option<i64>, String> {
    let s = &this.s;
    let records = delivery::all(s).await.map_err(|e| e.to_string())?;
    let hooks: HashMap<String, Webhook> = webhooks(s)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|w| (w.id.clone(), w))
        .collect();
    // The pending deliveries of each webhook, and the finished ones.
    let mut pending: HashMap<String, Vec<Delivery>> = HashMap::new();
    let mut finished: HashMap<String, Vec<(u64, String)>> = HashMap::new();
    for d in records {
        if d.is_pending() {
            pending
                .entry(d.data.webhook_id.clone())
                .or_default()
                .push(d);
        } else {
            finished
                .entry(d.data.webhook_id.clone())
                .or_default()
                .push((d.data.position, d.id));
        }
    }
    prune_finished(s, finished).await;
    let mut order: Vec<Vec<Delivery>> = pending
        .into_values()
        .map(|mut list| {
            list.sort_by(|a, b| (a.data.position, &a.id).cmp(&(b.data.position, &b.id)));
            list
        })
        .collect();
    order.sort_by_key(|list| list[0].data.position);
    let now = now_ms();
    let mut next_due: Option<i64> = None;
    for list in order {
        let head = &list[0];
        let Some(w) = hooks.get(&head.data.webhook_id) else {
            continue;
        };
        if !w.data.active {
            continue;
        }
        if head.data.next_attempt_at > now {
            let at = head.data.next_attempt_at;
            next_due = Some(next_due.map_or(at, |n| n.min(at)));
            continue;
        }
        {
            let busy = this.busy.lock().unwrap_or_else(PoisonError::into_inner);
            if busy.contains(&w.id) {
                continue;
            }
        }
        let Ok(permit) = this.permits.clone().try_acquire_owned() else {
            // A finishing run wakes the sender.
            break;
        };
        this.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(w.id.clone());
        let this = this.clone();
        let webhook_id = w.id.clone();
        let ids: Vec<String> = list.into_iter().take(RUN).map(|d| d.id).collect();
        tasks.spawn(async move {
            if let Err(e) = run(&this, &webhook_id, ids).await {
                tracing::warn!(webhook = %webhook_id, error = %e, "webhooks: recording attempts failed");
            }
            this.busy
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&webhook_id);
            drop(permit);
            super::wake();
        });
    }
    Ok(next_due)
}

/// Removes the oldest finished records of each webhook beyond [`KEEP_FINISHED`].
async fn prune_finished(s: &Services, finished: HashMap<String, Vec<(u64, String)>>) {
    let mut changes = Vec::new();
    for (_, mut done) in finished {
        if done.len() <= KEEP_FINISHED {
            continue;
        }
        done.sort();
        let excess = done.len() - KEEP_FINISHED;
        changes.extend(
            done.into_iter()
                .take(excess)
                .map(|(_, id)| Change::DeleteNode { id }),
        );
    }
    if changes.is_empty() {
        return;
    }
    if let Err(e) = s
        .store
        .commit(Commit {
            changes,
            events: Vec::new(),
        })
        .await
    {
        tracing::warn!(error = %Chain(&e), "webhooks: removing old delivery records failed");
    }
}

/// The event at `position` with id `id`, if still in the log.
async fn event_at(s: &Services, position: u64, id: uuid::Uuid) -> Result<Option<Event>, String> {
    // From the bus: recent events are in memory; older ones come from the store.
    match s
        .bus
        .read_after(Position(position.saturating_sub(1)), 1)
        .await
    {
        Ok(events) => Ok(events
            .into_iter()
            .find(|e| e.id == id)
            .map(|e| (*e).clone())),
        Err(StoreError::Pruned { .. }) => Ok(None),
        Err(e) => Err(Chain(&e).to_string()),
    }
}

/// Deliveries one run makes at most (one webhook, in log order, under its lock once).
const RUN: usize = 256;

/// Outcomes recorded per commit within a run.
const COMMIT_EVERY: usize = 64;

/// A run of webhook `webhook_id`'s pending deliveries `ids` (in log order), under the
/// webhook's lock: each is re-read (skipped unless still pending), attempted, and its outcome
/// recorded; delivered and dead ones let the run go on, a retry (or a 410) ends it, so that
/// no later delivery overtakes one that waits. Outcomes are committed [`COMMIT_EVERY`] at a
/// time: a crash between a send and its commit sends it again (at least once).
async fn run(this: &Sender, webhook_id: &str, ids: Vec<String>) -> Result<(), String> {
    let s = &this.s;
    let _guard = s.locks.lock(&lock_key(webhook_id)).await;
    let Some(w) = webhook(s, webhook_id).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    if !w.data.active {
        return Ok(());
    }
    let target = Target::prepare(this, &w).await;
    let mut done: Vec<Delivery> = Vec::new();
    let mut disable = false;
    for id in ids {
        let Some(mut d) = delivery::by_id(s, &id).await.map_err(|e| e.to_string())? else {
            continue;
        };
        if !d.is_pending() {
            continue; // made by another instance meanwhile
        }
        if d.data.next_attempt_at > now_ms() {
            break; // rescheduled meanwhile: the later ones wait for it
        }
        let next = attempt(this, &target, &mut d).await?;
        done.push(d);
        match next {
            Next::Delivered | Next::DeadLetter => {}
            Next::RetryAfter(_) => break,
            Next::Disable => {
                disable = true;
                break;
            }
        }
        if done.len() >= COMMIT_EVERY {
            commit(s, &std::mem::take(&mut done), None).await?;
        }
    }
    commit(s, &done, disable.then(|| w.id.clone())).await
}

/// Where and how one webhook's requests go, prepared once per run.
struct Target {
    webhook: Webhook,
    /// The client connecting to the vetted address, and the signing keys; or why none.
    ready: Result<(reqwest::Client, Vec<signing::SigningKey>), String>,
}

impl Target {
    async fn prepare(this: &Sender, w: &Webhook) -> Self {
        let s = &this.s;
        let url = &w.data.url;
        let ready = async {
            let addr =
                destination::resolve(url, s.settings.webhooks.allow_private_destinations).await?;
            let client = this
                .clients
                .for_url(s, url, addr, w.data.validate_certificates)?;
            let keys = signing::parse_keys(w.scheme(), &w.data.shared_key)
                .map_err(|e| format!("invalid {e}"))?;
            Ok((client, keys))
        }
        .await;
        Self {
            webhook: w.clone(),
            ready,
        }
    }
}

/// One attempt of delivery `d` (pending and due): sends, records the attempt in `d` and sets
/// its status; what follows.
async fn attempt(this: &Sender, target: &Target, d: &mut Delivery) -> Result<Next, String> {
    let s = &this.s;
    let started = Instant::now();
    let at = infrastream_core::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (code, retry_after, error) = match event_at(s, d.data.position, d.data.event_id).await? {
        Some(event) => send(target, &event, s.settings.webhooks.timeout_ms).await,
        None => {
            // The event was pruned: nothing to send, ever.
            d.record(Attempt {
                at,
                status_code: None,
                latency_ms: 0,
                error: Some("the event was pruned from the log".into()),
            });
            d.data.status = status::DEAD.into();
            return Ok(Next::DeadLetter);
        }
    };
    d.record(Attempt {
        at,
        status_code: code,
        latency_ms: started.elapsed().as_millis() as u64,
        error,
    });
    let cfg = &s.settings.webhooks;
    let policy = RetryPolicy {
        max_attempts: cfg.max_attempts,
        base: Duration::from_millis(cfg.retry_base_ms),
        max: Duration::from_millis(cfg.retry_max_ms),
    };
    let next = retry::next(&policy, d.data.attempts, code, retry_after.as_deref());
    match &next {
        Next::Delivered => d.data.status = status::DELIVERED.into(),
        Next::RetryAfter(delay) => {
            d.data.next_attempt_at = now_ms() + delay.as_millis() as i64;
        }
        Next::DeadLetter | Next::Disable => d.data.status = status::DEAD.into(),
    }
    tracing::debug!(delivery = %d.id, status = %d.data.status, code = ?code, "webhooks: attempt made");
    Ok(next)
}

/// Records `done`, and deactivates webhook `disable` (a 410) in the same commit.
async fn commit(s: &Services, done: &[Delivery], disable: Option<String>) -> Result<(), String> {
    let mut changes: Vec<Change> = done
        .iter()
        .map(|d| Change::UpdateNode(d.to_node()))
        .collect();
    let _config = match &disable {
        Some(id) => Some(config_lock(s, id).await),
        None => None,
    };
    if let Some(id) = &disable
        && let Some(mut w) = webhook(s, id).await.map_err(|e| e.to_string())?
    {
        w.data.active = false;
        changes.push(Change::UpdateNode(w.to_node()));
        tracing::warn!(webhook = %w.name, "webhooks: the receiver answered 410 Gone: webhook deactivated");
    }
    if changes.is_empty() {
        return Ok(());
    }
    s.store
        .commit(Commit {
            changes,
            events: Vec::new(),
        })
        .await
        .map(drop)
        .map_err(|e| Chain(&e).to_string())
}

/// Sends `event` to the target: the status answered, its `Retry-After`, and the failure if
/// any.
async fn send(
    target: &Target,
    event: &Event,
    timeout_ms: u64,
) -> (Option<u16>, Option<String>, Option<String>) {
    let w = &target.webhook;
    let url = &w.data.url;
    let (client, keys) = match &target.ready {
        Ok(ready) => ready,
        Err(e) => return (None, None, Some(e.clone())),
    };
    let bytes = body::body(event);
    let msg_id = signing::message_id(&event.id);
    let timestamp = infrastream_core::now().timestamp();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string());
    if !keys.is_empty() {
        let signature = signing::sign(w.scheme(), keys, &msg_id, timestamp, &bytes);
        request = request.header("webhook-signature", signature);
    }
    match request.body(bytes).send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let error = (!resp.status().is_success()).then(|| format!("HTTP {}", resp.status()));
            (Some(code), retry_after, error)
        }
        Err(e) if e.is_timeout() => (
            None,
            None,
            Some(format!(
                "no answer within {} ms (webhooks.timeout_ms)",
                timeout_ms
            )),
        ),
        Err(e) => (None, None, Some(Chain(&e).to_string())),
    }
}
