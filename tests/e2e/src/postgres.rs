//! PostgreSQL for the end-to-end tests: a database of its own per test on the server
//! `FGS_TEST_POSTGRES_URL` names (scripts/test starts a throwaway one), made and dropped with
//! `psql`. With `FGS_TEST_STORE=postgres`, every [`crate::Server`] that names no `--store`
//! itself runs on such a database, so the existing tests prove the PostgreSQL backend behaves as
//! SQLite does.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The test server's URL, or `None` (after saying why) when none is configured; a failure
/// instead when `FGS_TEST_REQUIRE_ENGINES=1`.
pub fn postgres_url() -> Option<String> {
    match std::env::var("FGS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("FGS_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
                "FGS_TEST_REQUIRE_ENGINES=1 but FGS_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipped: FGS_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL)");
            None
        }
    }
}

/// Whether every test server runs on PostgreSQL (`FGS_TEST_STORE=postgres`).
pub fn store_is_postgres() -> bool {
    std::env::var("FGS_TEST_STORE").as_deref() == Ok("postgres")
}

/// `url` with its database replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[start..].find('/') {
        Some(i) => &base[..start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg("-d")
        .arg(url)
        .arg("-c")
        .arg(sql)
        .output()
        .map_err(|e| format!("psql: {e} (install postgresql-client)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database made for one test, dropped when this goes (with any connection left to it).
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    pub name: String,
    /// The URL fgs is given: `--store` of every node sharing the database.
    pub url: String,
}

impl TestDatabase {
    /// A fresh, empty database, or `None` when no server is configured.
    pub fn create() -> Option<TestDatabase> {
        let admin_url = postgres_url()?;
        Some(TestDatabase::create_on(&admin_url))
    }

    pub fn create_on(admin_url: &str) -> TestDatabase {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "fgs_e2e_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql(admin_url, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        TestDatabase {
            url: with_db(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// Runs `sql` in the test database (for tests that look at what fgs stored).
    pub fn query(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(e) = psql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("dropping test database {}: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_db;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_db("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(with_db("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_db("postgres://u:p@h:1/a?host=/tmp", "x"),
            "postgres://u:p@h:1/x?host=/tmp"
        );
    }
}
