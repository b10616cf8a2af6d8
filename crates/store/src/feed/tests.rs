use std::collections::VecDeque;

use super::*;

fn key(name: &str) -> FunctionKey {
    FunctionKey {
        project: "p".into(),
        package: "default".into(),
        name: name.into(),
    }
}

fn changed(n: &Option<Notice>) -> (u64, String) {
    match n {
        Some(Notice::Changed(c)) => (c.revision, c.key.name.clone()),
        other => panic!("expected a change, got {other:?}"),
    }
}

#[tokio::test]
async fn followers_see_changes_in_revision_order() {
    let feed = LocalFeed::new();
    let mut a = feed.subscribe();
    let mut b = feed.subscribe();
    assert_eq!(feed.publish(key("f"), ChangeKind::Function).await, 1);
    assert_eq!(feed.publish(key("g"), ChangeKind::Trigger).await, 2);
    for s in [&mut a, &mut b] {
        assert_eq!(changed(&s.recv().await), (1, "f".into()));
        assert_eq!(changed(&s.recv().await), (2, "g".into()));
    }
}

#[tokio::test]
async fn a_late_follower_starts_after_what_was_published() {
    let feed = LocalFeed::new();
    feed.publish(key("before"), ChangeKind::Function).await;
    let mut s = feed.subscribe();
    feed.publish(key("after"), ChangeKind::Function).await;
    assert_eq!(changed(&s.recv().await), (2, "after".into()));
}

#[tokio::test]
async fn a_lagging_follower_resyncs_once_then_follows_again() {
    let feed = LocalFeed::with_capacity(2);
    let mut s = feed.subscribe();
    for i in 0..5 {
        feed.publish(key(&format!("f{i}")), ChangeKind::Function)
            .await;
    }
    // Five changes into a buffer of two: the follower cannot know which it lost.
    assert_eq!(s.recv().await, Some(Notice::Resync { revision: 5 }));
    // What stayed in the buffer is covered by the resync and skipped.
    let drained = tokio::time::timeout(Duration::from_millis(20), s.recv()).await;
    assert!(drained.is_err(), "told {drained:?} after the resync");
    feed.publish(key("next"), ChangeKind::Alias).await;
    assert_eq!(changed(&s.recv().await), (6, "next".into()));
}

/// A receiver that hands out what a test lists, like a cluster feed that dropped a message.
struct Scripted(VecDeque<Received>);

impl Receive for Scripted {
    fn next(&mut self) -> BoxFuture<'_, Received> {
        let r = self.0.pop_front().unwrap_or(Received::Closed);
        Box::pin(async move { r })
    }
}

fn change(revision: u64) -> Received {
    Received::Change(Change {
        revision,
        key: key("f"),
        kind: ChangeKind::Function,
    })
}

#[tokio::test]
async fn a_gap_in_revisions_is_a_resync() {
    let rx = Scripted([change(1), change(3), change(2), change(4)].into());
    let mut s = Subscription::new(Box::new(rx), 0, watch::channel(0).0);
    assert_eq!(changed(&s.recv().await).0, 1);
    assert_eq!(s.recv().await, Some(Notice::Resync { revision: 3 }));
    // Revision 2 arrived late: the resync already read it from storage.
    assert_eq!(changed(&s.recv().await).0, 4);
    assert_eq!(s.recv().await, None);
}

#[tokio::test(start_paused = true)]
async fn settled_waits_for_every_follower_to_apply() {
    let feed = LocalFeed::new();
    let mut a = feed.subscribe();
    let b = feed.subscribe();
    let rev = feed.publish(key("f"), ChangeKind::Function).await;
    let waiting = tokio::spawn({
        let feed = Arc::clone(&feed);
        async move {
            let t0 = tokio::time::Instant::now();
            feed.settled(rev, Duration::from_secs(5)).await;
            t0.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "settled before anyone applied");
    a.recv().await;
    a.applied(rev);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "settled with one follower behind");
    b.applied(rev);
    let took = waiting.await.expect("the waiter ran");
    assert!(took < Duration::from_millis(300), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn settled_gives_up_after_its_limit_and_ignores_gone_followers() {
    let feed = LocalFeed::new();
    let stuck = feed.subscribe();
    let gone = feed.subscribe();
    drop(gone);
    let rev = feed.publish(key("f"), ChangeKind::Function).await;
    let t0 = tokio::time::Instant::now();
    feed.settled(rev, Duration::from_secs(2)).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    drop(stuck);
    let rev = feed.publish(key("f"), ChangeKind::Function).await;
    let t0 = tokio::time::Instant::now();
    feed.settled(rev, Duration::from_secs(2)).await;
    assert_eq!(t0.elapsed(), Duration::ZERO);
}
