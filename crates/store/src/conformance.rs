//! The conformance suite: what every storage backend must do, one `pub async fn` per behaviour,
//! each taking a fresh, empty [`Store`] over the backend. [`crate::conformance_suite!`] turns
//! the list into `#[tokio::test]`s for a backend: SQLite runs it in this crate's tests, and
//! another backend runs it unchanged from its own tests (feature `conformance`).

mod functions;
mod other;
mod queue;
mod slots;
mod triggers;

use fgs_core::function::Reserved;
use fgs_core::runtime::{PythonVersion, Runtime};
use fgs_core::{CodeInfo, CodeType, FunctionRecord, FunctionSpec};

pub use functions::*;
pub use other::*;
pub use queue::*;
pub use slots::*;
pub use triggers::*;

use std::collections::BTreeMap;

use fgs_core::flows::{AliasRecord, VersionRecord};

use crate::*;

/// A function record with a code package derived from `created_ms`.
pub fn record(project: &str, package: &str, name: &str, created_ms: i64) -> FunctionRecord {
    FunctionRecord {
        project: project.to_owned(),
        package: package.to_owned(),
        name: name.to_owned(),
        func_id: format!("id-{project}-{package}-{name}"),
        spec: FunctionSpec {
            handler: "index.handler".to_owned(),
            timeout: 30,
            ..FunctionSpec::new(Runtime::Python(PythonVersion::V3_9))
        },
        code: CodeInfo {
            code_type: CodeType::Zip,
            code_filename: "code.zip".to_owned(),
            sha256: format!("{:064x}", created_ms),
            digest: "00".repeat(64),
            size: 123,
        },
        reserved: Reserved::default(),
        created_ms,
        modified_ms: created_ms,
        revision: 1,
        async_config: None,
        meta: Default::default(),
    }
}

fn names(page: &FunctionPage) -> Vec<&str> {
    page.functions.iter().map(|f| f.name.as_str()).collect()
}

pub fn version(rec: &FunctionRecord, v: &str, at: i64) -> VersionRecord {
    VersionRecord {
        version: v.to_owned(),
        description: String::new(),
        created_ms: at,
        function: rec.clone(),
    }
}

pub fn alias(name: &str, v: &str, extra: Option<&str>) -> AliasRecord {
    AliasRecord {
        name: name.to_owned(),
        version: v.to_owned(),
        description: String::new(),
        additional_version_weights: extra
            .map(|e| BTreeMap::from([(e.to_owned(), 10)]))
            .unwrap_or_default(),
        additional_version_strategy: BTreeMap::new(),
        created_ms: 1,
        modified_ms: 1,
    }
}

/// Instantiates the whole suite as `#[tokio::test]`s. `$fresh` is an expression evaluated once
/// per test, a future resolving to `(guard, Store)`: a fresh, empty store over the backend, and
/// whatever must live as long as it (a temporary directory, a throwaway database).
///
/// `conformance_suite!(optional $fresh)` is the same suite over a backend that needs a running
/// engine: `$fresh` resolves to `Option<(guard, Store)>`, and `None` (no engine configured;
/// the fresh function says why) ends the test there.
#[macro_export]
macro_rules! conformance_suite {
    (@names @$how:ident $fresh:expr) => {
        $crate::conformance_suite!(@$how $fresh;
            create_then_get_returns_the_same_record,
            a_function_keeps_its_meta_through_create_and_update,
            list_pages_in_creation_order_with_marker_and_count,
            create_refuses_an_existing_name,
            create_refuses_beyond_the_project_quota,
            update_is_optimistic,
            delete_returns_the_record_once,
            package_reference_follows_the_records,
            settings_are_replaced,
            concurrent_creates_respect_the_quota,
            package_use_names_every_code_and_dependency_package_and_each_list,
            versions_publish_limit_and_alias_guard,
            logs_insert_query_page_and_purge,
            logs_batch_is_stored_exactly,
            triggers_crud_limit_and_cascade,
            triggers_advance_is_a_compare_and_set,
            test_events_crud_names_and_limit,
            queue_accepts_each_row_on_its_own,
            queue_claims_due_events_once_in_due_order,
            queue_takes_back_only_expired_leases,
            queue_two_owners_never_share_a_held_lease,
            queue_late_outcome_of_an_old_lease_is_dropped,
            queue_extension_keeps_the_event,
            queue_retry_waits_until_its_time,
            queue_never_claims_a_finished_event,
            queue_cancels_only_waiting_events,
            queue_lists_newest_first_with_filters,
            queue_concurrent_claims_never_overlap,
            queue_extensions_and_outcomes_at_once_both_succeed,
            nodes_heartbeat_live_and_forgotten,
            slots_hold_a_limit_across_nodes_and_come_back,
            slots_of_dead_nodes_count_for_nobody,
            slots_concurrent_claims_never_exceed_the_limit,
            slots_of_a_version_are_listed_in_claim_order
        );
    };
    (@required $fresh:expr; $($t:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $t() {
                let (_guard, store) = $fresh.await;
                $crate::conformance::$t(&store).await;
            }
        )*
    };
    (@optional $fresh:expr; $($t:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $t() {
                let Some((_guard, store)) = $fresh.await else {
                    return;
                };
                $crate::conformance::$t(&store).await;
            }
        )*
    };
    // Matched last: the arms above begin with `@`, which an expression cannot.
    (optional $fresh:expr) => {
        $crate::conformance_suite!(@names @optional $fresh);
    };
    ($fresh:expr) => {
        $crate::conformance_suite!(@names @required $fresh);
    };
}
