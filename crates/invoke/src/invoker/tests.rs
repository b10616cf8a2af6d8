//! The invoker with a fake source and fake instances, under paused tokio time: what it caches,
//! what a change on the feed does to the cache and the pools, how aliases route, and what is
//! recorded of an invocation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use fgs_core::flows::AliasRecord;
use fgs_core::function::{CodeInfo, CodeType, Reserved};
use fgs_core::{FunctionSpec, Qualifier};
use fgs_instance::{InstanceConfig, Reply};
use fgs_pool::{Launcher, Worker};
use fgs_store::{ChangeFeed, LocalFeed};

use super::*;
use crate::{Finished, Resolution, ResolvedFunction};

fn key(name: &str) -> FunctionKey {
    FunctionKey {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
    }
}

fn record(name: &str, memory: u32) -> FunctionRecord {
    let mut spec = FunctionSpec {
        memory_size: memory,
        ..FunctionSpec::new(fgs_core::Runtime::Custom)
    };
    spec.handler = "bootstrap".into();
    FunctionRecord {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
        func_id: format!("id-{name}"),
        spec,
        code: CodeInfo {
            code_type: CodeType::Zip,
            code_filename: "code.zip".into(),
            sha256: "00".into(),
            digest: "00".into(),
            size: 1,
        },
        reserved: Reserved::default(),
        created_ms: 0,
        modified_ms: 0,
        revision: 1,
        async_config: None,
        meta: Default::default(),
    }
}

fn resolved(rec: FunctionRecord, version: &str) -> Resolution {
    Resolution::Function(ResolvedFunction {
        record: Arc::new(rec),
        version: version.into(),
        code_dir: PathBuf::from(format!("/code/{version}")),
        dependency_dir: None,
        dependencies: Vec::new(),
        image: None,
    })
}

/// Storage as a map the test edits; counts what is asked of it.
#[derive(Default)]
struct FakeSource {
    entries: Mutex<HashMap<(FunctionKey, Qualifier), Resolution>>,
    calls: AtomicUsize,
}

impl FakeSource {
    fn put(&self, k: FunctionKey, q: Qualifier, r: Resolution) {
        self.entries.lock().unwrap().insert((k, q), r);
    }

    fn remove(&self, k: FunctionKey, q: Qualifier) {
        self.entries.lock().unwrap().remove(&(k, q));
    }
}

impl FunctionSource for Arc<FakeSource> {
    async fn resolve(&self, key: &FunctionKey, q: &Qualifier) -> Result<Resolution, ResolveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.entries
            .lock()
            .unwrap()
            .get(&(key.clone(), q.clone()))
            .cloned()
            .ok_or_else(|| ResolveError::FunctionNotFound(key.name.clone()))
    }

    async fn reserved(&self) -> Result<Vec<FunctionKey>, ResolveError> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter_map(|((k, q), r)| match (q, r) {
                (Qualifier::Latest, Resolution::Function(f)) if f.record.reserved.count > 0 => {
                    Some(k.clone())
                }
                _ => None,
            })
            .collect())
    }
}

/// What the fake instances did, shared by all of them.
#[derive(Default)]
struct Counters {
    launched: AtomicUsize,
    stopped: AtomicUsize,
    /// The function error the next start fails with, if any.
    fail_start: Mutex<Option<FunctionError>>,
    /// `Request::traced` of each invocation run, in order.
    traced: Mutex<Vec<bool>>,
}

struct FakeInstances(Arc<Counters>);

struct FakeLauncher {
    template: InstanceConfig,
    counters: Arc<Counters>,
}

struct FakeWorker {
    counters: Arc<Counters>,
    code_dir: PathBuf,
}

#[derive(Debug)]
struct FakeStartError(FunctionError);

impl fmt::Display for FakeStartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl StartFailure for FakeStartError {
    fn to_function_error(&self) -> Option<FunctionError> {
        Some(self.0.clone())
    }

    /// An initializer failure (4201) reports its initializer's run, as fgs-instance does.
    fn initializer(&self) -> Option<fgs_instance::InitializerRun> {
        (self.0.code == 4201).then(|| fgs_instance::InitializerRun {
            start: SystemTime::UNIX_EPOCH + Duration::from_secs(10),
            end: SystemTime::UNIX_EPOCH + Duration::from_secs(11),
        })
    }
}

impl Worker for FakeWorker {
    fn is_healthy(&self) -> bool {
        true
    }

    async fn stop(&self) {
        self.counters.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Runs for FakeWorker {
    async fn run(&self, request: Request) -> Reply {
        self.counters.traced.lock().unwrap().push(request.traced);
        tokio::time::sleep(Duration::from_millis(5)).await;
        Reply {
            request_id: request.request_id,
            result: Ok(request.body),
            log: format!("ran in {}\n", self.code_dir.display()).into_bytes(),
            memory_used_bytes: 3 << 20,
            extensions: None,
        }
    }
}

impl Launcher for FakeLauncher {
    type Worker = FakeWorker;
    type Error = FakeStartError;

    async fn launch(&self) -> Result<FakeWorker, FakeStartError> {
        if let Some(fe) = self.counters.fail_start.lock().unwrap().take() {
            return Err(FakeStartError(fe));
        }
        self.counters.launched.fetch_add(1, Ordering::SeqCst);
        Ok(FakeWorker {
            counters: Arc::clone(&self.counters),
            code_dir: self.template.code_dir.clone(),
        })
    }
}

impl Instances for FakeInstances {
    type Launcher = FakeLauncher;

    fn launcher(&self, template: InstanceConfig) -> FakeLauncher {
        FakeLauncher {
            template,
            counters: Arc::clone(&self.0),
        }
    }

    fn template(launcher: &FakeLauncher) -> &InstanceConfig {
        &launcher.template
    }

    fn prewarmed(&self) -> usize {
        0
    }
}

struct Setup {
    source: Arc<FakeSource>,
    counters: Arc<Counters>,
    feed: Arc<LocalFeed>,
    invoker: Arc<Invoker<Arc<FakeSource>, FakeInstances>>,
}

fn setup_with(feed: Arc<LocalFeed>) -> Setup {
    let source = Arc::new(FakeSource::default());
    let counters = Arc::new(Counters::default());
    let invoker = Invoker::with_instances(
        Arc::clone(&source),
        FakeInstances(Arc::clone(&counters)),
        InvokerConfig {
            idle_timeout: Duration::from_secs(600),
            queue_limit: 8,
            stop_grace: Duration::from_secs(1),
            extension_init_timeout: Duration::from_secs(1),
            runtimes: Arc::new(fgs_core::runtime::RuntimeTable::default()),
            runtime_dir: PathBuf::from("/runtimes"),
            runtime_mounts: Arc::new(Vec::new()),
        },
    );
    invoker.follow(feed.subscribe());
    Setup {
        source,
        counters,
        feed,
        invoker,
    }
}

fn setup() -> Setup {
    setup_with(LocalFeed::new())
}

impl Setup {
    async fn call(&self, name: &str, q: Qualifier) -> Outcome {
        self.invoker
            .invoke(
                &key(name),
                &q,
                Bytes::from_static(b"{}"),
                InvokeOptions::default(),
            )
            .await
            .expect("the invocation ran")
    }

    /// Publishes a change and waits until the invoker followed it and its reconciling ran.
    async fn change(&self, name: &str, kind: ChangeKind) {
        let rev = self.feed.publish(key(name), kind).await;
        self.feed.settled(rev, Duration::from_secs(1)).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    fn calls(&self) -> usize {
        self.source.calls.load(Ordering::SeqCst)
    }

    fn versions_with_pools(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .invoker
            .instance_counts()
            .into_iter()
            .map(|(_, version, _)| version)
            .collect();
        v.sort();
        v
    }
}

mod pools_and_outcomes;
mod reserved_spread;
mod resolution;
mod tracing;
