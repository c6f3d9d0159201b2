//! Optional TLS (`tls_cert`, `tls_key`): the server then speaks HTTPS and WSS on its one
//! port. The certificate and key are read at start ([`files`]), and again on SIGHUP
//! ([`sighup`]): a reload swaps the configuration for new connections while established ones
//! keep theirs, and a bad file keeps the previous certificate. Each connection's handshake
//! runs in its own task, bounded by `tls_handshake_timeout_ms` ([`accept`]); upgraded
//! WebSockets then use rustls directly (`ws::transport`).

mod accept;
mod files;
mod sighup;

pub(crate) use accept::handshake;
pub(crate) use sighup::reload_on_hangup;

use infrastream_config::Settings;
use rustls::ServerConfig;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The TLS configuration in force and where it comes from.
pub(crate) struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
    handshake_timeout: Duration,
}

impl Tls {
    /// Reads `tls_cert` and `tls_key` when both are set (`Ok(None)` when neither is); `Err` is
    /// the message for the operator, naming the file at fault.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Option<Self>, String> {
        let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
            return Ok(None);
        };
        let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
        let config = files::server_config(&cert, &key)?;
        Ok(Some(Self {
            cert,
            key,
            config: RwLock::new(config),
            handshake_timeout: Duration::from_millis(settings.tls_handshake_timeout_ms),
        }))
    }

    /// The configuration for a new connection.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads both files again and, when they are good, uses them for every new connection;
    /// otherwise the previous certificate stays in force and `Err` names the file at fault.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let config = files::server_config(&self.cert, &self.key)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The certificate chain file (for log lines).
    pub(crate) fn cert_path(&self) -> &std::path::Path {
        &self.cert
    }
}
