//! The dispatcher against a real SQLite queue and a fake target, in paused tokio time: retries
//! with back-off, maximum age, leases extended through a long run, an expired lease of another
//! node taken over, and cancel.

use std::sync::Mutex as StdMutex;

use fgs_core::flows::AsyncInvokeConfig;
use fgs_core::FunctionError;
use fgs_store::conformance::record;
use fgs_store::{AsyncFilter, Store};
use tokio::time::Instant;

use super::*;
use crate::InvokeOptions;

/// What the fake target answers to each run of an event, by run number (0-based).
type Script = Box<dyn Fn(usize) -> Step + Send + Sync>;

#[derive(Clone, Copy)]
enum Step {
    Succeed,
    Fail,
    Throttle,
}

struct Fake {
    script: Script,
    /// How long each run takes.
    run_for: Duration,
    config: AsyncInvokeConfig,
    /// Each run's request id and (virtual) start.
    runs: StdMutex<Vec<(String, Instant)>>,
}

impl Fake {
    fn new(retries: u32, max_age_s: u32, script: Script) -> Fake {
        Fake {
            script,
            run_for: Duration::from_millis(10),
            config: AsyncInvokeConfig {
                max_async_event_age_in_seconds: max_age_s,
                max_async_retry_attempts: retries,
                destination_config: Default::default(),
                created_ms: 0,
                modified_ms: 0,
            },
            runs: StdMutex::new(Vec::new()),
        }
    }

    fn runs(&self) -> Vec<(String, Instant)> {
        self.runs.lock().expect("runs lock").clone()
    }
}

impl AsyncTarget for Fake {
    async fn async_config(
        &self,
        _key: &FunctionKey,
        _qualifier: &Qualifier,
    ) -> Result<Option<AsyncInvokeConfig>, InvokeError> {
        Ok(Some(self.config.clone()))
    }

    async fn run(
        &self,
        _key: &FunctionKey,
        _qualifier: &Qualifier,
        _body: Bytes,
        opts: InvokeOptions,
    ) -> Result<Result<Bytes, fgs_core::FunctionError>, InvokeError> {
        let n = {
            let mut runs = self.runs.lock().expect("runs lock");
            let id = opts.request_id.unwrap_or_default();
            runs.push((id, Instant::now()));
            runs.len() - 1
        };
        tokio::time::sleep(self.run_for).await;
        match (self.script)(n) {
            Step::Succeed => Ok(Ok(Bytes::from_static(b"ok"))),
            Step::Fail => Ok(Err(FunctionError::new(4002, "Boom", "failed"))),
            Step::Throttle => Err(InvokeError::Throttled("f".into())),
        }
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    fake: Arc<Fake>,
    dispatcher: Arc<AsyncDispatcher<Fake>>,
    clock: Clock,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key() -> FunctionKey {
    FunctionKey {
        project: "p".into(),
        package: "default".into(),
        name: "f".into(),
    }
}

async fn rig(fake: Fake, retry_base: Duration) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("fgs.db")).expect("open");
    store
        .create_function(record("p", "default", "f", 1), 10)
        .await
        .expect("create");
    let clock = Clock::Tokio {
        base_ms: 1_000_000,
        start: Instant::now(),
    };
    let fake = Arc::new(fake);
    let config = AsyncConfig {
        concurrency: 4,
        retry_base,
        region: "local".into(),
        lease: LeaseConfig {
            owner: "n1".into(),
            length: Duration::from_secs(30),
            renew: Duration::from_secs(10),
        },
    };
    let dispatcher =
        AsyncDispatcher::with_clock(Arc::clone(&fake), Arc::clone(store.queue()), config, clock);
    let task = tokio::spawn(Arc::clone(&dispatcher).run());
    // Let the dispatcher open its in-memory handover before the first submit.
    tokio::time::sleep(Duration::from_millis(1)).await;
    Rig {
        _dir: dir,
        store,
        fake,
        dispatcher,
        clock,
        task,
    }
}

impl Rig {
    async fn submit(&self) -> String {
        let ev = NewEvent {
            key: key(),
            qualifier: Qualifier::Latest,
            body: Bytes::from_static(b"{}"),
            source: "api".into(),
        };
        self.dispatcher.submit(ev, None).await.expect("submit")
    }

    async fn row(&self, id: &str) -> AsyncRow {
        let filter = AsyncFilter {
            project: "p".into(),
            package: "default".into(),
            name: "f".into(),
            request_id: Some(id.into()),
            limit: 1,
            ..AsyncFilter::default()
        };
        let (rows, _) = self.store.list_async(filter).await.expect("list");
        rows.into_iter().next().expect("the event is stored")
    }

    /// Waits (virtual time, bounded) until the event has `status`.
    async fn wait_for(&self, id: &str, status: AsyncStatus, limit: Duration) -> AsyncRow {
        let deadline = Instant::now() + limit;
        loop {
            let row = self.row(id).await;
            if row.status == status {
                return row;
            }
            assert!(
                Instant::now() < deadline,
                "{id} still {:?} after {limit:?}",
                row.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn failed_runs_are_retried_with_doubling_back_off() {
    let fake = Fake::new(
        3,
        3600,
        Box::new(|n| if n < 2 { Step::Fail } else { Step::Succeed }),
    );
    let rig = rig(fake, Duration::from_secs(1)).await;
    let id = rig.submit().await;
    let row = rig
        .wait_for(&id, AsyncStatus::Success, Duration::from_secs(60))
        .await;
    assert_eq!(row.attempts, 3);
    let runs = rig.fake.runs();
    assert_eq!(runs.len(), 3);
    let gap = |i: usize| runs[i + 1].1 - runs[i].1;
    // Back-off from the end of a run: 1 s, then 2 s, picked up within the claim loop's poll.
    assert!(
        gap(0) >= Duration::from_secs(1) && gap(0) < Duration::from_millis(1500),
        "{:?}",
        gap(0)
    );
    assert!(
        gap(1) >= Duration::from_secs(2) && gap(1) < Duration::from_millis(2500),
        "{:?}",
        gap(1)
    );
    assert_eq!(rig.dispatcher.held.len(), 0, "no lease is left held");
}

#[tokio::test(start_paused = true)]
async fn retries_exhausted_fail_the_event() {
    let rig = rig(
        Fake::new(1, 3600, Box::new(|_| Step::Fail)),
        Duration::from_secs(1),
    )
    .await;
    let id = rig.submit().await;
    let row = rig
        .wait_for(&id, AsyncStatus::Fail, Duration::from_secs(60))
        .await;
    assert_eq!((row.attempts, row.error_code), (2, Some(4002)));
    assert_eq!(rig.fake.runs().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_event_past_its_maximum_age_is_discarded() {
    // Throttled runs retry every second without using up attempts, until the age runs out.
    let rig = rig(
        Fake::new(3, 5, Box::new(|_| Step::Throttle)),
        Duration::from_secs(1),
    )
    .await;
    let id = rig.submit().await;
    let row = rig
        .wait_for(&id, AsyncStatus::Discard, Duration::from_secs(60))
        .await;
    assert_eq!(row.error_message, "event age exceeded");
    assert_eq!(row.attempts, 0);
    let runs = rig.fake.runs().len();
    assert!((4..=7).contains(&runs), "{runs} throttled runs in 5 s");
}

#[tokio::test(start_paused = true)]
async fn a_long_run_keeps_its_lease_from_other_nodes() {
    let mut fake = Fake::new(0, 3600, Box::new(|_| Step::Succeed));
    fake.run_for = Duration::from_secs(95);
    let rig = rig(fake, Duration::from_secs(1)).await;
    let id = rig.submit().await;
    let queue = Arc::clone(rig.store.queue());
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = rig.clock.now_ms();
        let taken = queue
            .claim("n2", now, now + 30_000, 10)
            .await
            .expect("claim");
        assert!(
            taken.is_empty(),
            "another node took a held event: {taken:?}"
        );
        let lease = rig.row(&id).await.lease.expect("running under a lease");
        assert_eq!(lease.owner, "n1");
        assert!(
            lease.until_ms > now + 10_000,
            "extended: {lease:?} at {now}"
        );
    }
    let row = rig
        .wait_for(&id, AsyncStatus::Success, Duration::from_secs(30))
        .await;
    assert_eq!((row.attempts, rig.fake.runs().len()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_of_a_stopped_node_is_taken_over_once() {
    let rig = rig(
        Fake::new(0, 3600, Box::new(|_| Step::Succeed)),
        Duration::from_secs(1),
    )
    .await;
    // Node n0 accepted and ran this event, then stopped with the lease held.
    let now = rig.clock.now_ms();
    let mut row = fgs_store::conformance::async_row("r-n0", &record("p", "default", "f", 1), now);
    row.status = AsyncStatus::Running;
    row.started_ms = Some(now);
    let lease = Lease {
        owner: "n0".into(),
        until_ms: now + 30_000,
        seq: 1,
    };
    row.lease = Some(lease.clone());
    let res = rig
        .store
        .queue()
        .accept(vec![row.clone()])
        .await
        .expect("accept");
    assert!(res[0].is_ok(), "{res:?}");
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert!(rig.fake.runs().is_empty(), "run while n0's lease held");
    let done = rig
        .wait_for("r-n0", AsyncStatus::Success, Duration::from_secs(10))
        .await;
    let runs = rig.fake.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(done.lease, None);
    // n0's late outcome does not overwrite n1's.
    row.status = AsyncStatus::Fail;
    row.ended_ms = Some(rig.clock.now_ms());
    let written = rig.store.queue().settle(vec![row]).await.expect("settle");
    assert_eq!(written, [false]);
    assert_eq!(rig.row("r-n0").await.status, AsyncStatus::Success);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        rig.fake.runs().len(),
        1,
        "a completed event is not run again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_retry_never_runs_again() {
    let rig = rig(
        Fake::new(3, 3600, Box::new(|_| Step::Fail)),
        Duration::from_secs(60),
    )
    .await;
    let id = rig.submit().await;
    rig.wait_for(&id, AsyncStatus::Wait, Duration::from_secs(5))
        .await;
    let had = rig
        .store
        .cancel_async("p", "default", "f", &id, rig.clock.now_ms())
        .await
        .expect("cancel");
    assert_eq!(had, AsyncStatus::Wait);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(rig.fake.runs().len(), 1);
    let row = rig.row(&id).await;
    assert_eq!(
        (row.status, row.error_message.as_str()),
        (AsyncStatus::Discard, "cancelled")
    );
}
