//! The data directory of the embedded store holds the event log, password and token hashes and
//! the JWT signing secret (in `infrastream.db`), so it is private to the server's user, as
//! PostgreSQL and ssh keep theirs: created `0700` with its database files `0600` whatever the
//! umask, and a directory or database file that group or others can read is refused at start
//! with a message that names the path and the command that fixes it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// File name of the embedded database; SQLite adds `-wal` and `-shm` next to it.
pub(crate) const DATABASE: &str = "infrastream.db";

/// The database file and the two SQLite keeps beside it in WAL mode.
const DATABASE_FILES: [&str; 3] = [DATABASE, "infrastream.db-wal", "infrastream.db-shm"];

/// Creates `dir` (mode `0700`) or checks that an existing one, and the database files in it,
/// are not readable by group or others; `Err` is the message for the operator.
pub(crate) fn prepare(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .and_then(|()| set_mode(dir, 0o700))
            .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
        return Ok(());
    }
    refuse_if_shared(dir, "data directory", 0o700)?;
    for name in DATABASE_FILES {
        let file = dir.join(name);
        if file.exists() {
            refuse_if_shared(&file, "database file (it holds the signing secret)", 0o600)?;
        }
    }
    Ok(())
}

/// Makes the database files private (`0600`) once the store has created them.
pub(crate) fn restrict_database_files(dir: &Path) -> std::io::Result<()> {
    for name in DATABASE_FILES {
        let file = dir.join(name);
        if file.exists() {
            set_mode(&file, 0o600)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// `Err` (naming `path` and the `chmod` that fixes it) when group or others may access `path`.
pub(crate) fn refuse_if_shared(path: &Path, what: &str, fix: u32) -> Result<(), String> {
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(format!(
        "the {what} {path} is accessible by group or others (mode {mode:04o}); \
         make it private to the server's user: chmod {fix:o} {path}",
        path = path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_private_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_shared_directory_or_database_is_refused_with_the_fix() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        set_mode(&dir, 0o755).unwrap();
        let e = prepare(&dir).unwrap_err();
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(e.contains("mode 0755"), "{e}");
        assert!(e.contains(&format!("chmod 700 {}", dir.display())), "{e}");

        set_mode(&dir, 0o700).unwrap();
        let db = dir.join(DATABASE);
        std::fs::write(&db, b"").unwrap();
        set_mode(&db, 0o644).unwrap();
        let e = prepare(&dir).unwrap_err();
        assert!(e.contains(&format!("chmod 600 {}", db.display())), "{e}");

        restrict_database_files(&dir).unwrap();
        assert_eq!(mode(&db), 0o600);
        prepare(&dir).unwrap();
    }
}
