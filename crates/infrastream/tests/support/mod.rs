//! The real debug binary as a test server: spawned with chosen arguments on 127.0.0.1:0 (the
//! kernel picks a free port; the server prints it) and a temporary data directory, with the
//! admin credentials fixed through `INFRASTREAM_INITIAL_ADMIN_*`; killed when dropped.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The admin API token every binary under test starts with.
pub const ADMIN_TOKEN: &str = "examples-admin-token-5d1f0c9a7e3b2d4f6a8c0e1b3d5f7a9c";
/// The admin password every binary under test starts with (alphanumeric, like generated ones).
pub const ADMIN_PASSWORD: &str = "ExamplesAdminPassword42";

/// The binary, with no `INFRASTREAM_*` variable of whoever runs the tests leaking in.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infrastream"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("INFRASTREAM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs the binary to completion with `args` (e.g. `--help`).
pub fn run(args: &[&str]) -> Output {
    command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the infrastream binary")
}

/// A running server process.
pub struct Binary {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory (removed when dropped).
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Binary {
    /// Spawns the binary with `args`, where `{data_dir}` stands for a fresh temporary
    /// directory, and waits until it prints the address it listens on.
    pub fn start(args: &[&str]) -> Binary {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{data_dir}", &data_dir.display().to_string()))
            .collect();
        let mut child = command()
            .args(&args)
            .env("INFRASTREAM_INITIAL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("INFRASTREAM_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("INFRASTREAM_FSYNC", "false")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the infrastream binary");
        let out = child.stdout.take().expect("piped stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads stdout until the process exits, so the pipe never fills up.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("infrastream listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut binary = Binary {
            child,
            url: String::new(),
            data_dir,
            _dir: dir,
            stdout,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => binary.url = format!("http://{addr}"),
            Err(_) => {
                let status = binary.child.try_wait();
                panic!(
                    "the server ({args:?}) did not print its address within 60 s (status {status:?}); stdout: {:?}",
                    binary.stdout()
                );
            }
        }
        binary
    }

    /// What the server printed so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
