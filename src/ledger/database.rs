//! Evidence read straight from a database's `django_migrations` table.

use std::collections::BTreeSet;

use crate::django::MigrationKey;

/// `(app, name)` rows of `django_migrations`.
pub type Rows = BTreeSet<MigrationKey>;

/// Read `django_migrations` from `postgres://…`, `mysql://…` (MySQL and
/// MariaDB) or `sqlite:///path`; a database without the table is an error.
pub fn applied_rows(url: &str) -> Result<Rows, String> {
    applied_rows_if_migrated(url)?.ok_or_else(|| {
        format!(
            "{} has no django_migrations table (never migrated)",
            redact(url)
        )
    })
}

/// Like [`applied_rows`], but `None` for a database that has no
/// `django_migrations` table yet (never migrated: nothing is applied).
pub fn applied_rows_if_migrated(url: &str) -> Result<Option<Rows>, String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return sqlite(path);
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return postgres(url);
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        return mysql(url);
    }
    Err(format!(
        "unsupported database URL scheme in {:?}; use postgres://…, mysql://… or sqlite:///path",
        redact(url)
    ))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn sqlite(path: &str) -> Result<Option<Rows>, String> {
    if path.is_empty() {
        return Err("sqlite URL has no path (use sqlite:///absolute/path)".into());
    }
    let file = std::path::Path::new(path);
    if !file.is_file() {
        // Django's SQLite backend creates the file on first use: a missing
        // file in an existing directory is a database never migrated.
        if !file.exists() && file.parent().is_some_and(|d| d.is_dir()) {
            return Ok(None);
        }
        return Err(format!("sqlite database {path} does not exist"));
    }
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open sqlite database {path}: {e}"))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'django_migrations'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("cannot read sqlite database {path}: {e}"))?;
    if tables == 0 {
        return Ok(None);
    }
    let mut stmt = conn
        .prepare("SELECT app, name FROM django_migrations")
        .map_err(|e| format!("cannot read django_migrations from {path}: {e}"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(MigrationKey::new(
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
            ))
        })
        .map_err(|e| format!("cannot read django_migrations from {path}: {e}"))?;
    rows.collect::<Result<Rows, _>>()
        .map(Some)
        .map_err(|e| format!("cannot read django_migrations from {path}: {e}"))
}

fn postgres(url: &str) -> Result<Option<Rows>, String> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e| format!("invalid database URL {}: {e}", redact(url)))?;
    let mut config = config;
    config.connect_timeout(std::time::Duration::from_secs(10));
    let mut client = config
        .connect(postgres::NoTls)
        .map_err(|e| format!("cannot connect to {}: {e}", redact(url)))?;
    // The table Django would use: the first schema of the search path.
    let exists = client
        .query_one("SELECT to_regclass('django_migrations') IS NOT NULL", &[])
        .map_err(|e| format!("cannot read {}: {e}", redact(url)))?;
    if !exists.get::<_, bool>(0) {
        return Ok(None);
    }
    let rows = client
        .query("SELECT app, name FROM django_migrations", &[])
        .map_err(|e| format!("cannot read django_migrations from {}: {e}", redact(url)))?;
    Ok(Some(
        rows.iter()
            .map(|r| MigrationKey::new(r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect(),
    ))
}

/// MySQL and MariaDB, without TLS (the `mysql` crate built without it: a
/// database on the same host or network, as in a Swarm stack).
fn mysql(url: &str) -> Result<Option<Rows>, String> {
    use mysql::prelude::Queryable;

    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let opts = mysql::Opts::from_url(&url)
        .map_err(|e| format!("invalid database URL {}: {e}", redact(&url)))?;
    let timeout = Some(std::time::Duration::from_secs(10));
    let opts = mysql::OptsBuilder::from_opts(opts)
        .tcp_connect_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout)
        .prefer_socket(false);
    let mut conn =
        mysql::Conn::new(opts).map_err(|e| format!("cannot connect to {}: {e}", redact(&url)))?;
    let tables: Option<u64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'django_migrations'",
        )
        .map_err(|e| format!("cannot read {}: {e}", redact(&url)))?;
    if tables.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let rows: Vec<(String, String)> = conn
        .query("SELECT app, name FROM django_migrations")
        .map_err(|e| format!("cannot read django_migrations from {}: {e}", redact(&url)))?;
    Ok(Some(rows.into_iter().map(MigrationKey::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("sqlite:///x"), "sqlite:///x");
    }

    #[test]
    fn sqlite_rows_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db.sqlite3");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE django_migrations (id integer primary key, app text, name text, applied text); INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0001_initial', 'now');").unwrap();
        drop(c);
        let rows = applied_rows(&format!("sqlite://{}", p.display())).unwrap();
        assert!(rows.contains(&MigrationKey::new("shop", "0001_initial")));
        assert!(applied_rows("sqlite:///nonexistent/x.db").is_err());
        let missing = format!("sqlite://{}", dir.path().join("not-yet.sqlite3").display());
        assert_eq!(applied_rows_if_migrated(&missing), Ok(None));
        let empty = dir.path().join("empty.sqlite3");
        rusqlite::Connection::open(&empty).unwrap();
        let url = format!("sqlite://{}", empty.display());
        assert_eq!(applied_rows_if_migrated(&url), Ok(None));
        assert!(
            applied_rows(&url)
                .unwrap_err()
                .contains("no django_migrations table")
        );
        assert!(applied_rows("mysql://u@127.0.0.1:1/db").is_err());
        assert!(applied_rows("oracle://x").is_err());
    }
}
