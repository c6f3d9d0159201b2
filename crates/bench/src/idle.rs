//! Idle connections and subscriptions: the server's resident memory (`VmRSS` of its process)
//! when it has just started, after N acknowledged graphql-transport-ws connections with no
//! subscription, and after K `events` subscriptions on each of them; plus the server's CPU
//! while it merely holds them.
//!
//! The connections are opened by `infrastream-bench idle-client` child processes (so no
//! process needs more than its 20,000 file descriptors), each binding its sockets to its own
//! source address 127.0.0.2, 127.0.0.3, …, and driven through their stdin/stdout one phase at
//! a time: connect → (parent measures) → subscribe → (parent measures) → one event that every
//! subscription must receive → quit.

use crate::client::{Emitter, barrier, connect, subscribe};
use crate::median;
use crate::process::{Server, ServerArgs};
use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

const QUERY: &str = r#"subscription { events(event_type: ["bench.idle"]) { id occurred_at } }"#;

/// Longest wait for the connect and subscribe phases of all clients.
pub(crate) const PHASE_TIMEOUT: Duration = Duration::from_secs(900);

/// Longest wait for one event to reach every subscription.
pub(crate) const VERIFY_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Args)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Connections held open (each acknowledged with `connection_ack`).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// `events` subscriptions added on every connection in the second phase.
    #[arg(long, default_value_t = 25)]
    subs: usize,
    /// Client processes the connections are spread over (default: one per 10,000).
    #[arg(long)]
    clients: Option<usize>,
    /// Runs (each with a fresh server); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds over which the server's CPU is measured while it holds the connections.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Handshakes (or subscription batches) in flight at a time per client process (the
    /// server's listen backlog is 128: more at once can cost a 1 s SYN retransmit).
    #[arg(long, default_value_t = 50)]
    connect_concurrency: usize,
}

struct RunResult {
    rss0: u64,
    rss1: u64,
    rss2: u64,
    per_conn: f64,
    per_sub: f64,
    connect_secs: f64,
    subscribe_secs: f64,
    cpu_conns: Option<f64>,
    cpu_subs: Option<f64>,
    /// Milliseconds until one event reached every subscription, or why not.
    verify: Result<f64, String>,
}

pub(crate) fn settings(n: usize, k: usize) -> Vec<(&'static str, String)> {
    let mut s = Vec::new();
    if n > 10_000 {
        s.push(("max_connections_per_account", (n + 100).to_string()));
    }
    if n > 19_900 {
        s.push(("max_connections", (n + 100).to_string()));
    }
    if n * k > 250_000 {
        s.push(("max_subscriptions_per_account", (n * k + 1000).to_string()));
    }
    if k > 100 {
        s.push(("max_subscriptions_per_connection", k.to_string()));
    }
    s
}

pub(crate) async fn run(args: IdleArgs) -> anyhow::Result<()> {
    args.server.without_node_peer("idle")?;
    let n = args.connections;
    let clients = args.clients.unwrap_or(n.div_ceil(10_000)).clamp(1, 250);
    let settings = settings(n, args.subs);
    println!(
        "idle: {n} connections × {} subscriptions, {clients} client process(es), {} runs; {}",
        args.subs,
        args.runs,
        args.server.describe(&settings)
    );
    let (mut conns, mut subs, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=args.runs {
        let server = args.server.start(&settings).await?;
        let r = match one_run(&args, &server, clients, run).await {
            Ok(r) => r,
            Err(e) => return Err(server.with_log_tail(e)),
        };
        drop(server);
        let cpu = |c: Option<f64>| c.map_or("?".into(), |c| format!("{:.0}%", c * 100.0));
        println!(
            "run {run}: RSS {} KiB at start, {} KiB with {n} connections (+{:.2} KiB each, opened \
             in {:.1} s), {} KiB with {} subscriptions (+{:.3} KiB each, placed in {:.1} s); \
             server CPU while idle: {} of one core with connections only, {} with \
             subscriptions; {}",
            r.rss0,
            r.rss1,
            r.per_conn,
            r.connect_secs,
            r.rss2,
            n * args.subs,
            r.per_sub,
            r.subscribe_secs,
            cpu(r.cpu_conns),
            cpu(r.cpu_subs),
            match &r.verify {
                Ok(ms) => format!("one event reached every subscription in {ms:.0} ms"),
                Err(e) => format!("NOT VERIFIED: {e}"),
            },
        );
        conns.push(r.per_conn);
        subs.push(r.per_sub);
        totals.push(r.rss2 as f64);
    }
    println!(
        "idle {n} × {}, median of {} runs: {:.2} KiB per connection, {:.3} KiB per subscription, \
         server RSS {:.0} MiB in total",
        args.subs,
        conns.len(),
        median(&conns),
        median(&subs),
        median(&totals) / 1024.0
    );
    Ok(())
}

async fn one_run(
    args: &IdleArgs,
    server: &Server,
    clients: usize,
    run: usize,
) -> anyhow::Result<RunResult> {
    let n = args.connections;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = server.rss_kib()?;
    let exe = std::env::current_exe()?;
    let mut procs = Vec::new();
    let mut left = n;
    for i in 0..clients {
        let share = left / (clients - i);
        left -= share;
        let bind = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        let spec = ClientSpec {
            addr: server.addr,
            init: &server.init,
            connections: share,
            subs: args.subs,
            bind,
            concurrency: args.connect_concurrency,
        };
        procs.push(ClientProc::spawn(&exe, &spec)?);
    }
    let started = Instant::now();
    expect_all(&mut procs, "connected", PHASE_TIMEOUT).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = server.rss_kib()?;
    let cpu_conns = idle_cpu(server, args.idle_seconds).await;
    // Printed now, so that it is reported even if the subscription phase fails.
    println!(
        "run {run}, connections only: {n} acknowledged in {connect_secs:.1} s; RSS {rss0} → \
         {rss1} KiB (+{:.2} KiB each); server CPU while idle {}",
        (rss1 as f64 - rss0 as f64) / n.max(1) as f64,
        cpu_conns.map_or("?".into(), |c| format!("{:.0}% of one core", c * 100.0)),
    );

    let started = Instant::now();
    command_all(&mut procs, "subscribe").await?;
    expect_all(&mut procs, "subscribed", PHASE_TIMEOUT).await?;
    let subscribe_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss2 = server.rss_kib()?;
    let cpu_subs = idle_cpu(server, args.idle_seconds).await;

    // Every subscription is live: one event must reach all of them.
    let started = Instant::now();
    Emitter::new(server).emit("bench.idle").await?;
    let verify = match expect_all(&mut procs, "received", VERIFY_TIMEOUT).await {
        Ok(()) => Ok(started.elapsed().as_secs_f64() * 1e3),
        Err(e) => Err(format!("{e:#}")),
    };
    quit_all(&mut procs).await;
    let subs_total = (n * args.subs).max(1) as f64;
    Ok(RunResult {
        rss0,
        rss1,
        rss2,
        per_conn: (rss1 as f64 - rss0 as f64) / n.max(1) as f64,
        per_sub: (rss2 as f64 - rss1 as f64) / subs_total,
        connect_secs,
        subscribe_secs,
        cpu_conns,
        cpu_subs,
        verify,
    })
}

/// Server CPU (in cores) over `seconds` of doing nothing but holding connections.
pub(crate) async fn idle_cpu(server: &Server, seconds: u64) -> Option<f64> {
    let before = server.cpu_seconds();
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    Some((server.cpu_seconds()? - before?) / t.elapsed().as_secs_f64())
}

/// What one `idle-client` process opens.
pub(crate) struct ClientSpec<'a> {
    /// The server's address.
    pub(crate) addr: SocketAddr,
    /// Its `connection_init` message.
    pub(crate) init: &'a str,
    /// Connections to open.
    pub(crate) connections: usize,
    /// Subscriptions per connection on `subscribe`.
    pub(crate) subs: usize,
    /// Source address of the sockets (127.0.0.x).
    pub(crate) bind: Ipv4Addr,
    /// Handshakes in flight at a time.
    pub(crate) concurrency: usize,
}

/// An `infrastream-bench idle-client` child process, driven one phase at a time.
pub(crate) struct ClientProc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ClientProc {
    /// Starts `exe idle-client` for `spec`.
    pub(crate) fn spawn(exe: &std::path::Path, spec: &ClientSpec<'_>) -> anyhow::Result<Self> {
        let mut child = Command::new(exe)
            .arg("idle-client")
            .arg("--addr")
            .arg(spec.addr.to_string())
            .arg("--init")
            .arg(spec.init)
            .arg("--connections")
            .arg(spec.connections.to_string())
            .arg("--subs")
            .arg(spec.subs.to_string())
            .arg("--bind")
            .arg(spec.bind.to_string())
            .arg("--concurrency")
            .arg(spec.concurrency.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start `infrastream-bench idle-client`")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }
}

/// Tells every client process to quit, and waits a little for each (then kills it).
pub(crate) async fn quit_all(procs: &mut [ClientProc]) {
    let _ = command_all(procs, "quit").await;
    for p in procs {
        if tokio::time::timeout(Duration::from_secs(5), p.child.wait())
            .await
            .is_err()
        {
            let _ = p.child.start_kill();
        }
    }
}

/// Sends `cmd` (a phase) to every client process.
pub(crate) async fn command_all(procs: &mut [ClientProc], cmd: &str) -> anyhow::Result<()> {
    for p in procs {
        p.stdin.write_all(format!("{cmd}\n").as_bytes()).await?;
        p.stdin.flush().await?;
    }
    Ok(())
}

/// Waits until every client process printed a line starting with `word`.
pub(crate) async fn expect_all(
    procs: &mut [ClientProc],
    word: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let waits = procs.iter_mut().enumerate().map(|(i, p)| async move {
        let mut line = String::new();
        loop {
            line.clear();
            if p.stdout.read_line(&mut line).await? == 0 {
                bail!("client process {i} exited while waiting for '{word}'");
            }
            if line.starts_with(word) {
                return Ok(());
            }
            if line.starts_with("error") {
                bail!("client process {i}: {}", line.trim());
            }
        }
    });
    tokio::time::timeout(timeout, futures::future::try_join_all(waits))
        .await
        .with_context(|| {
            format!("client processes did not report '{word}' within {timeout:?}")
        })??;
    Ok(())
}

/// `infrastream-bench idle-client`: one client process of the `idle` scenario.
#[derive(Args)]
pub(crate) struct ClientArgs {
    /// Server address (loopback).
    #[arg(long)]
    addr: SocketAddr,
    /// The `connection_init` message.
    #[arg(long)]
    init: String,
    /// Connections to open.
    #[arg(long)]
    connections: usize,
    /// Subscriptions per connection on `subscribe`.
    #[arg(long)]
    subs: usize,
    /// Source address of the sockets (127.0.0.x).
    #[arg(long)]
    bind: IpAddr,
    /// Handshakes in flight at a time.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
}

struct Counters {
    connected: AtomicU64,
    subscribed: AtomicU64,
    frames: AtomicU64,
    notify: Notify,
    errors: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn fail(&self, e: String) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
        self.notify.notify_one();
    }
}

/// Phases the parent moves the client through.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Phase {
    Connect,
    Subscribe,
    Quit,
}

pub(crate) async fn client(args: ClientArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.addr.ip().is_loopback(), "loopback servers only");
    let n = args.connections as u64;
    let k = args.subs as u64;
    let counters = Arc::new(Counters {
        connected: AtomicU64::new(0),
        subscribed: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        notify: Notify::new(),
        errors: std::sync::Mutex::new(None),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (c, gate, mut phase) = (counters.clone(), gate.clone(), phase_rx.clone());
        let (init, addr, bind, subs) = (args.init.clone(), args.addr, args.bind, args.subs);
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire().await;
            let mut ws = match connect(addr, &init, Some(bind)).await {
                Ok(ws) => ws,
                Err(e) => return c.fail(format!("connect: {e:#}")),
            };
            drop(permit);
            if c.connected.fetch_add(1, Ordering::SeqCst) + 1 == n {
                c.notify.notify_one();
            }
            let mut subscribed = false;
            loop {
                if !subscribed && *phase.borrow_and_update() >= Phase::Subscribe {
                    let _permit = gate.acquire().await;
                    let placed = async {
                        for id in 1..=subs {
                            subscribe(&mut ws, &id.to_string(), QUERY).await?;
                        }
                        barrier(&mut ws).await
                    };
                    if let Err(e) = placed.await {
                        return c.fail(format!("subscribe: {e:#}"));
                    }
                    subscribed = true;
                    if c.subscribed.fetch_add(1, Ordering::SeqCst) + 1 == n {
                        c.notify.notify_one();
                    }
                }
                if *phase.borrow() == Phase::Quit {
                    return;
                }
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(Message::Text(t))) => {
                            let t = t.as_str();
                            if t.contains(r#""type":"next""#) {
                                if c.frames.fetch_add(1, Ordering::SeqCst) + 1 == n * k {
                                    c.notify.notify_one();
                                }
                            } else if t.contains(r#""type":"ping""#) {
                                use futures::SinkExt;
                                let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
                            } else {
                                return c.fail(format!("unexpected frame: {t}"));
                            }
                        }
                        Some(Ok(Message::Close(f))) => return c.fail(format!("closed: {f:?}")),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return c.fail(format!("read failed: {e}")),
                        None => return c.fail("connection closed".into()),
                    },
                    _ = phase.changed() => {}
                }
            }
        }));
    }
    let say = |line: String| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let wait = |counter: &'static str| {
        let c = counters.clone();
        async move {
            loop {
                if let Some(e) = c.errors.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    return Err(e);
                }
                let v = match counter {
                    "connected" => c.connected.load(Ordering::SeqCst),
                    "subscribed" => c.subscribed.load(Ordering::SeqCst),
                    _ => c.frames.load(Ordering::SeqCst),
                };
                let target = if counter == "received" { n * k } else { n };
                if v >= target {
                    return Ok(v);
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), c.notify.notified()).await;
            }
        }
    };
    // Commands from the parent; when it goes away (stdin closed) this process ends too.
    let (cmd_tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = stdin.next_line().await {
            if cmd_tx.send(line).is_err() {
                return;
            }
        }
        std::process::exit(0);
    });
    match wait("connected").await {
        Ok(v) => say(format!("connected {v}")),
        Err(e) => say(format!("error {e}")),
    }
    while let Some(line) = commands.recv().await {
        match line.trim() {
            "subscribe" => {
                let _ = phase_tx.send(Phase::Subscribe);
                match wait("subscribed").await {
                    Ok(v) => say(format!("subscribed {}", v * k)),
                    Err(e) => say(format!("error {e}")),
                }
                match wait("received").await {
                    Ok(v) => say(format!("received {v}")),
                    Err(e) => say(format!("error {e}")),
                }
            }
            "quit" => break,
            _ => {}
        }
    }
    let _ = phase_tx.send(Phase::Quit);
    for t in tasks {
        t.abort();
    }
    Ok(())
}
