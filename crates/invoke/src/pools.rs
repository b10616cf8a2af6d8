//! The pool registry: one pool per function version, made from the version's instance template;
//! a pool whose instances would now start differently is retired and replaced, one whose limits
//! changed keeps its instances. In a cluster, a pool's reserved count is this node's share of
//! the version's ([`ClusterLimits::reserved_share`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fgs_core::limits::PIDS_MAX;
use fgs_instance::InstanceConfig;
use fgs_pool::{Limits, Pool};
use fgs_sandbox::ResourceLimits;
use tokio::time::Instant;

use crate::cluster::ClusterLimits;
use crate::instances::Instances;
use crate::launcher::same_template;
use crate::{env, FunctionKey, InvokerConfig, ResolvedFunction};

pub(crate) type FnPool<I> = Pool<<I as Instances>::Launcher>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    function: FunctionKey,
    version: String,
}

/// A resolution and the pool found to serve it.
type ServedBy<I> = (Arc<ResolvedFunction>, Arc<FnPool<I>>);

pub(crate) struct PoolRegistry<I: Instances> {
    instances: I,
    config: InvokerConfig,
    pools: Mutex<HashMap<PoolKey, Arc<FnPool<I>>>>,
    /// The pool each cached resolution was last found to be served by, keyed by the
    /// resolution's address (the `Arc` is kept, so the address is not reused): a warm call
    /// skips building and comparing the instance template, measured at 1.5 % of fgs's CPU
    /// per call. Entries go with their function's changes.
    served_by: Mutex<HashMap<usize, ServedBy<I>>>,
    /// Set in a cluster: each pool's instances count against its version's limit on every
    /// node ([`crate::cluster`]).
    cluster: std::sync::OnceLock<Arc<ClusterLimits>>,
}

impl<I: Instances> PoolRegistry<I> {
    pub(crate) fn new(instances: I, config: InvokerConfig) -> PoolRegistry<I> {
        PoolRegistry {
            instances,
            config,
            pools: Mutex::new(HashMap::new()),
            served_by: Mutex::new(HashMap::new()),
            cluster: std::sync::OnceLock::new(),
        }
    }

    /// Counts every pool made from now on against the cluster's limits; the first set stays.
    pub(crate) fn set_cluster(&self, limits: Arc<ClusterLimits>) -> bool {
        self.cluster.set(limits).is_ok()
    }

    /// Ends the instances holding cluster places: this node fenced itself.
    pub(crate) fn fence(&self) {
        for p in self.all() {
            p.fence();
        }
    }

    pub(crate) fn instances(&self) -> &I {
        &self.instances
    }

    fn limits(&self, r: &ResolvedFunction) -> Limits {
        let rec = &r.record;
        // In a cluster, the reserved count is the cluster's: this node keeps its share.
        let reserved = match self.cluster.get() {
            Some(c) => c.reserved_share(&r.key(), &r.version, rec.reserved.count),
            None => rec.reserved.count,
        };
        Limits {
            max_instances: rec.spec.max_instance_num,
            reserved,
            concurrency: rec.spec.strategy_config.concurrent_num.max(1),
            queue_limit: self.config.queue_limit,
            idle_timeout: self.config.idle_timeout,
        }
    }

    fn template(&self, r: &ResolvedFunction) -> InstanceConfig {
        let spec = &r.record.spec;
        let timeout = Duration::from_secs(u64::from(spec.timeout));
        let start_timeout = if spec.initializer_timeout > 0 {
            Duration::from_secs(u64::from(spec.initializer_timeout)).max(timeout)
        } else {
            timeout
        };
        InstanceConfig {
            id: String::new(),
            runtime: spec.runtime,
            code_dir: r.code_dir.clone(),
            dependency_dir: r.dependency_dir.clone(),
            dependencies: r.dependencies.clone(),
            function: env::function_env(&r.record, &r.version),
            limits: ResourceLimits {
                memory_mb: spec.memory_size,
                cpu_millicores: spec.cpu(),
                pids: PIDS_MAX,
            },
            timeout,
            concurrency: spec.strategy_config.concurrent_num.max(1),
            start_timeout,
            extension_init_timeout: self.config.extension_init_timeout,
            network: !spec.disable_public_network,
            // SPEC.md 5: SIGKILL follows SIGTERM after the pre-stop timeout.
            stop_grace: if spec.pre_stop_handler.is_empty() || spec.pre_stop_timeout == 0 {
                self.config.stop_grace
            } else {
                Duration::from_secs(u64::from(spec.pre_stop_timeout))
            },
            runtime_dir: self.config.runtime_dir.clone(),
            interpreter: self.config.runtimes.get(spec.runtime).clone(),
            runtime_mounts: Arc::clone(&self.config.runtime_mounts),
            image: image_run(r),
        }
    }

    /// The pool that serves `r`, replacing one whose instances were made from an older
    /// configuration.
    pub(crate) fn pool_for(&self, r: &Arc<ResolvedFunction>) -> Arc<FnPool<I>> {
        let addr = Arc::as_ptr(r) as usize;
        if let Some((_, p)) = self
            .served_by
            .lock()
            .expect("served-by lock is never poisoned")
            .get(&addr)
        {
            if !p.is_retired() {
                return Arc::clone(p);
            }
        }
        let pool = self.pool_for_slow(r);
        self.served_by
            .lock()
            .expect("served-by lock is never poisoned")
            .insert(addr, (Arc::clone(r), Arc::clone(&pool)));
        pool
    }

    fn pool_for_slow(&self, r: &ResolvedFunction) -> Arc<FnPool<I>> {
        let key = PoolKey {
            function: r.key(),
            version: r.version.clone(),
        };
        let limits = self.limits(r);
        let template = self.template(r);
        let mut pools = self.pools.lock().expect("pool map lock is never poisoned");
        if let Some(p) = pools.get(&key) {
            if same_template(I::template(p.launcher()), &template) {
                if p.limits() != limits {
                    p.set_limits(limits);
                }
                return Arc::clone(p);
            }
            p.retire();
        }
        let gate = self
            .cluster
            .get()
            .map(|c| c.gate(&key.function, &key.version));
        let pool = Pool::with_gate(self.instances.launcher(template), limits, gate);
        pool.ensure_reserved();
        pools.insert(key, Arc::clone(&pool));
        pool
    }

    /// Forgets which pool serves the resolutions of one function, or of all (`None`); and
    /// returns the versions of it (or of all) that have a pool, to bring them in line.
    pub(crate) fn forget(&self, key: Option<&FunctionKey>) -> Vec<(FunctionKey, String)> {
        self.served_by
            .lock()
            .expect("served-by lock is never poisoned")
            .retain(|_, (r, _)| key.is_some_and(|k| !r.is_of(k)));
        self.pools
            .lock()
            .expect("pool map lock is never poisoned")
            .keys()
            .filter(|pk| key.is_none_or(|k| &pk.function == k))
            .map(|pk| (pk.function.clone(), pk.version.clone()))
            .collect()
    }

    /// Retires the pool of a version that is gone.
    pub(crate) fn retire(&self, key: &FunctionKey, version: &str) {
        let pk = PoolKey {
            function: key.clone(),
            version: version.to_string(),
        };
        if let Some(p) = self
            .pools
            .lock()
            .expect("pool map lock is never poisoned")
            .remove(&pk)
        {
            p.retire();
        }
    }

    fn all(&self) -> Vec<Arc<FnPool<I>>> {
        self.pools
            .lock()
            .expect("pool map lock is never poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Reclaims idle instances of every pool and restarts missing reserved ones.
    pub(crate) fn reclaim_idle(&self) -> usize {
        let now = Instant::now();
        let mut n = 0;
        for p in self.all() {
            n += p.reclaim_idle(now);
            p.ensure_reserved();
        }
        n
    }

    pub(crate) fn counts(&self) -> Vec<(FunctionKey, String, fgs_pool::PoolStats)> {
        self.pools
            .lock()
            .expect("pool map lock is never poisoned")
            .iter()
            .map(|(k, p)| (k.function.clone(), k.version.clone(), p.stats()))
            .collect()
    }

    pub(crate) async fn shutdown(&self) {
        let pools: Vec<_> = self
            .pools
            .lock()
            .expect("pool map lock is never poisoned")
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in pools {
            p.shutdown().await;
        }
    }
}

/// How an image function's instances start: the image's config under the function's overrides.
fn image_run(r: &ResolvedFunction) -> Option<fgs_instance::ImageRun> {
    let spec = &r.record.spec;
    let (ci, u) = (spec.custom_image.as_ref()?, r.image.as_ref()?);
    Some(fgs_instance::ImageRun {
        rootfs: u.root.clone(),
        digest: u.digest.to_string(),
        argv: ci.argv(&u.config.entrypoint, &u.config.cmd),
        env: u
            .config
            .env
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect(),
        working_dir: if ci.working_dir.is_empty() {
            u.config.working_dir.clone()
        } else {
            ci.working_dir.clone()
        },
        uid: ci.uid,
        gid: ci.gid,
        http: spec.runtime == fgs_core::Runtime::Http,
    })
}
