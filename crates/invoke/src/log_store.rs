//! Storing invocation logs (docs/logs.md): the observer that takes each finished invocation's
//! log off the invoker, the writer task that stores them in batches, and the retention purge.
//! `fgs-api` reads them back.
//!
//! An invocation never waits on the database for its log: the observer only `try_send`s into a
//! bounded channel, and when the writer falls that far behind, logs are dropped and counted
//! rather than slowing invocations down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use fgs_instance::InvokeType;
use fgs_store::{InvocationLog, Store};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::observe::{Finished, InvocationObserver};

/// Logs waiting for the writer; past this, new ones are dropped.
const QUEUE: usize = 8192;
/// Most logs stored in one transaction.
const BATCH: usize = 512;

/// How logs are kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Logs of invocations older than this are purged.
    pub retention: Duration,
    /// A longer log keeps its head and tail with a marker of what was cut between.
    pub max_bytes_per_invocation: usize,
}

/// The running side of stored logs; [`LogTasks::finish`] at shutdown.
pub struct LogTasks {
    writer: JoinHandle<()>,
    purger: JoinHandle<()>,
    /// Records handed to the writer and not yet stored (or given up on).
    pending: Arc<AtomicU64>,
}

impl LogTasks {
    /// Waits up to `limit` for the records already handed over to be stored, then stops the
    /// tasks: the last invocations before a shutdown keep their logs.
    pub async fn finish(self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.writer.abort();
        self.purger.abort();
    }
}

struct Recorder {
    tx: mpsc::Sender<InvocationLog>,
    max_bytes: usize,
    dropped: AtomicU64,
    pending: Arc<AtomicU64>,
}

impl InvocationObserver for Recorder {
    fn finished(&self, f: &Finished<'_>) {
        let o = f.outcome;
        let (log, truncated) = cut(&o.log, self.max_bytes);
        let ended_ms = f
            .ended
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let rec = InvocationLog {
            id: 0,
            project: f.key.project.clone(),
            package: f.key.package.clone(),
            function: f.key.name.clone(),
            version: o.version.clone(),
            request_id: o.request_id.clone(),
            invoke_type: match f.invoke_type {
                InvokeType::Async => "async",
                _ => "sync",
            }
            .to_owned(),
            started_ms: ended_ms - o.duration.as_millis() as i64,
            duration_ms: o.duration.as_secs_f64() * 1000.0,
            error_code: o.result.as_ref().err().map_or(0, |e| e.code),
            log,
            truncated,
        };
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.tx.try_send(rec).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // A power of two: say it, but not once per invocation of an overload.
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "invocation logs dropped: the log writer is behind"
                );
            }
        }
    }
}

/// The log as text, at most `max` bytes of it: the head and the tail (where the Finish line
/// is) around a marker saying how much was cut.
fn cut(log: &[u8], max: usize) -> (String, bool) {
    if log.len() <= max {
        return (String::from_utf8_lossy(log).into_owned(), false);
    }
    let head = &log[..max / 2];
    let tail = &log[log.len() - max / 2..];
    let mut s = String::from_utf8_lossy(head).into_owned();
    s.push_str(&format!(
        "\n[fgs: {} bytes of log cut]\n",
        log.len() - head.len() - tail.len()
    ));
    s.push_str(&String::from_utf8_lossy(tail));
    (s, true)
}

/// Starts recording every invocation of `invoker` into `store`, and the retention purge.
pub fn start<S: crate::FunctionSource, I: crate::Instances>(
    store: Store,
    invoker: &crate::Invoker<S, I>,
    config: LogConfig,
) -> LogTasks {
    let (tx, rx) = mpsc::channel(QUEUE);
    let pending = Arc::new(AtomicU64::new(0));
    invoker.add_observer(Arc::new(Recorder {
        tx,
        max_bytes: config.max_bytes_per_invocation.max(256),
        dropped: AtomicU64::new(0),
        pending: Arc::clone(&pending),
    }));
    LogTasks {
        writer: tokio::spawn(write(store.clone(), rx, Arc::clone(&pending))),
        purger: tokio::spawn(purge(store, config.retention)),
        pending,
    }
}

/// How long the writer lets a batch fill after its first log: a lone invocation's log is stored
/// this much later, and under load one transaction takes every log of the interval rather than
/// one or two (a transaction per invocation cost about a tenth of fgs's cpu at 8,000 calls/s).
const LINGER: Duration = Duration::from_millis(50);

/// Stores what arrives in batches, one transaction each.
async fn write(store: Store, mut rx: mpsc::Receiver<InvocationLog>, pending: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            tokio::time::sleep(LINGER).await;
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(l) => batch.push(l),
                    Err(_) => break,
                }
            }
        }
        let n = batch.len();
        if let Err(e) = store.insert_logs(std::mem::take(&mut batch)).await {
            tracing::warn!(logs = n, error = %crate::error_chain(&e), "storing invocation logs failed");
        }
        pending.fetch_sub(n as u64, Ordering::AcqRel);
    }
}

/// Deletes logs past their retention, checked every quarter of it (between 1 s and 1 h).
async fn purge(store: Store, retention: Duration) {
    let every = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let before = crate::now_ms() - retention.as_millis() as i64;
        match store.purge_logs(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "old invocation logs purged"),
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "purging invocation logs failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn cut_keeps_head_and_tail() {
        assert_eq!(cut(b"short", 100), ("short".to_owned(), false));
        let log: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
        let (s, truncated) = cut(&log, 100);
        assert!(truncated);
        assert!(s.starts_with("abcdef"), "{s}");
        assert!(s.contains("[fgs: 900 bytes of log cut]"), "{s}");
        assert!(s.ends_with(std::str::from_utf8(&log[950..]).expect("ascii")));
    }
}
