//! Changing things: `emit`, `branch`, `token` and `query run`.

use super::{Progress, Server, client, out, parse_json};
use clap::{Args, Subcommand};
use infrastream_client::ClientError;
use serde_json::{Value, json};
use std::io::Write;

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
