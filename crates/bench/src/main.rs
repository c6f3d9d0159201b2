//! `infrastream-bench`, the load generator (docs/BENCHMARKS.md). Each scenario runs several
//! times and reports every run and the median. Without `--url` a server is started on a fresh
//! temporary data directory (loopback, fsync as configured) — in this process for `ingest`, as
//! a child `infrastream serve` process for the WebSocket scenarios (so that server and clients
//! each have their own file descriptors and the server's memory can be measured): the
//! `infrastream` binary next to this one (same target directory) unless `--server-bin` names
//! another — so one command reproduces a number in docs/BENCHMARKS.md.
//!
//! A binary of its own, so that the server binary does not carry the load generator's HTTP and
//! WebSocket clients.

mod client;
mod cluster;
mod cluster_idle;
mod connect;
mod fanout;
mod idle;
mod ingest;
mod login_flood;
mod merge;
mod nodes;
mod process;
mod query;
mod sustained;
mod webhooks;

use clap::{Parser, Subcommand};

/// `infrastream-bench` arguments.
#[derive(Parser)]
#[command(
    name = "infrastream-bench",
    version,
    about = "Load generator for infrastream (see docs/BENCHMARKS.md)"
)]
struct BenchArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Committed `EventEmit` events per second from concurrent HTTP clients.
    Ingest(ingest::IngestArgs),
    /// Committed events per second through 1, 3, 5… instances on one PostgreSQL database.
    ClusterIngest(cluster::ClusterIngestArgs),
    /// Commit on one instance → receipt on every instance, subscribers spread over instances
    /// on one PostgreSQL database.
    ClusterFanout(cluster::ClusterFanoutArgs),
    /// Connections and subscriptions held by several instances on one PostgreSQL database,
    /// and one event committed through the first reaching every one of them.
    ClusterIdle(cluster_idle::ClusterIdleArgs),
    /// Nodes of a schema-defined kind created per second from concurrent HTTP clients.
    Nodes(nodes::NodesArgs),
    /// Time to merge a branch with N changed nodes (half updated, half created).
    Merge(merge::MergeArgs),
    /// Commit → delivered latency of single events fanned out to N `events` subscribers.
    Fanout(fanout::FanoutArgs),
    /// Server RSS per idle connection and per `events` subscription, CPU while idle.
    Idle(idle::IdleArgs),
    /// Frames delivered per second, and lag over time, at a steady event rate.
    Sustained(sustained::SustainedArgs),
    /// Identical polled `query` subscriptions: executions per tick, frames on time, CPU.
    Query(query::QueryArgs),
    /// New connections + `connection_init` + subscribe per second, and SYN drops.
    Connect(connect::ConnectArgs),
    /// Wrong-password logins from N connections next to API-token subscribers: server RSS,
    /// 401/429 counts and latencies, the owner's logins from another address, `/health`,
    /// event delivery.
    LoginFlood(login_flood::LoginFloodArgs),
    Webhooks(webhooks::WebhooksArgs),
    /// One client process of the `idle` scenario (started by it).
    #[command(hide = true)]
    IdleClient(idle::ClientArgs),
}

fn main() -> anyhow::Result<()> {
    let args = BenchArgs::parse();
    // Logs of the in-process server of `ingest` (and of the bench itself) go to stderr.
    infrastream_server::init_logging();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// Runs the chosen scenario and prints its report.
async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // On Ctrl-C or SIGTERM the scenario is dropped, which stops the servers and client
    // processes it started.
    tokio::select! {
        r = scenario(args) => r,
        _ = interrupted() => anyhow::bail!("interrupted"),
    }
}

async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            },
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn scenario(args: BenchArgs) -> anyhow::Result<()> {
    match args.scenario {
        Scenario::Ingest(a) => ingest::run(a).await,
        Scenario::ClusterIngest(a) => cluster::run(a).await,
        Scenario::ClusterFanout(a) => cluster::fanout(a).await,
        Scenario::ClusterIdle(a) => cluster_idle::run(a).await,
        Scenario::Fanout(a) => fanout::run(a).await,
        Scenario::Nodes(a) => nodes::run(a).await,
        Scenario::Merge(a) => merge::run(a).await,
        Scenario::Idle(a) => idle::run(a).await,
        Scenario::Sustained(a) => sustained::run(a).await,
        Scenario::Query(a) => query::run(a).await,
        Scenario::Connect(a) => connect::run(a).await,
        Scenario::LoginFlood(a) => login_flood::run(a).await,
        Scenario::Webhooks(a) => webhooks::run(a).await,
        Scenario::IdleClient(a) => idle::client(a).await,
    }
}

/// Median of the values (upper median for even counts).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The value at quantile `q` (0..=1) of sorted `values` (nearest rank), 0 when empty.
pub(crate) fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux only).
pub(crate) struct ProcessCpu(f64);

impl ProcessCpu {
    /// The CPU seconds used so far, if the platform tells.
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which is in parentheses and may contain spaces).
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, i.e. 11 and 12 after the name.
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // The kernel reports clock ticks of USER_HZ, which is 100 on x86 and ARM Linux.
        Some(Self(ticks / 100.0))
    }

    /// CPU seconds used since `self`.
    pub(crate) fn elapsed(self) -> Option<f64> {
        Some(Self::now()?.0 - self.0)
    }
}

/// A server under test: either given by URL or started here on a temporary directory.
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) token: String,
    _local: Option<(tempfile::TempDir, tokio::sync::oneshot::Sender<()>)>,
}

impl Target {
    pub(crate) async fn new(
        url: Option<String>,
        token: Option<String>,
        fsync: bool,
    ) -> anyhow::Result<Self> {
        if let Some(url) = url {
            let token = token.ok_or_else(|| anyhow::anyhow!("--token is required with --url"))?;
            return Ok(Self {
                url,
                token,
                _local: None,
            });
        }
        Self::local(fsync, &[]).await
    }

    /// A server started here on a fresh temporary directory, with `extra` settings.
    pub(crate) async fn local(fsync: bool, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let token = "bench-admin-token-0123456789abcdef0123456789abcdef".to_string();
        let overrides = vec![
            ("listen".to_string(), "127.0.0.1:0".to_string()),
            (
                "data_dir".to_string(),
                dir.path().join("data").display().to_string(),
            ),
            ("fsync".to_string(), fsync.to_string()),
            ("initial_admin_token".to_string(), token.clone()),
            (
                "initial_admin_password".to_string(),
                "bench-password".to_string(),
            ),
        ];
        let extra = extra.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let overrides: Vec<(String, String)> = overrides.into_iter().chain(extra).collect();
        let settings = infrastream_config::load(None, Vec::new(), &overrides)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = infrastream_server::Server::start(settings, listener).await?;
        let url = format!("http://{}", server.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            url,
            token,
            _local: Some((dir, stop)),
        })
    }
}
