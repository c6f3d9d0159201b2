//! Process-wide logging of the binaries that run a server (`infrastream`, `infrastream-bench`).

use infrastream_config::LogFormat;

/// Sends `tracing` output to stderr as text (coloured on a terminal), filtered by `RUST_LOG`,
/// `info` when it is unset or invalid. Call once, at the start of `main`.
pub fn init_logging() {
    init_logging_as(LogFormat::Text);
}

/// Sends `tracing` output to stderr in `format` (setting `log_format`), filtered by
/// `RUST_LOG`, `info` when it is unset or invalid. Call once, before anything is logged.
///
/// With [`LogFormat::Json`], each line is one JSON object: `timestamp`, `level`, `target`,
/// `fields` (the event's fields, `message` among them), and when the event happened inside
/// spans, `span` (the innermost one's name and fields) and `spans` (all of them, outermost
/// first) — what the text format shows, in machine-readable form.
pub fn init_logging_as(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
