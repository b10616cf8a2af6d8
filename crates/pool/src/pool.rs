//! One pool: the instances of one function version with one configuration.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::gate::{Admission, Gate, Ticket, GATE_RETRY};
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
    /// The shared limit is reached and the caller asked not to wait for it
    /// ([`Pool::acquire_or_full`]): where the instances are, as the gate named them.
    Full(Vec<String>),
    /// A cold start failed.
    Start(E),
    /// The pool was replaced by one of a newer configuration: acquire from that one.
    Retired,
    /// The shared limit's gate gave no place and could not say whether one is free (why).
    Refused(String),
}

struct Slot<W> {
    id: u64,
    worker: Arc<W>,
    in_flight: u32,
    last_used: Instant,
    /// The shard the instance was started on, where its Runtime API is served.
    shard: usize,
    /// Its place in the shared limit, given back after it stopped.
    ticket: Option<Ticket>,
    /// It takes no more events and stops once idle: it got no place when the pool's shared
    /// limit came ([`Pool::adopt_untracked`]), or it is past a lowered limit (lower.rs).
    doomed: bool,
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
    /// Counts the instances of every node against the limit; `None` on a single node.
    gate: Option<Arc<dyn Gate>>,
    /// Grows with every fence: a start admitted before one must not join the pool after it.
    fences: AtomicU64,
    /// The last time the shared limit was found full, and where the instances were: for
    /// [`FULL_HINT`] callers that can be served elsewhere go there without asking again.
    full_hint: std::sync::Mutex<Option<(Instant, Vec<String>)>>,
    /// Whether instances without a place are claiming theirs now (adopt.rs).
    adopting: AtomicBool,
}

/// How long a full shared limit is taken as still full by callers that can be served
/// elsewhere: they then cost no store round trip each.
pub const FULL_HINT: Duration = Duration::from_secs(1);

/// How a cold start ended.
enum Cold<L: Launcher> {
    Started(Lease<L>),
    /// The shared limit is reached: wait for a place, or go where the instances are.
    Full(Vec<String>),
    Failed(AcquireError<L::Error>),
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

/// Stops an instance in the background; its place in the shared limit is given back after.
fn spawn_stop<W: Worker>(w: Arc<W>, ticket: Option<Ticket>) {
    tokio::spawn(async move {
        w.stop().await;
        drop(ticket);
    });
}

/// Takes the slots `keep` refuses out of `slots`, with their tickets.
fn take_slots<W>(
    slots: &mut Vec<Slot<W>>,
    mut keep: impl FnMut(&Slot<W>) -> bool,
) -> Vec<(Arc<W>, Option<Ticket>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        if keep(&slots[i]) {
            i += 1;
        } else {
            let s = slots.remove(i);
            out.push((s.worker, s.ticket));
        }
    }
    out
}

/// One pass over the slots for [`Pool::acquire_as`]: stops the idle instances that are no
/// longer healthy and returns the index of the one to use, if any has room (fewer than `conc`
/// events). The busiest instance with room first: keeps the others idle, so that they can be
/// reclaimed. Among equally busy ones, one of shard `here`: the invocation then stays on the
/// caller's thread (shard.rs); among equals, the last. Each instance's health is read once.
fn pick<W: Worker>(slots: &mut Vec<Slot<W>>, conc: u32, here: usize) -> Option<usize> {
    let mut best: Option<(usize, (u32, bool))> = None;
    let mut i = 0;
    while i < slots.len() {
        let s = &slots[i];
        let room = s.in_flight < conc && !s.doomed;
        let healthy = (s.in_flight == 0 || room) && s.worker.is_healthy();
        if s.in_flight == 0 && !healthy {
            // Slots before `i` keep their places: `best` stays valid.
            let s = slots.remove(i);
            spawn_stop(s.worker, s.ticket);
            continue;
        }
        let key = (s.in_flight, s.shard == here);
        if room && healthy && best.is_none_or(|(_, k)| key >= k) {
            best = Some((i, key));
        }
        i += 1;
    }
    best.map(|(i, _)| i)
}

impl<L: Launcher> Pool<L> {
    pub fn new(launcher: L, limits: Limits) -> Arc<Pool<L>> {
        Pool::with_gate(launcher, limits, None)
    }

    /// A pool whose limited instances (`max_instances` > 0) also count against `gate`'s
    /// shared limit: each cold start first takes a place there.
    pub fn with_gate(launcher: L, limits: Limits, gate: Option<Arc<dyn Gate>>) -> Arc<Pool<L>> {
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
            gate,
            fences: AtomicU64::new(0),
            full_hint: std::sync::Mutex::new(None),
            adopting: AtomicBool::new(false),
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

    /// Changes the limits in place; waiters re-check them. Instances started while the pool
    /// had no shared limit claim their places once it has one ([`Pool::adopt_untracked`]);
    /// instances past a lowered limit stop once idle (lower.rs).
    pub fn set_limits(self: &Arc<Self>, limits: Limits) {
        let before = std::mem::replace(&mut self.lock().limits, limits).max_instances;
        self.freed.notify_waiters();
        self.adopt_untracked();
        self.hold_new_limit(before);
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
        self.acquire_as(true).await
    }

    /// As [`Pool::acquire`], but when a start is refused because the shared limit is reached
    /// (the instances run on other nodes), answers [`AcquireError::Full`] at once rather than
    /// waiting: for callers that can be served elsewhere (an async event another node takes).
    pub async fn acquire_or_full(self: &Arc<Self>) -> Result<Lease<L>, AcquireError<L::Error>> {
        self.acquire_as(false).await
    }

    async fn acquire_as(
        self: &Arc<Self>,
        wait_when_full: bool,
    ) -> Result<Lease<L>, AcquireError<L::Error>> {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.retired.load(Ordering::Acquire) {
                return Err(AcquireError::Retired);
            }
            let start_cold = {
                let mut st = self.lock();
                let limits = st.limits;
                let chosen = pick(&mut st.slots, limits.concurrency.max(1), shard::current());
                if limits.max_instances == 0 {
                    return Err(AcquireError::Disabled);
                }
                if let Some(slot) = chosen.map(|i| &mut st.slots[i]) {
                    slot.in_flight += 1;
                    return Ok(Lease {
                        pool: Arc::clone(self),
                        slot: slot.id,
                        worker: Arc::clone(&slot.worker),
                        cold: false,
                    });
                }
                let total = st.slots.len() + st.starting;
                if !wait_when_full {
                    if let Some(elsewhere) = self.fresh_full_hint() {
                        // Pass the turn on: this caller may have been woken for it.
                        self.freed.notify_one();
                        return Err(AcquireError::Full(elsewhere));
                    }
                }
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
                // Boxed: a cold start's future (the launch, the sandbox) is several KB, and
                // inline it would make every warm call's future as large, copied whole each time
                // a caller's future moves (docs/architecture.md "What a warm call costs").
                match Box::pin(self.cold_start()).await {
                    Cold::Started(lease) => return Ok(lease),
                    Cold::Failed(e) => return Err(e),
                    Cold::Full(elsewhere) if !wait_when_full => {
                        // Callers queued behind this start (it counted against the limit)
                        // try for themselves now.
                        self.freed.notify_one();
                        return Err(AcquireError::Full(elsewhere));
                    }
                    Cold::Full(_) => {}
                }
                // The shared limit is reached: wait as a queued caller does, for an instance
                // here to free up or, asking again now and then, a place elsewhere.
                let queue_limit = self.lock().limits.queue_limit;
                if self.waiting.load(Ordering::Acquire) >= queue_limit {
                    return Err(AcquireError::Throttled);
                }
                self.waiting.fetch_add(1, Ordering::AcqRel);
                let _ = tokio::time::timeout(GATE_RETRY, notified).await;
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            notified.await;
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn fresh_full_hint(&self) -> Option<Vec<String>> {
        let hint = self.full_hint.lock().expect("hint lock is never poisoned");
        hint.as_ref()
            .filter(|(at, _)| at.elapsed() < FULL_HINT)
            .map(|(_, w)| w.clone())
    }

    /// Takes a place in the shared limit when there is one to take; `Err` ends the start.
    async fn admit(&self) -> Result<Option<Ticket>, Cold<L>> {
        let Some(gate) = &self.gate else {
            return Ok(None);
        };
        let max = self.lock().limits.max_instances;
        if max <= 0 {
            return Ok(None);
        }
        match gate.admit(max as u32).await {
            Admission::Granted(t) => {
                *self.full_hint.lock().expect("hint lock is never poisoned") = None;
                Ok(Some(t))
            }
            Admission::Full(elsewhere) => {
                *self.full_hint.lock().expect("hint lock is never poisoned") =
                    Some((Instant::now(), elsewhere.clone()));
                Err(Cold::Full(elsewhere))
            }
            Admission::Refused(why) => Err(Cold::Failed(AcquireError::Refused(why))),
        }
    }

    /// Starts an instance for a caller; `starting` was counted for it.
    async fn cold_start(self: &Arc<Self>) -> Cold<L> {
        let fences = self.fences.load(Ordering::Acquire);
        let ticket = match self.admit().await {
            Ok(t) => t,
            Err(end) => {
                self.lock().starting -= 1;
                // A refused start frees its place for a waiter; a full limit has none to give
                // (waking a waiter would only have it find the limit full again, at once).
                if !matches!(end, Cold::Full(_)) {
                    self.freed.notify_one();
                }
                return end;
            }
        };
        let launched = self.launcher.launch().await;
        let mut st = self.lock();
        st.starting -= 1;
        if self.fences.load(Ordering::Acquire) != fences {
            // Fenced meanwhile: the place may be another node's by now.
            drop(st);
            if let Ok(w) = launched {
                spawn_stop(Arc::new(w), ticket);
            }
            return Cold::Failed(AcquireError::Refused(
                "this node fenced itself while the instance started".into(),
            ));
        }
        match launched {
            Ok(w) => {
                let worker = Arc::new(w);
                let id = st.next_id;
                st.next_id += 1;
                // Started without a place while the shared limit came: it claims one now.
                let untracked = ticket.is_none() && self.needs_places(&st);
                st.slots.push(Slot {
                    id,
                    worker: Arc::clone(&worker),
                    in_flight: 1,
                    last_used: Instant::now(),
                    shard: shard::current(),
                    ticket,
                    doomed: false,
                });
                drop(st);
                if untracked {
                    self.adopt_untracked();
                }
                if self.gate.is_none() {
                    // Admitted under a limit lowered since: the instances past it go.
                    self.trim_to_limit();
                }
                Cold::Started(Lease {
                    pool: Arc::clone(self),
                    slot: id,
                    worker,
                    cold: true,
                })
            }
            Err(e) => {
                drop(st);
                drop(ticket);
                // The place this start held is free again.
                self.freed.notify_one();
                Cold::Failed(AcquireError::Start(e))
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
            if slot.in_flight == 0 && (retired || slot.doomed || !slot.worker.is_healthy()) {
                let s = st.slots.swap_remove(i);
                spawn_stop(s.worker, s.ticket);
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
        // Most recently used first, so the reserved instances kept are the warmest.
        st.slots.sort_by_key(|s| std::cmp::Reverse(s.last_used));
        let stopped = take_slots(&mut st.slots, |s| {
            if s.in_flight > 0 {
                return true;
            }
            if s.doomed || !s.worker.is_healthy() {
                return false;
            }
            if keep_idle > 0 {
                keep_idle -= 1;
                return true;
            }
            now.saturating_duration_since(s.last_used) < limits.idle_timeout
        });
        drop(st);
        let n = stopped.len();
        stopped.into_iter().for_each(|(w, t)| spawn_stop(w, t));
        n
    }

    /// Starts instances in the background until the reserved count is reached.
    pub fn ensure_reserved(self: &Arc<Self>) {
        if self.retired.load(Ordering::Acquire) {
            return;
        }
        let missing = {
            let mut st = self.lock();
            let have = st
                .slots
                .iter()
                .filter(|s| !s.doomed && s.worker.is_healthy())
                .count()
                + st.starting;
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
                // instance stays, idle and warm. Refused by a full shared limit, it is tried
                // again at the next idle sweep.
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
        let stopped = take_slots(&mut self.lock().slots, |s| s.in_flight > 0);
        stopped.into_iter().for_each(|(w, t)| spawn_stop(w, t));
        self.freed.notify_waiters();
    }

    /// Ends every instance holding a place in the shared limit, busy or not, and the starts
    /// under way: this node can no longer keep its places (docs/cluster.md, fencing). A pool
    /// without a gate keeps its instances. Callers go on as if the instances had crashed;
    /// new starts ask the gate again.
    pub fn fence(&self) {
        if self.gate.is_none() {
            return;
        }
        self.fences.fetch_add(1, Ordering::AcqRel);
        let ended = take_slots(&mut self.lock().slots, |s| s.ticket.is_none());
        if !ended.is_empty() {
            tracing::warn!(instances = ended.len(), "fenced: ending instances");
        }
        ended.into_iter().for_each(|(w, t)| spawn_stop(w, t));
        self.freed.notify_waiters();
    }

    /// Stops every instance and waits for them (fgs shutdown).
    pub async fn shutdown(&self) {
        self.retired.store(true, Ordering::Release);
        let workers: Vec<_> = self
            .lock()
            .slots
            .drain(..)
            .map(|s| (s.worker, s.ticket))
            .collect();
        let mut stops = tokio::task::JoinSet::new();
        for (w, t) in workers {
            stops.spawn(async move {
                w.stop().await;
                drop(t);
            });
        }
        while stops.join_next().await.is_some() {}
    }
}

mod adopt;
mod lower;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod gate_tests;

#[cfg(test)]
mod lower_tests;
