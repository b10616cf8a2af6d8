//! The counters of one function version.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fgs_core::stats::Minute;
pub use fgs_core::stats::SeriesKey;

use crate::history::History;
use crate::outcome::Outcome;

/// Upper bounds (seconds) of the duration and cold-start histogram buckets: from a warm
/// in-process call (~1 ms) to the longest sync timeout worth charting; `+Inf` is implied.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A Prometheus histogram: cumulative counts are made at encode time from per-bucket counts.
#[derive(Default)]
pub struct Histogram {
    /// One per bucket of [`DURATION_BUCKETS`], plus the last for `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (the last is `+Inf`, the total count) and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, f64) {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (cumulative, sum)
    }
}

/// Everything counted about one function version.
pub struct Series {
    pub key: SeriesKey,
    success: AtomicU64,
    throttled: AtomicU64,
    system_errors: AtomicU64,
    /// Function errors by code; they are rare next to successes, so a map behind a lock.
    errors: Mutex<BTreeMap<u32, u64>>,
    pub duration: Histogram,
    pub cold_start: Histogram,
    history: Mutex<History>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Series {
    pub(crate) fn new(key: SeriesKey) -> Series {
        Series {
            key,
            success: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            system_errors: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            duration: Histogram::default(),
            cold_start: Histogram::default(),
            history: Mutex::new(History::default()),
        }
    }

    /// Records one invocation that ran: its outcome, how long the function ran, how long its
    /// cold start took (if it had one) and what it is billed (ms x MB, for GB-s).
    pub fn ran(
        &self,
        outcome: Outcome,
        duration: Duration,
        cold_start: Option<Duration>,
        billed_ms: u64,
        memory_mb: u32,
    ) {
        self.count(outcome);
        self.duration.observe(duration);
        if let Some(c) = cold_start {
            self.cold_start.observe(c);
        }
        self.history
            .lock()
            .expect("history lock is never poisoned")
            .record(
                now_ms(),
                outcome,
                duration,
                billed_ms * u64::from(memory_mb),
            );
    }

    /// Records an invocation refused or failed before the function ran.
    pub fn refused(&self, outcome: Outcome) {
        self.count(outcome);
        self.history
            .lock()
            .expect("history lock is never poisoned")
            .record_refusal(now_ms(), outcome);
    }

    fn count(&self, outcome: Outcome) {
        match outcome {
            Outcome::Success => self.success.fetch_add(1, Ordering::Relaxed),
            Outcome::Throttled => self.throttled.fetch_add(1, Ordering::Relaxed),
            Outcome::SystemError => self.system_errors.fetch_add(1, Ordering::Relaxed),
            Outcome::Error(code) => {
                *self
                    .errors
                    .lock()
                    .expect("error map lock is never poisoned")
                    .entry(code)
                    .or_insert(0) += 1;
                0
            }
        };
    }

    /// `(outcome, error_code, count)` of every outcome seen, for the encoder.
    pub fn outcomes(&self) -> Vec<(&'static str, Option<u32>, u64)> {
        let mut v = vec![("success", None, self.success.load(Ordering::Relaxed))];
        for (code, n) in self
            .errors
            .lock()
            .expect("error map lock is never poisoned")
            .iter()
        {
            v.push(("error", Some(*code), *n));
        }
        v.push(("throttled", None, self.throttled.load(Ordering::Relaxed)));
        v.push((
            "system_error",
            None,
            self.system_errors.load(Ordering::Relaxed),
        ));
        v
    }

    /// `(month, invocations, MB-ms)` of the UTC months in `[from, to]` (see [`crate::month_of`]).
    pub fn months(&self, from: i64, to: i64) -> Vec<(i64, u64, u64)> {
        self.history
            .lock()
            .expect("history lock is never poisoned")
            .months(from, to)
    }

    /// The minutes with events in `[from_ms, to_ms)`, oldest first.
    pub fn minutes(&self, from_ms: i64, to_ms: i64) -> Vec<Minute> {
        self.history
            .lock()
            .expect("history lock is never poisoned")
            .range(from_ms, to_ms)
    }
}
