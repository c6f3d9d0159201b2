//! Process-wide logging of the binaries that run a server (`infrastream`, `infrastream-bench`).

/// Sends `tracing` output to stderr (coloured on a terminal), filtered by `RUST_LOG`, `info`
/// when it is unset or invalid. Call once, at the start of `main`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
