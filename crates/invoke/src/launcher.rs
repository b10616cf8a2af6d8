//! Starting instances of one function version for its pool.

use fgs_instance::{Instance, InstanceConfig, StartError};
use fgs_pool::{Launcher, Worker};
use fgs_sandbox::Sandbox;

/// An instance in a pool.
pub struct InstanceWorker(pub Instance);

impl Worker for InstanceWorker {
    fn is_healthy(&self) -> bool {
        self.0.is_healthy()
    }

    async fn stop(&self) {
        self.0.stop().await
    }
}

/// Starts instances from one template; a pool has exactly one.
pub struct InstanceLauncher {
    pub sandbox: Sandbox,
    /// The configuration every instance of this pool starts with (its `id` is replaced).
    pub template: InstanceConfig,
}

impl Launcher for InstanceLauncher {
    type Worker = InstanceWorker;
    type Error = StartError;

    async fn launch(&self) -> Result<InstanceWorker, StartError> {
        let mut cfg = self.template.clone();
        cfg.id = uuid::Uuid::new_v4().simple().to_string();
        let t0 = tokio::time::Instant::now();
        let r = Instance::start(&self.sandbox, cfg).await;
        match &r {
            Ok(_) => tracing::debug!(elapsed = ?t0.elapsed(), "instance started"),
            Err(e) => tracing::info!(error = %e, "instance failed to start"),
        }
        r.map(InstanceWorker)
    }
}

/// Whether two templates start the same instances (the `id` aside).
pub(crate) fn same_template(a: &InstanceConfig, b: &InstanceConfig) -> bool {
    a.runtime == b.runtime
        && a.code_dir == b.code_dir
        && a.dependency_dir == b.dependency_dir
        && a.function == b.function
        && a.limits == b.limits
        && a.timeout == b.timeout
        && a.concurrency == b.concurrency
        && a.start_timeout == b.start_timeout
        && a.extension_init_timeout == b.extension_init_timeout
        && a.network == b.network
        && a.stop_grace == b.stop_grace
        && a.image == b.image
}
