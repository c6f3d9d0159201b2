//! Fresh PostgreSQL databases for tests, in the cluster that `scripts/test` starts.
//!
//! `INFRASTREAM_TEST_DATABASE_URL` names a database of that cluster whose role may create
//! databases; [`fresh_database_url`] creates a new, empty database there for each caller and
//! returns its URL. Without the variable the PostgreSQL tests cannot run: they print why and
//! return — unless `INFRASTREAM_REQUIRE_POSTGRES=1` (set by `scripts/test`), which turns the
//! missing variable into a failure, so a PostgreSQL check is never skipped in the suite.

use sqlx::Connection;

/// The variable naming the test cluster's admin database.
pub const DATABASE_URL_VAR: &str = "INFRASTREAM_TEST_DATABASE_URL";
/// The variable that makes a missing cluster a failure instead of a skip.
pub const REQUIRE_VAR: &str = "INFRASTREAM_REQUIRE_POSTGRES";

/// The URL of a new, empty database in the test cluster, or `None` (after printing why to
/// stderr, naming `test`) when no cluster is configured.
///
/// # Panics
/// When no cluster is configured but `INFRASTREAM_REQUIRE_POSTGRES=1`, or when the cluster
/// cannot create the database.
pub async fn fresh_database_url(test: &str) -> Option<String> {
    let Some(admin) = std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
            "{test}: {REQUIRE_VAR}=1 but {DATABASE_URL_VAR} is not set"
        );
        eprintln!(
            "{test}: SKIPPED — no PostgreSQL: set {DATABASE_URL_VAR} (scripts/test starts a cluster and sets it)"
        );
        return None;
    };
    let name = format!("t_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot connect to {DATABASE_URL_VAR}: {e}"));
    // A dictionary collation (en-US, from ICU), as production databases usually have, so
    // that an order or a comparison that depends on the locale fails the tests; the cluster's
    // default when its PostgreSQL has no ICU. `name` is made here from a UUID: nothing of it
    // comes from outside.
    let icu = format!(
        "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu \
         ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    );
    if sqlx::query(sqlx::AssertSqlSafe(icu))
        .execute(&mut conn)
        .await
        .is_err()
    {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot create database {name}: {e}"));
    }
    let _ = conn.close().await;
    Some(with_database(&admin, &name))
}

/// `url` with its database (the last path segment, before any `?`) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "t_1"),
            "postgres://u@h:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "t_1"),
            "postgres://u@h:5/t_1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5", "t_1"),
            "postgres://u@h:5/t_1"
        );
    }
}
