//! The cluster's statistics ([`StatsStore`]): what each run of each node counted per function
//! version and minute (and month), so that the statistics API of any node counts the whole
//! cluster. Each node keeps its own counts in memory (crates/metrics) and writes them here every
//! few seconds, off the invocation path; a node answering the API adds the other runs' rows to
//! its own live counts.
//!
//! Rows are keyed by the writer's *run* (its node id and start time), not its node id alone: a
//! node restarted under the same id starts counting from zero, and keyed by node it would
//! overwrite what its previous run counted in the same minute.

use std::fmt::Debug;

use fgs_core::stats::{Minute, SeriesKey};

use crate::traits::StoreFuture;

/// What one run counted in one minute for one function version: the metrics' own minute,
/// stored as it was counted.
#[derive(Debug, Clone, PartialEq)]
pub struct StatMinute {
    pub key: SeriesKey,
    pub minute: Minute,
}

/// What one run counted in one UTC month (`year * 12 + month - 1`) for one function version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatMonth {
    pub key: SeriesKey,
    pub month: i64,
    pub count: u64,
    pub mb_ms: u64,
}

/// The statistics every node of a cluster writes and reads. SQLite (one node) keeps none:
/// its writes are dropped and its reads are empty, and fgs on SQLite never calls it.
pub trait StatsStore: Send + Sync + Debug {
    /// Stores what `run` counted: each row replaces the run's row of the same function version
    /// and minute (or month). A node's counts of a minute are its totals so far, so writing a
    /// minute again as it grows never counts an invocation twice.
    fn put_stats<'a>(
        &'a self,
        run: &'a str,
        minutes: Vec<StatMinute>,
        months: Vec<StatMonth>,
    ) -> StoreFuture<'a, ()>;
    /// The minutes of `project` that started in `[from_ms, to_ms)`, as every run but
    /// `except_run` counted them (one row per run, function version and minute).
    fn other_minutes<'a>(
        &'a self,
        except_run: &'a str,
        project: &'a str,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreFuture<'a, Vec<StatMinute>>;
    /// The months `[from, to]` of `project`, as every run but `except_run` counted them.
    fn other_months<'a>(
        &'a self,
        except_run: &'a str,
        project: &'a str,
        from: i64,
        to: i64,
    ) -> StoreFuture<'a, Vec<StatMonth>>;
    /// Deletes the minutes that started before `before_ms` (months stay); returns how many.
    fn purge_stats(&self, before_ms: i64) -> StoreFuture<'_, usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A single node on SQLite keeps no statistics in its store: writes go nowhere.
    #[tokio::test]
    async fn sqlite_keeps_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::Store::open(&dir.path().join("fgs.db")).expect("open");
        let row = StatMinute {
            key: SeriesKey {
                project: "p".into(),
                package: "default".into(),
                name: "f".into(),
                version: "latest".into(),
            },
            minute: Minute {
                start_ms: 0,
                count: 1,
                function_errors: 0,
                system_errors: 0,
                rejected: 0,
                duration_sum_ms: 1.0,
                duration_max_ms: 1.0,
                duration_min_ms: 1.0,
                mb_ms: 128,
            },
        };
        store
            .stats()
            .put_stats("a@1", vec![row], Vec::new())
            .await
            .expect("put");
        let read = store.stats().other_minutes("b@1", "p", 0, 60_000).await;
        assert!(read.expect("read").is_empty());
    }
}
