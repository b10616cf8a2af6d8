//! The Telemetry API (SPEC.md 5): one subscriber per instance, set up by an extension, gets
//! the instance's platform events and log lines POSTed as JSON arrays in batches.
//!
//! Events are buffered and sent when a batch reaches `maxItems` or `maxBytes`, or when its
//! oldest event is `timeoutMs` old (defaults 1000 items, 256 KiB, 1000 ms, after Lambda's
//! Telemetry API; a subscription may set them in `buffering`). The buffer is bounded: a slow or
//! dead subscriber never blocks an invocation; what does not fit is dropped and counted, and a
//! `platform.logsDropped` event says so in the next batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::extensions::Extensions;
use crate::loopback::LoopbackClient;

/// Events held at most, waiting for a subscriber or for delivery.
const QUEUE_MAX: usize = 10_000;
const QUEUE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Events kept before anyone subscribed (the init events an extension subscribes too late for).
const EARLY_MAX: usize = 1_000;
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
const TYPES: [&str; 3] = ["platform", "function", "extension"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Buffering {
    pub max_items: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for Buffering {
    fn default() -> Self {
        Buffering {
            max_items: 1000,
            max_bytes: 256 * 1024,
            timeout: Duration::from_millis(1000),
        }
    }
}

struct Event {
    kind: &'static str,
    json: String,
    at: Instant,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Event>,
    bytes: usize,
    dropped: u64,
    dropped_bytes: u64,
    types: Vec<String>,
    /// Who subscribed: the extension's name, or the subscriber's address when no registered
    /// extension listens there.
    subscriber: Option<String>,
    buffering: Buffering,
}

pub(crate) struct Telemetry {
    /// Only instances with extensions can have a subscriber: others skip all the work.
    enabled: AtomicBool,
    state: Mutex<State>,
    wake: Notify,
}

pub(crate) fn now_iso() -> String {
    use time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

/// A subscription request's failure: 400 with this message.
#[derive(Debug)]
pub(crate) struct BadSubscription(pub String);

impl Telemetry {
    pub(crate) fn new(enabled: bool) -> Telemetry {
        Telemetry {
            enabled: AtomicBool::new(enabled),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("telemetry lock is never poisoned")
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Queues one event of `kind` (`platform`, `function` or `extension`) with type name `ty`.
    pub(crate) fn emit(&self, kind: &'static str, ty: &str, record: Value) {
        if !self.enabled() {
            return;
        }
        let json = json!({"time": now_iso(), "type": ty, "record": record}).to_string();
        let mut st = self.lock();
        if st.subscriber.is_some() && !st.types.iter().any(|t| t == kind) {
            return;
        }
        let cap = if st.subscriber.is_some() {
            QUEUE_MAX
        } else {
            EARLY_MAX
        };
        if st.queue.len() >= cap || st.bytes + json.len() > QUEUE_BYTES_MAX {
            st.dropped += 1;
            st.dropped_bytes += json.len() as u64;
            fgs_metrics::global().telemetry_dropped_add(1);
            return;
        }
        st.bytes += json.len();
        st.queue.push_back(Event {
            kind,
            json,
            at: Instant::now(),
        });
        let ready = st.subscriber.is_some() && st.queue.len() >= st.buffering.max_items;
        drop(st);
        if ready {
            self.wake.notify_one();
        }
    }

    /// `POST /telemetry`: validates the subscription and starts delivery.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        extensions: &Arc<Extensions>,
        extension: Option<&str>,
        body: &[u8],
    ) -> Result<(), BadSubscription> {
        let bad = |m: &str| BadSubscription(m.to_string());
        if !self.enabled() {
            return Err(bad("this instance has no extensions"));
        }
        // FunctionGraph's "Registering OpenTelemetry APIs" sends only the body; the
        // FunctionGraph-Extension-Name header is an [FGS] way to name the subscriber, and when
        // sent it must name a registered extension.
        let named = match extension {
            Some(n) if extensions.is_registered(n) => Some(n.to_string()),
            Some(n) => {
                return Err(BadSubscription(format!(
                    "extension {n:?} is not registered"
                )))
            }
            None => None,
        };
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| BadSubscription(format!("body is not JSON: {e}")))?;
        let sub = &v["subscriber"];
        if !sub["protocol"]
            .as_str()
            .is_some_and(|p| p.eq_ignore_ascii_case("POST") || p.eq_ignore_ascii_case("HTTP"))
        {
            return Err(bad("subscriber.protocol must be POST"));
        }
        let uri = sub["uri"].as_str().unwrap_or("");
        let port = uri
            .strip_prefix("http://127.0.0.1:")
            .map(|rest| rest.split('/').next().unwrap_or(""))
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| Extensions::port_in_range(*p))
            .ok_or_else(|| {
                BadSubscription(format!(
                    "subscriber.uri {uri:?} must be http://127.0.0.1:<8081-8090>[/path]"
                ))
            })?;
        let path = uri
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
            .unwrap_or_else(|| "/".to_string());
        let types: Vec<String> = match &v["types"] {
            Value::Array(a) if !a.is_empty() => a
                .iter()
                .map(|t| t.as_str().unwrap_or("").to_string())
                .collect(),
            _ => return Err(bad("types must be a non-empty array")),
        };
        if let Some(t) = types.iter().find(|t| !TYPES.contains(&t.as_str())) {
            return Err(BadSubscription(format!(
                "type {t:?} is unknown: use platform, function or extension"
            )));
        }
        let mut buffering = Buffering::default();
        if let Some(b) = v.get("buffering").filter(|b| b.is_object()) {
            let n = |k: &str, min: u64, max: u64| -> Result<Option<u64>, BadSubscription> {
                match b.get(k).and_then(Value::as_u64) {
                    None => Ok(None),
                    Some(x) if (min..=max).contains(&x) => Ok(Some(x)),
                    Some(x) => Err(BadSubscription(format!(
                        "buffering.{k} {x} is out of range {min}-{max}"
                    ))),
                }
            };
            if let Some(x) = n("maxItems", 1, 10_000)? {
                buffering.max_items = x as usize;
            }
            if let Some(x) = n("maxBytes", 256, 1024 * 1024)? {
                buffering.max_bytes = x as usize;
            }
            if let Some(x) = n("timeoutMs", 25, 30_000)? {
                buffering.timeout = Duration::from_millis(x);
            }
        }
        let client = extensions
            .client_for_port(port)
            .ok_or_else(|| bad("the instance is still starting"))?;
        let subscriber = named
            .or_else(|| extensions.name_at_port(port))
            .unwrap_or_else(|| format!("127.0.0.1:{port}"));
        {
            let mut st = self.lock();
            if let Some(first) = &st.subscriber {
                // [FG] "only one telemetry extension can be created" per instance.
                return Err(BadSubscription(format!(
                    "this instance already has a telemetry subscriber ({first}): only one is allowed"
                )));
            }
            st.subscriber = Some(subscriber);
            st.buffering = buffering;
            // Early events of types nobody asked for go.
            let keep: VecDeque<Event> = st
                .queue
                .drain(..)
                .filter(|e| types.iter().any(|t| t == e.kind))
                .collect();
            st.types = types;
            st.bytes = keep.iter().map(|e| e.json.len()).sum();
            st.queue = keep;
        }
        tokio::spawn(deliver(Arc::downgrade(self), client, path));
        self.wake.notify_one();
        Ok(())
    }

    /// The next batch, when one is due; `None` with how long to wait otherwise.
    fn take_batch(&self) -> Result<(Vec<String>, Option<Value>), Duration> {
        let mut st = self.lock();
        let b = st.buffering;
        let Some(oldest) = st.queue.front().map(|e| e.at) else {
            return if st.dropped > 0 {
                Ok((Vec::new(), Some(dropped(&mut st))))
            } else {
                Err(b.timeout)
            };
        };
        let age = oldest.elapsed();
        if st.queue.len() < b.max_items && st.bytes < b.max_bytes && age < b.timeout {
            return Err(b.timeout - age);
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(e) = st.queue.front() {
            if batch.len() >= b.max_items || (bytes > 0 && bytes + e.json.len() > b.max_bytes) {
                break;
            }
            let e = st.queue.pop_front().expect("front exists");
            bytes += e.json.len();
            st.bytes -= e.json.len();
            batch.push(e.json);
        }
        let note = (st.dropped > 0).then(|| dropped(&mut st));
        Ok((batch, note))
    }

    fn count_dropped(&self, n: usize, bytes: usize) {
        let mut st = self.lock();
        st.dropped += n as u64;
        st.dropped_bytes += bytes as u64;
        fgs_metrics::global().telemetry_dropped_add(n as u64);
    }
}

fn dropped(st: &mut State) -> Value {
    let v = json!({
        "time": now_iso(),
        "type": "platform.logsDropped",
        "record": {
            "reason": "the telemetry subscriber did not keep up; events were dropped",
            "droppedRecords": st.dropped,
            "droppedBytes": st.dropped_bytes,
        }
    });
    st.dropped = 0;
    st.dropped_bytes = 0;
    v
}

async fn deliver(tel: std::sync::Weak<Telemetry>, client: Arc<LoopbackClient>, path: String) {
    loop {
        let Some(t) = tel.upgrade() else { return };
        let (batch, note) = match t.take_batch() {
            Ok(b) => b,
            Err(wait) => {
                // Holds the telemetry at most `wait` after its instance is gone.
                let _ = tokio::time::timeout(wait, t.wake.notified()).await;
                continue;
            }
        };
        let mut body = String::from("[");
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(e);
        }
        if let Some(n) = &note {
            if !batch.is_empty() {
                body.push(',');
            }
            body.push_str(&n.to_string());
        }
        body.push(']');
        let bytes = body.len();
        drop(t);
        let r = client
            .post(&path, Bytes::from(body), DELIVERY_TIMEOUT)
            .await;
        if let Err(e) = &r {
            tracing::debug!(error = %e, "telemetry delivery failed");
            if let Some(t) = tel.upgrade() {
                t.count_dropped(batch.len(), bytes);
            }
        }
    }
}
