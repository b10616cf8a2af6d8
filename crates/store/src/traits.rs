//! The storage seams, one trait per concern. A backend implements every trait; [`crate::Store`]
//! holds it as trait objects, so the backend is chosen at start-up by `--store` and callers never
//! name it. Methods return boxed futures ([`StoreFuture`]) rather than `async fn`, because a trait
//! with `async fn` cannot be a trait object.
//!
//! What every backend must guarantee is written on each method; the conformance suite
//! ([`crate::conformance`]) checks it.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use fgs_core::dependency::DependencyVersion;
use fgs_core::flows::{AliasRecord, VersionRecord};
use fgs_core::FunctionRecord;

use crate::{
    FunctionPage, InvocationLog, LogQuery, NewInvocationLog, PackageUse, StoreError,
    TestEventRecord, TriggerRecord,
};

/// What a store method returns: a `Send` future borrowing its arguments.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Functions with their published versions and aliases. Every write is one transaction: a limit
/// check and the write it guards see the same data, even with other writers (other processes,
/// other nodes).
pub trait FunctionStore: Send + Sync + Debug {
    /// Inserts a new function unless its name is taken (`FunctionExists`) or its project already
    /// holds `max_per_project` functions (`QuotaExceeded`).
    fn create_function(&self, rec: FunctionRecord, max_per_project: u64) -> StoreFuture<'_, ()>;
    fn get_function<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<FunctionRecord>>;
    /// Functions of `project` (and of `package` if given) in creation order, starting at the
    /// 0-based offset `marker`, at most `max_items`; `count` and the page agree.
    fn list_functions<'a>(
        &'a self,
        project: &'a str,
        package: Option<&'a str>,
        marker: u64,
        max_items: u64,
    ) -> StoreFuture<'a, FunctionPage>;
    /// Replaces the record if its revision is still `expected_revision` (`Conflict` if another
    /// update won, `FunctionNotFound` if it is gone).
    fn update_function<'a>(
        &'a self,
        rec: &'a FunctionRecord,
        expected_revision: u64,
    ) -> StoreFuture<'a, ()>;
    /// Deletes a function with everything that belongs to it (versions, aliases, triggers, test
    /// events, async events) and returns the record it had.
    fn delete_function<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<FunctionRecord>>;
    fn all_functions(&self) -> StoreFuture<'_, Vec<FunctionRecord>>;
    /// Which code packages functions, versions and dependency versions use.
    fn package_use(&self) -> StoreFuture<'_, PackageUse>;
    /// Publishes a version unless its name is taken or `max_published` exist already.
    fn publish_version(&self, v: VersionRecord, max_published: usize) -> StoreFuture<'_, ()>;
    fn get_version<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<VersionRecord>>;
    /// Published versions, oldest first.
    fn list_versions<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<VersionRecord>>;
    /// Deletes a version unless an alias routes to it (`VersionInUse`).
    fn delete_version<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// Creates (`create`) or replaces an alias; the versions it routes to must exist.
    fn put_alias<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        alias: AliasRecord,
        create: bool,
        max: usize,
    ) -> StoreFuture<'a, ()>;
    fn list_aliases<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<AliasRecord>>;
    fn delete_alias<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        alias: &'a str,
    ) -> StoreFuture<'a, ()>;
}

/// Triggers, and the timer plan that makes a timer fire once per period whoever looks at it.
pub trait TriggerStore: Send + Sync + Debug {
    /// Inserts a trigger unless its function version already has `max_per_version`.
    fn create_trigger(&self, rec: TriggerRecord, max_per_version: u64) -> StoreFuture<'_, ()>;
    /// A function's triggers in creation order, of one version if `qualifier` is given.
    fn list_triggers<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        qualifier: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<TriggerRecord>>;
    fn get_trigger<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        trigger_id: &'a str,
    ) -> StoreFuture<'a, Option<TriggerRecord>>;
    fn all_triggers(&self) -> StoreFuture<'_, Vec<TriggerRecord>>;
    /// Writes status, event data, update time and timer plan; false if the trigger is gone.
    fn update_trigger<'a>(&'a self, rec: &'a TriggerRecord) -> StoreFuture<'a, bool>;
    /// Deletes one trigger by id, a version's, or all of a function's, and returns them.
    fn delete_triggers<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        qualifier: Option<&'a str>,
        trigger_id: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<TriggerRecord>>;
    /// Compare-and-set of an active timer's plan from `due_ms` to `next_ms`: true for exactly
    /// one caller per `due_ms`, the one that may fire it.
    fn advance_timer<'a>(
        &'a self,
        trigger_id: &'a str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> StoreFuture<'a, bool>;
}

/// Saved test events of a function.
pub trait TestEventStore: Send + Sync + Debug {
    /// Saves an event unless its name is taken or the function has `max_per_function`.
    fn create_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        ev: TestEventRecord,
        max_per_function: u64,
    ) -> StoreFuture<'a, ()>;
    fn list_test_events<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<TestEventRecord>>;
    fn get_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        event_id: &'a str,
    ) -> StoreFuture<'a, Option<TestEventRecord>>;
    fn update_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        event_id: &'a str,
        content: &'a str,
        modified_ms: i64,
    ) -> StoreFuture<'a, Option<TestEventRecord>>;
    fn delete_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        event_id: &'a str,
    ) -> StoreFuture<'a, bool>;
}

/// Dependency versions of a project.
pub trait DependencyStore: Send + Sync + Debug {
    /// Adds the next version of a dependency (a new dependency at version 1).
    fn create_dependency_version(
        &self,
        dv: DependencyVersion,
    ) -> StoreFuture<'_, DependencyVersion>;
    fn get_dependency_version<'a>(
        &'a self,
        project: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<DependencyVersion>>;
    /// Versions of one dependency, or the newest of each without `dep_id`.
    fn list_dependency_versions<'a>(
        &'a self,
        project: &'a str,
        dep_id: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<DependencyVersion>>;
    /// Deletes a version no function lists (`DependencyInUse` otherwise).
    fn delete_dependency_version<'a>(
        &'a self,
        project: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, ()>;
}

/// Invocation logs. Writes may be relaxed (a crash may lose the last batch) but never reorder
/// the paging marker: ids grow with insertion.
pub trait LogStore: Send + Sync + Debug {
    fn insert_logs(&self, logs: Vec<NewInvocationLog>) -> StoreFuture<'_, ()>;
    fn query_logs(&self, q: LogQuery) -> StoreFuture<'_, Vec<InvocationLog>>;
    /// Deletes logs of invocations started before `before_ms`; returns how many.
    fn purge_logs(&self, before_ms: i64) -> StoreFuture<'_, usize>;
}

/// Small named settings (e.g. the generated credential).
pub trait SettingStore: Send + Sync + Debug {
    fn get_setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>>;
    /// Sets `key` to `value`, replacing any earlier value.
    fn put_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, ()>;
}

/// Code packages (function and dependency zips) kept where every node reads them, by sha256.
/// A backend whose nodes share nothing (SQLite: one node, its data dir holds the packages) keeps
/// nothing here. Writing the same package twice is a no-op.
pub trait BlobStore: Send + Sync + Debug {
    fn put_blob<'a>(&'a self, sha256: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()>;
    /// The package's bytes, `None` if it is not kept here.
    fn get_blob<'a>(&'a self, sha256: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Deletes the packages not in `used` that were stored before `before_ms`; returns how
    /// many. The age guard keeps a package uploaded for a record not yet committed.
    fn collect_blobs<'a>(
        &'a self,
        used: &'a std::collections::HashSet<String>,
        before_ms: i64,
    ) -> StoreFuture<'a, usize>;
}

/// A node of the cluster as its heartbeats left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: String,
    /// Where the other nodes reach it (`--advertise-url`).
    pub advertise_url: String,
    /// Its first heartbeat since it was last forgotten, Unix milliseconds.
    pub started_ms: i64,
    /// Its latest heartbeat, Unix milliseconds.
    pub last_seen_ms: i64,
}

/// Membership: each node heartbeats; a node silent longer than a limit is dead.
pub trait NodeStore: Send + Sync + Debug {
    /// Records that `node_id` is alive at `now_ms` and reachable at `advertise_url`. A node
    /// that was forgotten (or never seen) starts anew at `now_ms`.
    fn heartbeat<'a>(
        &'a self,
        node_id: &'a str,
        advertise_url: &'a str,
        now_ms: i64,
    ) -> StoreFuture<'a, ()>;
    /// The nodes heard from within `silence_ms` before `now_ms`, by node id.
    fn live_nodes(&self, now_ms: i64, silence_ms: i64) -> StoreFuture<'_, Vec<NodeRecord>>;
    /// Forgets the nodes silent for longer than `silence_ms`; returns how many.
    fn forget_dead(&self, now_ms: i64, silence_ms: i64) -> StoreFuture<'_, usize>;
}

/// A node of the cluster holding places for instances of one function version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHolder {
    pub node_id: String,
    pub advertise_url: String,
    /// How many places it holds.
    pub slots: u32,
}

/// A place held for an instance by a live node ([`SlotStore::version_slots`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotPlace {
    /// The id [`SlotClaim::Granted`] gave: places are claimed in the order of their ids.
    pub slot_id: i64,
    pub node_id: String,
}

/// What a claim of a place for one more instance got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotClaim {
    /// The place, by id: give it back with [`SlotStore::release_slot`].
    Granted(i64),
    /// The limit is reached; the live nodes holding the places, by node id.
    Full(Vec<SlotHolder>),
    /// The claiming node is not live itself (no heartbeat within the silence limit): a place
    /// it took would not count for the others, so it gets none.
    NotLive,
}

/// Places for instances of function versions across the nodes sharing the store: how a
/// `max_instance_num` holds for the whole cluster. A node claims a place before it starts an
/// instance and gives it back when the instance has ended; places of nodes that are not live
/// (no heartbeat within `silence_ms`, [`NodeStore`]) do not count.
pub trait SlotStore: Send + Sync + Debug {
    /// Claims a place for one more instance of `function` version `version` on `node_id`,
    /// granted only if the live nodes hold fewer than `limit` places for it and `node_id` is
    /// live itself. Claims of the same version are serialized across nodes: `limit` is never
    /// exceeded, whatever claims run at once.
    fn claim_slot<'a>(
        &'a self,
        node_id: &'a str,
        function: &'a crate::FunctionKey,
        version: &'a str,
        limit: u32,
        now_ms: i64,
        silence_ms: i64,
    ) -> StoreFuture<'a, SlotClaim>;
    /// The places of `function` version `version` that live nodes hold, in claim order (by
    /// id): a lowered limit keeps the first ones, and every node reading them ranks its own
    /// places the same way.
    fn version_slots<'a>(
        &'a self,
        function: &'a crate::FunctionKey,
        version: &'a str,
        now_ms: i64,
        silence_ms: i64,
    ) -> StoreFuture<'a, Vec<SlotPlace>>;
    /// Gives a place back; a place already gone is no error.
    fn release_slot(&self, slot_id: i64) -> StoreFuture<'_, ()>;
    /// Gives back every place of `node_id` (a node starting, or one that fenced itself and
    /// ended its instances); returns how many.
    fn release_node_slots<'a>(&'a self, node_id: &'a str) -> StoreFuture<'a, usize>;
}
