//! The `Store`: the one place state lives. A state change and the events it produces are
//! committed together ([`Store::commit`]); events get gap-free positions at commit; readers
//! read by position range or by [`EventFilter`]. Backends: `sqlite` (embedded, default) and
//! `postgres` (shared by any number of instances); both pass the same `conformance` suite
//! (behind the cargo feature `conformance`, off by default, so release builds do not carry it;
//! the store's own tests turn it on).
//!
//! Neighbours: `core` below (types), `bus` and `graphql` above (they read and commit).

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
pub mod postgres;
mod readiness;
mod retention;
pub mod sqlite;

pub use error::{BoxError, StoreError};
pub use readiness::Readiness;
pub use retention::{LogStart, PruneOutcome, PrunePolicy};

use async_trait::async_trait;
use infrastream_core::{
    Account, ApiToken, Branch, BranchStatus, Event, EventFilter, NewEvent, Node, Position,
    RevokedSession, SavedQuery, SortOrder, Timestamp,
};
use tokio::sync::watch;
use uuid::Uuid;

/// One state change inside a [`Commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Adds a branch; fails with `The branch X already exists` if the name is taken.
    InsertBranch(Branch),
    /// Replaces a branch (found by id); with `expect_status`, fails with a conflict unless the
    /// stored status is that one (so two concurrent merges cannot both succeed).
    UpdateBranch {
        /// The new state.
        branch: Branch,
        /// Required current status.
        expect_status: Option<BranchStatus>,
    },
    /// Removes a branch by name.
    DeleteBranch {
        /// Branch name.
        name: String,
    },
    /// Adds a saved query; fails if the name is taken.
    InsertSavedQuery(SavedQuery),
    /// Replaces a saved query (by id); fails if the new name belongs to another one.
    UpdateSavedQuery(SavedQuery),
    /// Removes a saved query by id.
    DeleteSavedQuery {
        /// Query id.
        id: String,
    },
    /// Adds an account; fails if the name is taken.
    InsertAccount(Account),
    /// Replaces an account (by id).
    UpdateAccount(Account),
    /// Removes an account and revokes its tokens.
    DeleteAccount {
        /// Account id.
        id: String,
    },
    /// Adds an API token.
    InsertToken(ApiToken),
    /// Revokes a token; with `account_id`, only if it belongs to that account.
    RevokeToken {
        /// Token id.
        id: String,
        /// Owner the token must have.
        account_id: Option<String>,
    },
    /// Records a logged-out session; fails with `Conflict` (`Session X is already logged
    /// out`) if it is recorded already, so of two concurrent logouts of one session exactly one
    /// commits (with its event).
    RevokeSession(RevokedSession),
    /// Forgets the revoked sessions whose `expires_at` is before this instant (no token of
    /// theirs can be valid any more).
    PruneRevokedSessions {
        /// Records expiring strictly before this are removed.
        expired_before: Timestamp,
    },
    /// Adds a node. Fails with `AlreadyExists` (`A node with id X already exists`) if a node
    /// of any kind has its id — checked inside the commit's transaction, so of two concurrent
    /// creates with one id exactly one succeeds — or if another node of its kind has its name.
    CreateNode(Node),
    /// Replaces the stored node with its id. Fails with `NotFound` if there is none, with
    /// `Conflict` if the stored node is of another kind (a node's kind never changes), and with
    /// `AlreadyExists` if another node of its kind has its name.
    UpdateNode(Node),
    /// Adds or replaces (by id) a node: [`Change::UpdateNode`] if the id exists (so the kind
    /// cannot change), else [`Change::CreateNode`]. A caller that knows which one it means
    /// should say so: `PutNode` meant as a create silently replaces a node created meanwhile.
    PutNode(Node),
    /// Removes a node by id.
    DeleteNode {
        /// Node id.
        id: String,
    },
    /// Sets a metadata value; with `only_if_absent`, keeps an existing value.
    SetMeta {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// Keep an existing value.
        only_if_absent: bool,
    },
}

/// State changes and the events they produce, committed atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    /// Applied in order.
    pub changes: Vec<Change>,
    /// Appended in order, after the changes.
    pub events: Vec<NewEvent>,
}

impl Commit {
    /// A commit of events only.
    pub fn events(events: Vec<NewEvent>) -> Self {
        Self {
            changes: Vec::new(),
            events,
        }
    }

    /// A commit of one change and no event.
    pub fn change(change: Change) -> Self {
        Self {
            changes: vec![change],
            events: Vec::new(),
        }
    }
}

/// Committed events, batch by batch, in position order.
pub type CommitFeed = tokio::sync::mpsc::UnboundedReceiver<Vec<Event>>;

/// A page of events with the total number of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// Matches regardless of paging.
    pub count: u64,
    /// The page.
    pub events: Vec<Event>,
}

/// The storage interface every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the changes and appends the events in one transaction; returns the stored events.
    async fn commit(&self, commit: Commit) -> Result<Vec<Event>, StoreError>;
    /// Position of the last committed event, updated after every commit.
    fn head(&self) -> watch::Receiver<Position>;
    /// Position of the last event committed by any process sharing the store, read from the
    /// store itself rather than from [`head`](Self::head) (which, on a shared backend, may
    /// lag behind other instances' commits): an event whose commit had not completed when
    /// this was read gets a greater position. The embedded backend has one writer, whose
    /// head moves before its commits return.
    async fn committed_head(&self) -> Result<Position, StoreError> {
        Ok(*self.head().borrow())
    }
    /// The committed events as the backend publishes them — every one, whichever process
    /// committed it, each batch in position order, before [`head`](Self::head) moves — for
    /// the one bus of this process, so that the bus reads nothing back from the store (the
    /// embedded backend hands over its writer's batches; the shared one, its own batches and
    /// what it read of other instances'). Only the first call gets the feed; `None`
    /// when the backend cannot hand events over (the bus then reads them by position).
    fn take_commit_feed(&self) -> Option<CommitFeed> {
        None
    }
    /// Counts the changes to accounts, API tokens and revoked sessions committed by *other*
    /// processes sharing this store (and the moments some may have been missed), so that this
    /// process re-checks the credentials it has cached or holds on live sockets; `None` when
    /// no other process writes the store (the embedded backend).
    fn credential_changes(&self) -> Option<watch::Receiver<u64>> {
        None
    }
    /// Events with position in `(after, after + limit]`, ascending. Never skips an event: when
    /// the event at `after + 1` was pruned (`after` is before [`LogStart::pruned_through`]),
    /// fails with [`StoreError::Pruned`] instead of returning later events.
    async fn read_after(&self, after: Position, limit: usize) -> Result<Vec<Event>, StoreError>;
    /// Events matching `filter`, ordered by position, paged.
    async fn query_events(
        &self,
        filter: &EventFilter,
        order: SortOrder,
        limit: u32,
        offset: u32,
    ) -> Result<EventPage, StoreError>;
    /// Position of the event with this id (`None` for an id not in the log: never there, or
    /// pruned — [`LogStart::covers`] tells which).
    async fn event_position(&self, id: Uuid) -> Result<Option<Position>, StoreError>;
    /// Removes the oldest events as `policy` says ([`PrunePolicy`]): always a prefix of the
    /// log, oldest positions first, so the log stays gap-free from its new start. Commits go
    /// on meanwhile (a backend may remove a long prefix in several transactions, each leaving
    /// a gap-free log); the head does not move and positions are never reused, also when
    /// every event was pruned and after a restart. Removes the pruned events from every
    /// read (`query_events`, `read_after`, `event_position`) and records the new
    /// [`LogStart`] in the same transaction. Calling it again with the same policy and no
    /// new commits removes nothing.
    async fn prune(&self, policy: PrunePolicy) -> Result<PruneOutcome, StoreError>;
    /// Where the log starts: what pruning removed so far (persisted; the default value when
    /// nothing was ever pruned).
    async fn log_start(&self) -> Result<LogStart, StoreError>;
    /// Every branch, ordered by name.
    async fn branches(&self) -> Result<Vec<Branch>, StoreError>;
    /// The branch with this name.
    async fn branch(&self, name: &str) -> Result<Option<Branch>, StoreError>;
    /// Every saved query, ordered by name.
    async fn saved_queries(&self) -> Result<Vec<SavedQuery>, StoreError>;
    /// Every account, ordered by name.
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// The account with this id.
    async fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;
    /// The account with this login name.
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError>;
    /// The token with this hash.
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError>;
    /// The token with this id.
    async fn token(&self, id: &str) -> Result<Option<ApiToken>, StoreError>;
    /// The tokens of an account that are not revoked (expired ones included), oldest first.
    async fn tokens_of(&self, account_id: &str) -> Result<Vec<ApiToken>, StoreError>;
    /// The revoked session with this id, if it is recorded (expired records may linger until
    /// pruned).
    async fn revoked_session(&self, session_id: &str)
    -> Result<Option<RevokedSession>, StoreError>;
    /// Every node of `kind`, ordered by name.
    async fn nodes(&self, kind: &str) -> Result<Vec<Node>, StoreError>;
    /// The node with this id.
    async fn node(&self, id: &str) -> Result<Option<Node>, StoreError>;
    /// A metadata value.
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Whether the store can commit now: `Ok`, or why not ([`StoreError::StorageFull`] when
    /// its storage is full). Answered from the last commit's outcome when it is recent, else
    /// by a real probe commit (one metadata row rewritten), at most one per interval
    /// ([`Readiness`]), so it is cheap to poll.
    async fn ready(&self) -> Result<(), StoreError>;
    /// Waits for in-flight commits and closes the backend.
    async fn close(&self);
}
