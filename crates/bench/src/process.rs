//! A server under test for the WebSocket scenarios: either an `infrastream serve` child process
//! (the `infrastream` binary next to this one, or `--server-bin`) on a fresh temporary data
//! directory (so that the server has its own
//! file-descriptor budget and its memory can be read from `/proc/<pid>`), or an external
//! server given by `--url`. Traffic goes to loopback only.

use anyhow::{Context, bail};
use clap::Args;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The admin API token of a spawned server.
const TOKEN: &str = "bench-admin-token-0123456789abcdef0123456789abcdef";

/// The admin password of a spawned server.
const PASSWORD: &str = "bench-password-0123456789";

/// The credential the WebSocket connections authenticate with in `connection_init`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Auth {
    /// The admin API token, as `X-INFRAHUB-KEY`.
    Token,
    /// A JWT access token of the admin account (from `POST /api/auth/login`), as
    /// `Authorization: Bearer …`.
    Jwt,
}

/// How the server under test is found or started.
#[derive(Args, Clone)]
pub(crate) struct ServerArgs {
    /// URL of a running server on loopback (e.g. http://127.0.0.1:8000); without it an
    /// `infrastream serve` child process is started on a temporary data directory per run.
    #[arg(long)]
    url: Option<String>,
    /// Admin API token for --url.
    #[arg(long)]
    token: Option<String>,
    /// Process id of the --url server (to read its RSS and CPU from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Admin password for --url (needed with --auth jwt).
    #[arg(long)]
    password: Option<String>,
    /// Credential of the WebSocket connections: the API token (`X-INFRAHUB-KEY`) or a JWT
    /// access token (`Authorization: Bearer`). Events are emitted with the API token.
    #[arg(long, value_enum, default_value_t = Auth::Token)]
    auth: Auth,
    /// The server binary to spawn (`infrastream`); by default the one next to this executable
    /// (same target directory, e.g. target/release/infrastream).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<std::path::PathBuf>,
    /// fsync on commit for the spawned server.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    fsync: bool,
    /// Extra setting for the spawned server, KEY=VALUE (repeatable; added after the
    /// scenario's own settings, so it wins).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Folder of the Node reference server (its `server.mjs`): each run is repeated against
    /// it, right after the infrastream run, and both are reported side by side. `npm ci` is
    /// run there first when it has no `node_modules`.
    #[arg(long, value_name = "DIR")]
    pub(crate) node_peer: Option<std::path::PathBuf>,
}

impl ServerArgs {
    /// A one-line description of the server for reports.
    pub(crate) fn describe(&self, scenario_settings: &[(&str, String)]) -> String {
        let auth = match self.auth {
            Auth::Token => "sockets authenticated with the API token (X-INFRAHUB-KEY)",
            Auth::Jwt => "sockets authenticated with a JWT access token (Authorization: Bearer)",
        };
        if let Some(url) = &self.url {
            return format!("external server {url}; {auth}");
        }
        let mut s = format!("{auth}; spawned `infrastream serve`, fsync={}", self.fsync);
        for (k, v) in scenario_settings {
            s.push_str(&format!(", {k}={v}"));
        }
        for kv in &self.set {
            s.push_str(&format!(", {kv}"));
        }
        s
    }

    /// The `infrastream` binary to spawn: `--server-bin`, else the one in this executable's
    /// directory.
    fn server_binary(&self) -> anyhow::Result<std::path::PathBuf> {
        server_binary(self.server_bin.as_ref())
    }
}

/// The `infrastream` binary to spawn: `given` (`--server-bin`), else the one in this
/// executable's directory.
pub(crate) fn server_binary(
    given: Option<&std::path::PathBuf>,
) -> anyhow::Result<std::path::PathBuf> {
    {
        if let Some(path) = given {
            if !path.is_file() {
                bail!("--server-bin {}: no such file", path.display());
            }
            return Ok(path.clone());
        }
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let dir = exe.parent().context("this executable has no directory")?;
        let path = dir.join(format!("infrastream{}", std::env::consts::EXE_SUFFIX));
        if !path.is_file() {
            bail!(
                "no server binary at {}: build it (`cargo build --release -p infrastream`, into \
                 the same target directory) or pass --server-bin PATH",
                path.display()
            );
        }
        Ok(path)
    }
}

/// Spawns `infrastream serve` from `exe` with `settings` (`KEY=VALUE`) and the bench's admin
/// API token; killed when the returned server is dropped.
pub(crate) fn spawn_server(
    exe: &std::path::Path,
    fsync: bool,
    settings: &[String],
) -> anyhow::Result<Server> {
    let child = Spawned::start(exe, fsync, settings)?;
    let init = serde_json::json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": TOKEN}});
    Ok(Server {
        addr: child.addr,
        token: TOKEN.to_string(),
        init: init.to_string(),
        pid: Some(child.child.id()),
        child: Some(child),
        _node: None,
    })
}

impl ServerArgs {
    /// Starts (or connects to) the server; `settings` are `--set` values the scenario needs.
    pub(crate) async fn start(&self, settings: &[(&str, String)]) -> anyhow::Result<Server> {
        let mut server = if let Some(url) = &self.url {
            let token = self
                .token
                .clone()
                .context("--token is required with --url")?;
            Server {
                addr: loopback_addr(url)?,
                token,
                init: String::new(),
                pid: self.server_pid,
                child: None,
                _node: None,
            }
        } else {
            let mut all: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
            all.extend(self.set.iter().cloned());
            let child = Spawned::start(&self.server_binary()?, self.fsync, &all)?;
            Server {
                addr: child.addr,
                token: TOKEN.to_string(),
                init: String::new(),
                pid: Some(child.child.id()),
                child: Some(child),
                _node: None,
            }
        };
        let payload = match self.auth {
            Auth::Token => serde_json::json!({"X-INFRAHUB-KEY": server.token}),
            Auth::Jwt => {
                let password = match (&self.url, &self.password) {
                    (None, _) => PASSWORD.to_string(),
                    (Some(_), Some(p)) => p.clone(),
                    (Some(_), None) => bail!("--password is required with --url and --auth jwt"),
                };
                let jwt = login(server.addr, &password).await?;
                serde_json::json!({"Authorization": format!("Bearer {jwt}")})
            }
        };
        server.init =
            serde_json::json!({"type": "connection_init", "payload": payload}).to_string();
        Ok(server)
    }
}

impl ServerArgs {
    /// Refuses `--node-peer` in a scenario that has no Node run, instead of ignoring it.
    pub(crate) fn without_node_peer(&self, scenario: &str) -> anyhow::Result<()> {
        if self.node_peer.is_some() {
            anyhow::bail!(
                "--node-peer is not supported by `{scenario}`; only `fanout` runs the Node reference server"
            );
        }
        Ok(())
    }

    /// Starts the Node reference server from `--node-peer` on a free loopback port; its
    /// sockets authenticate with the API token, as with infrastream.
    pub(crate) async fn start_node_peer(&self) -> anyhow::Result<Server> {
        let dir = self
            .node_peer
            .as_deref()
            .context("--node-peer is not set")?;
        if !dir.join("node_modules").is_dir() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--silent"])
                .current_dir(dir)
                .status()
                .context("cannot run npm ci for the Node reference server")?;
            if !status.success() {
                bail!("npm ci failed in {}", dir.display());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = tempfile::NamedTempFile::new()?;
        let child = Command::new("node")
            .arg("server.mjs")
            .current_dir(dir)
            .env("PORT", port.to_string())
            .env("TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen()?)
            .spawn()
            .context("cannot start `node server.mjs`")?;
        let node = NodePeer { child, log };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let up = reqwest::get(format!("http://{addr}/health")).await;
            if up.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the Node reference server did not answer /health; log:\n{}",
                    std::fs::read_to_string(node.log.path()).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let init =
            serde_json::json!({"type": "connection_init", "payload": {"X-INFRAHUB-KEY": TOKEN}});
        Ok(Server {
            addr,
            token: TOKEN.to_string(),
            init: init.to_string(),
            pid: Some(node.child.id()),
            child: None,
            _node: Some(node),
        })
    }
}

/// A `node server.mjs` child process, killed when dropped.
struct NodePeer {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `host:port` of an `http://` URL, which must be an IP literal in 127.0.0.0/8.
fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr: SocketAddr = hostport
        .parse()
        .with_context(|| format!("--url must be http://IP:PORT, got {url}"))?;
    if !addr.ip().is_loopback() {
        bail!("the benchmark only sends traffic to loopback addresses, not {addr}");
    }
    Ok(addr)
}

/// A JWT access token of `admin`, from `POST /api/auth/login`.
async fn login(addr: SocketAddr, password: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({"username": "admin", "password": password});
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/auth/login"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match v["access_token"].as_str() {
        Some(t) if status.is_success() => Ok(t.to_string()),
        _ => bail!("login failed: {status} {text}"),
    }
}

/// A running server under test; a spawned one is killed when this is dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    /// Admin API token (for HTTP requests).
    pub(crate) token: String,
    /// The `connection_init` message of the WebSocket connections.
    pub(crate) init: String,
    pid: Option<u32>,
    child: Option<Spawned>,
    _node: Option<NodePeer>,
}

impl Server {
    pub(crate) fn http_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// `error`, followed by the end of the server's log (when this process started it).
    pub(crate) fn with_log_tail(&self, error: anyhow::Error) -> anyhow::Error {
        anyhow::anyhow!("{error:#}\nserver log:\n{}", self.log_tail())
    }

    /// The server's resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// The server's peak resident set size since it started, in KiB (`VmHWM`).
    pub(crate) fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_kib("VmHWM:")
    }

    /// A `… kB` field of `/proc/<pid>/status`.
    fn status_kib(&self, field: &str) -> anyhow::Result<u64> {
        let pid = self
            .pid
            .context("the server's memory needs its process id (--server-pid with --url)")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {field} in /proc/<pid>/status"))
    }

    /// CPU seconds (user + system) the server has used, if its process id is known.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        self.cpu_times().map(|t| t.total())
    }

    /// CPU time the server has used, if its process id is known.
    pub(crate) fn cpu_times(&self) -> Option<CpuTimes> {
        CpuTimes::of(&format!("/proc/{}/stat", self.pid?))
    }

    /// The last lines of a spawned server's log (for error messages).
    pub(crate) fn log_tail(&self) -> String {
        self.child
            .as_ref()
            .map(Spawned::log_tail)
            .unwrap_or_default()
    }
}

/// User and kernel CPU seconds of a process (Linux `/proc/<pid>/stat`, 10 ms resolution).
#[derive(Clone, Copy)]
pub(crate) struct CpuTimes {
    pub(crate) user: f64,
    pub(crate) sys: f64,
}

impl CpuTimes {
    /// The times of the process whose `stat` file is `path` (`/proc/self/stat` for this one).
    pub(crate) fn of(path: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(path).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime, in USER_HZ (100) ticks.
        let tick = |i: usize| Some(fields.get(i)?.parse::<f64>().ok()? / 100.0);
        Some(Self {
            user: tick(11)?,
            sys: tick(12)?,
        })
    }

    pub(crate) fn total(self) -> f64 {
        self.user + self.sys
    }

    /// The time used since `earlier`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
}

/// An `infrastream serve` child process.
struct Spawned {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Spawned {
    fn start(exe: &std::path::Path, fsync: bool, settings: &[String]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--set")
            .arg(format!("fsync={fsync}"));
        for kv in settings {
            cmd.arg("--set").arg(kv);
        }
        cmd.env("INFRASTREAM_INITIAL_ADMIN_TOKEN", TOKEN)
            .env("INFRASTREAM_INITIAL_ADMIN_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start `{} serve`", exe.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the address, then keeps draining stdout so the server never blocks on it.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Some(a) =
                            line.trim().strip_prefix("infrastream listening on http://")
                        {
                            let _ = tx.send(a.to_string());
                            break;
                        }
                    }
                }
            }
            let mut sink = [0u8; 4096];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        });
        let mut spawned = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
        };
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => bail!(
                "the server did not report its address; log:\n{}",
                spawned.log_tail()
            ),
        };
        spawned.addr = addr.parse().context("unparsable listen address")?;
        Ok(spawned)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
