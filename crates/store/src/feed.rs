//! The change feed: after a write that changes what an invocation resolves to commits, one
//! [`Change`] says which function changed and how; whatever keeps state derived from storage (the
//! invoker's resolution cache and pools, the APIG route table, the timer scheduler) follows the
//! feed instead of being called by the writer.
//!
//! Every change carries a revision that grows by one per change. A follower that lost changes
//! (a lagging in-process receiver; in a cluster, a node that lost its connection to the message
//! bus) cannot know what it missed, so it is told [`Notice::Resync`] and reloads everything from
//! storage: one path for every kind of loss. Changes are published after their commit, so a
//! resync that reads storage after the loss sees at least what the lost changes said.
//!
//! It lives beside the store because only the store's writers know when a commit happened; a
//! feed that crosses nodes implements [`ChangeFeed`] too.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

/// A boxed future, so that [`ChangeFeed`] can be a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A function by its identity: project, package, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionKey {
    pub project: String,
    pub package: String,
    pub name: String,
}

/// What changed about a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Created, or its configuration, code, dependencies, limits or reserved instances changed.
    Function,
    /// Deleted, with everything that was its own (versions, aliases, triggers).
    Deleted,
    /// A version was published or deleted (a deleted version's triggers go with it).
    Version,
    /// An alias was created, changed or deleted (a deleted alias's triggers go with it).
    Alias,
    /// A trigger was created, changed or deleted.
    Trigger,
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// One more than the change published before it on this feed.
    pub revision: u64,
    pub key: FunctionKey,
    pub kind: ChangeKind,
}

/// What a follower is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Apply this change.
    Changed(Change),
    /// Changes were lost: reload everything from storage. Everything up to `revision` is in
    /// storage by now.
    Resync { revision: u64 },
}

/// Carries changes from the writers to the followers.
pub trait ChangeFeed: Send + Sync + 'static {
    /// Publishes a change that has committed; returns its revision.
    fn publish(&self, key: FunctionKey, kind: ChangeKind) -> BoxFuture<'_, u64>;

    /// A follower that sees every change published from now on (or a resync).
    fn subscribe(&self) -> Subscription;

    /// Waits, at most `limit`, until every follower in this process has applied `revision`:
    /// the write that published it answers only once this process serves what it wrote.
    fn settled(&self, revision: u64, limit: Duration) -> BoxFuture<'_, ()>;

    /// Why a change could not be carried to every follower right now (in a cluster: this
    /// node has lost its connection to the message bus), or `None` when it can. The
    /// [`Catalog`](crate::Catalog) refuses writes meanwhile, so that a write that answers is
    /// one the other nodes follow.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// What a feed hands a [`Subscription`].
#[derive(Debug)]
pub enum Received {
    Change(Change),
    /// Some changes were lost; the feed's revision at the time of the loss.
    Lost(u64),
    /// The feed is gone (fgs is stopping).
    Closed,
}

/// The receiving end of one feed implementation.
pub trait Receive: Send + 'static {
    fn next(&mut self) -> BoxFuture<'_, Received>;
}

/// One follower's view of a feed: changes in revision order, or a resync when any were lost.
pub struct Subscription {
    rx: Box<dyn Receive>,
    /// The revision last told to the follower; a change that does not follow it was lost.
    last: u64,
    applied: watch::Sender<u64>,
}

impl Subscription {
    /// A subscription that starts after revision `from`; `applied` is how the feed learns what
    /// the follower has done.
    pub fn new(rx: Box<dyn Receive>, from: u64, applied: watch::Sender<u64>) -> Subscription {
        Subscription {
            rx,
            last: from,
            applied,
        }
    }

    /// The next notice, or `None` once the feed is closed.
    pub async fn recv(&mut self) -> Option<Notice> {
        loop {
            match self.rx.next().await {
                Received::Closed => return None,
                Received::Lost(revision) => {
                    self.last = self.last.max(revision);
                    return Some(Notice::Resync {
                        revision: self.last,
                    });
                }
                // Already covered by a resync that read storage after it.
                Received::Change(c) if c.revision <= self.last => continue,
                Received::Change(c) if c.revision == self.last + 1 => {
                    self.last = c.revision;
                    return Some(Notice::Changed(c));
                }
                Received::Change(c) => {
                    self.last = c.revision;
                    return Some(Notice::Resync {
                        revision: c.revision,
                    });
                }
            }
        }
    }

    /// Says that the follower has applied everything up to `revision`.
    pub fn applied(&self, revision: u64) {
        self.applied.send_if_modified(|r| {
            let newer = revision > *r;
            if newer {
                *r = revision;
            }
            newer
        });
    }
}

/// The feed of one process: a tokio broadcast channel. A follower that falls more than its
/// capacity behind is told to resync.
pub struct LocalFeed {
    tx: broadcast::Sender<Change>,
    /// Held while a revision is given and sent, so that changes are sent in revision order.
    revision: Mutex<u64>,
    /// The revision last published, readable without the lock (a lagging receiver's resync
    /// starts from it).
    published: Arc<AtomicU64>,
    followers: Mutex<Vec<watch::Receiver<u64>>>,
}

impl LocalFeed {
    /// Changes a follower may be behind before it must resync.
    pub const CAPACITY: usize = 1024;

    pub fn new() -> Arc<LocalFeed> {
        LocalFeed::with_capacity(Self::CAPACITY)
    }

    pub fn with_capacity(capacity: usize) -> Arc<LocalFeed> {
        Arc::new(LocalFeed {
            tx: broadcast::channel(capacity).0,
            revision: Mutex::new(0),
            published: Arc::new(AtomicU64::new(0)),
            followers: Mutex::new(Vec::new()),
        })
    }
}

struct LocalReceiver {
    rx: broadcast::Receiver<Change>,
    published: Arc<AtomicU64>,
}

impl Receive for LocalReceiver {
    fn next(&mut self) -> BoxFuture<'_, Received> {
        Box::pin(async move {
            match self.rx.recv().await {
                Ok(c) => Received::Change(c),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Received::Lost(self.published.load(Ordering::Acquire))
                }
                Err(broadcast::error::RecvError::Closed) => Received::Closed,
            }
        })
    }
}

impl ChangeFeed for LocalFeed {
    fn publish(&self, key: FunctionKey, kind: ChangeKind) -> BoxFuture<'_, u64> {
        let mut rev = self
            .revision
            .lock()
            .expect("revision lock is never poisoned");
        *rev += 1;
        let revision = *rev;
        // No follower yet is not an error: start-up publishes nothing they would miss.
        let _ = self.tx.send(Change {
            revision,
            key,
            kind,
        });
        self.published.store(revision, Ordering::Release);
        drop(rev);
        Box::pin(async move { revision })
    }

    fn subscribe(&self) -> Subscription {
        // Under the revision lock: nothing is published between the receiver and its start.
        let rev = self
            .revision
            .lock()
            .expect("revision lock is never poisoned");
        let rx = self.tx.subscribe();
        let (applied, seen) = watch::channel(*rev);
        self.followers
            .lock()
            .expect("follower lock is never poisoned")
            .push(seen);
        Subscription::new(
            Box::new(LocalReceiver {
                rx,
                published: Arc::clone(&self.published),
            }),
            *rev,
            applied,
        )
    }

    fn settled(&self, revision: u64, limit: Duration) -> BoxFuture<'_, ()> {
        let followers: Vec<_> = {
            let mut all = self
                .followers
                .lock()
                .expect("follower lock is never poisoned");
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
mod tests;
