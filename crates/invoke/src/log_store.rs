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
use fgs_store::{LogMeta, NewInvocationLog, Store};
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
    tx: mpsc::Sender<NewInvocationLog>,
    max_bytes: usize,
    dropped: AtomicU64,
    pending: Arc<AtomicU64>,
}

impl InvocationObserver for Recorder {
    fn finished(&self, f: &Finished<'_>) {
        let o = f.outcome;
        let ended_ms = f
            .ended
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let meta = LogMeta {
            invoke_type: match f.invoke_type {
                InvokeType::Async => "async",
                _ => "sync",
            },
            started_ms: ended_ms - o.duration.as_millis() as i64,
            duration_ms: o.duration.as_secs_f64() * 1000.0,
            error_code: o.result.as_ref().err().map_or(0, |e| e.code),
            truncated: false,
        };
        let rec = row(f, self.max_bytes, meta);
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

/// The row of `f`, its log as text and at most `max` bytes of it: the head and the tail (where
/// the Finish line is) around a marker saying how much was cut. A log of valid UTF-8 (every
/// log but a runtime's odd bytes) is copied once, into the row's one allocation.
fn row(f: &Finished<'_>, max: usize, mut meta: LogMeta) -> NewInvocationLog {
    let log = &f.outcome.log[..];
    let text = |bytes| String::from_utf8_lossy(bytes);
    let new = |log: &[&str], meta| {
        NewInvocationLog::new(
            &f.key.project,
            &f.key.package,
            &f.key.name,
            &f.outcome.version,
            &f.outcome.request_id,
            log,
            meta,
        )
    };
    if log.len() <= max {
        // `from_utf8` checks a word at a time; the lossy conversion's check goes by the byte.
        return match std::str::from_utf8(log) {
            Ok(s) => new(&[s], meta),
            Err(_) => new(&[&text(log)], meta),
        };
    }
    let head = &log[..max / 2];
    let tail = &log[log.len() - max / 2..];
    let marker = format!(
        "\n[fgs: {} bytes of log cut]\n",
        log.len() - head.len() - tail.len()
    );
    meta.truncated = true;
    new(&[&text(head), &marker, &text(tail)], meta)
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
async fn write(store: Store, mut rx: mpsc::Receiver<NewInvocationLog>, pending: Arc<AtomicU64>) {
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
        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
        if let Err(e) = store.insert_logs(full).await {
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
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;

    use super::*;
    use crate::{FunctionKey, Outcome};

    fn row_of(log: &[u8], max: usize) -> NewInvocationLog {
        let key = FunctionKey {
            project: "proj".into(),
            package: "default".into(),
            name: "echo".into(),
        };
        let outcome = Outcome {
            request_id: "01a24149-46f6-77bb-8ddf-a9a12d58353b".into(),
            result: Ok(Bytes::new()),
            log: log.to_vec(),
            duration: Duration::from_millis(3),
            billed_ms: 3,
            memory_size_mb: 128,
            memory_used_mb: 1.0,
            cold: false,
            version: "latest".into(),
        };
        let f = Finished {
            key: &key,
            outcome: &outcome,
            invoke_type: InvokeType::Sync,
            ended: SystemTime::now(),
        };
        let meta = LogMeta {
            invoke_type: "sync",
            started_ms: 1,
            duration_ms: 3.0,
            error_code: 0,
            truncated: false,
        };
        row(&f, max, meta)
    }

    #[test]
    fn row_holds_the_key_and_the_log() {
        let r = row_of(b"line one\nline two\n", 100);
        assert_eq!(
            (r.project(), r.package(), r.function(), r.version()),
            ("proj", "default", "echo", "latest")
        );
        assert_eq!(r.request_id(), "01a24149-46f6-77bb-8ddf-a9a12d58353b");
        assert_eq!(r.log(), "line one\nline two\n");
        assert!(!r.meta.truncated);
        // Bytes that are not UTF-8 are replaced, as before.
        assert_eq!(row_of(b"a\xffb", 100).log(), "a\u{fffd}b");
    }

    #[test]
    fn row_keeps_head_and_tail() {
        let log: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
        let r = row_of(&log, 100);
        let s = r.log();
        assert!(r.meta.truncated);
        assert!(s.starts_with("abcdef"), "{s}");
        assert!(s.contains("[fgs: 900 bytes of log cut]"), "{s}");
        assert!(s.ends_with(std::str::from_utf8(&log[950..]).expect("ascii")));
        assert_eq!(r.request_id(), "01a24149-46f6-77bb-8ddf-a9a12d58353b");
    }
}
