//! The data directory holds the signing secret and credential hashes: the server creates it
//! private (`0700`, database files `0600`) and refuses to start on one that group or others
//! can read, naming the path and the fix.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn start(dir: &Path) -> Result<infrastream_server::Server, String> {
    let settings = infrastream_config::load(
        None,
        Vec::new(),
        &[
            ("data_dir".to_string(), dir.display().to_string()),
            ("fsync".to_string(), "false".to_string()),
        ],
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    infrastream_server::Server::start(settings, listener)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn the_server_creates_its_data_directory_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let server = start(&dir).await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    let db = dir.join("infrastream.db");
    assert_eq!(mode(&db), 0o600);
    for side in ["infrastream.db-wal", "infrastream.db-shm"] {
        let f = dir.join(side);
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{side}");
        }
    }
    drop(server);
}

#[tokio::test]
async fn a_data_directory_readable_by_others_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = start(&dir)
        .await
        .err()
        .expect("a 0755 data directory is refused");
    assert!(
        e.contains(&format!("chmod 700 {}", dir.display())),
        "the message names the path and the fix: {e}"
    );
    assert!(!dir.join("infrastream.db").exists(), "nothing was written");
}
