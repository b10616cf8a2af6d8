//! One running instance: invoke and stop; its start is [`start`]'s.

mod start;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use fgs_core::func_error::codes;
use fgs_core::FunctionError;
use fgs_sandbox::{ProcessHandle, Signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::config::{InstanceConfig, Request};
use crate::extensions::ExtensionTimings;
use crate::runtime_api::{ApiState, Pending, RuntimeReply};

/// What one invocation produced.
#[derive(Debug)]
pub struct Reply {
    /// The request's [`Request::request_id`], handed back (the instance took it rather than
    /// copy it).
    pub request_id: String,
    pub result: Result<Bytes, FunctionError>,
    /// The output the runtime wrote while it ran this invocation.
    pub log: Vec<u8>,
    pub memory_used_bytes: u64,
    /// For a traced invocation ([`Request::traced`]) of an instance with extensions: their
    /// deliveries of this event, which end after this reply.
    pub extensions: Option<ExtensionTimings>,
}

/// When the function's initializer ran in an instance's start: from the runtime's mark
/// (`POST /fgs/v1/initializer/start`, sent by fgs's runtimes) to its first event's request or
/// its init error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitializerRun {
    pub start: SystemTime,
    pub end: SystemTime,
}

pub struct Instance {
    cfg: Arc<InstanceConfig>,
    queue_tx: mpsc::Sender<Pending>,
    api: Arc<ApiState>,
    process: ProcessHandle,
    /// `Some(description)` once the runtime's main process has exited.
    exited: watch::Receiver<Option<String>>,
    /// Set when the instance must not take more events (timed out, crashed, stopping).
    dead: AtomicBool,
    /// The cgroup's OOM kill count when the last event ended (at start: when it started).
    oom_seen: AtomicU64,
    tasks: Mutex<Vec<AbortHandle>>,
    /// The initializer's run in the start, if the runtime marked one.
    initializer: Option<InitializerRun>,
}

impl Instance {
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Whether the instance can take events: its runtime runs and nothing marked it for
    /// replacement.
    pub fn is_healthy(&self) -> bool {
        !self.dead.load(Ordering::Acquire)
            && !self.api.unhealthy.load(Ordering::Acquire)
            && !self.api.exited.load(Ordering::Acquire)
    }

    /// When the function's initializer ran while the instance started, if it has one.
    pub fn initializer(&self) -> Option<InitializerRun> {
        self.initializer
    }

    /// Invoke events extensions did not take (non-200, refused, timed out), since start.
    pub fn extension_failures(&self) -> u64 {
        self.api.extensions.failures.load(Ordering::Relaxed)
    }

    /// Hands one event to the runtime and waits for its answer, at most `request.timeout`. A
    /// timeout ends the whole instance (its process tree may be anywhere in the user's code).
    pub async fn invoke(&self, mut request: Request) -> Reply {
        // The id is shared, not copied, by the event's header, the output's attribution and
        // the in-flight slot, then handed back in the reply: one allocation (the sharing) where
        // each of them used to copy it.
        let id = Bytes::from(std::mem::take(&mut request.request_id));
        let timeout = request.timeout;
        let (tx, rx) = oneshot::channel();
        let started = tokio::time::Instant::now();
        // Reading the cgroup's counters is a kernfs read each, a visible part of fgs's own cpu
        // time on a warm call (perf, bench/): the count is read once per event, when it ends,
        // against the count the last event ended with. An OOM kill while
        // the instance idled is thus blamed on its next event, which the old runtime may not
        // survive anyway.
        let oom_before = self.oom_seen.load(Ordering::Acquire);
        let (extension_spans, extensions) = if request.traced && self.api.extensions.any() {
            let (tx, rx) = crate::extensions::timings();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let pending = Pending {
            id: id.clone(),
            request,
            reply: tx,
            extension_spans,
        };
        let mut result = if self.queue_tx.send(pending).await.is_err() {
            Err(self.runtime_gone())
        } else {
            tokio::select! {
                r = rx => match r {
                    Ok(RuntimeReply::Response(b)) => Ok(b),
                    Ok(RuntimeReply::Error(e)) => Err(e),
                    Err(_) => {
                        // The sender was dropped because the runtime exited; wait for the
                        // watcher's description of how.
                        let mut exited = self.exited.clone();
                        let _ = tokio::time::timeout(Duration::from_secs(1), exited.wait_for(Option::is_some)).await;
                        Err(self.runtime_gone())
                    }
                },
                _ = tokio::time::sleep(timeout) => {
                    self.kill();
                    Err(FunctionError::timeout(timeout.as_secs()))
                }
            }
        };
        let (memory_used_bytes, oom_now) = self.process.usage();
        self.oom_seen.fetch_max(oom_now, Ordering::AcqRel);
        if oom_now > oom_before {
            // The memory cgroup's OOM killer ended a process of this instance while the event
            // ran (SPEC.md 6): 4205, and the instance is replaced, since any of its processes
            // may be gone.
            self.dead.store(true, Ordering::Release);
            result = Err(FunctionError::memory_limit());
        }
        if let Err(e) = &result {
            if e.code == codes::RUNTIME_EXITED {
                self.dead.store(true, Ordering::Release);
            }
        }
        let log = self.api.output.finish(&id);
        if self.api.telemetry.enabled() {
            let id = std::str::from_utf8(&id).unwrap_or_default();
            self.report(id, &result, started.elapsed(), memory_used_bytes);
        }
        Reply {
            // The bytes' last holder by now (unless a runtime that timed out still holds the
            // event): the string comes back without a copy.
            request_id: String::from_utf8(Vec::from(id)).unwrap_or_default(),
            result,
            log,
            memory_used_bytes,
            extensions,
        }
    }

    /// Telemetry's `platform.runtimeDone` and `platform.report` of one invocation (SPEC.md 5).
    fn report(&self, id: &str, result: &Result<Bytes, FunctionError>, took: Duration, memory: u64) {
        let ms = took.as_secs_f64() * 1000.0;
        let status = match result {
            Ok(_) => "success",
            Err(e) if e.code == codes::TIMEOUT => "timeout",
            Err(_) => "error",
        };
        let memory_size = self.cfg.limits.memory_mb;
        let t = &self.api.telemetry;
        t.emit(
            "platform",
            "platform.runtimeDone",
            serde_json::json!({"requestId": id, "traceId": id, "status": status, "metrics": {"durationMs": ms}}),
        );
        t.emit(
            "platform",
            "platform.report",
            serde_json::json!({
                "requestId": id,
                "traceId": id,
                "status": status,
                "endTime": crate::telemetry::now_iso(),
                "metrics": {
                    "durationMs": ms,
                    "billedDurationMs": (ms.ceil() as u64).max(1),
                    "memorySizeMB": memory_size,
                    "maxMemoryUsedMB": memory.div_ceil(1024 * 1024),
                }
            }),
        );
    }

    fn runtime_gone(&self) -> FunctionError {
        self.dead.store(true, Ordering::Release);
        let status = self
            .exited
            .borrow()
            .clone()
            .unwrap_or_else(|| "exited".to_string());
        FunctionError::new(
            codes::RUNTIME_EXITED,
            "RuntimeExited",
            format!("runtime process exited: {status}"),
        )
    }

    /// Ends the process tree at once and marks the instance dead.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Release);
        self.process.kill();
    }

    /// Stops the instance: SIGTERM to its process group, SIGKILL after the grace period.
    pub async fn stop(&self) {
        self.dead.store(true, Ordering::Release);
        self.process.signal(Signal::SIGTERM);
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(self.cfg.stop_grace, exited.wait_for(Option::is_some)).await;
        self.process.kill();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.process.kill();
        for t in self
            .tasks
            .lock()
            .expect("task list lock is never poisoned")
            .drain(..)
        {
            // The exit watcher is left to reap the killed process.
            t.abort();
        }
    }
}
