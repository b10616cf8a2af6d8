//! What fgs counts about itself: the metric names (one module, [`names`]), the process-wide
//! [`Registry`] the hot path records into, the Prometheus text encoding of it, and the per-minute
//! history the FunctionGraph statistics endpoints answer from (its `Minute` and `SeriesKey` are
//! fgs-core's, the same types a cluster's store keeps). It knows no HTTP, no SQL and no
//! processes: other crates call its recording functions where events happen, and `fgs-api` reads
//! it back. Recording is atomics on a series interned once per function version, plus one short
//! uncontended lock of that series' minute ring; no lock is ever held across an await.
#![forbid(unsafe_code)]

mod encode;
mod history;
pub mod names;
mod outcome;
mod series;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

pub use encode::{encode, Gauges, InstanceGauge};
pub use fgs_core::stats::Minute;
pub use history::{month_of, MINUTES_KEPT};
pub use outcome::Outcome;
pub use series::{Series, SeriesKey, DURATION_BUCKETS};

/// Every metric fgs records, process-wide.
#[derive(Default)]
pub struct Registry {
    /// Series by the hash of their labels; the rare collision shares a bucket. Keyed by hash so
    /// that the per-invocation lookup borrows the labels instead of allocating a key.
    series: RwLock<HashMap<u64, Vec<Arc<Series>>>>,
    extension_failures: AtomicU64,
    telemetry_dropped: AtomicU64,
}

static GLOBAL: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The registry of this process. One per process, like the `/metrics` endpoint that reads it.
pub fn global() -> &'static Registry {
    &GLOBAL
}

impl Registry {
    /// The series of one function version, made on its first event and kept for the life of
    /// the process (a deleted function's counts stay, as Prometheus counters must).
    pub fn series(&self, project: &str, package: &str, name: &str, version: &str) -> Arc<Series> {
        let mut h = DefaultHasher::new();
        (project, package, name, version).hash(&mut h);
        let hash = h.finish();
        let same = |s: &&Arc<Series>| {
            s.key.project == project
                && s.key.package == package
                && s.key.name == name
                && s.key.version == version
        };
        if let Some(s) = self
            .series
            .read()
            .expect("series lock is never poisoned")
            .get(&hash)
            .and_then(|b| b.iter().find(same))
        {
            return Arc::clone(s);
        }
        let mut all = self.series.write().expect("series lock is never poisoned");
        let bucket = all.entry(hash).or_default();
        if let Some(s) = bucket.iter().find(same) {
            return Arc::clone(s);
        }
        let s = Arc::new(Series::new(SeriesKey {
            project: project.to_string(),
            package: package.to_string(),
            name: name.to_string(),
            version: version.to_string(),
        }));
        bucket.push(Arc::clone(&s));
        s
    }

    /// Every series, sorted by its labels.
    pub fn all_series(&self) -> Vec<Arc<Series>> {
        let mut v: Vec<_> = self
            .series
            .read()
            .expect("series lock is never poisoned")
            .values()
            .flatten()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// An extension did not answer an invoke event with 200 (SPEC.md 5).
    pub fn extension_failures_add(&self, n: u64) {
        self.extension_failures.fetch_add(n, Ordering::Relaxed);
    }

    /// Telemetry events dropped because a subscriber did not keep up (SPEC.md 5).
    pub fn telemetry_dropped_add(&self, n: u64) {
        self.telemetry_dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn extension_failures(&self) -> u64 {
        self.extension_failures.load(Ordering::Relaxed)
    }

    pub fn telemetry_dropped(&self) -> u64 {
        self.telemetry_dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
