//! Reading the log: `tail` (follow it, reconnecting and resuming by itself) and `events` (one
//! page of it).

use super::{Server, client, out};
use clap::Args;
use infrastream_client::tail::{Filters, Start};
use infrastream_client::{ClientError, EVENT_FIELDS, output};
use serde_json::{Value, json};
use std::io::Write;

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
