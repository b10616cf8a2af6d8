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
    }
}

fn resolved(rec: FunctionRecord, version: &str) -> Resolution {
    Resolution::Function(ResolvedFunction {
        record: Arc::new(rec),
        version: version.into(),
        code_dir: PathBuf::from(format!("/code/{version}")),
        dependency_dir: None,
        dependencies: Vec::new(),
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
        Ok(Vec::new())
    }
}

/// What the fake instances did, shared by all of them.
#[derive(Default)]
struct Counters {
    launched: AtomicUsize,
    stopped: AtomicUsize,
    /// The function error the next start fails with, if any.
    fail_start: Mutex<Option<FunctionError>>,
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
        tokio::time::sleep(Duration::from_millis(5)).await;
        Reply {
            result: Ok(request.body),
            log: format!("ran in {}\n", self.code_dir.display()).into_bytes(),
            memory_used_bytes: 3 << 20,
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

#[tokio::test(start_paused = true)]
async fn a_cache_hit_does_not_call_the_source() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.call("f", Qualifier::Latest).await;
    s.call("f", Qualifier::Latest).await;
    s.call("f", Qualifier::Latest).await;
    assert_eq!(s.calls(), 1);
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_change_on_the_feed_invalidates_that_function_only() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.source.put(
        key("g"),
        Qualifier::Latest,
        resolved(record("g", 128), "latest"),
    );
    s.call("f", Qualifier::Latest).await;
    s.call("g", Qualifier::Latest).await;
    assert_eq!(s.calls(), 2);

    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 256), "latest"),
    );
    s.change("f", ChangeKind::Function).await;
    let calls = s.calls();
    assert_eq!(s.call("f", Qualifier::Latest).await.memory_size_mb, 256);
    s.call("g", Qualifier::Latest).await;
    assert_eq!(s.calls(), calls, "only f was read again, and only once");

    // A trigger change does not change what f resolves to.
    s.change("f", ChangeKind::Trigger).await;
    s.call("f", Qualifier::Latest).await;
    assert_eq!(s.calls(), calls);
}

#[tokio::test(start_paused = true)]
async fn a_lagging_follower_resyncs_by_forgetting_everything() {
    let s = setup_with(LocalFeed::with_capacity(2));
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.call("f", Qualifier::Latest).await;
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 512), "latest"),
    );
    // f's own change is among those lost: five changes, none awaited, into a buffer of two.
    let mut rev = s.feed.publish(key("f"), ChangeKind::Function).await;
    for i in 0..4 {
        rev = s
            .feed
            .publish(key(&format!("other{i}")), ChangeKind::Alias)
            .await;
    }
    s.feed.settled(rev, Duration::from_secs(1)).await;
    assert_eq!(s.call("f", Qualifier::Latest).await.memory_size_mb, 512);
}

#[tokio::test(start_paused = true)]
async fn an_alias_routes_by_its_weights() {
    let s = setup();
    for v in ["v1", "v2"] {
        s.source.put(
            key("f"),
            Qualifier::Version(v.into()),
            resolved(record("f", 128), v),
        );
    }
    s.source.put(
        key("f"),
        Qualifier::Alias("prod".into()),
        Resolution::Alias(AliasRecord {
            name: "prod".into(),
            version: "v1".into(),
            description: String::new(),
            additional_version_weights: BTreeMap::from([("v2".to_string(), 30)]),
            additional_version_strategy: BTreeMap::new(),
            created_ms: 0,
            modified_ms: 0,
        }),
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..400 {
        let o = s.call("f", Qualifier::Alias("prod".into())).await;
        *seen.entry(o.version).or_default() += 1;
    }
    let v2 = seen.get("v2").copied().unwrap_or(0);
    assert_eq!(seen.values().sum::<usize>(), 400, "{seen:?}");
    // 30 % of 400 is 120; a fair roll lands within 60 of it with overwhelming odds.
    assert!((60..=180).contains(&v2), "{seen:?}");
    // The alias and both versions were each read once.
    assert_eq!(s.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_pool_registry_retires_gone_and_changed_versions_and_keeps_limit_changes() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    s.source.put(
        key("f"),
        Qualifier::Version("v1".into()),
        resolved(record("f", 128), "v1"),
    );
    s.call("f", Qualifier::Latest).await;
    s.call("f", Qualifier::Version("v1".into())).await;
    assert_eq!(s.versions_with_pools(), ["latest", "v1"]);
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 2);

    // v1 deleted: its pool goes, and its instance is stopped.
    s.source.remove(key("f"), Qualifier::Version("v1".into()));
    s.change("f", ChangeKind::Version).await;
    assert_eq!(s.versions_with_pools(), ["latest"]);
    assert_eq!(s.counters.stopped.load(Ordering::SeqCst), 1);

    // Only a limit changed: the instance stays.
    let mut rec = record("f", 128);
    rec.spec.max_instance_num = 5;
    s.source
        .put(key("f"), Qualifier::Latest, resolved(rec, "latest"));
    s.change("f", ChangeKind::Function).await;
    s.call("f", Qualifier::Latest).await;
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 2);
    assert_eq!(s.counters.stopped.load(Ordering::SeqCst), 1);

    // The memory changed: instances would start differently, so the pool is replaced.
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 256), "latest"),
    );
    s.change("f", ChangeKind::Function).await;
    let o = s.call("f", Qualifier::Latest).await;
    assert!(o.cold, "a new instance of the new configuration");
    assert_eq!(s.counters.launched.load(Ordering::SeqCst), 3);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.counters.stopped.load(Ordering::SeqCst), 2);
}

/// Keeps what it is told.
#[derive(Default)]
struct Seen(Mutex<Vec<(String, String, bool, usize)>>);

impl InvocationObserver for Seen {
    fn finished(&self, f: &Finished<'_>) {
        self.0.lock().unwrap().push((
            f.key.name.clone(),
            f.outcome.request_id.clone(),
            f.outcome.cold,
            f.outcome.log.len(),
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn the_outcome_is_recorded_with_its_log_billing_and_observers() {
    let s = setup();
    let seen = Arc::new(Seen::default());
    s.invoker
        .add_observer(Arc::clone(&seen) as Arc<dyn InvocationObserver>);
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    let first = s.call("f", Qualifier::Latest).await;
    let second = s.call("f", Qualifier::Latest).await;
    assert!(first.cold && !second.cold);
    assert_eq!(first.result.as_deref().ok(), Some(&b"{}"[..]));
    assert_eq!(second.duration, Duration::from_millis(5));
    assert_eq!(second.billed_ms, 5);
    assert_eq!(second.memory_used_mb, 3.0);
    assert_eq!(second.version, "latest");
    let log = String::from_utf8_lossy(&second.log);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].ends_with(&format!(
            "Start invoke request '{}', version: latest",
            second.request_id
        )),
        "{log}"
    );
    assert_eq!(lines[1], "ran in /code/latest");
    assert!(lines[2].contains(&second.request_id), "{log}");
    let seen = seen.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1],
        (
            "f".into(),
            second.request_id.clone(),
            false,
            second.log.len()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_start_that_fails_as_the_functions_fault_is_an_outcome() {
    let s = setup();
    s.source.put(
        key("f"),
        Qualifier::Latest,
        resolved(record("f", 128), "latest"),
    );
    *s.counters.fail_start.lock().unwrap() = Some(FunctionError {
        code: 200,
        message: "bootstrap is missing".into(),
        error_type: "InitError".into(),
        stack_trace: Vec::new(),
    });
    let o = s.call("f", Qualifier::Latest).await;
    assert_eq!(o.result.as_ref().map_err(|e| e.code), Err(200));
    assert!(o.cold);
    assert_eq!(o.billed_ms, 0);
    let log = String::from_utf8_lossy(&o.log);
    assert!(log.contains("Start invoke request"), "{log}");
    assert!(log.trim_end().ends_with("bootstrap is missing"), "{log}");
}

#[tokio::test(start_paused = true)]
async fn a_missing_function_is_an_error_not_an_outcome() {
    let s = setup();
    let err = s
        .invoker
        .invoke(
            &key("nope"),
            &Qualifier::Latest,
            Bytes::new(),
            InvokeOptions::default(),
        )
        .await
        .expect_err("nothing to run");
    assert!(
        matches!(err, InvokeError::Resolve(ResolveError::FunctionNotFound(ref n)) if n == "nope"),
        "{err}"
    );
}
