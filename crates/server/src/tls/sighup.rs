//! SIGHUP re-reads the TLS certificate and key (e.g. after a renewal): new connections get
//! the new certificate, established ones keep theirs, and a bad file keeps the previous
//! certificate in force with an error in the log naming the file.

use super::Tls;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Listens for SIGHUP until `stop` is cancelled, reloading `tls` on each.
pub(crate) fn reload_on_hangup(tls: Arc<Tls>, stop: CancellationToken) -> std::io::Result<()> {
    let mut hangups = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            match tls.reload() {
                Ok(()) => tracing::info!(
                    cert = %tls.cert_path().display(),
                    "SIGHUP: TLS certificate reloaded; new connections use it"
                ),
                Err(error) => tracing::error!(
                    %error,
                    "SIGHUP: TLS certificate not reloaded; the previous one stays in use"
                ),
            }
        }
    });
    Ok(())
}
