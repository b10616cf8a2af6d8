//! The statistics of a whole cluster (docs/cluster.md): each node writes the per-minute counts
//! of its metrics registry (crates/metrics) to the store every few seconds, off the invocation
//! path ([`flush_forever`]); the statistics API and the reports read this node's counts live and
//! add every other run's from the store ([`minutes`], [`months`]). On a single node (no run id)
//! nothing is written or read: the node's own counts are the statistics.

use std::time::Duration;

use fgs_metrics::{month_of, Minute, SeriesKey};
use fgs_store::{StatMinute, StatMonth, Store};

use crate::error::ApiResult;
use crate::request::now_ms;
use crate::state::AppState;

/// How often a node writes its counts: the longest a call on one node takes to show in the
/// statistics read through another.
pub const FLUSH_EVERY: Duration = Duration::from_secs(2);

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// The id of this run of a node: its rows in the store. A restarted node counts from zero
/// again, so its new rows must not replace its previous run's.
pub fn run_id(node: &str, started_ms: i64) -> String {
    format!("{node}@{started_ms}")
}

/// What this node counted since `since_ms` (the minutes that started then or later, and the
/// current and previous months of the series that had them), as store rows.
fn snapshot(since_ms: i64, now: i64) -> (Vec<StatMinute>, Vec<StatMonth>) {
    let (mut minutes, mut months) = (Vec::new(), Vec::new());
    let this = month_of(now);
    for s in fgs_metrics::global().all_series() {
        let changed = s.minutes(since_ms, i64::MAX);
        if changed.is_empty() {
            continue;
        }
        // Stored as counted: the store's row is the metrics' own minute.
        minutes.extend(changed.into_iter().map(|minute| StatMinute {
            key: s.key.clone(),
            minute,
        }));
        months.extend(
            s.months(this - 1, this)
                .into_iter()
                .map(|(month, count, mb_ms)| StatMonth {
                    key: s.key.clone(),
                    month,
                    count,
                    mb_ms,
                }),
        );
    }
    (minutes, months)
}

/// Writes what this node counted since `since_ms` as `run`; fgs calls it once more when it
/// stops, so that the last seconds' counts are not lost.
pub async fn flush(store: &Store, run: &str, since_ms: i64) -> Result<(), fgs_store::StoreError> {
    let (minutes, months) = snapshot(since_ms, now_ms());
    store.stats().put_stats(run, minutes, months).await
}

/// Writes this node's counts as `run` every `every` until the task is dropped, and purges
/// minutes older than the day the API answers for. A failed write (the store is unreachable)
/// is logged; the next one writes everything since the last that succeeded.
pub async fn flush_forever(store: Store, run: String, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The minute of the last successful write: it may have grown since, so it is written again.
    let mut since = i64::MIN;
    let mut purged = 0;
    loop {
        tick.tick().await;
        let now = now_ms();
        match flush(&store, &run, since).await {
            Ok(()) => since = now - now.rem_euclid(MINUTE_MS),
            Err(e) => tracing::warn!(error = %e, "writing this node's statistics failed"),
        }
        if now - purged > MINUTE_MS * 10 {
            purged = now;
            if let Err(e) = store.stats().purge_stats(now - DAY_MS - MINUTE_MS).await {
                tracing::warn!(error = %e, "purging old statistics failed");
            }
        }
    }
}

/// The minutes of `project` in `[from_ms, to_ms)` with their function version: this node's,
/// live, and in a cluster every other run's from the store.
pub(crate) async fn minutes(
    state: &AppState,
    project: &str,
    from_ms: i64,
    to_ms: i64,
) -> ApiResult<Vec<(SeriesKey, Minute)>> {
    let mut out = Vec::new();
    for s in fgs_metrics::global().all_series() {
        if s.key.project == project {
            out.extend(
                s.minutes(from_ms, to_ms)
                    .into_iter()
                    .map(|m| (s.key.clone(), m)),
            );
        }
    }
    if let Some(run) = &state.stats_run {
        let others = state
            .store
            .stats()
            .other_minutes(run, project, from_ms, to_ms)
            .await?;
        out.extend(others.into_iter().map(|r| (r.key, r.minute)));
    }
    Ok(out)
}

/// `(month, invocations, MB-ms)` of `project`'s months `[from, to]`, summed over its
/// functions: this node's and, in a cluster, every other run's.
pub(crate) async fn months(
    state: &AppState,
    project: &str,
    from: i64,
    to: i64,
) -> ApiResult<Vec<(i64, u64, u64)>> {
    let mut out = Vec::new();
    for s in fgs_metrics::global().all_series() {
        if s.key.project == project {
            out.extend(s.months(from, to));
        }
    }
    if let Some(run) = &state.stats_run {
        let others = state
            .store
            .stats()
            .other_months(run, project, from, to)
            .await?;
        out.extend(others.iter().map(|m| (m.month, m.count, m.mb_ms)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_its_node_and_its_start() {
        assert_eq!(run_id("node-1", 42), "node-1@42");
    }

    /// Only series with minutes since the last write are written, with their months.
    #[test]
    fn a_snapshot_holds_what_changed_since() {
        let s = fgs_metrics::global().series("snap-p", "default", "f", "latest");
        s.ran(
            fgs_metrics::Outcome::Success,
            Duration::from_millis(3),
            None,
            3,
            128,
        );
        let now = now_ms();
        let (minutes, months) = snapshot(now - now.rem_euclid(MINUTE_MS), now);
        let mine: Vec<_> = minutes
            .iter()
            .filter(|m| m.key.project == "snap-p")
            .collect();
        assert_eq!(mine.len(), 1);
        assert!(mine[0].minute.count >= 1);
        // The row is the series' minute and key as the metrics hold them, field for field.
        let live = s.minutes(now - now.rem_euclid(MINUTE_MS), i64::MAX);
        assert_eq!((&mine[0].key, &mine[0].minute), (&s.key, &live[0]));
        assert!(months.iter().any(|m| m.key.project == "snap-p"));
        let (later, _) = snapshot(now + 2 * MINUTE_MS, now);
        assert!(later.iter().all(|m| m.key.project != "snap-p"));
    }
}
