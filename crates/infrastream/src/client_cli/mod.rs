//! The command-line client: subcommands that talk to a running server (`--url`, `--token`,
//! or `INFRASTREAM_URL` / `INFRASTREAM_TOKEN`, else the SDK's `INFRAHUB_ADDRESS` /
//! `INFRAHUB_API_TOKEN`; `--ca-file` for an `https://` server). Output goes to stdout (one
//! JSON object per line with `--json`); an error is one line on stderr with the server's
//! message, and exit code 1.
//! A closed stdout (`infrastream tail --json | head -5`) and Ctrl-C end a command quietly,
//! with exit code 0.

mod follow;
mod manage;
mod operations;

pub(crate) use follow::{EventsArgs, TailArgs, events, tail};
pub(crate) use manage::{BranchArgs, EmitArgs, QueryArgs, TokenArgs, branch, emit, query, token};
pub(crate) use operations::{ArtifactArgs, RepositoryArgs, artifact, repository};

use clap::Args;
use infrastream_client::{Client, ClientError};
use serde_json::Value;
use std::io::Write;

/// Where the server is, and who asks.
#[derive(Args, Clone)]
pub(crate) struct Server {
    /// The server's address [default: INFRAHUB_ADDRESS, else http://127.0.0.1:8000].
    #[arg(long, env = "INFRASTREAM_URL")]
    url: Option<String>,
    /// An API token, sent as X-INFRAHUB-KEY [default: INFRAHUB_API_TOKEN].
    #[arg(long, env = "INFRASTREAM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// For an https:// server: the CA certificates (PEM) to verify it with (default:
    /// SSL_CERT_FILE, else the system's bundle).
    #[arg(long, env = "INFRASTREAM_CA_FILE", value_name = "PATH")]
    ca_file: Option<std::path::PathBuf>,
}

/// Writes a line to stdout; `false` when stdout is closed (the reader went away).
pub(super) fn out(line: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|_| stdout.flush())
        .is_ok()
}

/// The client `server` describes. The address and the token fall back to the variables
/// Infrahub's SDK reads (`INFRAHUB_ADDRESS`, `INFRAHUB_API_TOKEN`), so that one set of
/// variables serves both.
pub(super) fn client(server: &Server) -> Result<Client, ClientError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let url = server
        .url
        .clone()
        .or_else(|| env("INFRAHUB_ADDRESS"))
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let token = server.token.clone().or_else(|| env("INFRAHUB_API_TOKEN"));
    Client::new(&url, token, server.ca_file.as_deref())
}

pub(super) fn parse_json(flag: &str, text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text)
        .map_err(|e| ClientError::Usage(format!("{flag} is not valid JSON: {e}")))
}

/// The exit code of a client command: 0, or 1 after one line on stderr.
pub(crate) fn finish(result: Result<(), ClientError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            1
        }
    }
}

/// What a long operation shows on stderr while it runs: on a terminal, `merging… 3.2 s`
/// updated in place every 200 ms and erased at the end; elsewhere (a pipe, a file, a CI log),
/// once it has run for a second, a line `merging… 1 s` and another every 10 s, so that logs
/// stay readable and a quick operation (or one that fails at once) prints nothing but its
/// result or its one error line.
pub(super) struct Progress {
    ticker: tokio::task::JoinHandle<()>,
    terminal: bool,
}

impl Progress {
    pub(super) fn start(doing: &str) -> Self {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let doing = doing.to_owned();
        let started = std::time::Instant::now();
        let ticker = tokio::spawn(async move {
            let (first, every) = if terminal {
                (200, 200)
            } else {
                (1_000, 10_000)
            };
            tokio::time::sleep(std::time::Duration::from_millis(first)).await;
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(every));
            loop {
                tick.tick().await;
                let elapsed = started.elapsed().as_secs_f64();
                let _ = if terminal {
                    write!(std::io::stderr(), "\r{doing}… {elapsed:.1} s")
                } else {
                    writeln!(std::io::stderr(), "{doing}… {elapsed:.0} s")
                };
            }
        });
        Self { ticker, terminal }
    }

    pub(super) fn stop(self) {
        self.ticker.abort();
        if self.terminal {
            // Erase the line: the result follows on stdout.
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
