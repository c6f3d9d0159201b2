//! Domain types of infrastream and nothing else: events and their positions, branches,
//! saved queries, accounts and tokens, the event filter and its matching rules, error kinds.
//!
//! No I/O and no async runtime live here; `store`, `graphql` and `server` build on these types.

pub mod account;
pub mod branch;
pub mod codes;
pub mod error;
pub mod event;
pub mod filter;
pub mod node;
pub mod saved_query;
pub mod storage_full;
pub mod time;

pub use account::{Account, ApiToken, RevokedSession, Role};
pub use branch::{Branch, BranchStatus, validate_branch_name};
pub use codes::Code;
pub use error::{Chain, DomainError, Error, ErrorKind};
pub use event::{Event, EventName, NewEvent, ParentRef, Position, RelatedNode};
pub use filter::{EventFilter, SortOrder};
pub use node::Node;
pub use saved_query::SavedQuery;
pub use time::{Timestamp, format_timestamp, now, parse_timestamp};
