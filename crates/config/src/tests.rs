//! Tests of loading, layering, validation, redaction and the references.

use super::*;
use crate::layers::{check_value, default_table, get_path};
use crate::spec::specs;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn ov(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    env(pairs)
}

#[test]
fn defaults() {
    let s = load(None, Vec::new(), &[]).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.listen, "127.0.0.1:8000");
    assert_eq!(s.data_dir, PathBuf::from("./infrastream-data"));
    assert_eq!(s.store, StoreBackend::Sqlite);
    assert_eq!(s.database_url, None);
    assert!(s.fsync);
    assert_eq!(s.group_commit_max_batch, 1024);
    assert!(!s.allow_anonymous_access);
    assert_eq!(s.access_token_lifetime_secs, 3600);
    assert_eq!(s.refresh_token_lifetime_secs, 2_592_000);
    assert_eq!(s.max_subscriptions_per_connection, 100);
    assert_eq!(s.ws_max_message_bytes, 1_048_576);
    assert_eq!(s.connection_rate_per_address, 10_000);
    assert_eq!(s.subscriptions.interval_unit, IntervalUnit::Milliseconds);
    assert_eq!(s.subscriptions.min_interval_ms, 100);
    assert_eq!(s.subscriptions.lag_close_threshold, 4096);
    assert_eq!(s.repository_sync_interval_secs, 0);
    assert_eq!(s.listen_addr().unwrap().port(), 8000);
    s.validate().unwrap();
}

#[test]
fn file_overrides_defaults() {
    let f = file(
        "listen = \"0.0.0.0:9000\"\nfsync = false\nstore = \"sqlite\"\n\
         database_url = \"postgres://u:p@h/db\"\n\
         [subscriptions]\ninterval_unit = \"seconds\"\nmin_interval_ms = 5\n",
    );
    let s = load(Some(f.path()), Vec::new(), &[]).unwrap();
    assert_eq!(s.listen, "0.0.0.0:9000");
    assert!(!s.fsync);
    assert_eq!(s.store, StoreBackend::Sqlite);
    assert_eq!(s.database_url.as_deref(), Some("postgres://u:p@h/db"));
    assert_eq!(s.subscriptions.interval_unit, IntervalUnit::Seconds);
    assert_eq!(s.subscriptions.min_interval_ms, 5);
    // Untouched keys of the section keep their defaults.
    assert_eq!(s.subscriptions.default_interval_ms, 1000);
    assert_eq!(s.max_query_depth, 24);
}

#[test]
fn env_overrides_file_and_override_beats_env() {
    let f = file("max_query_depth = 10\nevent_page_max = 40\n");
    let e = env(&[
        ("INFRASTREAM_MAX_QUERY_DEPTH", "11"),
        ("INFRASTREAM_ALLOW_ANONYMOUS_ACCESS", "true"),
        ("PATH", "/usr/bin"),
        ("HOME", "/root"),
    ]);
    let s = load(Some(f.path()), e.clone(), &[]).unwrap();
    assert_eq!(s.max_query_depth, 11);
    assert_eq!(s.event_page_max, 40);
    assert!(s.allow_anonymous_access);

    let o = ov(&[
        ("max_query_depth", "12"),
        ("allow-anonymous-access", "false"),
    ]);
    let s = load(Some(f.path()), e, &o).unwrap();
    assert_eq!(s.max_query_depth, 12);
    assert!(!s.allow_anonymous_access);
    assert_eq!(s.event_page_max, 40);
}

#[test]
fn nested_env_and_override() {
    let e = env(&[
        ("INFRASTREAM_SUBSCRIPTIONS__INTERVAL_UNIT", "seconds"),
        ("INFRASTREAM_SUBSCRIPTIONS__DEFAULT_INTERVAL_MS", "2_000"),
    ]);
    let s = load(None, e, &ov(&[("subscriptions.min_interval_ms", "7")])).unwrap();
    assert_eq!(s.subscriptions.interval_unit, IntervalUnit::Seconds);
    assert_eq!(s.subscriptions.default_interval_ms, 2000);
    assert_eq!(s.subscriptions.min_interval_ms, 7);
}

#[test]
fn numeric_secret_stays_a_string() {
    let e = env(&[
        ("INFRASTREAM_INITIAL_ADMIN_TOKEN", "12345"),
        ("INFRASTREAM_INITIAL_ADMIN_PASSWORD", "true"),
    ]);
    let s = load(None, e, &[]).unwrap();
    assert_eq!(s.initial_admin_token.as_deref(), Some("12345"));
    assert_eq!(s.initial_admin_password.as_deref(), Some("true"));
}

#[test]
fn unknown_key_in_file() {
    let f = file("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "listen_port"));
    let msg = err.to_string();
    assert!(
        msg.contains("listen_port") && msg.contains("config file"),
        "{msg}"
    );

    let f = file("[subscriptions]\nbogus = 1\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    assert!(err.to_string().contains("subscriptions.bogus"), "{err}");

    let f = file("[nope]\nx = 1\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "nope"),
        "{err}"
    );
}

#[test]
fn unknown_env_var() {
    let err = load(None, env(&[("INFRASTREAM_LISTEN_PORT", "1")]), &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownEnv { name } if name == "INFRASTREAM_LISTEN_PORT"));
    assert!(err.to_string().contains("INFRASTREAM_LISTEN_PORT"));
    // Single underscore where the nested key needs a double one.
    let err = load(
        None,
        env(&[("INFRASTREAM_SUBSCRIPTIONS_INTERVAL_UNIT", "seconds")]),
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownEnv { .. }));
}

#[test]
fn unknown_override() {
    let err = load(None, Vec::new(), &ov(&[("no.such", "1")])).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "no.such"));
}

#[test]
fn bad_value_type_names_key() {
    let f = file("fsync = \"yes\"\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "fsync"));
    assert!(err.to_string().contains("boolean"), "{err}");

    let err = load(None, env(&[("INFRASTREAM_MAX_BODY_BYTES", "lots")]), &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("max_body_bytes") && msg.contains("INFRASTREAM_MAX_BODY_BYTES"),
        "{msg}"
    );

    let err = load(None, env(&[("INFRASTREAM_EVENT_PAGE_MAX", "-1")]), &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "event_page_max"));
    let err = load(None, Vec::new(), &ov(&[("event_page_max", "4294967296")])).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "event_page_max"));

    let err = load(None, env(&[("INFRASTREAM_STORE", "mysql")]), &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`store`") && msg.contains("sqlite"), "{msg}");

    let f = file("subscriptions = 3\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "subscriptions"));

    let f = file("initial_admin_token = 123\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    assert!(!err.to_string().contains("123"), "{err}");
}

#[test]
fn syntax_error_reports_position_without_the_line() {
    let f = file("listen = \"127.0.0.1:8000\"\ninitial_admin_password = \"hunter2\nfsync = true\n");
    let err = load(Some(f.path()), Vec::new(), &[]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[test]
fn missing_file() {
    let err = load(
        Some(Path::new("/nonexistent/infrastream.toml")),
        Vec::new(),
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/infrastream.toml"),
        "{err}"
    );
}

#[test]
fn validation() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("event_page_default", "60")], "event_page_default"),
        (
            &[("subscriptions.min_interval_ms", "0")],
            "subscriptions.min_interval_ms",
        ),
        (&[("listen", "localhost")], "listen"),
        (&[("store", "postgres")], "database_url"),
        (
            &[("token_check_interval_ms", "0")],
            "token_check_interval_ms",
        ),
        (&[("initial_admin_token", "")], "initial_admin_token"),
        (&[("ready_probe_bytes", "16777217")], "ready_probe_bytes"),
        (
            &[("subscriptions.default_interval_ms", "50")],
            "subscriptions.default_interval_ms",
        ),
        (&[("login_backoff_max_ms", "999")], "login_backoff_max_ms"),
        (&[("password_hash_queue", "0")], "password_hash_queue"),
        (
            &[("retention_max_age_secs", "3155760001")],
            "retention_max_age_secs",
        ),
        (
            &[("retention_interval_secs", "0")],
            "retention_interval_secs",
        ),
    ];
    for (o, expected_key) in cases {
        let err = load(None, Vec::new(), &ov(o)).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == expected_key),
            "{o:?}: {err}"
        );
    }
    // 0 means unlimited / off where documented.
    let s = load(
        None,
        Vec::new(),
        &ov(&[
            ("connection_rate_per_address", "0"),
            ("repository_sync_interval_secs", "0"),
            ("retention_max_age_secs", "0"),
            ("retention_max_events", "0"),
        ]),
    )
    .unwrap();
    assert_eq!(s.connection_rate_per_address, 0);
    assert_eq!((s.retention_max_age_secs, s.retention_max_events), (0, 0));
    let s = load(
        None,
        Vec::new(),
        &ov(&[("retention_max_age_secs", "3155760000")]),
    )
    .unwrap();
    assert_eq!(s.retention_max_age_secs, 3_155_760_000);
}

#[test]
fn non_setting_env_vars_are_skipped() {
    // Listed variables are skipped, and the check never rejects unrelated ones.
    for name in NON_SETTING_ENV_VARS {
        load(None, env(&[(name, "x")]), &[]).unwrap();
    }
    load(
        None,
        env(&[("INFRASTREAMX", "1"), ("RUST_LOG", "debug")]),
        &[],
    )
    .unwrap();
}

#[test]
fn debug_redacts_secrets() {
    let s = Settings {
        initial_admin_token: Some("tok-SECRET-1".into()),
        initial_admin_password: Some("pw-SECRET-2".into()),
        database_url: Some("postgres://alice:db-SECRET-3@db.example:5432/x".into()),
        ..Settings::default()
    };
    let dbg = format!("{s:?}");
    for secret in ["SECRET", "tok-", "pw-"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    assert!(
        dbg.contains("postgres://alice:<redacted>@db.example:5432/x"),
        "{dbg}"
    );
    assert!(dbg.contains("max_query_depth: 24"), "{dbg}");
    let pretty = format!("{s:#?}");
    assert!(!pretty.contains("SECRET"));
}

#[test]
fn redact_url_forms() {
    assert_eq!(
        redact_database_url("postgres://u:pw@h/db?sslmode=require"),
        "postgres://u:<redacted>@h/db?sslmode=require"
    );
    assert_eq!(
        redact_database_url("postgres://u@h/db"),
        "postgres://u@h/db"
    );
    assert_eq!(
        redact_database_url("postgres://h/db?user=u&password=pw&x=1"),
        "postgres://h/db?user=u&password=<redacted>&x=1"
    );
    assert_eq!(
        redact_database_url("host=h password=pw dbname=x"),
        "host=h password=<redacted> dbname=x"
    );
    assert_eq!(redact_database_url("sqlite://./x.db"), "sqlite://./x.db");
}

#[test]
fn errors_never_quote_secrets() {
    let err = load(
        None,
        Vec::new(),
        &ov(&[
            ("store", "postgres"),
            ("initial_admin_password", "SECRETPW"),
        ]),
    )
    .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("SECRETPW"));
}

/// Dotted keys of every leaf of `table`.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => leaf_keys(inner, &key, out),
            _ => {
                out.insert(key);
            }
        }
    }
}

/// Every field of a fully populated `Settings`, as dotted keys.
fn all_field_keys() -> BTreeSet<String> {
    let full = Settings {
        database_url: Some("x".into()),
        initial_admin_token: Some("x".into()),
        initial_admin_password: Some("x".into()),
        jwt_secret: Some("x".into()),
        jwt_secret_file: Some("x".into()),
        tls_cert: Some("x".into()),
        tls_key: Some("x".into()),
        metrics_token: Some("x".into()),
        ingest_infrahub_key: Some("x".into()),
        webhooks: crate::WebhookSettings {
            ca_file: Some("x".into()),
            ..crate::WebhookSettings::default()
        },
        ..Settings::default()
    };
    let mut keys = BTreeSet::new();
    leaf_keys(&toml::Table::try_from(full).unwrap(), "", &mut keys);
    keys
}

#[test]
fn specs_match_settings() {
    let fields = all_field_keys();
    let keys: BTreeSet<String> = specs().iter().map(|s| s.key.to_owned()).collect();
    assert_eq!(fields, keys, "specs and Settings disagree");
    // Each spec's type accepts its own default.
    let defaults = default_table();
    for spec in specs() {
        if let Some(v) = get_path(&defaults, spec.key) {
            check_value(spec, v).unwrap_or_else(|e| panic!("{}: {e}", spec.key));
        }
    }
}

#[test]
fn help_covers_every_key() {
    let help = settings_help();
    for key in all_field_keys() {
        assert!(
            help.contains(&format!("\n  {key} (default ")),
            "{key} missing from help"
        );
        assert!(
            help.contains(&env_var_name(&key)),
            "{key} env missing from help"
        );
    }
    assert!(help.contains("INFRASTREAM_SUBSCRIPTIONS__INTERVAL_UNIT"));
    assert!(
        help.contains("listen (default \"127.0.0.1:8000\")"),
        "{help}"
    );
    assert!(
        help.contains("refresh_token_lifetime_secs (default 2592000)"),
        "{help}"
    );
    assert!(help.contains("database_url (default unset)"), "{help}");
}

#[test]
fn help_has_one_settings_heading() {
    let help = settings_help();
    let headings = help.lines().filter(|l| l.starts_with("SETTINGS")).count();
    assert_eq!(headings, 1, "{help}");
    assert!(help.starts_with("SETTINGS\n"), "{help}");
    // Secrets are marked, and described like any other setting.
    assert!(
        help.contains("env INFRASTREAM_INITIAL_ADMIN_PASSWORD; a string; secret: never shown"),
        "{help}"
    );
}

#[test]
fn every_at_least_one_setting_refuses_zero() {
    let flagged: Vec<&str> = specs()
        .iter()
        .filter(|s| s.at_least_one)
        .map(|s| s.key)
        .collect();
    assert!(flagged.contains(&"subscriptions.lag_close_threshold"));
    for key in flagged {
        let err = load(None, Vec::new(), &ov(&[(key, "0")])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key: k, reason } if k == key && reason == "must be at least 1"),
            "{key}: {err}"
        );
    }
}

#[test]
fn enum_kinds_match_serde_names() {
    for spec in specs() {
        if let crate::spec::Kind::Enum(names) = spec.kind {
            for name in names {
                load(None, Vec::new(), &ov(&[(spec.key, name)]))
                    .map(|_| ())
                    .or_else(|e| match e {
                        // Accepted by the type check; refused later only by validation.
                        ConfigError::Invalid { .. } => Ok(()),
                        other => Err(other),
                    })
                    .unwrap_or_else(|e| panic!("{}: {name}: {e}", spec.key));
            }
        }
    }
}

#[test]
fn debug_lists_every_setting() {
    let dbg = format!("{:?}", Settings::default());
    for spec in specs() {
        let field = spec.key.rsplit('.').next().unwrap();
        assert!(
            dbg.contains(&format!("{field}: ")),
            "{field} missing: {dbg}"
        );
    }
}

/// docs/settings.md is `settings_markdown()`; with `INFRASTREAM_UPDATE_DOCS=1` this test
/// rewrites it instead of failing.
#[test]
fn settings_doc_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/settings.md");
    let expected = settings_markdown();
    if std::env::var_os("INFRASTREAM_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == expected,
        "docs/settings.md is not what the setting declarations generate; regenerate it with\n\
         INFRASTREAM_UPDATE_DOCS=1 cargo test -p infrastream-config settings_doc\n\
         and commit the result"
    );
}

#[test]
fn markdown_lists_every_setting_and_marks_secrets() {
    let md = settings_markdown();
    for spec in specs() {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", spec.key)))
            .unwrap_or_else(|| panic!("{} missing from:\n{md}", spec.key));
        assert!(
            row.contains(&format!("`{}`", env_var_name(spec.key))),
            "{row}"
        );
        assert_eq!(row.contains("**Secret**"), spec.secret, "{row}");
    }
    assert!(md.contains("## `[subscriptions]`"), "{md}");
    assert!(
        md.contains("| `listen` | a string | `\"127.0.0.1:8000\"` |"),
        "{md}"
    );
}

/// The limits that were constants in the graphql and server crates keep their values as
/// defaults (see the report of the change that added them for the constant each replaces).
#[test]
fn limit_settings_default_to_the_former_constants() {
    let s = Settings::default();
    assert_eq!(s.artifact_template_fuel, 20_000_000);
    assert_eq!(s.artifact_max_targets_per_request, 0);
    assert_eq!(s.git_fetch_timeout_secs, 600);
    assert_eq!(s.git_local_timeout_secs, 60);
    assert_eq!(s.renderer_cache_events, 1024);
    assert_eq!(s.renderer_registry_sweep_threshold, 1024);
    assert_eq!(s.credential_cache_max_entries, 100_000);
    assert_eq!(s.shutdown_sessions_timeout_ms, 10_000);
    assert_eq!(s.shutdown_repository_sync_timeout_ms, 10_000);
    assert_eq!(s.shutdown_http_drain_timeout_ms, 10_000);
    assert_eq!(s.shutdown_ws_linger_ms, 1000);
    assert_eq!(s.shutdown_ws_close_reply_wait_ms, 250);
    assert_eq!(s.ws_close_reply_wait_ms, 1000);
    assert_eq!(s.ws_refusal_close_timeout_ms, 1000);
    let s = load(
        None,
        env(&[("INFRASTREAM_GIT_FETCH_TIMEOUT_SECS", "30")]),
        &ov(&[("artifact_max_targets_per_request", "100")]),
    )
    .unwrap();
    assert_eq!(s.git_fetch_timeout_secs, 30);
    assert_eq!(s.artifact_max_targets_per_request, 100);
}

#[test]
fn postgres_store_needs_a_database_url() {
    let expected = "invalid setting `database_url`: must be set when store = \"postgres\" \
                    (postgres://user:password@host:port/database)";
    // Whatever layer it comes from.
    let err = load(None, env(&[("INFRASTREAM_STORE", "postgres")]), &[]).unwrap_err();
    assert_eq!(err.to_string(), expected);
    assert_eq!(err.code(), "CONFIG_INVALID");
    let s = Settings {
        store: StoreBackend::Postgres,
        ..Settings::default()
    };
    assert!(matches!(s.validate(), Err(ConfigError::Invalid { key, .. }) if key == "database_url"));
    // With one it is accepted, from a file as from flags.
    let f = file("store = \"postgres\"\ndatabase_url = \"postgres://u:p@h/db\"\n");
    let s = load(Some(f.path()), Vec::new(), &[]).unwrap();
    assert_eq!(s.store, StoreBackend::Postgres);
    assert_eq!(s.database_max_connections, 10);
    assert_eq!(s.database_poll_interval_ms, 1000);
    let s = load(
        None,
        Vec::new(),
        &ov(&[
            ("store", "postgres"),
            ("database_url", "postgres://u@h/db"),
            ("database_max_connections", "3"),
        ]),
    )
    .unwrap();
    assert_eq!(s.database_max_connections, 3);
    let err = load(None, Vec::new(), &ov(&[("database_max_connections", "0")])).unwrap_err();
    assert!(
        err.to_string().contains("database_max_connections"),
        "{err}"
    );
}

#[test]
fn jwt_secret_sources_are_checked() {
    let with = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(None, Vec::new(), &pairs)
    };
    let long = "0123456789abcdef0123456789abcdef";
    assert!(with(&[("jwt_secret", long)]).is_ok());
    assert!(with(&[("jwt_secret_file", "/run/secrets/jwt")]).is_ok());
    let e = with(&[("jwt_secret", "short")]).unwrap_err().to_string();
    assert!(
        e.contains("jwt_secret") && e.contains("at least 32 bytes"),
        "{e}"
    );
    assert!(!e.contains("short"), "the secret is never shown: {e}");
    let e = with(&[("jwt_secret", long), ("jwt_secret_file", "/x")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be set together with jwt_secret"), "{e}");
    assert!(!e.contains(long), "the secret is never shown: {e}");
}

#[test]
fn tls_files_come_together() {
    let with = |pairs: &[(&str, &str)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(None, Vec::new(), &pairs)
    };
    let both = with(&[("tls_cert", "/etc/cert.pem"), ("tls_key", "/etc/key.pem")]).unwrap();
    assert!(both.tls_enabled());
    assert!(!with(&[]).unwrap().tls_enabled(), "plain HTTP by default");
    let e = with(&[("tls_cert", "/etc/cert.pem")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tls_key") && e.contains("required with tls_cert"),
        "{e}"
    );
    let e = with(&[("tls_key", "/etc/key.pem")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tls_cert") && e.contains("required with tls_key"),
        "{e}"
    );
    let e = with(&[("tls_cert", " "), ("tls_key", "/etc/key.pem")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tls_cert") && e.contains("must not be empty"),
        "{e}"
    );
    let e = with(&[("tls_handshake_timeout_ms", "0")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls_handshake_timeout_ms"), "{e}");
}

#[test]
fn log_format_and_metrics_token() {
    let s = load(None, Vec::new(), &[]).unwrap();
    assert_eq!(s.log_format, LogFormat::Text);
    assert_eq!(s.metrics_token, None);
    let f = file("log_format = \"json\"\nmetrics_token = \"SCRAPETOKEN\"\n");
    let s = load(Some(f.path()), Vec::new(), &[]).unwrap();
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.metrics_token.as_deref(), Some("SCRAPETOKEN"));
    assert!(!format!("{s:?}").contains("SCRAPETOKEN"));
    let s = load(None, env(&[("INFRASTREAM_LOG_FORMAT", "json")]), &[]).unwrap();
    assert_eq!(s.log_format, LogFormat::Json);
    let e = load(None, Vec::new(), &ov(&[("log_format", "xml")])).unwrap_err();
    assert!(e.to_string().contains("one of text, json"), "{e}");
    for bad in ["", "  ", " SCRAPETOKEN"] {
        let e = load(None, Vec::new(), &ov(&[("metrics_token", bad)])).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("metrics_token") && e.contains("must not be empty"),
            "{e}"
        );
    }
}
