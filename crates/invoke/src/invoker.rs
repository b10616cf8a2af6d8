//! The invoker: one invocation end to end, through [`Resolver`] (which version serves it),
//! [`PoolRegistry`] (which pool and instance) and [`record`] (what is recorded of it); and the
//! follower of the change feed that keeps the first two in step with storage.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use fgs_core::{FunctionError, FunctionRecord, Qualifier};
use fgs_instance::{ExtensionTimings, InitializerRun, InvokeType, Request};
use fgs_metrics as metrics;
use fgs_pool::AcquireError;
use fgs_store::{ChangeKind, Notice, Subscription};
use tokio::time::Instant;

use crate::instances::{Instances, Runs, Sandboxed, StartFailure};
use crate::observe::InvocationObserver;
use crate::pools::PoolRegistry;
use crate::record::{self, Observers};
use crate::resolve::{version_qualifier, ResolvedFunction, Resolver};
use crate::trace::{pass_through, Planned, Traced, Tracer};
use crate::{FunctionKey, FunctionSource, ResolveError};

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
    /// The cluster's limit is reached and these nodes (advertise URLs) hold the instances: the
    /// caller asked to be told ([`InvokeOptions::forwardable`]).
    #[error("function {0} runs its instances on other nodes")]
    Elsewhere(String, Vec<String>),
    /// No instance could start: the cluster's count of instances cannot be reached (why).
    #[error("function {0} cannot start an instance now: {1}")]
    Unavailable(String, String),
    /// The async queue refused to store an accepted event (e.g. its PostgreSQL is unreachable).
    #[error("storing the async event")]
    Queue(#[source] fgs_store::StoreError),
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
    /// The caller's W3C `traceparent`: a traced invocation's span continues its trace.
    pub traceparent: Option<String>,
    /// The caller can send the call to another node: when the cluster's limit is reached and
    /// other nodes hold the instances, [`InvokeError::Elsewhere`] names them instead of the
    /// call waiting here.
    pub forwardable: bool,
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

/// When the parts of an invocation happened, for its spans.
struct SpanTimes {
    started: SystemTime,
    /// When starting an instance began and ended, from the start, if this invocation did.
    cold_start: Option<(Duration, Duration)>,
    run: Option<(Duration, Duration)>,
    total: Duration,
    /// The extensions' deliveries of the event, which end later.
    extensions: Option<ExtensionTimings>,
    /// The initializer's run in this invocation's cold start, and whether it failed the start.
    initializer: Option<(InitializerRun, bool)>,
}

pub struct Invoker<S: FunctionSource, I: Instances = Sandboxed> {
    resolver: Resolver<S>,
    pools: PoolRegistry<I>,
    observers: Observers,
    /// Set once by `fgs serve --otlp-endpoint`.
    tracer: std::sync::OnceLock<Tracer>,
}

impl<S: FunctionSource> Invoker<S> {
    pub fn new(source: S, sandbox: fgs_sandbox::Sandbox, config: InvokerConfig) -> Arc<Invoker<S>> {
        Invoker::with_instances(source, Sandboxed(sandbox), config)
    }
}

impl<S: FunctionSource, I: Instances> Invoker<S, I> {
    pub fn with_instances(source: S, instances: I, config: InvokerConfig) -> Arc<Invoker<S, I>> {
        Arc::new(Invoker {
            resolver: Resolver::new(source),
            pools: PoolRegistry::new(instances, config),
            observers: Observers::default(),
            tracer: std::sync::OnceLock::new(),
        })
    }

    /// The function record a reference resolves to (an alias: one of its versions), for callers
    /// that need its configuration, such as the async dispatcher.
    pub async fn function_record(
        &self,
        key: &FunctionKey,
        q: &Qualifier,
    ) -> Result<Arc<FunctionRecord>, ResolveError> {
        Ok(Arc::clone(
            &self.resolver.resolve(key, q, &[]).await?.record,
        ))
    }

    /// Exports a span per invocation of the functions whose tracing is on; the first tracer
    /// set stays.
    pub fn set_tracer(&self, tracer: Tracer) {
        if self.tracer.set(tracer).is_err() {
            tracing::warn!("a tracer was already set: the new one is dropped");
        }
    }

    /// Adds an observer of finished invocations (stored logs, metrics).
    pub fn add_observer(&self, o: Arc<dyn InvocationObserver>) {
        self.observers.add(o);
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
        self.observers.finished(key, &outcome, invoke_type);
        Ok(outcome)
    }

    async fn run_invocation(
        &self,
        key: &FunctionKey,
        qualifier: &Qualifier,
        body: Bytes,
        mut opts: InvokeOptions,
    ) -> Result<Outcome, InvokeError> {
        let request_id = opts.request_id.take().unwrap_or_else(crate::new_request_id);
        let started = SystemTime::now();
        let t_start = Instant::now();
        loop {
            let resolved = self.resolver.resolve(key, qualifier, &opts.headers).await?;
            let pool = self.pools.pool_for(&resolved);
            let series = record::series(&resolved);
            let planned = self
                .tracer
                .get()
                .filter(|_| resolved.record.meta.tracing.is_some())
                .map(|t| t.plan(opts.traceparent.as_deref()));
            let acquire_started = Instant::now();
            // An async event can run on any node: when the cluster's limit is reached with the
            // instances elsewhere, it goes back to the queue for a node that has one, rather
            // than waiting here (docs/cluster.md).
            // A sync call that can be forwarded is told where the instances are instead.
            let acquired = if opts.invoke_type == Some(InvokeType::Async) || opts.forwardable {
                match pool.acquire_or_full().await {
                    Err(AcquireError::Full(at)) if opts.forwardable && !at.is_empty() => {
                        return Err(InvokeError::Elsewhere(key.name.clone(), at));
                    }
                    Err(AcquireError::Full(_)) if opts.forwardable => pool.acquire().await,
                    other => other,
                }
            } else {
                pool.acquire().await
            };
            let lease = match acquired {
                Ok(l) => l,
                Err(AcquireError::Retired) => continue,
                Err(AcquireError::Disabled) => {
                    series.refused(metrics::Outcome::Throttled);
                    return Err(InvokeError::Disabled(key.name.clone()));
                }
                Err(AcquireError::Throttled | AcquireError::Full(_)) => {
                    series.refused(metrics::Outcome::Throttled);
                    return Err(InvokeError::Throttled(key.name.clone()));
                }
                Err(AcquireError::Refused(why)) => {
                    series.refused(metrics::Outcome::SystemError);
                    return Err(InvokeError::Unavailable(key.name.clone(), why));
                }
                Err(AcquireError::Start(e)) => {
                    let Some(fe) = e.to_function_error() else {
                        series.refused(metrics::Outcome::SystemError);
                        return Err(InvokeError::Platform(e.to_string()));
                    };
                    let outcome = record::start_failed(&series, request_id, &resolved, fe);
                    let span = SpanTimes {
                        started,
                        cold_start: Some((
                            acquire_started.duration_since(t_start),
                            t_start.elapsed(),
                        )),
                        run: None,
                        total: t_start.elapsed(),
                        extensions: None,
                        initializer: e.initializer().map(|r| (r, true)),
                    };
                    self.trace(planned.as_ref(), &resolved, &outcome, &opts, span);
                    return Ok(outcome);
                }
            };
            let cold_start = lease.cold.then(|| acquire_started.elapsed());
            let initializer = lease.cold.then(|| lease.worker().initializer()).flatten();
            let start_line = crate::logline::start(&request_id, &resolved.version);
            let t0 = Instant::now();
            let mut reply = lease
                .worker()
                .run(Request {
                    // Handed back in the reply, not copied.
                    request_id,
                    body,
                    invoke_type: opts.invoke_type.unwrap_or(InvokeType::Sync),
                    timeout: Duration::from_secs(u64::from(resolved.record.spec.timeout)),
                    // The caller's URN is needed again only for the span of a traced call.
                    invoked_urn: if planned.is_some() {
                        opts.invoked_urn.clone()
                    } else {
                        std::mem::take(&mut opts.invoked_urn)
                    },
                    traceparent: match &planned {
                        Some(p) => Some(p.traceparent()),
                        None => pass_through(opts.traceparent.as_deref()),
                    },
                    alias: match qualifier {
                        Qualifier::Alias(a) => a.clone(),
                        _ => String::new(),
                    },
                    traced: planned.is_some(),
                })
                .await;
            let duration = t0.elapsed();
            let extensions = reply.extensions.take();
            let request_id = std::mem::take(&mut reply.request_id);
            let outcome = record::ran(
                &series, request_id, &resolved, start_line, reply, duration, cold_start,
            );
            let from = t0.duration_since(t_start);
            let span = SpanTimes {
                started,
                cold_start: cold_start.map(|took| {
                    let from = acquire_started.duration_since(t_start);
                    (from, from + took)
                }),
                run: Some((from, from + duration)),
                total: t_start.elapsed(),
                extensions,
                initializer: initializer.map(|r| (r, false)),
            };
            self.trace(planned.as_ref(), &resolved, &outcome, &opts, span);
            return Ok(outcome);
        }
    }

    /// Records the spans of an invocation that was planned as traced (a tracer is set and the
    /// function's tracing is on).
    fn trace(
        &self,
        planned: Option<&Planned>,
        resolved: &ResolvedFunction,
        outcome: &Outcome,
        opts: &InvokeOptions,
        t: SpanTimes,
    ) {
        let (Some(tracer), Some(planned)) = (self.tracer.get(), planned) else {
            return;
        };
        let traced = Traced {
            name: &resolved.record.name,
            urn: &opts.invoked_urn,
            version: &outcome.version,
            request_id: &outcome.request_id,
            planned,
            started: t.started,
            cold_start: t.cold_start,
            initializer: t.initializer,
            run: t.run,
            total: t.total,
            error: outcome
                .result
                .as_ref()
                .err()
                .map(|e| (e.code, e.message.as_str())),
        };
        tracer.record(&traced, t.extensions);
    }

    /// Follows the change feed until it closes: each change of a function forgets what is
    /// cached of it and brings its pools in line; a resync does so for every function.
    pub fn follow(self: &Arc<Self>, mut changes: Subscription) -> tokio::task::JoinHandle<()> {
        // Weak: following the feed does not keep a stopping fgs's invoker alive.
        let this: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(notice) = changes.recv().await {
                let Some(this) = this.upgrade() else { return };
                match notice {
                    Notice::Changed(c) => {
                        // A trigger changes what fires a function, not what it resolves to.
                        if c.kind != ChangeKind::Trigger {
                            this.function_changed(Some(&c.key));
                        }
                        changes.applied(c.revision);
                    }
                    Notice::Resync { revision } => {
                        tracing::info!(
                            revision,
                            "change feed lost changes: forgetting every cached function"
                        );
                        this.function_changed(None);
                        changes.applied(revision);
                    }
                }
            }
        })
    }

    /// Forgets what is cached of a function (`None`: of every function) and brings its pools in
    /// line: a pool whose version is gone or whose instances would now start differently is
    /// retired; one whose limits changed keeps its instances. Reserved instances are started
    /// ahead.
    fn function_changed(self: &Arc<Self>, key: Option<&FunctionKey>) {
        self.resolver.forget(key);
        self.pools_in_line(key);
    }

    /// Brings the pools of a function (`None`: of every function) in line with what its
    /// resolutions say now, and starts the reserved instances that are missing.
    fn pools_in_line(self: &Arc<Self>, key: Option<&FunctionKey>) {
        let versions = self.pools.forget(key);
        let this = Arc::clone(self);
        let key = key.cloned();
        tokio::spawn(async move {
            for (k, version) in versions {
                match this
                    .resolver
                    .resolve(&k, &version_qualifier(&version), &[])
                    .await
                {
                    Ok(r) => {
                        this.pools.pool_for(&r);
                    }
                    Err(
                        ResolveError::FunctionNotFound(_) | ResolveError::VersionNotFound { .. },
                    ) => this.pools.retire(&k, &version),
                    // The store cannot say now (unreachable): the pool stays as it is, and
                    // the next call resolves anew.
                    Err(e) => tracing::warn!(error = %e, "bringing a pool in line"),
                }
            }
            match key {
                Some(k) => this.warm(&k).await,
                None => this.warm_all().await,
            }
        });
    }

    /// Starts the reserved instances of a function's `latest` version, if it has any.
    pub async fn warm(&self, key: &FunctionKey) {
        if let Ok(r) = self.resolver.resolve(key, &Qualifier::Latest, &[]).await {
            if r.record.reserved.count > 0 {
                self.pools.pool_for(&r);
            }
        }
    }

    /// Starts the reserved instances of every function that keeps some.
    pub async fn warm_all(&self) {
        match self.resolver.source().reserved().await {
            Ok(keys) => {
                for k in keys {
                    self.warm(&k).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "listing functions with reserved instances failed")
            }
        }
    }

    /// Reclaims idle instances of every pool; run periodically.
    pub fn reclaim_idle(&self) -> usize {
        self.pools.reclaim_idle()
    }

    /// Counts instances against the cluster's limits (`fgs serve` with `--nats`); set before
    /// the first invocation. Watches `limits`' fence, ending the instances that hold places
    /// when the node fences itself, and the live nodes, spreading the reserved instances again
    /// when they change; the task runs until dropped.
    pub fn set_cluster_limits(
        self: &Arc<Self>,
        limits: Arc<crate::cluster::ClusterLimits>,
    ) -> tokio::task::JoinHandle<()> {
        if !self.pools.set_cluster(Arc::clone(&limits)) {
            tracing::warn!("cluster limits were already set: the new ones are dropped");
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            let mut members = limits.members_generation();
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                if limits.fence().check() {
                    tracing::warn!(
                        "no heartbeat landed for half the node timeout: fencing this node"
                    );
                    me.pools.fence();
                    limits.forget_members();
                }
                // The live nodes changed: each pool keeps its new share of the reserved
                // instances. The resolutions stay cached: only the shares changed.
                let now = limits.members_generation();
                if now != members {
                    members = now;
                    me.pools_in_line(None);
                }
            }
        })
    }

    /// Instances started per function version, for status pages.
    pub fn instance_counts(&self) -> Vec<(FunctionKey, String, fgs_pool::PoolStats)> {
        self.pools.counts()
    }

    /// Pre-warmed sandboxes ready for cold starts.
    pub fn prewarmed_sandboxes(&self) -> usize {
        self.pools.instances().prewarmed()
    }

    /// Interpreters held ahead of cold starts now, and cold starts that took one so far.
    pub fn prestarted_interpreters(&self) -> (usize, u64) {
        self.pools.instances().prestarted()
    }

    /// Stops every instance (fgs shutdown), then sends the last batch of spans, waiting at
    /// most [`crate::trace::SHUTDOWN_WAIT`] for the collector.
    pub async fn shutdown(&self) {
        self.pools.shutdown().await;
        if let Some(t) = self.tracer.get() {
            t.shutdown(crate::trace::SHUTDOWN_WAIT).await;
        }
    }
}

#[cfg(test)]
mod tests;
