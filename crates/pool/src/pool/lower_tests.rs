//! A lowered limit on one node and across nodes sharing it (gate_tests.rs's fake nodes).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::gate_tests::{limits, two_nodes};

#[tokio::test(start_paused = true)]
async fn places_ranked_past_a_lowered_shared_limit_are_given_back_the_busy_one_after_its_call() {
    let (shared, a, b) = two_nodes(5);
    // Places 0, 1, 2 on a (the third busy), 3 and 4 on b (idle).
    drop(a.acquire().await.expect("start"));
    let held_on_a = [
        a.acquire().await.expect("warm"),
        a.acquire().await.expect("start"),
        a.acquire().await.expect("start"),
    ];
    let [first, second, busy] = held_on_a;
    drop((first, second));
    let on_b = [
        b.acquire().await.expect("start"),
        b.acquire().await.expect("start"),
    ];
    drop(on_b);
    assert_eq!((a.stats().instances, b.stats().instances), (3, 2));
    assert_eq!(*shared.held.lock().expect("lock"), 5);

    // The limit becomes 2; the change reaches b first, then a: each ranks its own places.
    b.set_limits(limits(2));
    tokio::time::sleep(Duration::from_millis(10)).await;
    a.set_limits(limits(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(b.stats().instances, 0, "b's places ranked 4th and 5th");
    assert_eq!(b.launcher().stopped.load(Ordering::SeqCst), 2);
    assert_eq!(
        (a.stats().instances, a.stats().busy),
        (3, 1),
        "a's third place is past the limit, but its instance is busy: it finishes its call"
    );
    assert_eq!(*shared.held.lock().expect("lock"), 3);

    // The retired instance takes no other call, and none starts past the limit.
    let waiter = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.acquire().await.map(|l| l.cold) }
    });
    let warm = a.acquire().await.expect("one of the two kept");
    assert!(!warm.cold);
    let warm2 = a.acquire().await.expect("the other kept one");
    assert!(!warm2.cold);
    drop(busy);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.stats().instances, 2, "stopped once its call ended");
    assert_eq!(a.launcher().stopped.load(Ordering::SeqCst), 1);
    assert_eq!(*shared.held.lock().expect("lock"), 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished(), "two places held: no third instance");
    drop((warm, warm2));
    a.reclaim_idle(tokio::time::Instant::now() + Duration::from_secs(61));
    assert!(waiter.await.expect("joins").expect("a place came back"));
    assert_eq!(*shared.held.lock().expect("lock"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_raised_shared_limit_gives_no_place_back() {
    let (shared, a, _b) = two_nodes(2);
    let busy = [
        a.acquire().await.expect("start"),
        a.acquire().await.expect("start"),
    ];
    a.set_limits(limits(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.stats().instances, 2);
    assert_eq!(*shared.held.lock().expect("lock"), 2);
    drop(busy);
}
