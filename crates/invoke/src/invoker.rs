//! The invoker: resolution cache, pools per function version, and one invocation end to end.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use fgs_core::flows::AliasRecord;
use fgs_core::{FunctionError, FunctionRecord, Qualifier};
use fgs_instance::{InstanceConfig, InvokeType, Request};
use fgs_metrics as metrics;
use fgs_pool::{AcquireError, Limits, Pool};
use fgs_sandbox::Sandbox;
use tokio::time::Instant;

use crate::launcher::{same_template, InstanceLauncher};
use crate::observe::{Finished, InvocationObserver};
use crate::{env, logline};

/// A function by its identity: project, package, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionKey {
    pub project: String,
    pub package: String,
    pub name: String,
}

/// What serves invocations of one reference: the configuration of the version it resolves to
/// and its unpacked code.
#[derive(Debug, Clone)]
pub struct ResolvedFunction {
    pub record: Arc<FunctionRecord>,
    /// The version name the reference resolved to (`latest`, or a published version).
    pub version: String,
    pub code_dir: PathBuf,
    /// The function's dependencies merged into one read-only tree, if it has any.
    pub dependency_dir: Option<PathBuf>,
    /// Each dependency's own tree, in list order (extensions are found in these).
    pub dependencies: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("function {0} does not exist")]
    FunctionNotFound(String),
    #[error("version {version} of function {name} does not exist")]
    VersionNotFound { name: String, version: String },
    #[error("alias {alias} of function {name} does not exist")]
    AliasNotFound { name: String, alias: String },
    #[error("{0}")]
    Internal(String),
}

/// What a qualifier resolves to: a version that runs, or an alias that routes to versions.
#[derive(Debug, Clone)]
pub enum Resolution {
    Function(ResolvedFunction),
    Alias(AliasRecord),
}

/// Loads functions from storage; only called when the cache misses.
pub trait FunctionSource: Send + Sync + 'static {
    fn resolve(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> impl Future<Output = Result<Resolution, ResolveError>> + Send;
}

#[derive(Debug, Clone)]
enum Cached {
    Function(Arc<ResolvedFunction>),
    Alias(Arc<AliasRecord>),
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("function {0} is disabled: its max instance number is 0")]
    Disabled(String),
    #[error("function {0} is throttled: all its instances are busy and its queue is full")]
    Throttled(String),
    #[error("instance start failed: {0}")]
    Platform(String),
}

#[derive(Debug, Clone)]
pub struct InvokerConfig {
    pub idle_timeout: Duration,
    /// Callers that may wait per function version when every allowed instance is busy.
    pub queue_limit: usize,
    /// Grace between SIGTERM and SIGKILL when an instance stops.
    pub stop_grace: Duration,
    /// How long a function's extensions may take to register (SPEC.md 5).
    pub extension_init_timeout: Duration,
    /// What each runtime name runs on here, found once at start-up.
    pub runtimes: Arc<fgs_core::runtime::RuntimeTable>,
    /// Where the runtime shims were written ([`fgs_instance::install_shims`]).
    pub runtime_dir: PathBuf,
    /// What every sandboxed instance mounts besides ([`fgs_instance::runtime_mounts`]).
    pub runtime_mounts: Arc<Vec<(PathBuf, PathBuf)>>,
}

#[derive(Debug, Clone, Default)]
pub struct InvokeOptions {
    pub invoke_type: Option<InvokeType>,
    /// A request id chosen by the caller (async invocations keep theirs); new otherwise.
    pub request_id: Option<String>,
    /// The URN as the caller wrote it (SPEC.md 5 `invokedFunctionUrn`).
    pub invoked_urn: String,
    /// Request headers an alias's rules route on.
    pub headers: Vec<(String, String)>,
}

/// What a caller sees of one invocation.
#[derive(Debug)]
pub struct Outcome {
    pub request_id: String,
    pub result: Result<Bytes, FunctionError>,
    /// Platform lines and the runtime's output.
    pub log: Vec<u8>,
    pub duration: Duration,
    pub billed_ms: u64,
    pub memory_size_mb: u32,
    pub memory_used_mb: f64,
    /// Whether this invocation started its instance.
    pub cold: bool,
    /// The version that ran.
    pub version: String,
}

type FnPool = Pool<InstanceLauncher>;

/// A resolution and the pool found to serve it.
type ServedBy = (Arc<ResolvedFunction>, Arc<FnPool>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    function: FunctionKey,
    version: String,
}

pub struct Invoker<S: FunctionSource> {
    source: S,
    sandbox: Sandbox,
    config: InvokerConfig,
    resolved: Mutex<HashMap<(FunctionKey, Qualifier), Cached>>,
    /// Told of every finished invocation; added at start-up, read on every invocation.
    observers: RwLock<Vec<Arc<dyn InvocationObserver>>>,
    /// Bumped (under the `resolved` lock) by every [`Invoker::function_changed`]: a resolution
    /// read from storage before a change must not be cached after it.
    changes: std::sync::atomic::AtomicU64,
    pools: Mutex<HashMap<PoolKey, Arc<FnPool>>>,
    /// The pool each cached resolution was last found to be served by, keyed by the
    /// resolution's address (the `Arc` is kept, so the address is not reused): a warm call
    /// skips building and comparing the instance template, measured at 1.5 % of fgs's CPU
    /// per call. Entries go with their function's changes.
    served_by: Mutex<HashMap<usize, ServedBy>>,
}

impl<S: FunctionSource> Invoker<S> {
    pub fn new(source: S, sandbox: Sandbox, config: InvokerConfig) -> Arc<Invoker<S>> {
        Arc::new(Invoker {
            source,
            sandbox,
            config,
            resolved: Mutex::new(HashMap::new()),
            observers: RwLock::new(Vec::new()),
            changes: std::sync::atomic::AtomicU64::new(0),
            pools: Mutex::new(HashMap::new()),
            served_by: Mutex::new(HashMap::new()),
        })
    }

    async fn lookup(&self, key: &FunctionKey, q: &Qualifier) -> Result<Cached, ResolveError> {
        let ck = (key.clone(), q.clone());
        if let Some(c) = self
            .resolved
            .lock()
            .expect("cache lock is never poisoned")
            .get(&ck)
        {
            return Ok(c.clone());
        }
        let before = self.changes.load(std::sync::atomic::Ordering::Acquire);
        let c = match self.source.resolve(key, q).await? {
            Resolution::Function(f) => Cached::Function(Arc::new(f)),
            Resolution::Alias(a) => Cached::Alias(Arc::new(a)),
        };
        let mut cache = self.resolved.lock().expect("cache lock is never poisoned");
        // A code update then a config update in quick succession (`fgs deploy`) once left the
        // first change's re-resolution caching the record from between the two.
        if self.changes.load(std::sync::atomic::Ordering::Acquire) == before {
            cache.insert(ck, c.clone());
        }
        Ok(c)
    }

    /// The version that serves one invocation: an alias picks by its rules, then its weights.
    async fn resolve(
        &self,
        key: &FunctionKey,
        q: &Qualifier,
        headers: &[(String, String)],
    ) -> Result<Arc<ResolvedFunction>, ResolveError> {
        match self.lookup(key, q).await? {
            Cached::Function(f) => Ok(f),
            Cached::Alias(a) => {
                let roll = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
                let version = a.route(headers, roll);
                let vq = if version == fgs_core::urn::LATEST {
                    Qualifier::Latest
                } else {
                    Qualifier::Version(version.to_string())
                };
                match self.lookup(key, &vq).await? {
                    Cached::Function(f) => Ok(f),
                    Cached::Alias(_) => Err(ResolveError::Internal(format!(
                        "alias {} routes to another alias",
                        a.name
                    ))),
                }
            }
        }
    }

    /// The function record a reference resolves to (an alias: one of its versions), for callers
    /// that need its configuration, such as the async dispatcher.
    pub async fn function_record(
        &self,
        key: &FunctionKey,
        q: &Qualifier,
    ) -> Result<Arc<FunctionRecord>, ResolveError> {
        Ok(Arc::clone(&self.resolve(key, q, &[]).await?.record))
    }

    fn limits(&self, rec: &FunctionRecord) -> Limits {
        Limits {
            max_instances: rec.spec.max_instance_num,
            reserved: rec.reserved.count,
            concurrency: rec.spec.strategy_config.concurrent_num.max(1),
            queue_limit: self.config.queue_limit,
            idle_timeout: self.config.idle_timeout,
        }
    }

    fn template(&self, r: &ResolvedFunction) -> InstanceConfig {
        let spec = &r.record.spec;
        let code_root = r.code_dir.to_string_lossy().into_owned();
        let timeout = Duration::from_secs(u64::from(spec.timeout));
        let start_timeout = if spec.initializer_timeout > 0 {
            Duration::from_secs(u64::from(spec.initializer_timeout)).max(timeout)
        } else {
            timeout
        };
        InstanceConfig {
            id: String::new(),
            runtime: spec.runtime(),
            code_dir: r.code_dir.clone(),
            dependency_dir: r.dependency_dir.clone(),
            dependencies: r.dependencies.clone(),
            env: env::function_env(
                &r.record,
                &r.version,
                &code_root,
                r.dependency_dir.as_deref().and_then(|d| d.to_str()),
            ),
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
            interpreter: self.config.runtimes.get(spec.runtime()).clone(),
            runtime_mounts: Arc::clone(&self.config.runtime_mounts),
        }
    }

    /// The pool that serves `r`, replacing one whose instances were made from an older
    /// configuration.
    fn pool_for(&self, r: &Arc<ResolvedFunction>) -> Arc<FnPool> {
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

    fn pool_for_slow(&self, r: &ResolvedFunction) -> Arc<FnPool> {
        let key = PoolKey {
            function: FunctionKey {
                project: r.record.project.clone(),
                package: r.record.package.clone(),
                name: r.record.name.clone(),
            },
            version: r.version.clone(),
        };
        let limits = self.limits(&r.record);
        let mut pools = self.pools.lock().expect("pool map lock is never poisoned");
        if let Some(p) = pools.get(&key) {
            if same_template(&p.launcher().template, &self.template(r)) {
                if p.limits() != limits {
                    p.set_limits(limits);
                }
                return Arc::clone(p);
            }
            p.retire();
        }
        let pool = Pool::new(
            InstanceLauncher {
                sandbox: self.sandbox.clone(),
                template: self.template(r),
            },
            limits,
        );
        pool.ensure_reserved();
        pools.insert(key, Arc::clone(&pool));
        pool
    }

    /// Adds an observer of finished invocations (stored logs, metrics).
    pub fn add_observer(&self, o: Arc<dyn InvocationObserver>) {
        self.observers
            .write()
            .expect("observer lock is never poisoned")
            .push(o);
    }

    /// Runs one invocation and tells the observers how it ended.
    pub async fn invoke(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
        body: Bytes,
        opts: InvokeOptions,
    ) -> Result<Outcome, InvokeError> {
        let invoke_type = opts.invoke_type.unwrap_or(InvokeType::Sync);
        let outcome = self.run_invocation(key, qualifier, body, opts).await?;
        let observers = self
            .observers
            .read()
            .expect("observer lock is never poisoned");
        if !observers.is_empty() {
            let f = Finished {
                key,
                outcome: &outcome,
                invoke_type,
                ended: std::time::SystemTime::now(),
            };
            for o in observers.iter() {
                o.finished(&f);
            }
        }
        drop(observers);
        Ok(outcome)
    }

    async fn run_invocation(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
        body: Bytes,
        opts: InvokeOptions,
    ) -> Result<Outcome, InvokeError> {
        let request_id = opts.request_id.unwrap_or_else(crate::new_request_id);
        loop {
            let resolved = self.resolve(key, qualifier, &opts.headers).await?;
            let pool = self.pool_for(&resolved);
            let spec = &resolved.record.spec;
            let series = metrics::global().series(
                &resolved.record.project,
                &resolved.record.package,
                &resolved.record.name,
                &resolved.version,
            );
            let acquire_started = Instant::now();
            let lease = match pool.acquire().await {
                Ok(l) => l,
                Err(AcquireError::Retired) => continue,
                Err(AcquireError::Disabled) => {
                    series.refused(metrics::Outcome::Throttled);
                    return Err(InvokeError::Disabled(key.name.clone()));
                }
                Err(AcquireError::Throttled) => {
                    series.refused(metrics::Outcome::Throttled);
                    return Err(InvokeError::Throttled(key.name.clone()));
                }
                Err(AcquireError::Start(e)) => {
                    let Some(fe) = e.to_function_error() else {
                        series.refused(metrics::Outcome::SystemError);
                        return Err(InvokeError::Platform(e.to_string()));
                    };
                    series.refused(metrics::Outcome::Error(fe.code));
                    let mut log = logline::start(&request_id, &resolved.version).into_bytes();
                    log.extend_from_slice(
                        format!("{} {}\n", logline::now_iso(), fe.message).as_bytes(),
                    );
                    return Ok(Outcome {
                        request_id,
                        result: Err(fe),
                        log,
                        duration: Duration::ZERO,
                        billed_ms: 0,
                        memory_size_mb: spec.memory_size,
                        memory_used_mb: 0.0,
                        cold: true,
                        version: resolved.version.clone(),
                    });
                }
            };
            let cold_start = lease.cold.then(|| acquire_started.elapsed());
            let timeout = Duration::from_secs(u64::from(spec.timeout));
            let start_line = logline::start(&request_id, &resolved.version);
            let t0 = Instant::now();
            let reply = lease
                .worker()
                .0
                .invoke(Request {
                    request_id: request_id.clone(),
                    body,
                    invoke_type: opts.invoke_type.unwrap_or(InvokeType::Sync),
                    timeout,
                    invoked_urn: opts.invoked_urn.clone(),
                    alias: match qualifier {
                        Qualifier::Alias(a) => a.clone(),
                        _ => String::new(),
                    },
                })
                .await;
            let duration = t0.elapsed();
            let billed_ms = (duration.as_micros() as u64).div_ceil(1000).max(1);
            let memory_used_mb = reply.memory_used_bytes as f64 / (1024.0 * 1024.0);
            let mut log = start_line.into_bytes();
            log.extend_from_slice(&reply.log);
            if let Err(e) = &reply.result {
                log.extend_from_slice(format!("{} {}\n", logline::now_iso(), e.message).as_bytes());
            }
            log.extend_from_slice(
                logline::finish(
                    &request_id,
                    reply.result.is_ok(),
                    duration,
                    billed_ms,
                    memory_used_mb,
                    spec.memory_size,
                )
                .as_bytes(),
            );
            series.ran(
                match &reply.result {
                    Ok(_) => metrics::Outcome::Success,
                    Err(e) => metrics::Outcome::Error(e.code),
                },
                duration,
                cold_start,
                billed_ms,
                spec.memory_size,
            );
            return Ok(Outcome {
                request_id,
                result: reply.result,
                log,
                duration,
                billed_ms,
                memory_size_mb: spec.memory_size,
                memory_used_mb,
                cold: lease.cold,
                version: resolved.version.clone(),
            });
        }
    }

    /// Forgets what is cached of a function (its code, config, versions or aliases changed, or
    /// it was deleted) and brings its pools in line: a pool whose version is gone or whose
    /// instances would now start differently is retired; one whose limits changed keeps its
    /// instances. Reserved instances are started ahead.
    pub fn function_changed(self: &Arc<Self>, key: &FunctionKey) {
        {
            let mut cache = self.resolved.lock().expect("cache lock is never poisoned");
            self.changes
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            cache.retain(|(k, _), _| k != key);
        }
        self.served_by
            .lock()
            .expect("served-by lock is never poisoned")
            .retain(|_, (r, _)| {
                r.record.project != key.project
                    || r.record.package != key.package
                    || r.record.name != key.name
            });
        let versions: Vec<String> = self
            .pools
            .lock()
            .expect("pool map lock is never poisoned")
            .keys()
            .filter(|pk| &pk.function == key)
            .map(|pk| pk.version.clone())
            .collect();
        let this = Arc::clone(self);
        let key = key.clone();
        tokio::spawn(async move {
            for version in versions {
                let q = if version == fgs_core::urn::LATEST {
                    Qualifier::Latest
                } else {
                    Qualifier::Version(version.clone())
                };
                match this.resolve(&key, &q, &[]).await {
                    Ok(r) => {
                        this.pool_for(&r);
                    }
                    Err(_) => this.retire(&key, &version),
                }
            }
            this.warm(&key).await;
        });
    }

    fn retire(&self, key: &FunctionKey, version: &str) {
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

    /// Starts the reserved instances of a function's `latest` version, if it has any.
    pub async fn warm(&self, key: &FunctionKey) {
        if let Ok(r) = self.resolve(key, &Qualifier::Latest, &[]).await {
            if r.record.reserved.count > 0 {
                self.pool_for(&r);
            }
        }
    }

    /// Reclaims idle instances of every pool; run periodically.
    pub fn reclaim_idle(&self) -> usize {
        let pools: Vec<_> = self
            .pools
            .lock()
            .expect("pool map lock is never poisoned")
            .values()
            .cloned()
            .collect();
        let now = Instant::now();
        let mut n = 0;
        for p in pools {
            n += p.reclaim_idle(now);
            p.ensure_reserved();
        }
        n
    }

    /// Instances started per function version, for status pages.
    pub fn instance_counts(&self) -> Vec<(FunctionKey, String, fgs_pool::PoolStats)> {
        self.pools
            .lock()
            .expect("pool map lock is never poisoned")
            .iter()
            .map(|(k, p)| (k.function.clone(), k.version.clone(), p.stats()))
            .collect()
    }

    /// Pre-warmed sandboxes ready for cold starts.
    pub fn prewarmed_sandboxes(&self) -> usize {
        self.sandbox.prewarmed()
    }

    /// Stops every instance (fgs shutdown).
    pub async fn shutdown(&self) {
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
