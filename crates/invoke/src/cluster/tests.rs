use std::time::Duration;

use tokio::time::Instant;

use super::Fence;

#[tokio::test(start_paused = true)]
async fn a_node_starts_fenced_and_opens_with_its_first_heartbeat() {
    let f = Fence::new(Duration::from_secs(5));
    assert!(!f.open());
    assert!(
        f.needs_release(),
        "the first heartbeat clears a previous run's places"
    );
    assert!(!f.check(), "nothing to end before anything started");
    f.beat(Instant::now());
    assert!(f.open());
    assert!(!f.needs_release());
}

#[tokio::test(start_paused = true)]
async fn a_node_fences_itself_once_when_its_heartbeats_stop_landing() {
    let f = Fence::new(Duration::from_secs(5));
    f.beat(Instant::now());
    // Heartbeats every 2 s land: never fenced.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(2)).await;
        f.beat(Instant::now());
        assert!(!f.check());
        assert!(f.open());
    }
    let last = Instant::now();
    tokio::time::advance(Duration::from_millis(4_900)).await;
    assert!(f.open() && !f.check(), "4.9 s after the last landed one");
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(!f.open(), "claims stop at once, before the check runs");
    assert!(f.check(), "the first check ends the instances");
    assert!(!f.check(), "once");
    assert!(f.needs_release());
    // A heartbeat sent before the fence that lands late does not move the node back in time.
    f.beat(last);
    assert!(!f.open(), "its time is still past the limit");
    f.beat(Instant::now());
    assert!(f.open() && !f.needs_release());
}
