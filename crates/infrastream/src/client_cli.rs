//! The command-line client: subcommands that talk to a running server (`--url`, `--token`,
//! or `INFRASTREAM_URL` / `INFRASTREAM_TOKEN`). Output goes to stdout (one JSON object per line
//! with `--json`); an error is one line on stderr with the server's message, and exit code 1.
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
    /// The server's address.
    #[arg(long, env = "INFRASTREAM_URL", default_value = "http://127.0.0.1:8000")]
    url: String,
    /// An API token (sent as X-INFRAHUB-KEY).
    #[arg(long, env = "INFRASTREAM_TOKEN", hide_env_values = true)]
    token: Option<String>,
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

fn client(server: &Server) -> Result<Client, ClientError> {
    Client::new(&server.url, server.token.clone())
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
    // asked for; nothing is asked for here, so it waits for exactly that.
    let _ = tokio::task::spawn_blocking(|| {
        let stdout = std::io::stdout();
        loop {
            let mut fds = [rustix::event::PollFd::new(
                &stdout,
                rustix::event::PollFlags::empty(),
            )];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) if !fds[0].revents().is_empty() => return,
                Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return std::thread::park(),
            }
        }
    })
    .await;
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
    let name_op = |op: &str, verb: &str, name: &str| {
        (
            format!("mutation($n: String) {{ {op}(data: {{name: $n}}) {{ ok }} }}"),
            verb.to_owned(),
            name.to_owned(),
        )
    };
    let (query, verb, name) = match &args.command {
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
        BranchCommand::Merge { name } => name_op("BranchMerge", "merged", name),
        BranchCommand::Rebase { name } => name_op("BranchRebase", "rebased", name),
        BranchCommand::Delete { name } => name_op("BranchDelete", "deleted", name),
    };
    // Merges and rebases of large branches take a while: say so on stderr.
    let started = std::time::Instant::now();
    let _ = writeln!(std::io::stderr(), "{}…", &verb[..verb.len() - 1]);
    client.graphql(None, &query, json!({"n": name})).await?;
    out(&format!(
        "{verb} branch {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
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
