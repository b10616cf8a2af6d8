//! The invoker: resolution cache, pools per function version, and one invocation end to end.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fgs_core::{FunctionError, FunctionRecord, Qualifier};
use fgs_instance::{InstanceConfig, InvokeType, Request};
use fgs_pool::{AcquireError, Limits, Pool};
use fgs_sandbox::Sandbox;
use tokio::time::Instant;

use crate::launcher::{same_template, InstanceLauncher};
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

/// Loads functions from storage; only called when the cache misses.
pub trait FunctionSource: Send + Sync + 'static {
    fn resolve(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
    ) -> impl Future<Output = Result<ResolvedFunction, ResolveError>> + Send;
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
}

#[derive(Debug, Clone, Default)]
pub struct InvokeOptions {
    pub invoke_type: Option<InvokeType>,
    /// A request id chosen by the caller (async invocations keep theirs); new otherwise.
    pub request_id: Option<String>,
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
}

type FnPool = Pool<InstanceLauncher>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    function: FunctionKey,
    version: String,
}

pub struct Invoker<S: FunctionSource> {
    source: S,
    sandbox: Sandbox,
    config: InvokerConfig,
    resolved: Mutex<HashMap<(FunctionKey, Qualifier), Arc<ResolvedFunction>>>,
    pools: Mutex<HashMap<PoolKey, Arc<FnPool>>>,
}

impl<S: FunctionSource> Invoker<S> {
    pub fn new(source: S, sandbox: Sandbox, config: InvokerConfig) -> Arc<Invoker<S>> {
        Arc::new(Invoker {
            source,
            sandbox,
            config,
            resolved: Mutex::new(HashMap::new()),
            pools: Mutex::new(HashMap::new()),
        })
    }

    async fn resolve(
        &self,
        key: &FunctionKey,
        q: &Qualifier,
    ) -> Result<Arc<ResolvedFunction>, ResolveError> {
        let ck = (key.clone(), q.clone());
        if let Some(r) = self
            .resolved
            .lock()
            .expect("cache lock is never poisoned")
            .get(&ck)
        {
            return Ok(Arc::clone(r));
        }
        let r = Arc::new(self.source.resolve(key, q).await?);
        self.resolved
            .lock()
            .expect("cache lock is never poisoned")
            .insert(ck, Arc::clone(&r));
        Ok(r)
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
            env: env::function_env(&r.record, &r.version, &code_root),
            concurrency: spec.strategy_config.concurrent_num.max(1),
            start_timeout,
            stop_grace: self.config.stop_grace,
        }
    }

    /// The pool that serves `r`, replacing one whose instances were made from an older
    /// configuration.
    fn pool_for(&self, r: &ResolvedFunction) -> Arc<FnPool> {
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

    /// Runs one invocation.
    pub async fn invoke(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
        body: Bytes,
        opts: InvokeOptions,
    ) -> Result<Outcome, InvokeError> {
        let request_id = opts
            .request_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        loop {
            let resolved = self.resolve(key, qualifier).await?;
            let pool = self.pool_for(&resolved);
            let spec = &resolved.record.spec;
            let lease = match pool.acquire().await {
                Ok(l) => l,
                Err(AcquireError::Retired) => continue,
                Err(AcquireError::Disabled) => return Err(InvokeError::Disabled(key.name.clone())),
                Err(AcquireError::Throttled) => {
                    return Err(InvokeError::Throttled(key.name.clone()))
                }
                Err(AcquireError::Start(e)) => {
                    let Some(fe) = e.to_function_error() else {
                        return Err(InvokeError::Platform(e.to_string()));
                    };
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
                    });
                }
            };
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
            return Ok(Outcome {
                request_id,
                result: reply.result,
                log,
                duration,
                billed_ms,
                memory_size_mb: spec.memory_size,
                memory_used_mb,
                cold: lease.cold,
            });
        }
    }

    /// Forgets what is cached of a function and retires its instances (code or config changed,
    /// or it was deleted). Reserved instances of the new configuration are started ahead.
    pub fn function_changed(self: &Arc<Self>, key: &FunctionKey) {
        self.resolved
            .lock()
            .expect("cache lock is never poisoned")
            .retain(|(k, _), _| k != key);
        self.pools
            .lock()
            .expect("pool map lock is never poisoned")
            .retain(|pk, p| {
                if &pk.function == key {
                    p.retire();
                    false
                } else {
                    true
                }
            });
        let this = Arc::clone(self);
        let key = key.clone();
        tokio::spawn(async move { this.warm(&key).await });
    }

    /// Starts the reserved instances of a function's `latest` version, if it has any.
    pub async fn warm(&self, key: &FunctionKey) {
        if let Ok(r) = self.resolve(key, &Qualifier::Latest).await {
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
