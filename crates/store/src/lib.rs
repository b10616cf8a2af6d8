//! Metadata storage of fgs: functions and small settings, in SQLite on a single node (and, later,
//! PostgreSQL in a cluster behind the same [`Store`]). This is the only crate that speaks SQL; its
//! schema migrations live here too. It must not know HTTP or processes: it stores
//! [`FunctionRecord`]s as `fgs-core` defines them and returns typed [`StoreError`]s that `fgs-api`
//! maps to wire codes.
//!
//! Each backend owns its I/O model: SQLite's blocking calls run on tokio's blocking pool, so every
//! method of [`Store`] is `async` and safe to await from request handlers.
#![forbid(unsafe_code)]

mod error;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use fgs_core::FunctionRecord;

pub use error::{BackendError, StoreError};

/// One page of a function listing, in FunctionGraph's paging terms.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionPage {
    pub functions: Vec<FunctionRecord>,
    /// The 0-based offset just after this page: the `marker` of the next request.
    pub next_marker: u64,
    /// How many functions match the listing in total, on all pages.
    pub count: u64,
}

/// The backends a [`Store`] can sit on. An enum rather than a trait object: the set is closed and
/// known here, and each variant keeps its own async model (blocking pool for SQLite, a native
/// async client for PostgreSQL).
#[derive(Debug)]
enum Backend {
    Sqlite(sqlite::Sqlite),
}

/// The metadata store. Cheap to clone; clones share one backend.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

impl Store {
    /// Opens or creates the SQLite database at `path` and brings its schema up to date. Blocks:
    /// call it at start-up, before serving.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Arc::new(Backend::Sqlite(sqlite::Sqlite::open(path)?)),
        })
    }

    /// Inserts a new function unless its name is taken or its project already holds
    /// `max_per_project` functions; both checks and the insert are one transaction.
    pub async fn create_function(
        &self,
        rec: FunctionRecord,
        max_per_project: u64,
    ) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.create_function(rec, max_per_project).await,
        }
    }

    pub async fn get_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.get_function(project, package, name).await,
        }
    }

    /// Functions of `project` (and of `package` if given) in creation order, starting at the
    /// 0-based offset `marker`, at most `max_items` of them.
    pub async fn list_functions(
        &self,
        project: &str,
        package: Option<&str>,
        marker: u64,
        max_items: u64,
    ) -> Result<FunctionPage, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.list_functions(project, package, marker, max_items).await,
        }
    }

    /// Replaces the stored record of `rec`'s function if its revision is still
    /// `expected_revision`: optimistic concurrency for read-modify-write updates. The caller sets
    /// `rec.revision = expected_revision + 1`. Fails with [`StoreError::Conflict`] if another
    /// update won, [`StoreError::FunctionNotFound`] if the function is gone.
    pub async fn update_function(
        &self,
        rec: &FunctionRecord,
        expected_revision: u64,
    ) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.update_function(rec, expected_revision).await,
        }
    }

    /// Deletes a function and returns the record it had, or `None` if there was none.
    pub async fn delete_function(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.delete_function(project, package, name).await,
        }
    }

    /// Every function of every project, for start-up work such as warming reserved instances.
    pub async fn all_functions(&self) -> Result<Vec<FunctionRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.all_functions().await,
        }
    }

    /// Whether any stored function's code is the package `sha256`; the package store may delete
    /// a package only when this is false.
    pub async fn package_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.package_referenced(sha256).await,
        }
    }

    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.get_setting(key).await,
        }
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.put_setting(key, value).await,
        }
    }
}

#[cfg(test)]
mod tests;
