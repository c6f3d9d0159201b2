//! The command-line client: subcommands that talk to a running server (`--url`, `--token`,
//! or `INFRASTREAM_URL` / `INFRASTREAM_TOKEN`, else the SDK's `INFRAHUB_ADDRESS` /
//! `INFRAHUB_API_TOKEN`; `--ca-file` for an `https://` server). Output goes to stdout (one
//! JSON object per line with `--json`); an error is one line on stderr with the server's
//! message, and exit code 1.
//! A closed stdout (`infrastream tail --json | head -5`) and Ctrl-C end a command quietly,
//! with exit code 0.

use clap::{Args, Subcommand};
use infrastream_client::tail::{Filters, Start};
use infrastream_client::{Client, ClientError, EVENT_FIELDS, output};
use serde_json::{Value, json};
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

/// The filters of `tail` and `events` (each may be repeated: any of them).
#[derive(Args, Clone)]
pub(crate) struct EventFilters {
    /// Event name (e.g. infrahub.branch.created).
    #[arg(long = "type", value_name = "EVENT")]
    types: Vec<String>,
    /// Branch name.
    #[arg(long = "branch", value_name = "BRANCH")]
    branches: Vec<String>,
    /// Id of the event's primary node.
    #[arg(long = "node", value_name = "ID")]
    nodes: Vec<String>,
    /// Account id.
    #[arg(long = "account", value_name = "ID")]
    accounts: Vec<String>,
}

impl EventFilters {
    fn filters(&self) -> Filters {
        Filters {
            types: self.types.clone(),
            branches: self.branches.clone(),
            nodes: self.nodes.clone(),
            accounts: self.accounts.clone(),
        }
    }
}

#[derive(Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    filters: EventFilters,
    /// One JSON object per line instead of a readable line.
    #[arg(long)]
    json: bool,
    /// Start after this event (its id) instead of with the next one.
    #[arg(long, value_name = "ID", conflicts_with = "from_start")]
    after: Option<String>,
    /// Start with the oldest event in the log.
    #[arg(long)]
    from_start: bool,
}

#[derive(Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    filters: EventFilters,
    /// Events per page (at most the server's page size, 50 by default).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Events to skip.
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Oldest first (default: newest first).
    #[arg(long)]
    asc: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct EmitArgs {
    #[command(flatten)]
    server: Server,
    /// The event's name (outside the `infrahub.` namespace).
    event: String,
    /// Its payload, as JSON.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// The branch it is about.
    #[arg(long)]
    branch: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum BranchCommand {
    /// Creates a branch from main.
    Create {
        /// Its name.
        name: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
    },
    /// Lists the branches.
    List,
    /// Merges a branch into main.
    Merge {
        /// Its name.
        name: String,
    },
    /// Rebases a branch onto main.
    Rebase {
        /// Its name.
        name: String,
    },
    /// Deletes a branch.
    Delete {
        /// Its name.
        name: String,
    },
}

#[derive(Args)]
pub(crate) struct BranchArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: BranchCommand,
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Creates an API token for the caller's account; prints it (shown once).
    Create {
        /// Its name.
        #[arg(long)]
        name: Option<String>,
        /// When it expires (RFC 3339).
        #[arg(long)]
        expiration: Option<String>,
    },
    /// Lists the caller's tokens (id, name, expiration; never the secrets).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a token of the caller's account.
    Revoke {
        /// Its id.
        id: String,
    },
}

#[derive(Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
pub(crate) enum QueryCommand {
    /// Runs a saved query (CoreGraphQLQuery) by name; prints its data as JSON.
    Run {
        /// The saved query's name.
        name: String,
        /// Its variables, as JSON.
        #[arg(long, default_value = "{}")]
        params: String,
        /// The branch to run it on.
        #[arg(long)]
        branch: Option<String>,
    },
}

#[derive(Args)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: QueryCommand,
}

/// Writes a line to stdout; `false` when stdout is closed (the reader went away).
fn out(line: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|_| stdout.flush())
        .is_ok()
}

/// The client `server` describes. The address and the token fall back to the variables
/// Infrahub's SDK reads (`INFRAHUB_ADDRESS`, `INFRAHUB_API_TOKEN`), so that one set of
/// variables serves both.
fn client(server: &Server) -> Result<Client, ClientError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let url = server
        .url
        .clone()
        .or_else(|| env("INFRAHUB_ADDRESS"))
        .unwrap_or_else(|| "http://127.0.0.1:8000".into());
    let token = server.token.clone().or_else(|| env("INFRAHUB_API_TOKEN"));
    Client::new(&url, token, server.ca_file.as_deref())
}

fn parse_json(flag: &str, text: &str) -> Result<Value, ClientError> {
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

pub(crate) async fn tail(args: TailArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let start = match (args.after, args.from_start) {
        (Some(id), _) => Start::After(id),
        (None, true) => Start::FromStart,
        (None, false) => Start::Now,
    };
    let json = args.json;
    let deliver = |e: &Value| {
        if json {
            out(&e.to_string())
        } else {
            out(&output::format_line(e))
        }
    };
    let notice = |n: &str| {
        let _ = writeln!(std::io::stderr(), "{n}");
    };
    let filters = args.filters.filters();
    tokio::select! {
        r = infrastream_client::tail::tail(&client, &filters, start, deliver, notice) => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = stdout_closed() => Ok(()),
    }
}

/// Resolves when stdout is a pipe whose reader went away (`tail | head -1` while no event
/// comes), so that `tail` ends then instead of at its next write; never otherwise (a
/// terminal, a file).
async fn stdout_closed() {
    let is_pipe = rustix::fs::fstat(std::io::stdout())
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo)
        .unwrap_or(false);
    if !is_pipe {
        return std::future::pending().await;
    }
    // poll(2) reports POLLERR on a pipe's write end once its reader is gone, whatever was
    // asked for; nothing is asked for here, so it waits for exactly that. A detached thread,
    // not `spawn_blocking`: the runtime waits for its blocking tasks when it shuts down, and
    // a command that ends for another reason (an error, Ctrl-C) must not wait for the reader.
    let (gone, reader_gone) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let stdout = std::io::stdout();
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &stdout,
                rustix::event::PollFlags::empty(),
            )];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) if !fds[0].revents().is_empty() => break,
                Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            }
        }
        let _ = gone.send(());
    });
    if reader_gone.await.is_err() {
        // poll failed: never resolve, as for a terminal.
        std::future::pending::<()>().await;
    }
}

const EVENTS: &str = "query($types: [String!], $branches: [String!], $nodes: [String!], $accounts: [String!], $limit: Int, $offset: Int, $order: EventSortOrder) { InfrahubEvent(event_type: $types, branches: $branches, primary_node__ids: $nodes, account__ids: $accounts, limit: $limit, offset: $offset, order: $order) { count edges { node { FIELDS } } } }";

pub(crate) async fn events(args: EventsArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let f = &args.filters;
    let list = |l: &Vec<String>| (!l.is_empty()).then(|| json!(l));
    let vars = json!({
        "types": list(&f.types), "branches": list(&f.branches), "nodes": list(&f.nodes),
        "accounts": list(&f.accounts), "limit": args.limit, "offset": args.offset,
        "order": if args.asc { "ASC" } else { "DESC" },
    });
    let data = client
        .graphql(None, &EVENTS.replace("FIELDS", EVENT_FIELDS), vars)
        .await?;
    let events: Vec<Value> = data["InfrahubEvent"]["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default();
    if args.json {
        for e in &events {
            if !out(&e.to_string()) {
                return Ok(());
            }
        }
    } else {
        let count = &data["InfrahubEvent"]["count"];
        out(&output::table(&events));
        let shown = events.len() as u32;
        out(&format!(
            "({shown} shown, {} to {} of {count})",
            args.offset + u32::from(shown > 0),
            args.offset + shown
        ));
    }
    Ok(())
}

pub(crate) async fn emit(args: EmitArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let payload = parse_json("--payload", &args.payload)?;
    let data = client
        .graphql(
            None,
            "mutation($e: String!, $p: GenericScalar, $b: String) { EventEmit(data: {event: $e, payload: $p, branch: $b}) { object { id } } }",
            json!({"e": args.event, "p": payload, "b": args.branch}),
        )
        .await?;
    out(data["EventEmit"]["object"]["id"]
        .as_str()
        .unwrap_or_default());
    Ok(())
}

pub(crate) async fn branch(args: BranchArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let name_op = |op: &str, doing: &'static str, done: &'static str, name: &str| {
        (
            format!("mutation($n: String) {{ {op}(data: {{name: $n}}) {{ ok }} }}"),
            doing,
            done,
            name.to_owned(),
        )
    };
    let (query, doing, verb, name) = match &args.command {
        BranchCommand::List => {
            let data = client
                .graphql(
                    None,
                    "{ Branch { name status branched_from description } }",
                    json!({}),
                )
                .await?;
            for b in data["Branch"].as_array().cloned().unwrap_or_default() {
                let line = format!(
                    "{}  {}  branched_from={}",
                    b["name"].as_str().unwrap_or(""),
                    b["status"].as_str().unwrap_or(""),
                    b["branched_from"].as_str().unwrap_or("")
                );
                if !out(&line) {
                    break;
                }
            }
            return Ok(());
        }
        BranchCommand::Create { name, description } => {
            client
                .graphql(
                    None,
                    "mutation($n: String!, $d: String) { BranchCreate(data: {name: $n, description: $d}) { ok } }",
                    json!({"n": name, "d": description}),
                )
                .await?;
            out(&format!("created branch {name}"));
            return Ok(());
        }
        BranchCommand::Merge { name } => name_op("BranchMerge", "merging", "merged", name),
        BranchCommand::Rebase { name } => name_op("BranchRebase", "rebasing", "rebased", name),
        BranchCommand::Delete { name } => name_op("BranchDelete", "deleting", "deleted", name),
    };
    // Merges and rebases of large branches take a while: say so on stderr.
    let started = std::time::Instant::now();
    let progress = Progress::start(doing);
    let result = client.graphql(None, &query, json!({"n": name})).await;
    progress.stop();
    result?;
    out(&format!(
        "{verb} branch {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// What a long operation shows on stderr while it runs: on a terminal, `merging… 3.2 s`
/// updated in place every 200 ms and erased at the end; elsewhere (a pipe, a file, a CI log),
/// once it has run for a second, a line `merging… 1 s` and another every 10 s, so that logs
/// stay readable and a quick operation (or one that fails at once) prints nothing but its
/// result or its one error line.
struct Progress {
    ticker: tokio::task::JoinHandle<()>,
    terminal: bool,
}

impl Progress {
    fn start(doing: &str) -> Self {
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

    fn stop(self) {
        self.ticker.abort();
        if self.terminal {
            // Erase the line: the result follows on stdout.
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

pub(crate) async fn token(args: TokenArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    match &args.command {
        TokenCommand::Create { name, expiration } => {
            let data = client
                .graphql(
                    None,
                    "mutation($n: String, $e: String) { InfrahubAccountTokenCreate(data: {name: $n, expiration: $e}) { object { id token { value } } } }",
                    json!({"n": name, "e": expiration}),
                )
                .await?;
            let object = &data["InfrahubAccountTokenCreate"]["object"];
            out(object["token"]["value"].as_str().unwrap_or_default());
            let _ = writeln!(
                std::io::stderr(),
                "token id {} (shown once: keep it now)",
                object["id"].as_str().unwrap_or_default()
            );
        }
        TokenCommand::List { json } => {
            let data = client
                .graphql(
                    None,
                    "{ InfrahubAccountToken { count edges { node { id name expiration } } } }",
                    json!({}),
                )
                .await?;
            let edges = data["InfrahubAccountToken"]["edges"].as_array().cloned();
            for node in edges.unwrap_or_default().iter().map(|e| &e["node"]) {
                let line = if *json {
                    node.to_string()
                } else {
                    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
                    format!(
                        "{}  {}  expires={}",
                        text(&node["id"]),
                        text(&node["name"]),
                        node["expiration"].as_str().unwrap_or("never")
                    )
                };
                if !out(&line) {
                    break;
                }
            }
        }
        TokenCommand::Revoke { id } => {
            client
                .graphql(
                    None,
                    "mutation($i: String) { InfrahubAccountTokenDelete(data: {id: $i}) { ok } }",
                    json!({"i": id}),
                )
                .await?;
            out(&format!("revoked token {id}"));
        }
    }
    Ok(())
}

pub(crate) async fn query(args: QueryArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let QueryCommand::Run {
        name,
        params,
        branch,
    } = &args.command;
    let params = parse_json("--params", params)?;
    let data = client
        .graphql(
            None,
            "query($n: String) { CoreGraphQLQuery(name__value: $n) { edges { node { query { value } } } } }",
            json!({"n": name}),
        )
        .await?;
    let Some(text) = data["CoreGraphQLQuery"]["edges"][0]["node"]["query"]["value"].as_str() else {
        return Err(ClientError::Server(format!(
            "Saved query '{name}' not found"
        )));
    };
    let result = client.graphql(branch.as_deref(), text, params).await?;
    out(&result.to_string());
    Ok(())
}
