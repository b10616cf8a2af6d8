//! Hands what the node's one NATS consumer receives to every follower in this process, and
//! tracks what they have applied (for [`fgs_store::ChangeFeed::settled`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fgs_store::feed::Change;
use fgs_store::feed::{BoxFuture, Receive, Received};
use fgs_store::Subscription;
use tokio::sync::{broadcast, watch};

/// What the consumer passes on.
#[derive(Debug, Clone)]
pub enum Item {
    Change(Change),
    /// Changes may have been lost (the connection was back, or a message was unreadable);
    /// everything up to this revision is in storage.
    Lost(u64),
}

/// Items a follower may be behind before it must resync.
const CAPACITY: usize = 1024;

pub struct Fanout {
    tx: broadcast::Sender<Item>,
    /// The revision last passed on; held while passing one, so a new follower starts exactly
    /// after what was sent before it subscribed.
    last: Arc<Mutex<u64>>,
    followers: Mutex<Vec<watch::Receiver<u64>>>,
}

struct Receiver {
    rx: broadcast::Receiver<Item>,
    last: Arc<Mutex<u64>>,
}

impl Receive for Receiver {
    fn next(&mut self) -> BoxFuture<'_, Received> {
        Box::pin(async move {
            match self.rx.recv().await {
                Ok(Item::Change(c)) => Received::Change(c),
                Ok(Item::Lost(revision)) => Received::Lost(revision),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Received::Lost(*self.last.lock().expect("never poisoned"))
                }
                Err(broadcast::error::RecvError::Closed) => Received::Closed,
            }
        })
    }
}

impl Fanout {
    /// A fanout whose followers start after `revision`.
    pub fn new(revision: u64) -> Fanout {
        Fanout {
            tx: broadcast::channel(CAPACITY).0,
            last: Arc::new(Mutex::new(revision)),
            followers: Mutex::new(Vec::new()),
        }
    }

    /// The revision last passed on.
    pub fn last(&self) -> u64 {
        *self.last.lock().expect("never poisoned")
    }

    pub fn send(&self, item: Item) {
        let mut last = self.last.lock().expect("never poisoned");
        let revision = match &item {
            Item::Change(c) => c.revision,
            Item::Lost(r) => *r,
        };
        *last = (*last).max(revision);
        // No follower yet is not an error: one that subscribes later starts after this.
        let _ = self.tx.send(item);
    }

    pub fn subscribe(&self) -> Subscription {
        let last = self.last.lock().expect("never poisoned");
        let rx = self.tx.subscribe();
        let (applied, seen) = watch::channel(*last);
        self.followers.lock().expect("never poisoned").push(seen);
        Subscription::new(
            Box::new(Receiver {
                rx,
                last: Arc::clone(&self.last),
            }),
            *last,
            applied,
        )
    }

    /// Waits, at most `limit`, until every live follower has applied `revision`.
    pub fn settled(&self, revision: u64, limit: Duration) -> BoxFuture<'static, ()> {
        let followers: Vec<_> = {
            let mut all = self.followers.lock().expect("never poisoned");
            // A follower that is gone has nothing left to apply.
            all.retain(|f| f.has_changed().is_ok());
            all.clone()
        };
        Box::pin(async move {
            let all = async {
                for mut f in followers {
                    let _ = f.wait_for(|r| *r >= revision).await;
                }
            };
            if tokio::time::timeout(limit, all).await.is_err() {
                tracing::warn!(
                    revision,
                    "a change was not applied in time; the write answers anyway"
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fgs_store::{ChangeKind, FunctionKey, Notice};

    fn change(revision: u64) -> Item {
        Item::Change(Change {
            revision,
            key: FunctionKey {
                project: "p".into(),
                package: "default".into(),
                name: "f".into(),
            },
            kind: ChangeKind::Function,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn followers_start_after_the_last_item_and_a_gap_or_a_loss_resyncs() {
        let fan = Fanout::new(40);
        let mut sub = fan.subscribe();
        fan.send(change(41));
        fan.send(change(43));
        fan.send(Item::Lost(43));
        fan.send(change(44));
        assert!(matches!(sub.recv().await, Some(Notice::Changed(c)) if c.revision == 41));
        assert_eq!(sub.recv().await, Some(Notice::Resync { revision: 43 }));
        assert_eq!(sub.recv().await, Some(Notice::Resync { revision: 43 }));
        assert!(matches!(sub.recv().await, Some(Notice::Changed(c)) if c.revision == 44));
        let mut late = fan.subscribe();
        fan.send(change(45));
        assert!(matches!(late.recv().await, Some(Notice::Changed(c)) if c.revision == 45));
    }

    #[tokio::test(start_paused = true)]
    async fn settled_waits_for_every_follower_and_gives_up_at_the_limit() {
        let fan = Fanout::new(0);
        let a = fan.subscribe();
        let b = fan.subscribe();
        a.applied(1);
        let start = tokio::time::Instant::now();
        fan.settled(1, Duration::from_secs(5)).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(5),
            "b never applied it"
        );
        b.applied(1);
        let start = tokio::time::Instant::now();
        fan.settled(1, Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop((a, b));
        fan.settled(9, Duration::from_secs(5)).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "gone followers are not waited for"
        );
    }
}
