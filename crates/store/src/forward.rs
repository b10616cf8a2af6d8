//! The storage traits for a backend whose own `async fn`s have the traits' names and
//! arguments: every trait method boxes the backend's method of the same name. Both backends use
//! it, so a trait method is forwarded in one place (`BlobStore` differs per backend and is
//! written beside each).

/// Implements every storage trait but `BlobStore` for `$backend` by forwarding each method to
/// `$backend`'s own `async fn` of the same name.
macro_rules! forward_store_traits {
    ($backend:ident) => {
        use fgs_core::dependency::DependencyVersion;
        use fgs_core::flows::{AliasRecord, AsyncStatus, VersionRecord};
        use fgs_core::FunctionRecord;
        use $crate::traits::{
            DependencyStore, FunctionStore, LogStore, NodeStore, SettingStore, SlotStore,
            StoreFuture, TestEventStore, TriggerStore,
        };
        use $crate::{
            AsyncFilter, AsyncQueue, AsyncRow, FunctionPage, InvocationLog, LogQuery, PackageUse,
            StoreError, TestEventRecord, TriggerRecord,
        };

        impl FunctionStore for $backend {
            fn create_function(
                &self,
                rec: FunctionRecord,
                max_per_project: u64,
            ) -> StoreFuture<'_, ()> {
                Box::pin($backend::create_function(self, rec, max_per_project))
            }
            fn get_function<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
            ) -> StoreFuture<'a, Option<FunctionRecord>> {
                Box::pin($backend::get_function(self, project, package, name))
            }
            fn list_functions<'a>(
                &'a self,
                project: &'a str,
                package: Option<&'a str>,
                marker: u64,
                max_items: u64,
            ) -> StoreFuture<'a, FunctionPage> {
                Box::pin($backend::list_functions(
                    self, project, package, marker, max_items,
                ))
            }
            fn update_function<'a>(
                &'a self,
                rec: &'a FunctionRecord,
                expected_revision: u64,
            ) -> StoreFuture<'a, ()> {
                Box::pin($backend::update_function(self, rec, expected_revision))
            }
            fn delete_function<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
            ) -> StoreFuture<'a, Option<FunctionRecord>> {
                Box::pin($backend::delete_function(self, project, package, name))
            }
            fn all_functions(&self) -> StoreFuture<'_, Vec<FunctionRecord>> {
                Box::pin($backend::all_functions(self))
            }
            fn package_use(&self) -> StoreFuture<'_, PackageUse> {
                Box::pin($backend::package_use(self))
            }
            fn publish_version(
                &self,
                v: VersionRecord,
                max_published: usize,
            ) -> StoreFuture<'_, ()> {
                Box::pin($backend::publish_version(self, v, max_published))
            }
            fn get_version<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                version: &'a str,
            ) -> StoreFuture<'a, Option<VersionRecord>> {
                Box::pin($backend::get_version(self, project, package, name, version))
            }
            fn list_versions<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
            ) -> StoreFuture<'a, Vec<VersionRecord>> {
                Box::pin($backend::list_versions(self, project, package, name))
            }
            fn delete_version<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                version: &'a str,
            ) -> StoreFuture<'a, ()> {
                Box::pin($backend::delete_version(
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
                Box::pin($backend::put_alias(
                    self, project, package, name, alias, create, max,
                ))
            }
            fn list_aliases<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
            ) -> StoreFuture<'a, Vec<AliasRecord>> {
                Box::pin($backend::list_aliases(self, project, package, name))
            }
            fn delete_alias<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                alias: &'a str,
            ) -> StoreFuture<'a, ()> {
                Box::pin($backend::delete_alias(self, project, package, name, alias))
            }
        }

        impl TriggerStore for $backend {
            fn create_trigger(
                &self,
                rec: TriggerRecord,
                max_per_version: u64,
            ) -> StoreFuture<'_, ()> {
                Box::pin($backend::create_trigger(self, rec, max_per_version))
            }
            fn list_triggers<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                qualifier: Option<&'a str>,
            ) -> StoreFuture<'a, Vec<TriggerRecord>> {
                Box::pin($backend::list_triggers(
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
                Box::pin($backend::get_trigger(
                    self, project, package, name, trigger_id,
                ))
            }
            fn all_triggers(&self) -> StoreFuture<'_, Vec<TriggerRecord>> {
                Box::pin($backend::all_triggers(self))
            }
            fn update_trigger<'a>(&'a self, rec: &'a TriggerRecord) -> StoreFuture<'a, bool> {
                Box::pin($backend::update_trigger(self, rec))
            }
            fn delete_triggers<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                qualifier: Option<&'a str>,
                trigger_id: Option<&'a str>,
            ) -> StoreFuture<'a, Vec<TriggerRecord>> {
                Box::pin($backend::delete_triggers(
                    self, project, package, name, qualifier, trigger_id,
                ))
            }
            fn advance_timer<'a>(
                &'a self,
                trigger_id: &'a str,
                due_ms: i64,
                next_ms: Option<i64>,
            ) -> StoreFuture<'a, bool> {
                Box::pin($backend::advance_timer(self, trigger_id, due_ms, next_ms))
            }
        }

        impl TestEventStore for $backend {
            fn create_test_event<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                ev: TestEventRecord,
                max_per_function: u64,
            ) -> StoreFuture<'a, ()> {
                Box::pin($backend::create_test_event(
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
                Box::pin($backend::list_test_events(self, project, package, name))
            }
            fn get_test_event<'a>(
                &'a self,
                project: &'a str,
                package: &'a str,
                name: &'a str,
                event_id: &'a str,
            ) -> StoreFuture<'a, Option<TestEventRecord>> {
                Box::pin($backend::get_test_event(
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
                Box::pin($backend::update_test_event(
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
                Box::pin($backend::delete_test_event(
                    self, project, package, name, event_id,
                ))
            }
        }

        impl DependencyStore for $backend {
            fn create_dependency_version(
                &self,
                dv: DependencyVersion,
            ) -> StoreFuture<'_, DependencyVersion> {
                Box::pin($backend::create_dependency_version(self, dv))
            }
            fn get_dependency_version<'a>(
                &'a self,
                project: &'a str,
                id: &'a str,
            ) -> StoreFuture<'a, Option<DependencyVersion>> {
                Box::pin($backend::get_dependency_version(self, project, id))
            }
            fn list_dependency_versions<'a>(
                &'a self,
                project: &'a str,
                dep_id: Option<&'a str>,
            ) -> StoreFuture<'a, Vec<DependencyVersion>> {
                Box::pin($backend::list_dependency_versions(self, project, dep_id))
            }
            fn delete_dependency_version<'a>(
                &'a self,
                project: &'a str,
                id: &'a str,
            ) -> StoreFuture<'a, ()> {
                Box::pin($backend::delete_dependency_version(self, project, id))
            }
        }

        impl LogStore for $backend {
            fn insert_logs(&self, logs: Vec<$crate::NewInvocationLog>) -> StoreFuture<'_, ()> {
                Box::pin($backend::insert_logs(self, logs))
            }
            fn query_logs(&self, q: LogQuery) -> StoreFuture<'_, Vec<InvocationLog>> {
                Box::pin($backend::query_logs(self, q))
            }
            fn purge_logs(&self, before_ms: i64) -> StoreFuture<'_, usize> {
                Box::pin($backend::purge_logs(self, before_ms))
            }
        }

        impl SettingStore for $backend {
            fn get_setting<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<String>> {
                Box::pin($backend::get_setting(self, key))
            }
            fn put_setting<'a>(&'a self, key: &'a str, value: &'a str) -> StoreFuture<'a, ()> {
                Box::pin($backend::put_setting(self, key, value))
            }
        }

        impl AsyncQueue for $backend {
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

        impl NodeStore for $backend {
            fn heartbeat<'a>(
                &'a self,
                node_id: &'a str,
                advertise_url: &'a str,
                now_ms: i64,
            ) -> StoreFuture<'a, ()> {
                Box::pin($backend::heartbeat(self, node_id, advertise_url, now_ms))
            }
            fn live_nodes(
                &self,
                now_ms: i64,
                silence_ms: i64,
            ) -> StoreFuture<'_, Vec<$crate::NodeRecord>> {
                Box::pin($backend::live_nodes(self, now_ms, silence_ms))
            }
            fn forget_dead(&self, now_ms: i64, silence_ms: i64) -> StoreFuture<'_, usize> {
                Box::pin($backend::forget_dead(self, now_ms, silence_ms))
            }
        }

        impl SlotStore for $backend {
            fn claim_slot<'a>(
                &'a self,
                node_id: &'a str,
                function: &'a $crate::FunctionKey,
                version: &'a str,
                limit: u32,
                now_ms: i64,
                silence_ms: i64,
            ) -> StoreFuture<'a, $crate::SlotClaim> {
                Box::pin($backend::claim_slot(
                    self, node_id, function, version, limit, now_ms, silence_ms,
                ))
            }
            fn version_slots<'a>(
                &'a self,
                function: &'a $crate::FunctionKey,
                version: &'a str,
                now_ms: i64,
                silence_ms: i64,
            ) -> StoreFuture<'a, Vec<$crate::SlotPlace>> {
                Box::pin($backend::version_slots(
                    self, function, version, now_ms, silence_ms,
                ))
            }
            fn release_slot(&self, slot_id: i64) -> StoreFuture<'_, ()> {
                Box::pin($backend::release_slot(self, slot_id))
            }
            fn release_node_slots<'a>(&'a self, node_id: &'a str) -> StoreFuture<'a, usize> {
                Box::pin($backend::release_node_slots(self, node_id))
            }
        }
    };
}

pub(crate) use forward_store_traits;
