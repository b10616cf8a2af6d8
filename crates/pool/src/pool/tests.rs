use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

struct FakeWorker {
    id: usize,
    healthy: AtomicBool,
    stopped: Arc<AtomicUsize>,
}

impl Worker for FakeWorker {
    fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }
    async fn stop(&self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct FakeLauncher {
    launched: AtomicUsize,
    stopped: Arc<AtomicUsize>,
    fail: AtomicBool,
}

impl Launcher for FakeLauncher {
    type Worker = FakeWorker;
    type Error = &'static str;
    async fn launch(&self) -> Result<FakeWorker, &'static str> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if self.fail.load(Ordering::SeqCst) {
            return Err("boom");
        }
        Ok(FakeWorker {
            id: self.launched.fetch_add(1, Ordering::SeqCst),
            healthy: AtomicBool::new(true),
            stopped: Arc::clone(&self.stopped),
        })
    }
}

fn limits(max: i32, reserved: u32) -> Limits {
    Limits {
        max_instances: max,
        reserved,
        concurrency: 1,
        queue_limit: 1,
        idle_timeout: Duration::from_secs(60),
    }
}

#[tokio::test(start_paused = true)]
async fn warm_reuse_after_cold_start() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    let a = pool.acquire().await.unwrap();
    assert!(a.cold);
    let id = a.worker().id;
    drop(a);
    let b = pool.acquire().await.unwrap();
    assert!(!b.cold);
    assert_eq!(b.worker().id, id);
    assert_eq!(pool.launcher().launched.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_scale_out() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    assert_ne!(a.worker().id, b.worker().id);
    assert_eq!(pool.stats().instances, 2);
}

#[tokio::test(start_paused = true)]
async fn concurrency_shares_one_instance() {
    let mut l = limits(-1, 0);
    l.concurrency = 3;
    let pool = Pool::new(FakeLauncher::default(), l);
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    let c = pool.acquire().await.unwrap();
    assert_eq!((a.worker().id, b.worker().id, c.worker().id), (0, 0, 0));
    let d = pool.acquire().await.unwrap();
    assert_eq!(d.worker().id, 1);
}

#[tokio::test(start_paused = true)]
async fn max_instances_queue_then_throttle() {
    let pool = Pool::new(FakeLauncher::default(), limits(1, 0));
    let first = pool.acquire().await.unwrap();
    let p2 = Arc::clone(&pool);
    let waiter = tokio::spawn(async move { p2.acquire().await.map(|l| l.worker().id) });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(pool.stats().waiting, 1);
    // The queue holds one caller: the next is refused at once.
    assert!(matches!(pool.acquire().await, Err(AcquireError::Throttled)));
    drop(first);
    assert_eq!(waiter.await.unwrap().unwrap(), 0);
    assert_eq!(pool.launcher().launched.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn zero_max_instances_disables() {
    let pool = Pool::new(FakeLauncher::default(), limits(0, 0));
    assert!(matches!(pool.acquire().await, Err(AcquireError::Disabled)));
}

#[tokio::test(start_paused = true)]
async fn idle_instances_are_reclaimed_after_the_timeout() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    drop(pool.acquire().await.unwrap());
    assert_eq!(pool.reclaim_idle(Instant::now()), 0);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(pool.reclaim_idle(Instant::now()), 0);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(pool.reclaim_idle(Instant::now()), 1);
    tokio::task::yield_now().await;
    assert_eq!(pool.launcher().stopped.load(Ordering::SeqCst), 1);
    assert_eq!(pool.stats().instances, 0);
}

#[tokio::test(start_paused = true)]
async fn busy_instances_are_never_reclaimed() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    let lease = pool.acquire().await.unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(pool.reclaim_idle(Instant::now()), 0);
    drop(lease);
}

#[tokio::test(start_paused = true)]
async fn reserved_instances_start_ahead_and_stay() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 2));
    pool.ensure_reserved();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(pool.stats().instances, 2);
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(pool.reclaim_idle(Instant::now()), 0);
    // Both reserved instances serve warm.
    let a = pool.acquire().await.unwrap();
    let b = pool.acquire().await.unwrap();
    assert!(!a.cold && !b.cold);
}

#[tokio::test(start_paused = true)]
async fn unhealthy_instances_are_replaced() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    let a = pool.acquire().await.unwrap();
    a.worker().healthy.store(false, Ordering::SeqCst);
    drop(a);
    tokio::task::yield_now().await;
    assert_eq!(pool.launcher().stopped.load(Ordering::SeqCst), 1);
    let b = pool.acquire().await.unwrap();
    assert!(b.cold);
    assert_eq!(b.worker().id, 1);
}

#[tokio::test(start_paused = true)]
async fn failed_start_frees_its_place() {
    let pool = Pool::new(FakeLauncher::default(), limits(1, 0));
    pool.launcher().fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        pool.acquire().await,
        Err(AcquireError::Start("boom"))
    ));
    pool.launcher().fail.store(false, Ordering::SeqCst);
    assert!(pool.acquire().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn retired_pool_stops_idle_now_and_busy_on_release() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    let busy = pool.acquire().await.unwrap();
    drop(pool.acquire().await.unwrap());
    let _ = pool.acquire().await; // takes the idle one again
    pool.retire();
    assert!(matches!(pool.acquire().await, Err(AcquireError::Retired)));
    drop(busy);
    tokio::task::yield_now().await;
    assert!(pool.launcher().stopped.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(start_paused = true)]
async fn callers_get_an_instance_of_their_own_shard_first() {
    let pool = Pool::new(FakeLauncher::default(), limits(-1, 0));
    crate::shard::enter(0);
    let a = pool.acquire().await.unwrap();
    crate::shard::enter(1);
    let b = pool.acquire().await.unwrap();
    let (a_id, b_id) = (a.worker().id, b.worker().id);
    drop((a, b));
    for _ in 0..3 {
        crate::shard::enter(1);
        let on_1 = pool.acquire().await.unwrap();
        assert_eq!(on_1.worker().id, b_id);
        crate::shard::enter(0);
        let on_0 = pool.acquire().await.unwrap();
        assert_eq!(on_0.worker().id, a_id);
    }
    // With its own shard's instance busy, a caller takes another shard's idle one rather than
    // starting a new instance.
    crate::shard::enter(0);
    let first = pool.acquire().await.unwrap();
    let second = pool.acquire().await.unwrap();
    assert_eq!((first.worker().id, second.worker().id), (a_id, b_id));
    assert!(!second.cold);
    assert_eq!(pool.launcher().launched.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_lowered_limit_stops_the_instances_past_it_idle_first_busy_after_their_call() {
    let pool = Pool::new(FakeLauncher::default(), limits(5, 0));
    let mut leases = Vec::new();
    for _ in 0..5 {
        leases.push(pool.acquire().await.expect("start"));
    }
    // Three busy (0, 1, 2), two idle (3, 4).
    leases.truncate(3);
    let [oldest, l1, l2]: [_; 3] = leases.try_into().ok().expect("three");
    assert_eq!(oldest.worker().id, 0);
    pool.set_limits(limits(2, 0));
    tokio::task::yield_now().await;
    assert_eq!(
        pool.launcher().stopped.load(Ordering::SeqCst),
        2,
        "the idle ones"
    );
    assert_eq!(
        pool.stats().instances,
        3,
        "the least recently used busy one finishes its call"
    );
    let waiter = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move { pool.acquire().await.map(|l| (l.cold, l.worker().id)) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "it takes no other call, none starts");
    drop(oldest);
    tokio::task::yield_now().await;
    assert_eq!(pool.launcher().stopped.load(Ordering::SeqCst), 3);
    assert_eq!(pool.stats().instances, 2);
    assert!(!waiter.is_finished(), "two instances, both busy: the limit");
    drop(l1);
    let (cold, id) = waiter.await.expect("joins").expect("a kept instance");
    assert!(!cold);
    assert_eq!(id, 1);
    assert_eq!(pool.launcher().launched.load(Ordering::SeqCst), 5);
    drop(l2);
}

#[tokio::test(start_paused = true)]
async fn disabling_keeps_the_idle_instance_warm_for_when_enabled_again() {
    let pool = Pool::new(FakeLauncher::default(), limits(5, 0));
    drop(pool.acquire().await.expect("start"));
    pool.set_limits(limits(0, 0));
    tokio::task::yield_now().await;
    assert_eq!(pool.stats().instances, 1);
    pool.set_limits(limits(-1, 0));
    assert!(!pool.acquire().await.expect("warm").cold);
}

/// A worker that counts how often its health is read.
struct Counted {
    healthy: bool,
    reads: AtomicUsize,
}

impl Worker for Counted {
    fn is_healthy(&self) -> bool {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.healthy
    }
    async fn stop(&self) {}
}

fn slot(id: u64, in_flight: u32, shard: usize, healthy: bool, doomed: bool) -> Slot<Counted> {
    Slot {
        id,
        worker: Arc::new(Counted {
            healthy,
            reads: AtomicUsize::new(0),
        }),
        in_flight,
        last_used: Instant::now(),
        shard,
        ticket: None,
        doomed,
    }
}

#[tokio::test]
async fn one_pass_picks_the_busiest_with_room_and_stops_dead_idle_ones() {
    let mut slots = vec![
        slot(0, 0, 0, true, false),  // idle, here
        slot(1, 0, 1, false, false), // idle and dead: stopped
        slot(2, 1, 1, true, false),  // busy with room, other shard
        slot(3, 2, 0, true, false),  // full
        slot(4, 0, 0, true, true),   // idle, doomed: never chosen, kept
        slot(5, 1, 0, false, false), // busy with room but dead: kept until its call ends
        slot(6, 1, 0, true, false),  // busy with room, here: the choice
        slot(7, 1, 0, true, false),  // as busy, here, later: the choice among equals
    ];
    let workers: Vec<_> = slots.iter().map(|s| Arc::clone(&s.worker)).collect();
    let chosen = pick(&mut slots, 2, 0).expect("a slot has room");
    assert_eq!(slots[chosen].id, 7);
    let ids: Vec<u64> = slots.iter().map(|s| s.id).collect();
    assert_eq!(ids, [0, 2, 3, 4, 5, 6, 7], "only the dead idle one went");
    let reads: Vec<usize> = workers
        .iter()
        .map(|w| w.reads.load(Ordering::SeqCst))
        .collect();
    assert_eq!(
        reads,
        [1, 1, 1, 0, 1, 1, 1, 1],
        "health read once, not for a full one"
    );

    // Concurrency 1: the idle ones only, the caller's shard first, the last among equals.
    let mut slots = vec![
        slot(0, 0, 1, true, false),
        slot(1, 0, 0, true, false),
        slot(2, 1, 0, true, false),
        slot(3, 0, 0, true, false),
        slot(4, 0, 1, true, false),
    ];
    assert_eq!(pick(&mut slots, 1, 0).map(|i| slots[i].id), Some(3));
    assert_eq!(pick(&mut slots, 1, 1).map(|i| slots[i].id), Some(4));
    let mut busy = vec![slot(0, 1, 0, true, false), slot(1, 0, 0, false, false)];
    assert_eq!(pick(&mut busy, 1, 0), None);
    assert_eq!(busy.len(), 1);
}
