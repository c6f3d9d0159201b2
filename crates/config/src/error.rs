//! [`ConfigError`]: why settings could not be loaded.

use std::path::PathBuf;

/// Why settings could not be loaded; messages name the file, key or variable, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// Path of the file.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("config file {} is not valid TOML (line {line}, column {column}): {reason}", path.display())]
    Parse {
        /// Path of the file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        reason: String,
    },
    /// A key that is not a setting.
    #[error("unknown setting `{key}` in {origin} (see `infrastream serve --help`)")]
    UnknownKey {
        /// Dotted key as written.
        key: String,
        /// Where it came from (file, environment variable, command line).
        origin: String,
    },
    /// An `INFRASTREAM_*` environment variable that is not a setting.
    #[error(
        "unknown environment variable {name}: not an infrastream setting (see `infrastream serve --help`)"
    )]
    UnknownEnv {
        /// Name of the variable.
        name: String,
    },
    /// A value of the wrong type or out of range for its setting.
    #[error("invalid value for `{key}` in {origin}: {reason}")]
    InvalidValue {
        /// Dotted key of the setting.
        key: String,
        /// Where the value came from.
        origin: String,
        /// What was expected.
        reason: String,
    },
    /// The merged settings are inconsistent or out of range.
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        /// Dotted key of the offending setting.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// Stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "CONFIG_READ",
            ConfigError::Parse { .. } => "CONFIG_PARSE",
            ConfigError::UnknownKey { .. } => "CONFIG_UNKNOWN_KEY",
            ConfigError::UnknownEnv { .. } => "CONFIG_UNKNOWN_ENV",
            ConfigError::InvalidValue { .. } => "CONFIG_INVALID_VALUE",
            ConfigError::Invalid { .. } => "CONFIG_INVALID",
        }
    }
}
