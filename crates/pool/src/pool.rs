//! One pool: the instances of one function version with one configuration.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::shard;

/// A started instance, as the pool sees it.
pub trait Worker: Send + Sync + 'static {
    /// False once the instance must take no more events (crashed, timed out).
    fn is_healthy(&self) -> bool;
    /// Ends the instance gracefully.
    fn stop(&self) -> impl Future<Output = ()> + Send;
}

/// Starts workers of one configuration.
pub trait Launcher: Send + Sync + 'static {
    type Worker: Worker;
    type Error: Send + 'static;
    fn launch(&self) -> impl Future<Output = Result<Self::Worker, Self::Error>> + Send;
}

/// Instance limits of a function (SPEC.md 2): they change in place, without restarting instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// -1 unlimited, 0 disabled.
    pub max_instances: i32,
    /// Instances kept started and exempt from idle reclaim.
    pub reserved: u32,
    /// Events one instance takes at once.
    pub concurrency: u32,
    /// Callers that may wait for a slot when every allowed instance is busy.
    pub queue_limit: usize,
    pub idle_timeout: Duration,
}

#[derive(Debug)]
pub enum AcquireError<E> {
    /// `max_instance_num` is 0.
    Disabled,
    /// Every allowed instance is busy and the queue is full.
    Throttled,
    /// A cold start failed.
    Start(E),
    /// The pool was replaced by one of a newer configuration: acquire from that one.
    Retired,
}

struct Slot<W> {
    id: u64,
    worker: Arc<W>,
    in_flight: u32,
    last_used: Instant,
    /// The shard the instance was started on, where its Runtime API is served.
    shard: usize,
}

struct State<W> {
    slots: Vec<Slot<W>>,
    starting: usize,
    next_id: u64,
    limits: Limits,
}

/// The instances of one function version.
pub struct Pool<L: Launcher> {
    launcher: L,
    state: Mutex<State<L::Worker>>,
    freed: Notify,
    waiting: AtomicUsize,
    retired: AtomicBool,
}

/// A held slot of one instance; the slot is freed when the lease is dropped.
pub struct Lease<L: Launcher> {
    pool: Arc<Pool<L>>,
    slot: u64,
    worker: Arc<L::Worker>,
    /// Whether this lease started its instance.
    pub cold: bool,
}

impl<L: Launcher> Lease<L> {
    pub fn worker(&self) -> &L::Worker {
        &self.worker
    }
}

impl<L: Launcher> Drop for Lease<L> {
    fn drop(&mut self) {
        self.pool.release(self.slot);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub instances: usize,
    pub busy: usize,
    pub starting: usize,
    pub waiting: usize,
}

fn spawn_stop<W: Worker>(w: Arc<W>) {
    tokio::spawn(async move { w.stop().await });
}

impl<L: Launcher> Pool<L> {
    pub fn new(launcher: L, limits: Limits) -> Arc<Pool<L>> {
        Arc::new(Pool {
            launcher,
            state: Mutex::new(State {
                slots: Vec::new(),
                starting: 0,
                next_id: 0,
                limits,
            }),
            freed: Notify::new(),
            waiting: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        })
    }

    pub fn launcher(&self) -> &L {
        &self.launcher
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<L::Worker>> {
        self.state.lock().expect("pool lock is never poisoned")
    }

    pub fn limits(&self) -> Limits {
        self.lock().limits
    }

    /// Changes the limits in place; waiters re-check them.
    pub fn set_limits(self: &Arc<Self>, limits: Limits) {
        self.lock().limits = limits;
        self.freed.notify_waiters();
        self.ensure_reserved();
    }

    pub fn stats(&self) -> PoolStats {
        let st = self.lock();
        PoolStats {
            instances: st.slots.len(),
            busy: st.slots.iter().filter(|s| s.in_flight > 0).count(),
            starting: st.starting,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// Takes a slot of a warm instance, starts a new instance when the limits allow, or waits in
    /// the bounded queue for a slot to free up.
    pub async fn acquire(self: &Arc<Self>) -> Result<Lease<L>, AcquireError<L::Error>> {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.retired.load(Ordering::Acquire) {
                return Err(AcquireError::Retired);
            }
            let start_cold = {
                let mut st = self.lock();
                let mut stale = Vec::new();
                st.slots.retain(|s| {
                    let keep = s.in_flight > 0 || s.worker.is_healthy();
                    if !keep {
                        stale.push(Arc::clone(&s.worker));
                    }
                    keep
                });
                stale.into_iter().for_each(spawn_stop);
                let limits = st.limits;
                if limits.max_instances == 0 {
                    return Err(AcquireError::Disabled);
                }
                let conc = limits.concurrency.max(1);
                // The busiest instance with room first: keeps the others idle, so that they
                // can be reclaimed. Among equally busy ones, one of the caller's shard: the
                // invocation then stays on this thread (shard.rs).
                let here = shard::current();
                if let Some(slot) = st
                    .slots
                    .iter_mut()
                    .filter(|s| s.in_flight < conc && s.worker.is_healthy())
                    .max_by_key(|s| (s.in_flight, s.shard == here))
                {
                    slot.in_flight += 1;
                    return Ok(Lease {
                        pool: Arc::clone(self),
                        slot: slot.id,
                        worker: Arc::clone(&slot.worker),
                        cold: false,
                    });
                }
                let total = st.slots.len() + st.starting;
                if limits.max_instances < 0 || total < limits.max_instances as usize {
                    st.starting += 1;
                    true
                } else if self.waiting.load(Ordering::Acquire) >= limits.queue_limit {
                    return Err(AcquireError::Throttled);
                } else {
                    self.waiting.fetch_add(1, Ordering::AcqRel);
                    false
                }
            };
            if start_cold {
                return self.cold_start().await;
            }
            notified.await;
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn cold_start(self: &Arc<Self>) -> Result<Lease<L>, AcquireError<L::Error>> {
        let launched = self.launcher.launch().await;
        let mut st = self.lock();
        st.starting -= 1;
        match launched {
            Ok(w) => {
                let worker = Arc::new(w);
                let id = st.next_id;
                st.next_id += 1;
                st.slots.push(Slot {
                    id,
                    worker: Arc::clone(&worker),
                    in_flight: 1,
                    last_used: Instant::now(),
                    shard: shard::current(),
                });
                Ok(Lease {
                    pool: Arc::clone(self),
                    slot: id,
                    worker,
                    cold: true,
                })
            }
            Err(e) => {
                drop(st);
                // The place this start held is free again.
                self.freed.notify_one();
                Err(AcquireError::Start(e))
            }
        }
    }

    fn release(&self, slot_id: u64) {
        let mut st = self.lock();
        let retired = self.retired.load(Ordering::Acquire);
        if let Some(i) = st.slots.iter().position(|s| s.id == slot_id) {
            let slot = &mut st.slots[i];
            slot.in_flight -= 1;
            slot.last_used = Instant::now();
            if slot.in_flight == 0 && (retired || !slot.worker.is_healthy()) {
                let s = st.slots.swap_remove(i);
                spawn_stop(s.worker);
            }
        }
        drop(st);
        self.freed.notify_one();
    }

    /// Stops idle instances past the idle timeout, keeping the reserved ones, and returns how
    /// many were stopped.
    pub fn reclaim_idle(&self, now: Instant) -> usize {
        let mut st = self.lock();
        let limits = st.limits;
        let mut keep_idle = limits.reserved as usize;
        let mut stopped = Vec::new();
        // Most recently used first, so the reserved instances kept are the warmest.
        st.slots.sort_by_key(|s| std::cmp::Reverse(s.last_used));
        st.slots.retain(|s| {
            if s.in_flight > 0 {
                return true;
            }
            if !s.worker.is_healthy() {
                stopped.push(Arc::clone(&s.worker));
                return false;
            }
            if keep_idle > 0 {
                keep_idle -= 1;
                return true;
            }
            if now.saturating_duration_since(s.last_used) >= limits.idle_timeout {
                stopped.push(Arc::clone(&s.worker));
                return false;
            }
            true
        });
        drop(st);
        let n = stopped.len();
        stopped.into_iter().for_each(spawn_stop);
        n
    }

    /// Starts instances in the background until the reserved count is reached.
    pub fn ensure_reserved(self: &Arc<Self>) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let missing = {
            let mut st = self.lock();
            let have = st.slots.iter().filter(|s| s.worker.is_healthy()).count() + st.starting;
            let want = st.limits.reserved as usize;
            let room = if st.limits.max_instances < 0 {
                usize::MAX
            } else {
                (st.limits.max_instances as usize).saturating_sub(st.slots.len() + st.starting)
            };
            let n = want.saturating_sub(have).min(room);
            st.starting += n;
            n
        };
        for _ in 0..missing {
            let pool = Arc::clone(self);
            // Spread over the shards, as the connections that will use them are.
            shard::spawn(async move {
                // A reserved start is a cold start whose lease is dropped at once: the
                // instance stays, idle and warm.
                let _ = pool.cold_start().await;
            });
        }
    }

    /// Whether the pool was retired: it takes no more events.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Retires the pool: idle instances stop now, busy ones when their events finish.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let mut st = self.lock();
        let mut stopped = Vec::new();
        st.slots.retain(|s| {
            if s.in_flight == 0 {
                stopped.push(Arc::clone(&s.worker));
                false
            } else {
                true
            }
        });
        drop(st);
        stopped.into_iter().for_each(spawn_stop);
        self.freed.notify_waiters();
    }

    /// Stops every instance and waits for them (fgs shutdown).
    pub async fn shutdown(&self) {
        self.retired.store(true, Ordering::Release);
        let workers: Vec<_> = self.lock().slots.drain(..).map(|s| s.worker).collect();
        let mut stops = tokio::task::JoinSet::new();
        for w in workers {
            stops.spawn(async move { w.stop().await });
        }
        while stops.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests;
