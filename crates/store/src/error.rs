use infrastream_core::codes::{self, Code};
use infrastream_core::{DomainError, Error, Position, storage_full};
use std::fmt;

/// A backend failure's cause, kept for logs (`std::error::Error::source` walks the chain).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The change was refused for a reason the client can act on (conflict, not found, …).
    #[error(transparent)]
    Rejected(#[from] Error),
    /// The backend failed; the cause (and its own sources) are for logs only.
    #[error("storage backend failure: {0}")]
    Backend(#[source] BoxError),
    /// The storage is full (no space left on the device, a disk quota, SQLite's
    /// `SQLITE_FULL`, PostgreSQL's `disk_full`, SQLSTATE 53100): nothing of the change was
    /// recorded. The message is the client's ([`storage_full::MESSAGE`]); the
    /// cause is for logs.
    #[error("{}", storage_full::MESSAGE)]
    StorageFull(#[source] BoxError),
    /// A read from `after` would skip events: the ones after it, up to `pruned_through`,
    /// were pruned ([`Store::prune`](crate::Store::prune)). The reader cannot continue
    /// without a gap (`CURSOR_PRUNED`).
    #[error(
        "the events after position {} were pruned: the log now starts after position {}",
        after.0,
        pruned_through.0
    )]
    Pruned {
        /// Where the reader was.
        after: Position,
        /// The last pruned position ([`LogStart::pruned_through`](crate::LogStart)).
        pruned_through: Position,
    },
    /// The database was written by a newer binary.
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    TooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::classify(Box::new(e))
    }
}

impl StoreError {
    /// A backend failure caused by `cause` (an error, or a message: `String` and `&str`
    /// convert too).
    pub fn backend(cause: impl Into<BoxError>) -> Self {
        StoreError::classify(cause.into())
    }

    /// A backend failure while doing `context`, caused by `source`: shown as
    /// `context: source`, with `source` kept as the error's source.
    pub fn backend_context(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::classify(Box::new(Context {
            context: context.into(),
            source: source.into(),
        }))
    }

    /// A backend failure caused by `cause`: [`StoreError::StorageFull`] when the cause (or
    /// one of its sources) says the storage is full, [`StoreError::Backend`] otherwise.
    pub fn classify(cause: BoxError) -> Self {
        if is_storage_full(&*cause) {
            StoreError::StorageFull(cause)
        } else {
            StoreError::Backend(cause)
        }
    }

    /// `cause`, shared by several requests that failed together, under `context` and in the
    /// same class (a full storage stays [`StoreError::StorageFull`]).
    pub fn shared(context: impl Into<String>, cause: std::sync::Arc<StoreError>) -> Self {
        let full = cause.is_storage_full();
        let source = Box::new(Context {
            context: context.into(),
            source: Box::new(cause),
        });
        if full {
            StoreError::StorageFull(source)
        } else {
            StoreError::Backend(source)
        }
    }

    /// Whether this is [`StoreError::StorageFull`].
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StoreError::StorageFull(_))
    }
}

/// Rejections keep their own code, a full storage is `STORAGE_FULL`, a read from a pruned
/// position is `CURSOR_PRUNED`; anything else is an
/// internal failure (logged with its source chain and a correlation id by
/// [`DomainError::user_error`]).
impl DomainError for StoreError {
    fn code(&self) -> &'static Code {
        match self {
            StoreError::Rejected(e) => e.code(),
            StoreError::StorageFull(_) => &codes::STORAGE_FULL,
            StoreError::Pruned { .. } => &codes::CURSOR_PRUNED,
            StoreError::Backend(_) | StoreError::TooNew { .. } => &codes::INTERNAL_SERVER_ERROR,
        }
    }
}

/// SQLite's primary result code `SQLITE_FULL` ("database or disk is full"); extended codes
/// carry it in their low byte.
const SQLITE_FULL: i64 = 13;

/// PostgreSQL's SQLSTATE `disk_full` (a server that could not extend a file for lack of
/// space). Out of memory (53200) and too many connections (53300), the other members of class
/// 53 "insufficient resources", are not about storage.
const PG_DISK_FULL: &str = "53100";

/// Whether `e` or one of its sources says the storage is full: an I/O error of `ENOSPC` or
/// `EDQUOT` ([`storage_full::is_storage_full`]), a SQLite error whose primary code is
/// `SQLITE_FULL` (SQLite reports a write refused for `ENOSPC` that way, and a database that
/// reached `max_page_count`), or PostgreSQL's `disk_full`.
pub(crate) fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(StoreError::StorageFull(_)) = e.downcast_ref::<StoreError>() {
            return true;
        }
        let full = match e.downcast_ref::<sqlx::Error>() {
            Some(sqlx::Error::Database(db)) => database_full(&**db),
            Some(sqlx::Error::Io(io)) => storage_full::is_storage_full(io),
            _ => {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(storage_full::is_storage_full)
                    || e.downcast_ref::<sqlx::sqlite::SqliteError>()
                        .is_some_and(|db| database_full(db))
                    || e.downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some_and(|db| database_full(db))
            }
        };
        if full {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether a database error says the storage is full, in its backend's terms.
fn database_full(db: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    let code = db.code();
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        code.as_deref() == Some(PG_DISK_FULL)
    } else {
        sqlite_full(code.as_deref())
    }
}

/// Whether a SQLite result code (as sqlx gives it, the extended code in decimal) is
/// `SQLITE_FULL`.
fn sqlite_full(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| c & 0xff == SQLITE_FULL)
}

/// What the backend was doing when `source` happened.
#[derive(Debug)]
struct Context {
    context: String,
    source: BoxError,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for Context {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn backend_errors_keep_their_source() {
        let e = StoreError::from(sqlx::Error::RowNotFound);
        assert!(e.source().is_some_and(|s| s.is::<sqlx::Error>()));
        let shown = e.user_error();
        assert_eq!(shown.code, "INTERNAL_SERVER_ERROR");
        assert!(!shown.message.contains("no rows"), "{shown}");

        let io = std::io::Error::other("disk on fire");
        let e = StoreError::backend_context("reading the log head", io);
        assert_eq!(
            e.to_string(),
            "storage backend failure: reading the log head: disk on fire"
        );
        let context = e.source().unwrap();
        assert!(context.source().unwrap().is::<std::io::Error>());

        let e = StoreError::backend("store is closed");
        assert_eq!(e.to_string(), "storage backend failure: store is closed");
    }

    /// A real `SQLITE_FULL`, from a database held to its current size.
    #[tokio::test]
    async fn sqlite_full_is_storage_full() {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(":memory:")
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("PRAGMA max_page_count = 4")
            .execute(&mut conn)
            .await
            .unwrap();
        let mut failure = None;
        for _ in 0..100 {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (zeroblob(3000))")
                .execute(&mut conn)
                .await
            {
                failure = Some(e);
                break;
            }
        }
        let sqlx_error = failure.expect("the database never filled up");
        assert!(
            matches!(&sqlx_error, sqlx::Error::Database(db) if db.code().as_deref() == Some("13")),
            "{sqlx_error:?}"
        );
        let e = StoreError::from(sqlx_error);
        assert!(e.is_storage_full(), "{e:?}");
        assert!(e.source().is_some_and(|s| s.is::<sqlx::Error>()));
        let shown = e.user_error();
        assert_eq!((shown.code, shown.http_status()), ("STORAGE_FULL", 507));
        assert_eq!(shown.message, storage_full::MESSAGE);
        // Shared by the requests of a failed batch, it stays in its class.
        let shared = StoreError::shared("batch failed", std::sync::Arc::new(e));
        assert!(shared.is_storage_full());
        // Other database errors are internal.
        let other = sqlx::query("SELECT * FROM missing")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let e = StoreError::from(other);
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert!(!StoreError::shared("batch failed", std::sync::Arc::new(e)).is_storage_full());
    }

    #[test]
    fn a_pruned_read_is_cursor_pruned() {
        let e = StoreError::Pruned {
            after: Position(3),
            pruned_through: Position(9),
        };
        let shown = e.user_error();
        assert_eq!((shown.code, shown.http_status()), ("CURSOR_PRUNED", 410));
        assert_eq!(
            shown.message,
            "the events after position 3 were pruned: the log now starts after position 9"
        );
    }

    #[test]
    fn no_space_and_quota_io_errors_are_storage_full() {
        for io in [
            std::io::Error::from_raw_os_error(28),
            std::io::Error::from(std::io::ErrorKind::StorageFull),
            std::io::Error::from(std::io::ErrorKind::QuotaExceeded),
        ] {
            let e = StoreError::from(sqlx::Error::Io(io));
            assert!(e.is_storage_full(), "{e:?}");
        }
        let e =
            StoreError::backend_context("writing the log", std::io::Error::from_raw_os_error(28));
        assert!(e.is_storage_full(), "{e:?}");
        assert_eq!(e.user_error().code, "STORAGE_FULL");
        let e = StoreError::backend_context("writing the log", std::io::Error::other("EIO"));
        assert_eq!(e.user_error().code, "INTERNAL_SERVER_ERROR");
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_storage_full());
    }
}
