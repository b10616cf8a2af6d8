//! The PostgreSQL backend as the storage traits: each method boxes the backend's own `async fn`.

use fgs_core::dependency::DependencyVersion;
use fgs_core::flows::{AliasRecord, AsyncStatus, VersionRecord};
use fgs_core::FunctionRecord;

use super::Postgres;
use crate::traits::{
    BlobStore, DependencyStore, FunctionStore, LogStore, NodeStore, SettingStore, StoreFuture,
    TestEventStore, TriggerStore,
};
use crate::{
    AsyncFilter, AsyncQueue, AsyncRow, FunctionPage, InvocationLog, LogQuery, PackageUse,
    StoreError, TestEventRecord, TriggerRecord,
};

impl FunctionStore for Postgres {
    fn create_function(&self, rec: FunctionRecord, max_per_project: u64) -> StoreFuture<'_, ()> {
        Box::pin(Postgres::create_function(self, rec, max_per_project))
    }
    fn get_function<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<FunctionRecord>> {
        Box::pin(Postgres::get_function(self, project, package, name))
    }
    fn list_functions<'a>(
        &'a self,
        project: &'a str,
        package: Option<&'a str>,
        marker: u64,
        max_items: u64,
    ) -> StoreFuture<'a, FunctionPage> {
        Box::pin(Postgres::list_functions(
            self, project, package, marker, max_items,
        ))
    }
    fn update_function<'a>(
        &'a self,
        rec: &'a FunctionRecord,
        expected_revision: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::update_function(self, rec, expected_revision))
    }
    fn delete_function<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Option<FunctionRecord>> {
        Box::pin(Postgres::delete_function(self, project, package, name))
    }
    fn all_functions(&self) -> StoreFuture<'_, Vec<FunctionRecord>> {
        Box::pin(Postgres::all_functions(self))
    }
    fn package_use(&self) -> StoreFuture<'_, PackageUse> {
        Box::pin(Postgres::package_use(self))
    }
    fn publish_version(&self, v: VersionRecord, max_published: usize) -> StoreFuture<'_, ()> {
        Box::pin(Postgres::publish_version(self, v, max_published))
    }
    fn get_version<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, Option<VersionRecord>> {
        Box::pin(Postgres::get_version(self, project, package, name, version))
    }
    fn list_versions<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<VersionRecord>> {
        Box::pin(Postgres::list_versions(self, project, package, name))
    }
    fn delete_version<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        version: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::delete_version(
            self, project, package, name, version,
        ))
    }
    fn put_alias<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        alias: AliasRecord,
        create: bool,
        max: usize,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::put_alias(
            self, project, package, name, alias, create, max,
        ))
    }
    fn list_aliases<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<AliasRecord>> {
        Box::pin(Postgres::list_aliases(self, project, package, name))
    }
    fn delete_alias<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        alias: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::delete_alias(self, project, package, name, alias))
    }
}

impl TriggerStore for Postgres {
    fn create_trigger(&self, rec: TriggerRecord, max_per_version: u64) -> StoreFuture<'_, ()> {
        Box::pin(Postgres::create_trigger(self, rec, max_per_version))
    }
    fn list_triggers<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        qualifier: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<TriggerRecord>> {
        Box::pin(Postgres::list_triggers(
            self, project, package, name, qualifier,
        ))
    }
    fn get_trigger<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        trigger_id: &'a str,
    ) -> StoreFuture<'a, Option<TriggerRecord>> {
        Box::pin(Postgres::get_trigger(
            self, project, package, name, trigger_id,
        ))
    }
    fn all_triggers(&self) -> StoreFuture<'_, Vec<TriggerRecord>> {
        Box::pin(Postgres::all_triggers(self))
    }
    fn update_trigger<'a>(&'a self, rec: &'a TriggerRecord) -> StoreFuture<'a, bool> {
        Box::pin(Postgres::update_trigger(self, rec))
    }
    fn delete_triggers<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        qualifier: Option<&'a str>,
        trigger_id: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<TriggerRecord>> {
        Box::pin(Postgres::delete_triggers(
            self, project, package, name, qualifier, trigger_id,
        ))
    }
    fn advance_timer<'a>(
        &'a self,
        trigger_id: &'a str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(Postgres::advance_timer(self, trigger_id, due_ms, next_ms))
    }
}

impl TestEventStore for Postgres {
    fn create_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        ev: TestEventRecord,
        max_per_function: u64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::create_test_event(
            self,
            project,
            package,
            name,
            ev,
            max_per_function,
        ))
    }
    fn list_test_events<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
    ) -> StoreFuture<'a, Vec<TestEventRecord>> {
        Box::pin(Postgres::list_test_events(self, project, package, name))
    }
    fn get_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        event_id: &'a str,
    ) -> StoreFuture<'a, Option<TestEventRecord>> {
        Box::pin(Postgres::get_test_event(
            self, project, package, name, event_id,
        ))
    }
    fn update_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        event_id: &'a str,
        content: &'a str,
        modified_ms: i64,
    ) -> StoreFuture<'a, Option<TestEventRecord>> {
        Box::pin(Postgres::update_test_event(
            self,
            project,
            package,
            name,
            event_id,
            content,
            modified_ms,
        ))
    }
    fn delete_test_event<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        event_id: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(Postgres::delete_test_event(
            self, project, package, name, event_id,
        ))
    }
}

impl DependencyStore for Postgres {
    fn create_dependency_version(
        &self,
        dv: DependencyVersion,
    ) -> StoreFuture<'_, DependencyVersion> {
        Box::pin(Postgres::create_dependency_version(self, dv))
    }
    fn get_dependency_version<'a>(
        &'a self,
        project: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<DependencyVersion>> {
        Box::pin(Postgres::get_dependency_version(self, project, id))
    }
    fn list_dependency_versions<'a>(
        &'a self,
        project: &'a str,
        dep_id: Option<&'a str>,
    ) -> StoreFuture<'a, Vec<DependencyVersion>> {
        Box::pin(Postgres::list_dependency_versions(self, project, dep_id))
    }
    fn delete_dependency_version<'a>(
        &'a self,
        project: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::delete_dependency_version(self, project, id))
    }
}

impl LogStore for Postgres {
    fn insert_logs(&self, logs: Vec<InvocationLog>) -> StoreFuture<'_, ()> {
        Box::pin(Postgres::insert_logs(self, logs))
    }
    fn query_logs(&self, q: LogQuery) -> StoreFuture<'_, Vec<InvocationLog>> {
        Box::pin(Postgres::query_logs(self, q))
    }
    fn purge_logs(&self, before_ms: i64) -> StoreFuture<'_, usize> {
        Box::pin(Postgres::purge_logs(self, before_ms))
    }
}

impl SettingStore for Postgres {
    fn get_setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
        Box::pin(Postgres::get_setting(self, key))
    }
    fn put_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::put_setting(self, key, value))
    }
}

impl AsyncQueue for Postgres {
    fn accept(&self, rows: Vec<AsyncRow>) -> StoreFuture<'_, Vec<Result<(), StoreError>>> {
        Box::pin(self.accept_async(rows))
    }
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> StoreFuture<'a, Vec<AsyncRow>> {
        Box::pin(self.claim_async(owner, now_ms, until_ms, limit))
    }
    fn extend<'a>(
        &'a self,
        owner: &'a str,
        leases: Vec<(String, i64)>,
        until_ms: i64,
    ) -> StoreFuture<'a, Vec<bool>> {
        Box::pin(self.extend_async(owner, leases, until_ms))
    }
    fn settle(&self, rows: Vec<AsyncRow>) -> StoreFuture<'_, Vec<bool>> {
        Box::pin(self.settle_async(rows))
    }
    fn next_due(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(self.next_due_async())
    }
    fn stats(&self) -> StoreFuture<'_, (u64, Option<i64>)> {
        Box::pin(self.async_queue_stats())
    }
    fn list(&self, filter: AsyncFilter) -> StoreFuture<'_, (Vec<AsyncRow>, u64)> {
        Box::pin(self.list_async(filter))
    }
    fn cancel<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        request_id: &'a str,
        now_ms: i64,
    ) -> StoreFuture<'a, AsyncStatus> {
        Box::pin(self.cancel_async(project, package, name, request_id, now_ms))
    }
}

impl BlobStore for Postgres {
    fn put_blob<'a>(&'a self, sha256: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::put_blob(self, sha256, bytes))
    }
    fn get_blob<'a>(&'a self, sha256: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(Postgres::get_blob(self, sha256))
    }
    fn collect_blobs<'a>(
        &'a self,
        used: &'a std::collections::HashSet<String>,
        before_ms: i64,
    ) -> StoreFuture<'a, usize> {
        Box::pin(Postgres::collect_blobs(self, used, before_ms))
    }
}

impl NodeStore for Postgres {
    fn heartbeat<'a>(
        &'a self,
        node_id: &'a str,
        advertise_url: &'a str,
        now_ms: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(Postgres::heartbeat(self, node_id, advertise_url, now_ms))
    }
    fn live_nodes(&self, now_ms: i64, silence_ms: i64) -> StoreFuture<'_, Vec<crate::NodeRecord>> {
        Box::pin(Postgres::live_nodes(self, now_ms, silence_ms))
    }
    fn forget_dead(&self, now_ms: i64, silence_ms: i64) -> StoreFuture<'_, usize> {
        Box::pin(Postgres::forget_dead(self, now_ms, silence_ms))
    }
}
