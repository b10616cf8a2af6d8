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

use fgs_core::flows::{AliasRecord, AsyncStatus, VersionRecord};
use fgs_core::FunctionRecord;

pub use error::{BackendError, StoreError};
pub use sqlite::logs::{InvocationLog, LogQuery};

/// The code packages the metadata uses: every function's, version's and dependency version's
/// zip, by sha256; and the dependency lists (as package ids, in order) functions and versions
/// name, whose merged trees are in use too.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PackageUse {
    pub packages: std::collections::HashSet<String>,
    pub dependency_lists: Vec<Vec<String>>,
}

/// One page of a function listing, in FunctionGraph's paging terms.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionPage {
    pub functions: Vec<FunctionRecord>,
    /// The 0-based offset just after this page: the `marker` of the next request.
    pub next_marker: u64,
    /// How many functions match the listing in total, on all pages.
    pub count: u64,
}

/// One async invocation as queued.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncRow {
    pub request_id: String,
    pub project: String,
    pub package: String,
    pub name: String,
    /// The version field as invoked: `latest`, a version, or `!alias`.
    pub qualifier: String,
    pub status: AsyncStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub error_code: Option<u32>,
    pub error_message: String,
    pub body: Vec<u8>,
    /// JSON object of extra facts (e.g. what submitted the event).
    pub extra: String,
}

/// Which async invocations of a function to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AsyncFilter {
    pub project: String,
    pub package: String,
    pub name: String,
    pub request_id: Option<String>,
    pub status: Option<AsyncStatus>,
    pub begin_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub marker: u64,
    pub limit: u64,
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

    /// Whether any stored function's, version's or dependency version's code is the package
    /// `sha256`; the package store may delete a package only when this is false.
    /// Derived from [`Store::package_use`], the one definition of what uses a package: this
    /// runs only after a failed upload, where reading every record is affordable.
    pub async fn package_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(self.package_use().await?.packages.contains(sha256))
    }

    /// Which code packages the metadata uses, for collecting the rest (see [`PackageUse`]).
    pub async fn package_use(&self) -> Result<PackageUse, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.package_use().await,
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

/// Versions, aliases and the async queue.
impl Store {
    fn sqlite(&self) -> &sqlite::Sqlite {
        match &*self.backend {
            Backend::Sqlite(db) => db,
        }
    }

    /// Publishes a version unless its name is taken or `max_published` exist already.
    pub async fn publish_version(
        &self,
        v: VersionRecord,
        max_published: usize,
    ) -> Result<(), StoreError> {
        self.sqlite().publish_version(v, max_published).await
    }

    pub async fn get_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.sqlite()
            .get_version(project, package, name, version)
            .await
    }

    /// Published versions, oldest first.
    pub async fn list_versions(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.sqlite().list_versions(project, package, name).await
    }

    /// Deletes a version unless an alias routes to it (`VersionInUse`).
    pub async fn delete_version(
        &self,
        project: &str,
        package: &str,
        name: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        self.sqlite()
            .delete_version(project, package, name, version)
            .await
    }

    /// Creates or replaces an alias; the versions it routes to must exist.
    pub async fn put_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: AliasRecord,
        create: bool,
        max: usize,
    ) -> Result<(), StoreError> {
        self.sqlite()
            .put_alias(project, package, name, alias, create, max)
            .await
    }

    pub async fn list_aliases(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        self.sqlite().list_aliases(project, package, name).await
    }

    pub async fn delete_alias(
        &self,
        project: &str,
        package: &str,
        name: &str,
        alias: &str,
    ) -> Result<(), StoreError> {
        self.sqlite()
            .delete_alias(project, package, name, alias)
            .await
    }

    /// Stores accepted async events, one result per row, in one transaction.
    pub async fn insert_async(
        &self,
        rows: Vec<AsyncRow>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.sqlite().insert_async(rows).await
    }

    /// Claims up to `limit` due events, marking them RUNNING.
    pub async fn claim_due_async(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<AsyncRow>, StoreError> {
        self.sqlite().claim_due_async(now_ms, limit).await
    }

    pub async fn next_due_async(&self) -> Result<Option<i64>, StoreError> {
        self.sqlite().next_due_async().await
    }

    /// Records the state changes of several events in one transaction.
    pub async fn update_async(&self, rows: Vec<AsyncRow>) -> Result<(), StoreError> {
        self.sqlite().update_async(rows).await
    }

    /// How many async events wait (status WAIT) and when the oldest was accepted (ms), for the
    /// queue metrics.
    pub async fn async_queue_stats(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.sqlite().async_queue_stats().await
    }

    /// Puts events left RUNNING by a stopped fgs back in the queue.
    pub async fn requeue_running_async(&self) -> Result<usize, StoreError> {
        self.sqlite().requeue_running_async().await
    }

    pub async fn list_async(
        &self,
        filter: AsyncFilter,
    ) -> Result<(Vec<AsyncRow>, u64), StoreError> {
        self.sqlite().list_async(filter).await
    }

    /// Cancels a waiting event; returns the status it had.
    pub async fn cancel_async(
        &self,
        project: &str,
        package: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<AsyncStatus, StoreError> {
        self.sqlite()
            .cancel_async(project, package, name, request_id, now_ms)
            .await
    }
}

/// A trigger as stored (SPEC.md 2). `event_data` is the JSON `fgs-triggers` normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRecord {
    pub trigger_id: String,
    pub project: String,
    pub package: String,
    /// The function's name.
    pub name: String,
    /// The version field the trigger invokes: `latest`, a version, or `!alias`.
    pub qualifier: String,
    pub type_code: String,
    /// `ACTIVE` or `DISABLED`.
    pub status: String,
    pub event_data: serde_json::Value,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// A timer's planned next firing, Unix milliseconds.
    pub next_fire_ms: Option<i64>,
    pub last_fire_ms: Option<i64>,
}

/// A saved test event of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestEventRecord {
    pub event_id: String,
    pub name: String,
    /// Base64 of the event, as the API takes it.
    pub content: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// Triggers and test events.
impl Store {
    /// Inserts a trigger unless its function version already has `max_per_version`.
    pub async fn create_trigger(
        &self,
        rec: TriggerRecord,
        max_per_version: u64,
    ) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.create_trigger(rec, max_per_version).await,
        }
    }

    /// A function's triggers in creation order, of one version if `qualifier` is given.
    pub async fn list_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.list_triggers(project, package, name, qualifier).await,
        }
    }

    pub async fn get_trigger(
        &self,
        project: &str,
        package: &str,
        name: &str,
        trigger_id: &str,
    ) -> Result<Option<TriggerRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.get_trigger(project, package, name, trigger_id).await,
        }
    }

    pub async fn all_triggers(&self) -> Result<Vec<TriggerRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.all_triggers().await,
        }
    }

    /// Writes a trigger's status, event data, update time and timer plan; false if it is gone.
    pub async fn update_trigger(&self, rec: &TriggerRecord) -> Result<bool, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.update_trigger(rec).await,
        }
    }

    /// Deletes one trigger by id, the triggers of one version, or all of a function's, and
    /// returns them.
    pub async fn delete_triggers(
        &self,
        project: &str,
        package: &str,
        name: &str,
        qualifier: Option<&str>,
        trigger_id: Option<&str>,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => {
                db.delete_triggers(project, package, name, qualifier, trigger_id)
                    .await
            }
        }
    }

    /// Moves an active timer's plan from `due_ms` to `next_ms` if it is still `due_ms`: true
    /// when this caller may fire it.
    pub async fn advance_timer(
        &self,
        trigger_id: &str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> Result<bool, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.advance_timer(trigger_id, due_ms, next_ms).await,
        }
    }

    /// Saves a test event unless its name is taken or the function has `max_per_function`.
    pub async fn create_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        ev: TestEventRecord,
        max_per_function: u64,
    ) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => {
                db.create_test_event(project, package, name, ev, max_per_function)
                    .await
            }
        }
    }

    pub async fn list_test_events(
        &self,
        project: &str,
        package: &str,
        name: &str,
    ) -> Result<Vec<TestEventRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.list_test_events(project, package, name).await,
        }
    }

    pub async fn get_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
    ) -> Result<Option<TestEventRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.get_test_event(project, package, name, event_id).await,
        }
    }

    pub async fn update_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
        content: &str,
        modified_ms: i64,
    ) -> Result<Option<TestEventRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => {
                db.update_test_event(project, package, name, event_id, content, modified_ms)
                    .await
            }
        }
    }

    pub async fn delete_test_event(
        &self,
        project: &str,
        package: &str,
        name: &str,
        event_id: &str,
    ) -> Result<bool, StoreError> {
        match &*self.backend {
            Backend::Sqlite(db) => db.delete_test_event(project, package, name, event_id).await,
        }
    }
}

/// Dependency versions.
impl Store {
    /// Adds the next version of a dependency (a new dependency at version 1).
    pub async fn create_dependency_version(
        &self,
        dv: fgs_core::dependency::DependencyVersion,
    ) -> Result<fgs_core::dependency::DependencyVersion, StoreError> {
        self.sqlite().create_dependency_version(dv).await
    }

    pub async fn get_dependency_version(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<fgs_core::dependency::DependencyVersion>, StoreError> {
        self.sqlite().get_dependency_version(project, id).await
    }

    /// Versions of one dependency, or the newest of each without `dep_id`.
    pub async fn list_dependency_versions(
        &self,
        project: &str,
        dep_id: Option<&str>,
    ) -> Result<Vec<fgs_core::dependency::DependencyVersion>, StoreError> {
        self.sqlite()
            .list_dependency_versions(project, dep_id)
            .await
    }

    /// Deletes a version no function lists (`DependencyInUse` otherwise).
    pub async fn delete_dependency_version(
        &self,
        project: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        self.sqlite().delete_dependency_version(project, id).await
    }
}

#[cfg(test)]
mod tests;
