//! Validation of the merged settings as a whole: ranges and relations between settings.

use std::net::SocketAddr;

use crate::{ConfigError, Settings, StoreBackend};

/// Shortest accepted JWT signing secret, from `jwt_secret` or `jwt_secret_file`.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Largest accepted `ready_probe_bytes`: a probe is a check, not a load.
pub const MAX_READY_PROBE_BYTES: usize = 16 << 20;

/// Largest accepted `retention_max_age_secs` (100 years of 365.25 days).
pub const MAX_RETENTION_AGE_SECS: u64 = 3_155_760_000;

/// Shorthand for a validation error.
pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl Settings {
    /// Checks ranges and relations between settings (called by [`load`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8000",
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        if let Some(url) = &self.database_url
            && url.trim().is_empty()
        {
            return Err(invalid("database_url", "must not be empty when set"));
        }
        if self.store == StoreBackend::Postgres && self.database_url.is_none() {
            return Err(invalid(
                "database_url",
                "must be set when store = \"postgres\" (postgres://user:password@host:port/database)",
            ));
        }
        if self.initial_admin_token.as_deref() == Some("") {
            return Err(invalid("initial_admin_token", "must not be empty when set"));
        }
        if self.initial_admin_password.as_deref() == Some("") {
            return Err(invalid(
                "initial_admin_password",
                "must not be empty when set",
            ));
        }
        for (key, secret) in [
            ("metrics_token", &self.metrics_token),
            ("ingest_infrahub_key", &self.ingest_infrahub_key),
        ] {
            if let Some(value) = secret
                && (value.trim().is_empty() || value.trim() != value)
            {
                return Err(invalid(
                    key,
                    "must not be empty or start or end with white space when set",
                ));
            }
        }
        match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "jwt_secret_file",
                    "cannot be set together with jwt_secret: choose one source of the secret",
                ));
            }
            (Some(s), None) if s.trim().len() < MIN_JWT_SECRET_BYTES => {
                return Err(invalid(
                    "jwt_secret",
                    format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
                ));
            }
            (None, Some(f)) if f.trim().is_empty() => {
                return Err(invalid("jwt_secret_file", "must not be empty when set"));
            }
            _ => {}
        }
        self.validate_tls()?;
        self.check_at_least_one()?;
        if self.ready_probe_bytes > MAX_READY_PROBE_BYTES {
            return Err(invalid(
                "ready_probe_bytes",
                format!(
                    "is {}, more than {MAX_READY_PROBE_BYTES} (16 MiB)",
                    self.ready_probe_bytes
                ),
            ));
        }
        if self.retention_max_age_secs > MAX_RETENTION_AGE_SECS {
            return Err(invalid(
                "retention_max_age_secs",
                format!(
                    "is {}, more than {MAX_RETENTION_AGE_SECS} (100 years); 0 keeps events forever",
                    self.retention_max_age_secs
                ),
            ));
        }
        if self.event_page_default > self.event_page_max {
            return Err(invalid(
                "event_page_default",
                format!(
                    "is {}, more than event_page_max ({})",
                    self.event_page_default, self.event_page_max
                ),
            ));
        }
        if self.login_backoff_max_ms < self.login_backoff_base_ms {
            return Err(invalid(
                "login_backoff_max_ms",
                format!(
                    "is {}, less than login_backoff_base_ms ({})",
                    self.login_backoff_max_ms, self.login_backoff_base_ms
                ),
            ));
        }
        if self.subscriptions.default_interval_ms < self.subscriptions.min_interval_ms {
            return Err(invalid(
                "subscriptions.default_interval_ms",
                format!(
                    "is {}, less than subscriptions.min_interval_ms ({})",
                    self.subscriptions.default_interval_ms, self.subscriptions.min_interval_ms
                ),
            ));
        }
        Ok(())
    }

    /// `tls_cert` and `tls_key` come together, neither empty.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        for (key, value) in [("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(key, "must not be empty when set"));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(invalid(
                "tls_key",
                "is required with tls_cert: give the PEM file of the certificate's private key",
            )),
            (None, Some(_)) => Err(invalid(
                "tls_cert",
                "is required with tls_key: give the PEM file of the certificate chain",
            )),
            _ => Ok(()),
        }
    }

    /// Whether the server speaks TLS (`tls_cert` and `tls_key` are set).
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// The validated `listen` address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                "must be an IP address and port, e.g. 127.0.0.1:8000",
            )
        })
    }
}
