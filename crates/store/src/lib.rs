//! Metadata storage of fgs: functions with versions and aliases, triggers, test events,
//! dependency versions, invocation logs, settings, the async invocation queue, and (for a
//! cluster) code packages and node membership. This is the only crate that speaks SQL; its
//! schema migrations live here too. It must not know HTTP or processes: it stores records as
//! `fgs-core` defines them and returns typed [`StoreError`]s that `fgs-api` maps to wire codes.
//!
//! Storage is a set of traits by concern ([`FunctionStore`], [`TriggerStore`], [`TestEventStore`],
//! [`DependencyStore`], [`LogStore`], [`SettingStore`], [`AsyncQueue`], [`BlobStore`],
//! [`NodeStore`], [`SlotStore`]: places for instances across a cluster, [`StatsStore`]: what
//! each node counted); a backend implements all of them, and [`Store`] is the cheap-to-clone handle
//! callers hold, over trait objects, so the backend is chosen at start-up ([`StoreKind`]): SQLite
//! in the data directory (a single node, the default) or PostgreSQL (`postgres://...`, shared by
//! the nodes of a cluster). The [`conformance`] suite states what every backend must do; both
//! run it in this crate's tests (PostgreSQL when `FGS_TEST_POSTGRES_URL` names a server).
//!
//! Each backend owns its I/O model: SQLite's blocking calls run on tokio's blocking pool,
//! PostgreSQL's are async over a pool of connections that reconnects by itself; every method is
//! `async` and safe to await from request handlers.
#![forbid(unsafe_code)]

mod catalog;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
pub mod feed;
mod forward;
mod handle;
mod kind;
mod postgres;
mod queue;
mod sqlite;
mod stats;
mod traits;

pub use catalog::Catalog;
pub use error::{BackendError, StoreError};
pub use feed::{ChangeFeed, ChangeKind, FunctionKey, LocalFeed, Notice, Subscription};
pub use handle::Store;
pub use kind::StoreKind;
pub use queue::{AsyncFilter, AsyncQueue, AsyncRow, Lease};
pub use sqlite::logs::{InvocationLog, LogMeta, LogQuery, NewInvocationLog};
pub use stats::{StatMinute, StatMonth, StatsStore};
pub use traits::{
    BlobStore, DependencyStore, FunctionStore, LogStore, NodeRecord, NodeStore, SettingStore,
    SlotClaim, SlotHolder, SlotPlace, SlotStore, StoreFuture, TestEventStore, TriggerStore,
};

use fgs_core::FunctionRecord;

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

/// A trigger as stored (SPEC.md 2). `event_data` is the JSON `fgs-triggers` normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerRecord {
    pub trigger_id: String,
    pub project: String,
    pub package: String,
    /// The function's name.
    pub name: String,
    /// The version the trigger invokes.
    pub qualifier: fgs_core::Qualifier,
    pub type_code: fgs_core::trigger::TriggerKind,
    pub status: fgs_core::trigger::TriggerStatus,
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

/// An error with its sources, `: `-joined, as a message shows it.
#[cfg(test)]
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests;
