//! The settings reference, derived from the declarations: [`settings_help`] for
//! `infrastream serve --help` and [`settings_markdown`] for docs/settings.md.

use crate::layers::{default_table, env_var_name, get_path};
use crate::spec::{Entry, Spec, join_doc, specs};
use crate::{ENV_PREFIX, Settings};

/// Width the descriptions of `--help` are wrapped to (without their indentation).
const HELP_WIDTH: usize = 86;

/// How settings are layered, for both references.
const PRECEDENCE: &str = "Precedence, lowest first: defaults, the TOML file (--config), \
    INFRASTREAM_* environment variables, command-line flags. Nested keys are [sections] in the \
    file and are joined with __ in variable names. Unknown keys and variables are errors.";

/// The default of `spec` as TOML (`"127.0.0.1:8000"`, `4096`), or `unset`.
fn default_text(defaults: &toml::Table, spec: &Spec) -> String {
    match get_path(defaults, spec.key) {
        Some(v) => v.to_string(),
        None => "unset".to_owned(),
    }
}

/// `text` broken into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Help text listing every setting: dotted key, default, description, environment variable
/// and accepted values, under one `SETTINGS` heading (the binary adds none of its own).
pub fn settings_help() -> String {
    let defaults = default_table();
    let mut out = String::from("SETTINGS\n");
    for line in wrap(PRECEDENCE, HELP_WIDTH + 4) {
        out.push_str(&line);
        out.push('\n');
    }
    for spec in specs() {
        out.push_str(&format!(
            "\n  {} (default {})\n",
            spec.key,
            default_text(&defaults, spec)
        ));
        for line in wrap(&spec.text(), HELP_WIDTH) {
            out.push_str(&format!("      {line}\n"));
        }
        let secret = if spec.secret {
            "; secret: never shown"
        } else {
            ""
        };
        out.push_str(&format!(
            "      env {}; {}{secret}\n",
            env_var_name(spec.key),
            spec.describe_values(),
        ));
    }
    out
}

/// Escapes text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// One Markdown table of the settings among `entries` (sections are left out).
fn markdown_table(entries: &[Entry], defaults: &toml::Table, out: &mut String) {
    out.push_str("| Key | Type | Default | Environment variable | Description |\n");
    out.push_str("|---|---|---|---|---|\n");
    for entry in entries {
        let Entry::Setting(spec) = entry else {
            continue;
        };
        let default = match get_path(defaults, spec.key) {
            Some(v) => format!("`{}`", cell(&v.to_string())),
            None => "unset".to_owned(),
        };
        let secret = if spec.secret {
            "**Secret**: never shown in logs, errors or `Debug` output. "
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}` | {} | {default} | `{}` | {secret}{} |\n",
            spec.key,
            cell(&spec.describe_values()),
            env_var_name(spec.key),
            cell(&spec.text()),
        ));
    }
}

/// The settings reference in Markdown (the content of docs/settings.md): every setting with
/// its type, default, environment variable and description, secrets marked.
pub fn settings_markdown() -> String {
    let defaults = default_table();
    let mut out = String::from(
        "<!-- Generated from crates/config/src/settings.rs by settings_markdown(); do not edit.\n\
         Regenerate: INFRASTREAM_UPDATE_DOCS=1 cargo test -p infrastream-config settings_doc -->\n\n\
         # Settings\n\n",
    );
    out.push_str(&format!(
        "Every setting of `infrastream serve`. Set them in a TOML file (`--config FILE`), with \
         `{ENV_PREFIX}<KEY>` environment variables, or with `--set KEY=VALUE`; \
         `infrastream serve --help` prints the same list.\n\n{PRECEDENCE}\n\n\
         Durations and sizes carry their unit in the key (`_ms`, `_secs`, `_bytes`). \
         Settings marked **Secret** never appear in logs, error messages or `Debug` output.\n\n\
         ## Top-level settings\n\n"
    ));
    markdown_table(Settings::ENTRIES, &defaults, &mut out);
    for entry in Settings::ENTRIES {
        if let Entry::Section { key, doc, entries } = entry {
            out.push_str(&format!("\n## `[{key}]`\n\n{}\n\n", join_doc(doc)));
            markdown_table(entries, &defaults, &mut out);
        }
    }
    out
}
