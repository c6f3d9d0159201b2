//! Layering: defaults, then the TOML file, then `INFRASTREAM_*` variables, then command-line
//! overrides, each value checked against its setting before it is merged.

use std::path::Path;

use crate::spec::{Kind, Spec, find_spec, is_section, specs};
use crate::{ConfigError, ENV_PREFIX, NON_SETTING_ENV_VARS, Settings};

/// Environment variable of a dotted key: `subscriptions.interval_unit` →
/// `INFRASTREAM_SUBSCRIPTIONS__INTERVAL_UNIT`.
pub fn env_var_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// Name of a TOML value's type, for error messages (never the value itself).
pub(crate) fn type_name(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Checks `value` against the setting's type; the reason never quotes a secret value.
pub(crate) fn check_value(spec: &Spec, value: &toml::Value) -> Result<(), String> {
    let expected = spec.kind.describe();
    match (spec.kind, value) {
        (Kind::Str, toml::Value::String(_)) | (Kind::Bool, toml::Value::Boolean(_)) => Ok(()),
        (Kind::UInt(max), toml::Value::Integer(n)) => {
            if u64::try_from(*n).is_ok_and(|n| n <= max) {
                Ok(())
            } else {
                Err(format!("expected {expected}, found {n}"))
            }
        }
        (Kind::Enum(names), toml::Value::String(s)) => {
            if names.contains(&s.as_str()) {
                Ok(())
            } else if spec.secret {
                Err(format!("expected {expected}"))
            } else {
                Err(format!("expected {expected}, found \"{s}\""))
            }
        }
        (_, other) => Err(format!("expected {expected}, found {}", type_name(other))),
    }
}

/// Parses a value given as text (environment or command line) for a setting.
///
/// String-typed settings take the text verbatim, so a numeric password stays a string. Other
/// settings take it as a TOML scalar when it parses as an integer, float or boolean, and as a
/// string otherwise (which then fails the type check with a clear message).
fn parse_text_value(spec: &Spec, raw: &str) -> toml::Value {
    if matches!(spec.kind, Kind::Str | Kind::Enum(_)) {
        return toml::Value::String(raw.to_owned());
    }
    // Parse as the value of a one-key document; anything that is not exactly one scalar of
    // the accepted kinds (e.g. text smuggling a newline and a second key) stays a string.
    if let Ok(mut doc) = format!("v = {raw}").parse::<toml::Table>()
        && doc.len() == 1
        && let Some(v) = doc.remove("v")
        && matches!(
            v,
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)
        )
    {
        return v;
    }
    toml::Value::String(raw.to_owned())
}

/// Sets the leaf at dotted `key` in `table`, creating intermediate tables.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Checks one layer's value for `key` and writes it into `merged`.
fn apply(
    merged: &mut toml::Table,
    key: &str,
    value: toml::Value,
    origin: &str,
) -> Result<(), ConfigError> {
    let Some(spec) = find_spec(key) else {
        return Err(ConfigError::UnknownKey {
            key: key.to_owned(),
            origin: origin.to_owned(),
        });
    };
    check_value(spec, &value).map_err(|reason| ConfigError::InvalidValue {
        key: key.to_owned(),
        origin: origin.to_owned(),
        reason,
    })?;
    set_path(merged, key, value);
    Ok(())
}

/// Merges a parsed TOML file into `merged`, key by key.
fn apply_file_table(
    merged: &mut toml::Table,
    table: toml::Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        if is_section(&key) {
            match v {
                toml::Value::Table(inner) => apply_file_table(merged, inner, &key, origin)?,
                other => {
                    return Err(ConfigError::InvalidValue {
                        reason: format!("expected a table, found {}", type_name(&other)),
                        key,
                        origin: origin.to_owned(),
                    });
                }
            }
        } else {
            apply(merged, &key, v, origin)?;
        }
    }
    Ok(())
}

/// Converts a byte offset in `text` to a 1-based (line, column).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, column)
}

/// Reads and parses the TOML file at `path`.
fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    // `toml::de::Error`'s Display quotes the offending line, which may hold a secret, so
    // only its message and position are reported.
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e
            .span()
            .map_or((0, 0), |span| line_column(&text, span.start));
        ConfigError::Parse {
            path: path.to_owned(),
            line,
            column,
            reason: e.message().trim().to_owned(),
        }
    })
}

/// The defaults as a TOML table (unset optional settings are absent).
pub(crate) fn default_table() -> toml::Table {
    toml::Table::try_from(Settings::default())
        .unwrap_or_else(|e| panic!("default settings must serialize to TOML: {e}"))
}

/// Loads settings: defaults, then the TOML `file`, then `INFRASTREAM_*` variables from `env`,
/// then `overrides` (dotted key, value) from the command line; validates the result.
///
/// `env` may hold the whole process environment: variables without the `INFRASTREAM_` prefix
/// are ignored. Override keys may use `-` for `_` (as in flag names).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[(String, String)],
) -> Result<Settings, ConfigError> {
    let mut merged = default_table();

    if let Some(path) = file {
        let table = read_file(path)?;
        let origin = format!("config file {}", path.display());
        apply_file_table(&mut merged, table, "", &origin)?;
    }

    // Sorted so that, with several bad variables, the error is the same on every run.
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    for (name, raw) in env {
        if NON_SETTING_ENV_VARS.contains(&name.as_str()) {
            continue;
        }
        let Some(spec) = specs().iter().find(|s| env_var_name(s.key) == name) else {
            return Err(ConfigError::UnknownEnv { name });
        };
        let origin = format!("environment variable {name}");
        apply(&mut merged, spec.key, parse_text_value(spec, &raw), &origin)?;
    }

    for (key, raw) in overrides {
        let key = key.trim().replace('-', "_");
        let origin = "command-line override";
        let Some(spec) = find_spec(&key) else {
            return Err(ConfigError::UnknownKey {
                key,
                origin: origin.to_owned(),
            });
        };
        apply(&mut merged, spec.key, parse_text_value(spec, raw), origin)?;
    }

    // Every value was checked against its setting above, so this only fails if the specs and
    // `Settings` disagree; the message then names no value of a secret (those are strings,
    // which always deserialize).
    let settings: Settings =
        merged
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid {
                key: "(settings)".to_owned(),
                reason: e.message().trim().to_owned(),
            })?;
    settings.validate()?;
    Ok(settings)
}

/// Looks up a dotted key in a table.
pub(crate) fn get_path<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    match key.split_once('.') {
        None => table.get(key),
        Some((head, rest)) => get_path(table.get(head)?.as_table()?, rest),
    }
}
