//! The `--store` setting: which backend holds the metadata.

use std::path::Path;

use crate::{Store, StoreError};

/// A backend `--store` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// SQLite in the data directory (`fgs.db`): a single node.
    Sqlite,
}

impl std::str::FromStr for StoreKind {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<StoreKind, StoreError> {
        match s {
            "sqlite" => Ok(StoreKind::Sqlite),
            other if other.starts_with("postgres://") || other.starts_with("postgresql://") => {
                Err(StoreError::UnsupportedStore {
                    value: redact(other),
                    reason: "a PostgreSQL store comes with cluster mode, which this fgs does not \
                             have yet; use \"sqlite\""
                        .into(),
                })
            }
            other => Err(StoreError::UnsupportedStore {
                value: other.to_string(),
                reason: "the only store is \"sqlite\" (PostgreSQL, postgres://..., comes with \
                         cluster mode)"
                    .into(),
            }),
        }
    }
}

/// A URL without its password, fit for an error message.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl StoreKind {
    /// Opens the store in `data_dir`, creating and migrating it as needed. Blocks: call it at
    /// start-up, before serving.
    pub fn open(&self, data_dir: &Path) -> Result<Store, StoreError> {
        match self {
            StoreKind::Sqlite => Store::open(&data_dir.join("fgs.db")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_is_accepted_and_postgres_says_why() {
        assert_eq!("sqlite".parse::<StoreKind>().ok(), Some(StoreKind::Sqlite));
        let err = "postgres://fgs:secret@db:5432/fgs"
            .parse::<StoreKind>()
            .expect_err("no PostgreSQL yet");
        let msg = err.to_string();
        assert!(msg.contains("cluster mode"), "{msg}");
        assert!(
            !msg.contains("secret"),
            "the password must not be shown: {msg}"
        );
        assert!(msg.contains("postgres://fgs@db:5432/fgs"), "{msg}");
        let err = "mysql".parse::<StoreKind>().expect_err("unknown");
        assert!(err.to_string().contains("\"sqlite\""), "{err}");
        assert!("SQLite".parse::<StoreKind>().is_err(), "values are exact");
    }
}
