//! The statistics' vocabulary: which function version a count belongs to ([`SeriesKey`]) and
//! what it counted in one minute ([`Minute`]). `fgs-metrics` counts into these on the hot path;
//! `fgs-store` keeps each node's minutes in a cluster's store; `fgs-api` answers the
//! statistics endpoints from both. One definition, so that a count moves between them whole.

/// The labels of one function version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub project: String,
    pub package: String,
    pub name: String,
    pub version: String,
}

/// What happened in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Minute {
    /// Start of the minute, ms since the epoch.
    pub start_ms: i64,
    /// Invocations that ran (successes and function errors).
    pub count: u64,
    pub function_errors: u64,
    pub system_errors: u64,
    /// Refused with 429.
    pub rejected: u64,
    pub duration_sum_ms: f64,
    pub duration_max_ms: f64,
    pub duration_min_ms: f64,
    /// Billed milliseconds times memory MB.
    pub mb_ms: u64,
}

impl Minute {
    /// Adds another minute's events into this one (for steps longer than a minute, and for
    /// the same minute counted by several nodes).
    pub fn merge(&mut self, o: &Minute) {
        if o.count > 0 {
            self.duration_min_ms = if self.count == 0 {
                o.duration_min_ms
            } else {
                self.duration_min_ms.min(o.duration_min_ms)
            };
            self.duration_max_ms = self.duration_max_ms.max(o.duration_max_ms);
        }
        self.count += o.count;
        self.function_errors += o.function_errors;
        self.system_errors += o.system_errors;
        self.rejected += o.rejected;
        self.duration_sum_ms += o.duration_sum_ms;
        self.mb_ms += o.mb_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(count: u64, min: f64, max: f64) -> Minute {
        Minute {
            start_ms: 60_000,
            count,
            function_errors: 1,
            system_errors: 0,
            rejected: 2,
            duration_sum_ms: min + max,
            duration_max_ms: max,
            duration_min_ms: min,
            mb_ms: 128,
        }
    }

    /// Counts add; the extremes are those of the minutes that ran something.
    #[test]
    fn merging_adds_counts_and_keeps_the_extremes_of_minutes_that_ran() {
        let mut m = minute(2, 1.0, 4.0);
        m.merge(&minute(3, 0.5, 2.0));
        assert_eq!(
            (m.count, m.function_errors, m.rejected, m.mb_ms),
            (5, 2, 4, 256)
        );
        assert_eq!((m.duration_min_ms, m.duration_max_ms), (0.5, 4.0));
        // A minute of refusals only (nothing ran) moves no extreme.
        m.merge(&minute(0, 0.0, 0.0));
        assert_eq!((m.duration_min_ms, m.duration_max_ms), (0.5, 4.0));
        // Into an empty minute, the other's extremes are taken as they are.
        let mut empty = Minute::default();
        empty.merge(&minute(1, 3.0, 3.0));
        assert_eq!((empty.duration_min_ms, empty.count), (3.0, 1));
    }
}
