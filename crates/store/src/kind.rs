//! The `--store` setting: which backend holds the metadata.

use std::path::Path;
use std::sync::Arc;

use crate::postgres::{redact, Postgres};
use crate::{Store, StoreError};

/// A backend `--store` names.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite in the data directory (`fgs.db`): a single node.
    Sqlite,
    /// A PostgreSQL database every node of a cluster shares (`postgres://USER@HOST:PORT/DB`).
    /// Holds the URL as given, password included: shown only through [`StoreKind::describe`].
    Postgres(String),
}

impl std::fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::str::FromStr for StoreKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<StoreKind, StoreError> {
        match s {
            "sqlite" => Ok(StoreKind::Sqlite),
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                // Checked now, before anything is created: a malformed URL or one asking for
                // TLS fails here with what is wrong.
                crate::postgres::parse_url(url).map_err(|e| StoreError::UnsupportedStore {
                    value: redact(url),
                    reason: std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), ToString::to_string),
                })?;
                Ok(StoreKind::Postgres(url.to_owned()))
            }
            other => Err(StoreError::UnsupportedStore {
                value: other.to_string(),
                reason: "the store is \"sqlite\" (a single node, the default) or a PostgreSQL \
                         URL, postgres://USER@HOST:PORT/DB (cluster mode)"
                    .into(),
            }),
        }
    }
}

impl StoreKind {
    /// What the store is, fit for logs: the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreKind::Sqlite => "sqlite".into(),
            StoreKind::Postgres(url) => redact(url),
        }
    }

    /// Whether every node of a cluster can share this store.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreKind::Postgres(_))
    }

    /// Opens the store, creating and migrating its schema as needed: SQLite in `data_dir`, or
    /// the PostgreSQL database (which must be reachable: `Connect` names it otherwise). Call it
    /// at start-up, before serving.
    pub async fn open(&self, data_dir: &Path) -> Result<Store, StoreError> {
        match self {
            StoreKind::Sqlite => {
                let path = data_dir.join("fgs.db");
                tokio::task::spawn_blocking(move || Store::open(&path))
                    .await
                    .map_err(|source| StoreError::Task {
                        op: "open database",
                        source,
                    })?
            }
            StoreKind::Postgres(url) => {
                Ok(Store::from_backend(Arc::new(Postgres::open(url).await?)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_and_postgres_urls_are_accepted_and_nothing_else() {
        assert_eq!("sqlite".parse::<StoreKind>().ok(), Some(StoreKind::Sqlite));
        let pg = "postgres://fgs:secret@db:5432/fgs"
            .parse::<StoreKind>()
            .expect("a PostgreSQL URL");
        assert!(pg.is_shared());
        assert_eq!(pg.describe(), "postgres://fgs@db:5432/fgs");
        assert!(!format!("{pg:?}").contains("secret"));
        let err = "mysql".parse::<StoreKind>().expect_err("unknown");
        assert!(err.to_string().contains("\"sqlite\""), "{err}");
        assert!("SQLite".parse::<StoreKind>().is_err(), "values are exact");
    }

    #[test]
    fn a_bad_postgres_url_says_what_is_wrong_without_the_password() {
        let err = "postgres://fgs:secret@db:5432/fgs?sslmode=require"
            .parse::<StoreKind>()
            .expect_err("TLS is refused");
        let msg = err.to_string();
        assert!(msg.contains("sslmode=require"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
        assert!(msg.contains("postgres://fgs@db:5432/fgs"), "{msg}");
        let err = "postgres://fgs@db:notaport/fgs"
            .parse::<StoreKind>()
            .expect_err("bad port");
        assert!(err.to_string().contains("not a PostgreSQL URL"), "{err}");
    }
}
