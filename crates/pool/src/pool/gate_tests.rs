//! Pools sharing a limit through a gate, as the pools of one function version on several nodes.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::gate::{Admission, Gate, Ticket};

pub(super) struct Fake {
    stopped: Arc<AtomicUsize>,
}

impl Worker for Fake {
    fn is_healthy(&self) -> bool {
        true
    }
    async fn stop(&self) {
        // Stopping takes a while: the place must stay taken until it is over.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
pub(super) struct Starts {
    pub(super) stopped: Arc<AtomicUsize>,
}

impl Launcher for Starts {
    type Worker = Fake;
    type Error = &'static str;
    async fn launch(&self) -> Result<Fake, &'static str> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok(Fake {
            stopped: Arc::clone(&self.stopped),
        })
    }
}

/// A shared count: the store's places of one function version, in memory.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) held: Arc<Mutex<u32>>,
    most: Arc<Mutex<u32>>,
    refuse: AtomicBool,
    /// The places held, in claim order: (id, node).
    places: Arc<Mutex<Vec<(i64, &'static str)>>>,
    next: AtomicI64,
}

struct Place {
    held: Arc<Mutex<u32>>,
    places: Arc<Mutex<Vec<(i64, &'static str)>>>,
    id: i64,
}

impl Drop for Place {
    fn drop(&mut self) {
        *self.held.lock().expect("lock") -= 1;
        self.places.lock().expect("lock").retain(|p| p.0 != self.id);
    }
}

/// One node's gate to the shared count.
struct NodeGate {
    shared: Arc<Shared>,
    node: &'static str,
}

impl Gate for NodeGate {
    fn admit(&self, limit: u32) -> std::pin::Pin<Box<dyn Future<Output = Admission> + Send + '_>> {
        Box::pin(async move {
            let s = &self.shared;
            if s.refuse.load(Ordering::SeqCst) {
                return Admission::Refused("fenced".into());
            }
            let mut held = s.held.lock().expect("lock");
            if *held >= limit {
                return Admission::Full(vec!["http://a".into()]);
            }
            *held += 1;
            let mut most = s.most.lock().expect("lock");
            *most = (*most).max(*held);
            let id = s.next.fetch_add(1, Ordering::SeqCst);
            s.places.lock().expect("lock").push((id, self.node));
            let place = Place {
                held: Arc::clone(&s.held),
                places: Arc::clone(&s.places),
                id,
            };
            Admission::Granted(Ticket::new(id, place))
        })
    }

    fn past_limit(
        &self,
        limit: u32,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<i64>, String>> + Send + '_>> {
        Box::pin(async move {
            let places = self.shared.places.lock().expect("lock");
            Ok(places
                .iter()
                .skip(limit as usize)
                .filter(|p| p.1 == self.node)
                .map(|p| p.0)
                .collect())
        })
    }
}

pub(super) fn limits(max: i32) -> Limits {
    Limits {
        max_instances: max,
        reserved: 0,
        concurrency: 1,
        queue_limit: 10,
        idle_timeout: Duration::from_secs(60),
    }
}

pub(super) fn two_nodes(max: i32) -> (Arc<Shared>, Arc<Pool<Starts>>, Arc<Pool<Starts>>) {
    let shared = Arc::new(Shared::default());
    let gate = |node| {
        let g = NodeGate {
            shared: Arc::clone(&shared),
            node,
        };
        Some(Arc::new(g) as Arc<dyn Gate>)
    };
    let a = Pool::with_gate(Starts::default(), limits(max), gate("a"));
    let b = Pool::with_gate(Starts::default(), limits(max), gate("b"));
    (shared, a, b)
}

#[tokio::test(start_paused = true)]
async fn a_shared_limit_makes_the_other_node_wait_until_the_place_is_given_back() {
    let (shared, a, b) = two_nodes(1);
    let lease = a.acquire().await.expect("a starts the one instance");
    let waiter = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.acquire().await.map(|l| l.cold) }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!waiter.is_finished(), "b must not start a second instance");
    assert_eq!(b.stats().waiting, 1);
    drop(lease);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !waiter.is_finished(),
        "a's idle instance still holds the place"
    );
    // Idle past its timeout, a's instance ends; its place is free once it has stopped.
    let t0 = Instant::now();
    a.reclaim_idle(t0 + Duration::from_secs(61));
    assert_eq!(a.stats().instances, 0);
    let cold = waiter
        .await
        .expect("joins")
        .expect("b starts once the place is back");
    assert!(cold);
    assert!(
        t0.elapsed() >= Duration::from_millis(50),
        "not before a's stop ended"
    );
    assert_eq!(*shared.most.lock().expect("lock"), 1, "never two at once");
}

#[tokio::test(start_paused = true)]
async fn a_full_shared_limit_throttles_past_the_queue() {
    let (_shared, a, b) = two_nodes(1);
    let _held = a.acquire().await.expect("start");
    b.set_limits(Limits {
        queue_limit: 0,
        ..limits(1)
    });
    assert!(matches!(b.acquire().await, Err(AcquireError::Throttled)));
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_can_be_served_elsewhere_does_not_wait_for_a_full_limit() {
    let (shared, a, b) = two_nodes(1);
    let held = a.acquire().await.expect("start");
    match b.acquire_or_full().await {
        Err(AcquireError::Full(at)) => assert_eq!(at, ["http://a"]),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("a second instance"),
    }
    assert_eq!(b.stats(), PoolStats::default(), "nothing left counted");
    // Within a second the full limit is taken as known: no claim, the same answer.
    shared.refuse.store(true, Ordering::SeqCst);
    assert!(matches!(
        b.acquire_or_full().await,
        Err(AcquireError::Full(_))
    ));
    tokio::time::sleep(FULL_HINT).await;
    assert!(
        matches!(b.acquire_or_full().await, Err(AcquireError::Refused(_))),
        "asked again after a second"
    );
    shared.refuse.store(false, Ordering::SeqCst);
    drop(held);
    let warm = a.acquire_or_full().await.expect("a's own idle instance");
    assert!(!warm.cold);
}

#[tokio::test(start_paused = true)]
async fn callers_queued_behind_a_start_that_found_the_limit_full_are_not_left_waiting() {
    let (_shared, a, b) = two_nodes(1);
    let _held = a.acquire().await.expect("start");
    // Five at once on b: the first counts a start, the others queue behind it; the start
    // finds the limit full, and every one of them hears so (the later ones from the hint).
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.acquire_or_full().await.map(|_| ()) })
        })
        .collect();
    for c in calls {
        let r = tokio::time::timeout(Duration::from_secs(5), c)
            .await
            .expect("not left waiting")
            .expect("joins");
        assert!(matches!(r, Err(AcquireError::Full(_))));
    }
}

#[tokio::test(start_paused = true)]
async fn unlimited_pools_never_ask_the_gate() {
    let (shared, a, _b) = two_nodes(-1);
    shared.refuse.store(true, Ordering::SeqCst);
    let _l = a
        .acquire()
        .await
        .expect("no gate for an unlimited function");
    assert_eq!(*shared.held.lock().expect("lock"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_refusing_gate_refuses_the_start() {
    let (shared, a, _b) = two_nodes(2);
    shared.refuse.store(true, Ordering::SeqCst);
    assert!(matches!(a.acquire().await, Err(AcquireError::Refused(_))));
    assert_eq!(a.stats().starting, 0, "the place it counted is free");
}

#[tokio::test(start_paused = true)]
async fn a_fence_ends_every_instance_and_gives_places_back_after_they_stopped() {
    let (shared, a, _b) = two_nodes(3);
    let busy = a.acquire().await.expect("start");
    let busy2 = a.acquire().await.expect("start");
    assert_eq!(*shared.held.lock().expect("lock"), 2);
    // A start under way when the fence comes must not join the pool.
    let late = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.acquire().await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    a.fence();
    assert_eq!(a.stats().instances, 0, "busy or idle, they end");
    assert!(matches!(
        late.await.expect("joins"),
        Err(AcquireError::Refused(_))
    ));
    assert_eq!(
        *shared.held.lock().expect("lock"),
        3,
        "the places stay taken while the instances stop"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*shared.held.lock().expect("lock"), 0);
    assert_eq!(a.launcher().stopped.load(Ordering::SeqCst), 3);
    drop((busy, busy2));
    let again = a.acquire().await.expect("a new start asks the gate again");
    assert!(again.cold);
}

#[tokio::test(start_paused = true)]
async fn instances_started_without_a_limit_claim_places_when_one_comes_and_the_rest_stop() {
    let (shared, a, b) = two_nodes(-1);
    // Unlimited: three instances on a (two busy, one idle) and one idle on b, no place held.
    let busy = [
        a.acquire().await.expect("start"),
        a.acquire().await.expect("start"),
    ];
    drop(a.acquire().await.expect("start"));
    drop(b.acquire().await.expect("start"));
    assert_eq!((a.stats().instances, b.stats().instances), (3, 1));
    assert_eq!(*shared.held.lock().expect("lock"), 0);

    // The limit becomes 2 on both nodes (the change reaches them in turn).
    a.set_limits(limits(2));
    b.set_limits(limits(2));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        *shared.held.lock().expect("lock"),
        2,
        "the busy instances claimed the two places"
    );
    assert_eq!(*shared.most.lock().expect("lock"), 2, "never more");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        (a.stats().instances, b.stats().instances),
        (2, 0),
        "the idle ones without a place stopped"
    );
    assert_eq!(a.launcher().stopped.load(Ordering::SeqCst), 1);
    assert_eq!(b.launcher().stopped.load(Ordering::SeqCst), 1);

    // b starts none past the limit: its caller waits for a place.
    let waiter = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.acquire().await.map(|l| l.cold) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "no third instance");
    drop(busy);
    a.reclaim_idle(Instant::now() + Duration::from_secs(61));
    let cold = waiter
        .await
        .expect("joins")
        .expect("b starts once a place is back");
    assert!(cold);
    assert_eq!(*shared.most.lock().expect("lock"), 2, "never more");
}

#[tokio::test(start_paused = true)]
async fn a_busy_instance_that_gets_no_place_finishes_its_event_takes_no_other_and_stops() {
    let (shared, a, b) = two_nodes(-1);
    let on_b = b.acquire().await.expect("start");
    let on_a = a.acquire().await.expect("start");
    // b's instance claims the one place first; a's, busy, gets none.
    b.set_limits(limits(1));
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.set_limits(limits(1));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(*shared.held.lock().expect("lock"), 1);
    assert_eq!(a.stats().instances, 1, "busy: it finishes its event");
    let next = tokio::spawn({
        let a = Arc::clone(&a);
        async move { a.acquire().await.map(|l| l.cold) }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(
        !next.is_finished(),
        "the doomed instance takes no other event"
    );
    drop(on_a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        a.launcher().stopped.load(Ordering::SeqCst),
        1,
        "it stopped once idle"
    );
    assert!(!next.is_finished(), "and no instance starts past the limit");
    drop(on_b);
    b.reclaim_idle(Instant::now() + Duration::from_secs(61));
    assert!(next.await.expect("joins").expect("a place came back"));
    assert_eq!(*shared.most.lock().expect("lock"), 1);
}
