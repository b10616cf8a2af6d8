//! Per-minute buckets of the last 24 hours, per function version, for the statistics endpoints
//! (SPEC.md 2). Only minutes with events are kept, so an idle function costs nothing and a busy
//! one at most [`MINUTES_KEPT`] buckets.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use fgs_core::stats::Minute;

use crate::outcome::Outcome;

/// 24 hours of minutes.
pub const MINUTES_KEPT: i64 = 24 * 60;

#[derive(Default)]
pub(crate) struct History {
    minutes: VecDeque<Minute>,
    /// Invocations and billed MB-ms per UTC month (`year * 12 + month - 1`), for the monthly
    /// report; one entry a month, so unbounded only in theory.
    months: BTreeMap<i64, (u64, u64)>,
}

/// The UTC month (`year * 12 + month - 1`) of a time in ms (Hinnant's civil-from-days).
pub fn month_of(ms: i64) -> i64 {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    y * 12 + m - 1
}

impl History {
    fn bucket(&mut self, now_ms: i64) -> &mut Minute {
        let start = now_ms - now_ms.rem_euclid(60_000);
        let horizon = start - MINUTES_KEPT * 60_000;
        while self.minutes.front().is_some_and(|m| m.start_ms <= horizon) {
            self.minutes.pop_front();
        }
        // Clocks step backwards now and then: such an event counts in the newest minute.
        if self.minutes.back().is_none_or(|m| m.start_ms < start) {
            self.minutes.push_back(Minute {
                start_ms: start,
                ..Minute::default()
            });
        }
        self.minutes.back_mut().expect("a minute was just pushed")
    }

    pub(crate) fn record(&mut self, now_ms: i64, outcome: Outcome, d: Duration, mb_ms: u64) {
        let month = self.months.entry(month_of(now_ms)).or_insert((0, 0));
        month.0 += 1;
        month.1 += mb_ms;
        let m = self.bucket(now_ms);
        let ms = d.as_secs_f64() * 1000.0;
        m.duration_min_ms = if m.count == 0 {
            ms
        } else {
            m.duration_min_ms.min(ms)
        };
        m.duration_max_ms = m.duration_max_ms.max(ms);
        m.count += 1;
        m.duration_sum_ms += ms;
        m.mb_ms += mb_ms;
        match outcome {
            Outcome::Error(_) => m.function_errors += 1,
            Outcome::SystemError => m.system_errors += 1,
            Outcome::Throttled => m.rejected += 1,
            Outcome::Success => {}
        }
    }

    pub(crate) fn record_refusal(&mut self, now_ms: i64, outcome: Outcome) {
        let m = self.bucket(now_ms);
        match outcome {
            Outcome::SystemError => m.system_errors += 1,
            // A failed cold start (initializer, extension) is an invocation that failed.
            Outcome::Error(_) => {
                m.count += 1;
                m.function_errors += 1;
            }
            Outcome::Throttled | Outcome::Success => m.rejected += 1,
        }
    }

    pub(crate) fn range(&self, from_ms: i64, to_ms: i64) -> Vec<Minute> {
        self.minutes
            .iter()
            .filter(|m| m.start_ms >= from_ms && m.start_ms < to_ms)
            .copied()
            .collect()
    }
}

impl History {
    /// `(month, invocations, MB-ms)` of the months in `[from, to]`.
    pub(crate) fn months(&self, from: i64, to: i64) -> Vec<(i64, u64, u64)> {
        self.months
            .range(from..=to)
            .map(|(m, (n, mb))| (*m, *n, *mb))
            .collect()
    }
}

#[cfg(test)]
#[test]
fn months_are_civil() {
    // 2024-02-29T12:00:00Z and 1970-01-01.
    assert_eq!(month_of(1_709_208_000_000), 2024 * 12 + 1);
    assert_eq!(month_of(0), 1970 * 12);
    assert_eq!(month_of(-1), 1969 * 12 + 11);
}
