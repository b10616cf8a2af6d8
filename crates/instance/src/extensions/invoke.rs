//! Telling the registered extensions of an invocation (SPEC.md 5): `POST /extension/invoke` to
//! each at once. For a traced invocation, each delivery's times and outcome go back to the
//! invoker, which makes them child spans of the invocation's.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use tokio::sync::oneshot;

use super::Extensions;
use crate::loopback::LoopbackClient;

/// One extension's delivery of one invoke event: from fgs's `POST /extension/invoke` to its
/// answer, the time the instance's next event waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionSpan {
    /// The extension's script name, as it registered (`extensionDemo.sh`).
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Why the extension did not take the event (non-200, refused, timed out).
    pub error: Option<String>,
}

/// The extension deliveries of one traced invocation; they end after the caller's response
/// (which does not wait for them), so they come separately from the [`crate::Reply`].
#[derive(Debug)]
pub struct ExtensionTimings(oneshot::Receiver<Vec<ExtensionSpan>>);

impl ExtensionTimings {
    /// Waits for every extension to answer (each delivery is bounded by the function's
    /// timeout); empty if the instance ended first.
    pub async fn wait(self) -> Vec<ExtensionSpan> {
        self.0.await.unwrap_or_default()
    }
}

/// A channel for the deliveries' times of one invocation.
pub(crate) fn timings() -> (oneshot::Sender<Vec<ExtensionSpan>>, ExtensionTimings) {
    let (tx, rx) = oneshot::channel();
    (tx, ExtensionTimings(rx))
}

/// What the deliveries of one event came to.
pub(crate) struct Delivered {
    /// `(name, reason)` of each extension that did not take the event.
    pub failures: Vec<(String, String)>,
    /// Each delivery's times, when asked for (a traced invocation); empty otherwise.
    pub spans: Vec<ExtensionSpan>,
}

impl Extensions {
    /// Sends `/extension/invoke` to every registered extension at once and waits for all of
    /// them, at most `timeout`; `timed`: also when each started and ended.
    pub(crate) async fn deliver(
        &self,
        trace_id: &str,
        invoked_urn: &str,
        timeout: Duration,
        timed: bool,
    ) -> Delivered {
        let targets: Vec<(String, Arc<LoopbackClient>)> = self
            .lock()
            .registered
            .iter()
            .map(|r| (r.name.clone(), Arc::clone(&r.client)))
            .collect();
        let mut done = Delivered {
            failures: Vec::new(),
            spans: Vec::new(),
        };
        if targets.is_empty() {
            return done;
        }
        let body = Bytes::from(
            serde_json::json!({"traceId": trace_id, "invokedFunctionUrn": invoked_urn}).to_string(),
        );
        let mut set = tokio::task::JoinSet::new();
        for (name, client) in targets {
            let body = body.clone();
            set.spawn(async move {
                let start = timed.then(SystemTime::now);
                let r = client.post("/extension/invoke", body, timeout).await;
                let error = match r {
                    Ok(s) if s == StatusCode::OK => None,
                    Ok(s) => Some(format!("answered {s}")),
                    Err(e) => Some(e),
                };
                let span = start.map(|start| (start, SystemTime::now()));
                (name, error, span)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((name, error, span)) = joined else {
                continue;
            };
            if let Some((start, end)) = span {
                done.spans.push(ExtensionSpan {
                    name: name.clone(),
                    start,
                    end,
                    error: error.clone(),
                });
            }
            if let Some(why) = error {
                done.failures.push((name, why));
            }
        }
        let n = done.failures.len() as u64;
        self.failures.fetch_add(n, Ordering::Relaxed);
        fgs_metrics::global().extension_failures_add(n);
        done
    }
}
