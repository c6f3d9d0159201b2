//! Long operations: `repository sync` and `artifact generate`. Each shows a progress indicator
//! on stderr while it runs (see [`Progress`]) and ends with a summary line, or one error line
//! and exit code 1 when the operation failed.

use super::{Progress, Server, client, out};
use clap::{Args, Subcommand};
use infrastream_client::{Client, ClientError};
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[derive(Subcommand)]
pub(crate) enum RepositoryCommand {
    /// Fetches a Git repository now (by name or id); prints the commit it is at.
    Sync {
        /// The repository's name or id.
        repository: String,
    },
}

#[derive(Args)]
pub(crate) struct RepositoryArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: RepositoryCommand,
}

#[derive(Subcommand)]
pub(crate) enum ArtifactCommand {
    /// Generates the artifacts of a definition (by name or id): for the targets given, or for
    /// every existing artifact of the definition when none is given.
    Generate {
        /// The artifact definition's name or id.
        definition: String,
        /// A target node id (or `Kind:id`); may be repeated.
        #[arg(long = "target", value_name = "ID")]
        targets: Vec<String>,
        /// The branch to generate on (default: main).
        #[arg(long)]
        branch: Option<String>,
    },
}

#[derive(Args)]
pub(crate) struct ArtifactArgs {
    #[command(flatten)]
    server: Server,
    #[command(subcommand)]
    command: ArtifactCommand,
}

/// The id of the repository named `name` (or `name` itself when it is an id).
async fn repository_id(client: &Client, name: &str) -> Result<String, ClientError> {
    let data = client
        .graphql(
            None,
            "query($n: String, $ids: [ID]) { byName: CoreRepository(name__value: $n) { edges { node { id } } } byId: CoreRepository(ids: $ids) { edges { node { id } } } }",
            json!({"n": name, "ids": [name]}),
        )
        .await?;
    ["byName", "byId"]
        .iter()
        .find_map(|k| data[k]["edges"][0]["node"]["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| ClientError::Server(format!("Repository '{name}' not found")))
}

pub(crate) async fn repository(args: RepositoryArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let RepositoryCommand::Sync { repository } = &args.command;
    let id = repository_id(&client, repository).await?;
    let started = std::time::Instant::now();
    let progress = Progress::start("syncing");
    let result = client
        .graphql(
            None,
            "mutation($id: String!) { RepositorySync(data: {id: $id}) { ok object { commit { value } sync_message { value } } } }",
            json!({"id": id}),
        )
        .await;
    progress.stop();
    let data = result?;
    let sync = &data["RepositorySync"];
    let text = |v: &Value| v["value"].as_str().unwrap_or("").to_owned();
    if sync["ok"] != true {
        let why = text(&sync["object"]["sync_message"]);
        return Err(ClientError::Server(format!(
            "the sync of '{repository}' failed: {why}"
        )));
    }
    out(&format!(
        "synced repository {repository} at {} in {:.1} s",
        text(&sync["object"]["commit"]),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

pub(crate) async fn artifact(args: ArtifactArgs) -> Result<(), ClientError> {
    let client = client(&args.server)?;
    let ArtifactCommand::Generate {
        definition,
        targets,
        branch,
    } = &args.command;
    let started = std::time::Instant::now();
    let progress = Progress::start("generating");
    let result = client
        .graphql(
            branch.as_deref(),
            "mutation($d: String!, $t: [String!]) { ArtifactGenerate(definition: $d, targets: $t) { ok count artifacts { result object { id error_message { value } } } } }",
            json!({"d": definition, "t": (!targets.is_empty()).then_some(targets)}),
        )
        .await;
    progress.stop();
    let data = result?;
    let generated = &data["ArtifactGenerate"];
    let artifacts = generated["artifacts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for a in &artifacts {
        *outcomes
            .entry(a["result"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out(&format!(
        "generated {} artifacts of {definition} in {:.1} s: {}",
        artifacts.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    ));
    if generated["ok"] != true {
        let first = artifacts
            .iter()
            .find(|a| a["result"] == "error")
            .map(|a| {
                format!(
                    "artifact {}: {}",
                    a["object"]["id"].as_str().unwrap_or("?"),
                    a["object"]["error_message"]["value"].as_str().unwrap_or("")
                )
            })
            .unwrap_or_default();
        return Err(ClientError::Server(format!(
            "some artifacts failed; the first: {first}"
        )));
    }
    Ok(())
}
