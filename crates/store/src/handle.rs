//! [`Store`], the handle callers hold: one trait object per concern, all backed by the backend
//! chosen at start-up. Its methods forward to the traits, so callers write
//! `store.get_function(..)` whichever backend sits underneath; code that needs one concern only
//! (the async dispatcher needs the queue) takes that trait object.

use std::path::Path;
use std::sync::Arc;

use fgs_core::dependency::DependencyVersion;
use fgs_core::flows::{AliasRecord, AsyncStatus, VersionRecord};
use fgs_core::FunctionRecord;

use crate::traits::{
    BlobStore, DependencyStore, FunctionStore, LogStore, NodeStore, SettingStore, SlotStore,
    TestEventStore, TriggerStore,
};
use crate::{
    AsyncFilter, AsyncQueue, AsyncRow, FunctionPage, InvocationLog, LogQuery, NewInvocationLog,
    PackageUse, StatsStore, StoreError, TestEventRecord, TriggerRecord,
};

/// The metadata store. Cheap to clone (one reference count); clones share one backend.
#[derive(Debug, Clone)]
pub struct Store {
    parts: Arc<Parts>,
}

#[derive(Debug)]
struct Parts {
    functions: Arc<dyn FunctionStore>,
    triggers: Arc<dyn TriggerStore>,
    test_events: Arc<dyn TestEventStore>,
    dependencies: Arc<dyn DependencyStore>,
    logs: Arc<dyn LogStore>,
    settings: Arc<dyn SettingStore>,
    queue: Arc<dyn AsyncQueue>,
    blobs: Arc<dyn BlobStore>,
    nodes: Arc<dyn NodeStore>,
    slots: Arc<dyn SlotStore>,
    stats: Arc<dyn StatsStore>,
}

/// Forwards `Store` methods to one concern's trait object.
macro_rules! forward {
    ($part:ident => $( $(#[$m:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        $(
            $(#[$m])*
            pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                self.parts.$part.$name($($arg),*).await
            }
        )*
    };
}

impl Store {
    /// Opens or creates the SQLite database at `path` and brings its schema up to date. Blocks:
    /// call it at start-up, before serving.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Ok(Store::from_backend(Arc::new(crate::sqlite::Sqlite::open(
            path,
        )?)))
    }

    /// A store over `backend`, which serves every concern.
    pub fn from_backend<B>(backend: Arc<B>) -> Store
    where
        B: FunctionStore
            + TriggerStore
            + TestEventStore
            + DependencyStore
            + LogStore
            + SettingStore
            + AsyncQueue
            + BlobStore
            + NodeStore
            + SlotStore
            + StatsStore
            + 'static,
    {
        Store {
            parts: Arc::new(Parts {
                functions: backend.clone(),
                triggers: backend.clone(),
                test_events: backend.clone(),
                dependencies: backend.clone(),
                logs: backend.clone(),
                settings: backend.clone(),
                queue: backend.clone(),
                blobs: backend.clone(),
                nodes: backend.clone(),
                slots: backend.clone(),
                stats: backend,
            }),
        }
    }

    pub fn functions(&self) -> &Arc<dyn FunctionStore> {
        &self.parts.functions
    }
    pub fn triggers(&self) -> &Arc<dyn TriggerStore> {
        &self.parts.triggers
    }
    pub fn test_events(&self) -> &Arc<dyn TestEventStore> {
        &self.parts.test_events
    }
    pub fn dependencies(&self) -> &Arc<dyn DependencyStore> {
        &self.parts.dependencies
    }
    pub fn logs(&self) -> &Arc<dyn LogStore> {
        &self.parts.logs
    }
    pub fn settings(&self) -> &Arc<dyn SettingStore> {
        &self.parts.settings
    }
    /// The async invocation queue.
    pub fn queue(&self) -> &Arc<dyn AsyncQueue> {
        &self.parts.queue
    }
    /// The cluster's copy of code packages.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.parts.blobs
    }
    /// Membership: heartbeats of the nodes sharing the store.
    pub fn nodes(&self) -> &Arc<dyn NodeStore> {
        &self.parts.nodes
    }
    /// Places for instances across the nodes sharing the store (cluster-wide limits).
    pub fn slots(&self) -> &Arc<dyn SlotStore> {
        &self.parts.slots
    }
    /// The cluster's statistics: what each node counted, per minute.
    pub fn stats(&self) -> &Arc<dyn StatsStore> {
        &self.parts.stats
    }

    /// Whether any stored function's, version's or dependency version's code is the package
    /// `sha256`; the package store may delete a package only when this is false.
    /// Derived from [`FunctionStore::package_use`], the one definition of what uses a package:
    /// this runs only after a failed upload, where reading every record is affordable.
    pub async fn package_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        Ok(self.package_use().await?.packages.contains(sha256))
    }

    /// Stores finished invocations' logs in one transaction (their `id`s are assigned there).
    pub async fn insert_logs(&self, logs: Vec<NewInvocationLog>) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        self.parts.logs.insert_logs(logs).await
    }

    forward! { functions =>
        /// See [`FunctionStore::create_function`].
        fn create_function(&self, rec: FunctionRecord, max_per_project: u64) -> ();
        fn get_function(&self, project: &str, package: &str, name: &str) -> Option<FunctionRecord>;
        /// See [`FunctionStore::list_functions`].
        fn list_functions(&self, project: &str, package: Option<&str>, marker: u64, max_items: u64) -> FunctionPage;
        /// See [`FunctionStore::update_function`].
        fn update_function(&self, rec: &FunctionRecord, expected_revision: u64) -> ();
        fn delete_function(&self, project: &str, package: &str, name: &str) -> Option<FunctionRecord>;
        fn all_functions(&self) -> Vec<FunctionRecord>;
        /// Which code packages the metadata uses, for collecting the rest.
        fn package_use(&self) -> PackageUse;
        fn publish_version(&self, v: VersionRecord, max_published: usize) -> ();
        fn get_version(&self, project: &str, package: &str, name: &str, version: &str) -> Option<VersionRecord>;
        fn list_versions(&self, project: &str, package: &str, name: &str) -> Vec<VersionRecord>;
        fn delete_version(&self, project: &str, package: &str, name: &str, version: &str) -> ();
        fn put_alias(&self, project: &str, package: &str, name: &str, alias: AliasRecord, create: bool, max: usize) -> ();
        fn list_aliases(&self, project: &str, package: &str, name: &str) -> Vec<AliasRecord>;
        fn delete_alias(&self, project: &str, package: &str, name: &str, alias: &str) -> ();
    }

    forward! { triggers =>
        fn create_trigger(&self, rec: TriggerRecord, max_per_version: u64) -> ();
        fn list_triggers(&self, project: &str, package: &str, name: &str, qualifier: Option<&str>) -> Vec<TriggerRecord>;
        fn get_trigger(&self, project: &str, package: &str, name: &str, trigger_id: &str) -> Option<TriggerRecord>;
        fn all_triggers(&self) -> Vec<TriggerRecord>;
        fn update_trigger(&self, rec: &TriggerRecord) -> bool;
        fn delete_triggers(&self, project: &str, package: &str, name: &str, qualifier: Option<&str>, trigger_id: Option<&str>) -> Vec<TriggerRecord>;
        /// See [`TriggerStore::advance_timer`].
        fn advance_timer(&self, trigger_id: &str, due_ms: i64, next_ms: Option<i64>) -> bool;
    }

    forward! { test_events =>
        fn create_test_event(&self, project: &str, package: &str, name: &str, ev: TestEventRecord, max_per_function: u64) -> ();
        fn list_test_events(&self, project: &str, package: &str, name: &str) -> Vec<TestEventRecord>;
        fn get_test_event(&self, project: &str, package: &str, name: &str, event_id: &str) -> Option<TestEventRecord>;
        fn update_test_event(&self, project: &str, package: &str, name: &str, event_id: &str, content: &str, modified_ms: i64) -> Option<TestEventRecord>;
        fn delete_test_event(&self, project: &str, package: &str, name: &str, event_id: &str) -> bool;
    }

    forward! { dependencies =>
        fn create_dependency_version(&self, dv: DependencyVersion) -> DependencyVersion;
        fn get_dependency_version(&self, project: &str, id: &str) -> Option<DependencyVersion>;
        fn list_dependency_versions(&self, project: &str, dep_id: Option<&str>) -> Vec<DependencyVersion>;
        fn delete_dependency_version(&self, project: &str, id: &str) -> ();
    }

    forward! { logs =>
        fn query_logs(&self, q: LogQuery) -> Vec<InvocationLog>;
        fn purge_logs(&self, before_ms: i64) -> usize;
    }

    forward! { settings =>
        fn get_setting(&self, key: &str) -> Option<String>;
        fn put_setting(&self, key: &str, value: &str) -> ();
    }

    /// See [`AsyncQueue::list`].
    pub async fn list_async(
        &self,
        filter: AsyncFilter,
    ) -> Result<(Vec<AsyncRow>, u64), StoreError> {
        self.parts.queue.list(filter).await
    }

    /// See [`AsyncQueue::cancel`].
    pub async fn cancel_async(
        &self,
        project: &str,
        package: &str,
        name: &str,
        request_id: &str,
        now_ms: i64,
    ) -> Result<AsyncStatus, StoreError> {
        self.parts
            .queue
            .cancel(project, package, name, request_id, now_ms)
            .await
    }

    /// See [`AsyncQueue::stats`].
    pub async fn async_queue_stats(&self) -> Result<(u64, Option<i64>), StoreError> {
        self.parts.queue.stats().await
    }
}
