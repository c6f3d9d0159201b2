//! Content-addressed object storage for artifact content and uploads: one file per object
//! under `<data_dir>/objects/`, named by the hex SHA-256 of its bytes (the `storage_id`).
//!
//! Writes are atomic: the bytes go to a temporary file in the same directory, are fsynced, and
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

/// The object store of one data directory.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    dir: PathBuf,
}

impl ObjectStore {
    /// The store in `<data_dir>/objects/` (created on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("objects"),
        }
    }

    /// Whether `id` is a well-formed object identifier: 64 lowercase hex characters.
    pub fn is_valid_id(id: &str) -> bool {
        id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    /// The file of object `id`, if `id` is well-formed.
    pub fn path_of(&self, id: &str) -> Option<PathBuf> {
        Self::is_valid_id(id).then(|| self.dir.join(id))
    }

    /// Stores `bytes`; returns their identifier. Storing bytes that are already stored
    /// intact writes nothing; a stored copy that no longer matches its identifier is replaced.
    pub async fn put(&self, bytes: Vec<u8>) -> std::io::Result<String> {
        let dir = self.dir.clone();
        let stored = tokio::task::spawn_blocking(move || put_blocking(&dir, &bytes))
            .await
            .map_err(std::io::Error::other)?;
        if let Err(e) = &stored
            && infrastream_core::storage_full::is_storage_full(e)
        {
            // The client is told STORAGE_FULL (not an internal error, which would be logged
            // with its cause); the operator needs to know too.
            tracing::error!(error = %e, dir = %self.dir.display(), "object store: the storage is full; the object was not stored");
        }
        stored
    }

    /// The bytes of object `id`; `None` when it is not stored. A malformed `id` is an
    /// `InvalidInput` error.
    pub async fn get(&self, id: &str) -> std::io::Result<Option<Vec<u8>>> {
        let Some(path) = self.path_of(id) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "malformed object identifier",
            ));
        };
        match tokio::fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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
