//! The `infrastream` binary: `serve` (the default) runs the server. (The load generator is a
//! binary of its own, `infrastream-bench`, in `crates/bench`.) Serve's flags are accepted with or without the word `serve`
//! (`infrastream --listen ADDR` is `infrastream serve --listen ADDR`). Settings come from defaults, `--config FILE`, `INFRASTREAM_*` variables and flags,
//! in that order of precedence (later wins).

use anyhow::Context;
mod client_cli;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "infrastream",
    version,
    about = "Durable, ordered event log of an infrastructure data platform, streamed over GraphQL subscriptions",
    // Without a subcommand the flags are serve's; with one, only the subcommand's own flags.
    args_conflicts_with_subcommands = true,
    after_long_help = "Without a subcommand, runs `serve` with the flags above; \
        `infrastream serve --help` lists every setting with its default."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Serve's flags, for `infrastream [FLAGS]` without a subcommand.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    #[command(after_long_help = settings_help())]
    Serve(ServeArgs),
    /// Follow the event log of a running server (reconnects and resumes by itself).
    Tail(client_cli::TailArgs),
    /// Query the event log once (InfrahubEvent's filters, paging; a table or JSON lines).
    Events(client_cli::EventsArgs),
    /// Commit a custom event; prints its id.
    Emit(client_cli::EmitArgs),
    /// Create, list, merge, rebase or delete branches.
    Branch(client_cli::BranchArgs),
    /// Create, list or revoke API tokens of the caller's account.
    Token(client_cli::TokenArgs),
    /// Run a saved query.
    Query(client_cli::QueryArgs),
    /// Sync a Git repository now.
    Repository(client_cli::RepositoryArgs),
    /// Generate the artifacts of a definition.
    Artifact(client_cli::ArtifactArgs),
}

/// Every setting with its key, variable and default; the text starts with its own `SETTINGS`
/// heading.
fn settings_help() -> String {
    infrastream_config::settings_help()
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (setting `listen`, default 127.0.0.1:8000).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<String>,
    /// Data directory of the embedded store (setting `data_dir`, default ./infrastream-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML settings file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Any setting, as KEY=VALUE (dotted keys for sections, e.g. subscriptions.interval_unit=seconds).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Prints a line of CLI output; a closed stdout (e.g. a supervisor that stopped reading) must
/// not bring the server down, so write errors are ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        None => cli.serve,
        Some(Command::Serve(args)) => args,
        Some(client) => std::process::exit(run_client(client)),
    };
    // The settings choose the log format, so they are read before logging starts (reading
    // them logs nothing; an error in them is printed as text by `main`'s return).
    let settings = load_settings(args)?;
    let format = settings.log_format;
    infrastream_server::init_logging_as(format);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(serve(settings)));
    match result {
        // With JSON logs, stderr carries JSON only: the error is logged, not printed.
        Err(e) if format == infrastream_config::LogFormat::Json => {
            tracing::error!(error = format!("{e:#}"), "the server stopped with an error");
            std::process::exit(1)
        }
        result => result,
    }
}

/// Runs a client subcommand; its exit code.
fn run_client(command: Command) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Tail(a) => client_cli::tail(a).await,
            Command::Events(a) => client_cli::events(a).await,
            Command::Emit(a) => client_cli::emit(a).await,
            Command::Branch(a) => client_cli::branch(a).await,
            Command::Token(a) => client_cli::token(a).await,
            Command::Query(a) => client_cli::query(a).await,
            Command::Repository(a) => client_cli::repository(a).await,
            Command::Artifact(a) => client_cli::artifact(a).await,
            Command::Serve(_) => unreachable!("serve is not a client command"),
        }
    });
    client_cli::finish(result)
}

/// The settings of `serve`: defaults, `--config`, `INFRASTREAM_*` variables and flags.
fn load_settings(args: ServeArgs) -> anyhow::Result<infrastream_config::Settings> {
    let mut overrides = Vec::new();
    if let Some(l) = args.listen {
        overrides.push(("listen".to_string(), l));
    }
    if let Some(d) = args.data_dir {
        overrides.push(("data_dir".to_string(), d.display().to_string()));
    }
    for kv in args.set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set expects KEY=VALUE, got '{kv}'"))?;
        overrides.push((k.trim().to_string(), v.to_string()));
    }
    Ok(infrastream_config::load(
        args.config.as_deref(),
        std::env::vars(),
        &overrides,
    )?)
}

async fn serve(settings: infrastream_config::Settings) -> anyhow::Result<()> {
    let listener = infrastream_server::bind(&settings)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let server = infrastream_server::Server::start(settings, listener).await?;
    let addr = server.local_addr()?;
    let first = server.first_start();
    if let Some(p) = &first.admin_password {
        say!("Created account 'admin' with password: {p}");
    }
    if let Some(t) = &first.admin_token {
        say!("Admin API token (use as X-INFRAHUB-KEY; shown once): {t}");
    }
    let http = server.scheme();
    let ws = if http == "https" { "wss" } else { "ws" };
    say!("infrastream listening on {http}://{addr}");
    say!("  GraphQL (HTTP and WebSocket): {http}://{addr}/graphql  {ws}://{addr}/graphql");
    say!("  GraphiQL: open {http}://{addr}/graphql in a browser");
    say!("  Login: POST {http}://{addr}/api/auth/login   Health: {http}://{addr}/health");
    server.serve(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
