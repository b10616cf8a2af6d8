//! What every handler shares.

use std::sync::Arc;

use fgs_invoke::{AsyncDispatcher, Invoker, StoreSource};
use fgs_package::PackageStore;
use fgs_store::{Catalog, Store};
use fgs_triggers::TriggerHub;

use crate::auth::Keyring;

pub struct AppState {
    /// Reads. Writes that change what an invocation resolves to go through `catalog`.
    pub store: Store,
    /// The writes of functions, versions, aliases and triggers, each published on the change
    /// feed after it commits.
    pub catalog: Catalog,
    pub packages: PackageStore,
    /// Image functions' images: pulled when a function is created or updated with one.
    pub images: Arc<fgs_image::Images>,
    pub invoker: Arc<Invoker<StoreSource>>,
    pub dispatcher: Arc<AsyncDispatcher<Invoker<StoreSource>>>,
    pub keyring: Keyring,
    pub region: String,
    /// What the host lets fgs enforce, reported by `GET /healthz`.
    pub isolation: serde_json::Value,
    /// What each runtime name runs on here; creating a function of a missing one is refused.
    pub runtimes: Arc<fgs_core::runtime::RuntimeTable>,
    /// The running side of triggers: APIG routes and the timer scheduler.
    pub triggers: Arc<TriggerHub>,
    /// Serialises trigger writes, so that the uniqueness checks (timer names, APIG routes) and
    /// the write they guard cannot interleave with another create or update.
    pub trigger_writes: tokio::sync::Mutex<()>,
    /// `GET /metrics` answers without credentials (`--metrics-public`, docs/metrics.md).
    pub metrics_public: bool,
    /// This node's id in a cluster (`--nats`), the `node` label of its `/metrics`; `None` on
    /// a single node, whose series carry no such label.
    pub node: Option<String>,
    /// This run's id in a cluster ([`crate::cluster_stats::run_id`]): the statistics API adds
    /// every other run's counts from the store to this node's. `None` on a single node.
    pub stats_run: Option<String>,
}

pub type SharedState = Arc<AppState>;
