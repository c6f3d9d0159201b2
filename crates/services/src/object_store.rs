//! Content-addressed object storage for artifact content and uploads, named by the hex SHA-256
//! of their bytes (the `storage_id`). With the embedded store, one file per object under
//! `<data_dir>/objects/`; with PostgreSQL, the `objects` table of the shared database
//! ([`ObjectStore::postgres`]), so every instance reaches every object.
//!
//! File writes are atomic: the bytes go to a temporary file in the same directory, are fsynced, and
//! the file is renamed into place (then the directory is fsynced), so an object is either
//! absent or complete — never half-written (a write that fails, e.g. on a full disk, removes
//! its temporary file). Identifiers are validated (64 lowercase hex characters) before any
//! path is built, so no identifier can reach outside the directory.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// MD5 hex digest of `bytes` (an artifact's `checksum`, as Infrahub computes it).
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// SHA-256 hex digest of `bytes` (the object's `storage_id`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Where the objects are.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    /// One file per object in this directory.
    Files(PathBuf),
    /// Rows of the `objects` table.
    Postgres(sqlx::PgPool),
}

impl ObjectStore {
    /// The store in `<data_dir>/objects/` (created on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            backend: Backend::Files(data_dir.join("objects")),
        }
    }

    /// The store in the `objects` table of the database of `pool`, created if missing (under
    /// an advisory lock, so instances starting together create it once).
    pub async fn postgres(pool: sqlx::PgPool) -> Result<Self, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7262019, 1)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, content BYTEA NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Self {
            backend: Backend::Postgres(pool),
        })
    }

    /// Whether `id` is a well-formed object identifier: 64 lowercase hex characters.
    pub fn is_valid_id(id: &str) -> bool {
        id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// Stores `bytes`; returns their identifier. Storing bytes that are already stored
    /// intact writes nothing; a stored copy that no longer matches its identifier is replaced.
    pub async fn put(&self, bytes: Vec<u8>) -> std::io::Result<String> {
        let stored = match &self.backend {
            Backend::Files(dir) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || put_blocking(&dir, &bytes))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Backend::Postgres(pool) => put_row(pool, bytes).await,
        };
        if let Err(e) = &stored
            && infrastream_core::storage_full::is_storage_full(e)
        {
            // The client is told STORAGE_FULL (not an internal error, which would be logged
            // with its cause); the operator needs to know too.
            tracing::error!(error = %e, store = ?self.backend, "object store: the storage is full; the object was not stored");
        }
        stored
    }

    /// The bytes of object `id`; `None` when it is not stored. A malformed `id` is an
    /// `InvalidInput` error.
    pub async fn get(&self, id: &str) -> std::io::Result<Option<Vec<u8>>> {
        if !Self::is_valid_id(id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "malformed object identifier",
            ));
        }
        let path = match &self.backend {
            Backend::Files(dir) => dir.join(id),
            Backend::Postgres(pool) => {
                return sqlx::query_scalar::<_, Vec<u8>>(
                    "SELECT content FROM objects WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(io_error);
            }
        };
        match tokio::fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Inserts the object's row unless it is there (same id, same bytes: the id is their hash).
async fn put_row(pool: &sqlx::PgPool, bytes: Vec<u8>) -> std::io::Result<String> {
    let id = sha256_hex(&bytes);
    // A stored copy that no longer matches its id (damaged behind the server's back) is
    // replaced, as with files; an intact one is left alone.
    sqlx::query(
        "INSERT INTO objects (id, content) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE \
         SET content = excluded.content WHERE objects.content IS DISTINCT FROM excluded.content",
    )
    .bind(&id)
    .bind(bytes)
    .execute(pool)
    .await
    .map_err(io_error)?;
    Ok(id)
}

/// A database error as an I/O error; a full disk (SQLSTATE 53100) keeps its kind, so it is
/// reported as `STORAGE_FULL`.
fn io_error(e: sqlx::Error) -> std::io::Error {
    let full = e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "53100");
    if full {
        std::io::Error::new(std::io::ErrorKind::StorageFull, e)
    } else {
        std::io::Error::other(e)
    }
}

fn put_blocking(dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let id = sha256_hex(bytes);
    let target = dir.join(&id);
    if let Ok(existing) = std::fs::read(&target)
        && sha256_hex(&existing) == id
    {
        return Ok(id);
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_hex() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids_are_validated() {
        assert!(ObjectStore::is_valid_id(&sha256_hex(b"x")));
        for bad in [
            "",
            "..",
            "../../etc/passwd",
            "ABCDEF",
            &"g".repeat(64),
            &"A".repeat(64),
            &format!("{}/", "a".repeat(63)),
        ] {
            assert!(!ObjectStore::is_valid_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn postgres_objects_are_shared_by_instances() {
        let Some(url) =
            infrastream_store::conformance::postgres::fresh_database_url("objects").await
        else {
            return;
        };
        let a = ObjectStore::postgres(sqlx::PgPool::connect(&url).await.unwrap())
            .await
            .unwrap();
        let b = ObjectStore::postgres(sqlx::PgPool::connect(&url).await.unwrap())
            .await
            .unwrap();
        let id = a.put(b"rendered config".to_vec()).await.unwrap();
        assert_eq!(id, sha256_hex(b"rendered config"));
        assert_eq!(a.put(b"rendered config".to_vec()).await.unwrap(), id);
        assert_eq!(b.get(&id).await.unwrap().unwrap(), b"rendered config");
        assert!(b.get(&sha256_hex(b"nope")).await.unwrap().is_none());
        assert!(b.get("../x").await.is_err());
    }

    #[tokio::test]
    async fn put_get_round_trip_and_repair() {
        let dir = tempfile_dir();
        let store = ObjectStore::new(&dir);
        let id = store.put(b"hello".to_vec()).await.unwrap();
        assert_eq!(id, sha256_hex(b"hello"));
        assert_eq!(store.get(&id).await.unwrap().unwrap(), b"hello");
        // Idempotent; a tampered copy is replaced.
        std::fs::write(dir.join("objects").join(&id), b"tampered").unwrap();
        assert_eq!(store.put(b"hello".to_vec()).await.unwrap(), id);
        assert_eq!(store.get(&id).await.unwrap().unwrap(), b"hello");
        assert!(store.get(&sha256_hex(b"nope")).await.unwrap().is_none());
        assert!(store.get("../x").await.is_err());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("objects"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![id]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("infrastream-objects-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
