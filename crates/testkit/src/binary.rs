//! The real binary as a test server. Its path comes from the caller
//! (`env!("CARGO_BIN_EXE_infrastream")` exists only in the `infrastream` crate's tests).
//!
//! Spawned with no `INFRASTREAM_*` variable of whoever runs the tests, the kit's admin
//! credentials, `INFRASTREAM_FSYNC=false` and `RUST_LOG=warn` in its environment (each can be
//! changed), `serve --listen 127.0.0.1:0 --data-dir DIR` unless the test gives its own
//! arguments, and a fresh temporary data directory unless the test gives one. It is ready once
//! it prints the address it listens on; stdout is always captured (read line by line, so the
//! pipe never fills up), stderr is inherited, captured or dropped. Killed when dropped.

use crate::{ADMIN_PASSWORD, ADMIN_TOKEN};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the binary may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The line the binary prints once it listens, followed by its URL (`http://ADDR`, or
/// `https://ADDR` with TLS).
const LISTENING: &str = "infrastream listening on ";
/// Stands for the data directory in arguments.
pub const DATA_DIR: &str = "{data_dir}";

/// The binary, with no `INFRASTREAM_*` variable of whoever runs the tests leaking in.
pub fn command(exe: impl AsRef<Path>) -> Command {
    let mut cmd = Command::new(exe.as_ref());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("INFRASTREAM_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs the binary to completion with `args` (e.g. `--help`).
///
/// # Panics
/// When it cannot be run.
pub fn run(exe: impl AsRef<Path>, args: &[&str]) -> Output {
    command(exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the infrastream binary")
}

/// What becomes of the server's stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stderr {
    Inherit,
    Capture,
    Null,
}

/// How to start the binary; see the module documentation for the defaults.
#[derive(Debug, Clone)]
pub struct BinaryBuilder {
    exe: PathBuf,
    args: Option<Vec<String>>,
    sets: Vec<String>,
    env: Vec<(String, Option<String>)>,
    data_dir: Option<PathBuf>,
    stderr: Stderr,
}

impl BinaryBuilder {
    /// Arguments instead of `serve --listen 127.0.0.1:0 --data-dir {data_dir}`; `{data_dir}`
    /// in any of them stands for the data directory.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = Some(args.iter().map(|a| a.to_string()).collect());
        self
    }

    /// Adds `--set key=value` after the arguments.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.sets.push(format!("{key}={value}"));
        self
    }

    /// Sets an environment variable (replacing a default).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), Some(value.to_string())));
        self
    }

    /// Removes an environment variable (e.g. a default: `INFRASTREAM_FSYNC`).
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_string(), None));
        self
    }

    /// Serves from `dir` (which the test owns) instead of a fresh temporary directory.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// Captures stderr; read it with [`Binary::stderr`].
    pub fn capture_stderr(mut self) -> Self {
        self.stderr = Stderr::Capture;
        self
    }

    /// Drops stderr.
    pub fn quiet(mut self) -> Self {
        self.stderr = Stderr::Null;
        self
    }

    /// Spawns the binary and waits until it prints the address it listens on.
    ///
    /// # Panics
    /// When it cannot be spawned or does not print its address within [`START_TIMEOUT`].
    pub fn spawn(self) -> Binary {
        let (temp, data_dir) = match &self.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::tempdir().unwrap();
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        let mut binary = self.spawn_in(data_dir);
        binary.temp = temp;
        binary
    }

    fn spawn_in(self, data_dir: PathBuf) -> Binary {
        let default_args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", DATA_DIR];
        let args: Vec<String> = self
            .args
            .clone()
            .unwrap_or_else(|| default_args.iter().map(|a| a.to_string()).collect())
            .into_iter()
            .chain(
                self.sets
                    .iter()
                    .flat_map(|s| ["--set".to_string(), s.clone()]),
            )
            .map(|a| a.replace(DATA_DIR, &data_dir.display().to_string()))
            .collect();
        let mut cmd = command(&self.exe);
        cmd.args(&args)
            .env("INFRASTREAM_INITIAL_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("INFRASTREAM_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("INFRASTREAM_FSYNC", "false")
            .env("RUST_LOG", "warn");
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        cmd.stderr(match self.stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Capture => Stdio::piped(),
            Stderr::Null => Stdio::null(),
        });
        let mut child = cmd.spawn().expect("spawn the infrastream binary");

        let out = child.stdout.take().expect("piped stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads stdout until the process exits, so the pipe never fills up.
        let stdout_thread = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix(LISTENING) {
                    let _ = tx.send(url.trim().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_thread = child.stderr.take().map(|mut err| {
            let bytes = stderr.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match err.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => bytes.lock().unwrap().extend_from_slice(&chunk[..n]),
                    }
                }
            })
        });
        let mut binary = Binary {
            child,
            url: String::new(),
            data_dir,
            temp: None,
            stdout,
            stderr,
            readers: vec![stdout_thread]
                .into_iter()
                .chain(stderr_thread)
                .collect(),
            builder: self,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => binary.url = url,
            Err(_) => {
                let status = binary.child.try_wait();
                panic!(
                    "the server ({args:?}) did not print its address within {START_TIMEOUT:?} (status {status:?}); stdout: {:?}; stderr: {}",
                    binary.stdout(),
                    binary.stderr()
                );
            }
        }
        binary
    }
}

/// A running server process; killed (SIGKILL) and reaped when dropped.
pub struct Binary {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://…` when the server speaks TLS).
    pub url: String,
    data_dir: PathBuf,
    temp: Option<tempfile::TempDir>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    builder: BinaryBuilder,
}

impl Binary {
    /// How to start the binary at `exe`.
    pub fn builder(exe: impl AsRef<Path>) -> BinaryBuilder {
        BinaryBuilder {
            exe: exe.as_ref().to_path_buf(),
            args: None,
            sets: Vec::new(),
            env: Vec::new(),
            data_dir: None,
            stderr: Stderr::Inherit,
        }
    }

    /// Spawns the binary at `exe` with `args` (`{data_dir}`: a fresh temporary directory) and
    /// the default environment.
    pub fn start(exe: impl AsRef<Path>, args: &[&str]) -> Binary {
        Self::builder(exe).args(args).spawn()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, addr)| addr)
    }

    /// `ws://127.0.0.1:PORT/graphql` (`wss://…` when the server speaks TLS).
    pub fn ws_url(&self) -> String {
        let scheme = if self.url.starts_with("https://") {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/graphql", self.addr())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server printed on stdout so far, line by line.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// What the server wrote on stderr so far (empty unless captured).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    ///
    /// # Panics
    /// When `kill` cannot be run or fails.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}: {status}", self.child.id());
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it is still
    /// running. Once it has exited, [`Binary::stdout`] and [`Binary::stderr`] are complete.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.join_readers();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits up to `limit` for the exit; returns its status.
    ///
    /// # Panics
    /// When the process is still running after `limit` (it is killed first).
    pub async fn stop(&mut self, limit: Duration) -> ExitStatus {
        self.terminate();
        match self.wait_exit(limit).await {
            Some(status) => status,
            None => {
                self.kill();
                panic!("the server did not stop within {limit:?} of SIGTERM");
            }
        }
    }

    /// SIGTERM, falling back to SIGKILL after `limit`.
    pub async fn stop_or_kill(&mut self, limit: Duration) {
        self.terminate();
        if self.wait_exit(limit).await.is_none() {
            self.kill();
        }
    }

    /// Starts the same binary again, with the same arguments and environment, on the same data
    /// directory (this process is killed first if it still runs).
    pub fn restart(mut self) -> Binary {
        self.kill();
        let temp = self.temp.take();
        let mut next = self.builder.clone().spawn_in(self.data_dir.clone());
        next.temp = temp;
        next
    }

    fn join_readers(&mut self) {
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
