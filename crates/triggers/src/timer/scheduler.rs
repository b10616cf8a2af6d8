//! The timer scheduler: one task that sleeps until the earliest planned firing, moves that
//! timer's plan forward in storage, then fires it.
//!
//! Two rules shape it (ARCHITECTURE.md "Invariants", issue 6):
//! - **No double firing.** The plan is moved with a compare-and-set on the stored next firing
//!   *before* the invocation is submitted: two schedulers on one database (or a racing API
//!   update) cannot both fire the same planned instant. A crash between the two steps loses
//!   that one firing instead of repeating it: timers are at most once per planned instant.
//! - **No backlog after downtime.** A timer whose stored plan is in the past fires once, now,
//!   and its next firing is computed from now, so a restart after an hour of `Rate 1m` fires
//!   once rather than sixty times.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::timer_event;
use crate::schedule::Schedule;
use crate::Target;

/// The longest single sleep: wall-clock steps (NTP, suspend) are noticed within this much.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// How long a timer waits after its storage step failed before it is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// An active timer as the scheduler keeps it.
#[derive(Debug, Clone)]
pub struct Timer {
    pub trigger_id: String,
    pub target: Target,
    pub name: String,
    pub user_event: String,
    pub schedule: Schedule,
    /// The planned next firing, Unix milliseconds, as stored; in the past after downtime.
    pub next_fire_ms: i64,
    /// When the trigger was last changed through the API: a reload that finds the same keeps
    /// the scheduler's own plan, which its firings moved on since storage was read.
    pub updated_ms: i64,
}

/// Where the plan of each timer is kept.
pub trait TimerStore: Send + Sync + 'static {
    /// Moves trigger `trigger_id`'s planned firing from `due_ms` to `next_ms` (`None`: never
    /// again), recording `due_ms` as its last firing, if and only if it is still active and
    /// still planned at `due_ms`. `Ok(false)` means it was not moved: the trigger is gone,
    /// disabled, re-planned, or another scheduler took this firing; it must not fire.
    fn advance(
        &self,
        trigger_id: &str,
        due_ms: i64,
        next_ms: Option<i64>,
    ) -> impl Future<Output = Result<bool, String>> + Send;

    /// The stored plan of `timer` if it is still an active timer (`None`: gone, disabled, or
    /// never again). Read when another scheduler took a firing (another node of a cluster):
    /// this one follows the stored plan, so that it fires the next period should the other
    /// one be gone.
    fn planned(&self, timer: &Timer) -> impl Future<Output = Result<Option<i64>, String>> + Send;
}

/// How a firing becomes an invocation: an async invocation of the target with `event`.
pub trait Fire: Send + Sync + 'static {
    fn fire(
        &self,
        target: &Target,
        trigger_id: &str,
        event: Vec<u8>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Wall-clock time in Unix milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Wall time that advances with tokio's clock from a fixed start: with `tokio::time::pause()`
/// a test runs days of schedule in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start_ms: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start_ms: i64) -> TokioClock {
        TokioClock {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.start_ms + self.start.elapsed().as_millis() as i64
    }
}

/// A function, by project, package and name.
pub type FunctionOf = (String, String, String);

enum Command {
    Upsert(Box<Timer>),
    Remove(String),
    Replace {
        of: Option<FunctionOf>,
        timers: Vec<Timer>,
    },
}

/// Tells a running [`Scheduler`] about changed triggers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TimerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Upsert(t) => write!(f, "Upsert({})", t.trigger_id),
            Command::Remove(id) => write!(f, "Remove({id})"),
            Command::Replace { of, timers } => write!(f, "Replace({of:?}, {})", timers.len()),
        }
    }
}

impl TimerHandle {
    /// Adds an active timer, or replaces the one with its id (status or schedule changed).
    pub fn upsert(&self, timer: Timer) {
        // A send fails only when the scheduler has stopped (fgs is shutting down).
        let _ = self.tx.send(Command::Upsert(Box::new(timer)));
    }

    /// Forgets a timer (disabled or deleted). Unknown ids are ignored.
    pub fn remove(&self, trigger_id: &str) {
        let _ = self.tx.send(Command::Remove(trigger_id.to_string()));
    }

    /// Makes `timers` the active timers of one function (`of`), or of every function (`None`),
    /// as just read from storage.
    pub fn replace(&self, of: Option<FunctionOf>, timers: Vec<Timer>) {
        let _ = self.tx.send(Command::Replace { of, timers });
    }
}

/// A timer and when the scheduler next looks at it: its planned firing, or a retry after a
/// failed storage step (the stored plan, which the compare-and-set needs, stays as it was).
struct Entry {
    timer: Timer,
    wake_ms: i64,
}

/// The scheduler task's state; run it with [`Scheduler::run`].
pub struct Scheduler {
    rx: mpsc::UnboundedReceiver<Command>,
    timers: HashMap<String, Entry>,
    /// `(wake_ms, trigger_id)` of every entry in `timers`.
    queue: BTreeSet<(i64, String)>,
}

impl Scheduler {
    /// A scheduler and the handle that feeds it; nothing runs until [`Scheduler::run`].
    pub fn new() -> (TimerHandle, Scheduler) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            TimerHandle { tx },
            Scheduler {
                rx,
                timers: HashMap::new(),
                queue: BTreeSet::new(),
            },
        )
    }

    fn insert(&mut self, timer: Timer) {
        let wake_ms = timer.next_fire_ms;
        self.insert_waking(timer, wake_ms);
    }

    fn insert_waking(&mut self, timer: Timer, wake_ms: i64) {
        self.remove(&timer.trigger_id);
        self.queue.insert((wake_ms, timer.trigger_id.clone()));
        self.timers
            .insert(timer.trigger_id.clone(), Entry { timer, wake_ms });
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.timers.remove(id) {
            self.queue.remove(&(old.wake_ms, id.to_string()));
        }
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Upsert(t) => self.insert(*t),
            Command::Remove(id) => self.remove(&id),
            Command::Replace { of, timers } => self.replace(of, timers),
        }
    }

    fn replace(&mut self, of: Option<FunctionOf>, timers: Vec<Timer>) {
        let matches = |t: &Timer| {
            of.as_ref().is_none_or(|(p, pk, n)| {
                &t.target.project == p && &t.target.package == pk && &t.target.function == n
            })
        };
        let ids: Vec<String> = self
            .timers
            .values()
            .filter(|e| matches(&e.timer))
            .map(|e| e.timer.trigger_id.clone())
            .collect();
        let mut old = HashMap::new();
        for id in ids {
            if let Some(e) = self.timers.remove(&id) {
                self.queue.remove(&(e.wake_ms, id.clone()));
                old.insert(id, e);
            }
        }
        for t in timers {
            match old.remove(&t.trigger_id) {
                // Not changed through the API since: the plan in memory is the newer one.
                Some(e) if e.timer.updated_ms == t.updated_ms => {
                    self.insert_waking(e.timer, e.wake_ms)
                }
                _ => self.insert(t),
            }
        }
    }

    /// Fires timers until every [`TimerHandle`] is dropped. `initial` are the active timers
    /// loaded at start-up.
    pub async fn run<S: TimerStore, F: Fire, C: Clock>(
        mut self,
        initial: Vec<Timer>,
        store: S,
        fire: Arc<F>,
        clock: C,
    ) {
        for t in initial {
            self.insert(t);
        }
        loop {
            let now = clock.now_ms();
            while let Some((wake, id)) = self.queue.first().cloned() {
                if wake > now {
                    break;
                }
                self.fire_one(&store, &fire, &clock, wake, &id).await;
            }
            let wait = match self.queue.first() {
                Some((due, _)) => {
                    Duration::from_millis((due - clock.now_ms()).max(0) as u64).min(MAX_SLEEP)
                }
                None => MAX_SLEEP,
            };
            tokio::select! {
                cmd = self.rx.recv() => match cmd {
                    Some(cmd) => self.apply(cmd),
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
            }
            // Take every pending change before firing, so a trigger disabled a moment ago
            // is not fired from a stale plan.
            while let Ok(cmd) = self.rx.try_recv() {
                self.apply(cmd);
            }
        }
    }

    async fn fire_one<S: TimerStore, F: Fire, C: Clock>(
        &mut self,
        store: &S,
        fire: &Arc<F>,
        clock: &C,
        wake: i64,
        id: &str,
    ) {
        let Some(timer) = self.timers.get(id).map(|e| e.timer.clone()) else {
            self.queue.remove(&(wake, id.to_string()));
            return;
        };
        // The stored plan is what is compared, whatever `wake` (a retry) was.
        let due = timer.next_fire_ms;
        let now = clock.now_ms();
        let next = timer.schedule.next_after(now.max(due), Some(due));
        match store.advance(id, due, next).await {
            Ok(true) => {
                let lag_ms = now - due;
                tracing::debug!(trigger_id = id, due, lag_ms, "timer fired");
                let event = timer_event(&timer.name, &timer.user_event, due);
                let body = serde_json::to_vec(&event).expect("a JSON value serialises");
                let fire = Arc::clone(fire);
                let target = timer.target.clone();
                let trigger_id = id.to_string();
                // Submitting is quick (the async queue stores the event), but it is still
                // not allowed to delay the next timer.
                tokio::spawn(async move {
                    if let Err(e) = fire.fire(&target, &trigger_id, body).await {
                        tracing::warn!(
                            trigger_id,
                            function = target.function,
                            error = e,
                            "timer firing was not accepted"
                        );
                    }
                });
                self.remove(id);
                if let Some(next) = next {
                    self.insert(Timer {
                        next_fire_ms: next,
                        ..timer
                    });
                }
            }
            // Another scheduler fired it, or it was deleted, disabled or re-planned meanwhile:
            // follow what is stored. Dropping it instead would leave the timer to the other
            // scheduler alone, and to none once that one's node is gone.
            Ok(false) => match store.planned(&timer).await {
                Ok(Some(stored)) => {
                    self.remove(id);
                    self.insert(Timer {
                        next_fire_ms: stored,
                        ..timer
                    });
                }
                Ok(None) => self.remove(id),
                Err(e) => {
                    tracing::warn!(
                        trigger_id = id,
                        error = e,
                        "reading a timer's plan failed; retrying"
                    );
                    self.insert_waking(timer, now + RETRY.as_millis() as i64);
                }
            },
            Err(e) => {
                tracing::warn!(
                    trigger_id = id,
                    error = e,
                    "storing a timer's next firing failed; retrying"
                );
                self.insert_waking(timer, now + RETRY.as_millis() as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests;
