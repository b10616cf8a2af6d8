//! Durable async invocation (SPEC.md 3): events are on disk before they are accepted, run within
//! the function's instance limits, retried with exponential back-off, aged out, and their outcome
//! sent to the configured destinations. At-least-once: events a stopped fgs left running are
//! queued again at the next start.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fgs_core::flows::{AsyncStatus, Destination, ASYNC_AGE_DEFAULT, ASYNC_RETRY_DEFAULT};
use fgs_core::{FunctionRef, Qualifier};
use fgs_instance::InvokeType;
use fgs_store::{AsyncRow, Store, StoreError};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::invoker::{FunctionKey, FunctionSource, InvokeError, InvokeOptions, Invoker};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Events run at once, across functions.
    pub concurrency: usize,
    /// The first retry waits this long; each next one twice as long.
    pub retry_base: Duration,
    pub region: String,
}

/// An event to queue.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub key: FunctionKey,
    pub qualifier: Qualifier,
    pub body: Bytes,
    /// What submitted it (`api`, `timer:<id>`, `destination:<request id>`).
    pub source: String,
}

type Pending = (AsyncRow, oneshot::Sender<Result<(), StoreError>>);

pub struct AsyncDispatcher<S: FunctionSource> {
    invoker: Arc<Invoker<S>>,
    store: Store,
    config: AsyncConfig,
    wake: Notify,
    slots: Arc<Semaphore>,
    writer: mpsc::Sender<Pending>,
    updater: mpsc::Sender<Pending>,
    /// Accepted events handed to the dispatcher in memory: stored RUNNING, so no claim reads
    /// them back. Bounded; past it, events are stored WAIT and claimed from the database.
    direct: mpsc::Sender<AsyncRow>,
    direct_rx: std::sync::Mutex<Option<mpsc::Receiver<AsyncRow>>>,
    /// Set once the restart's requeue is done: before, a RUNNING row would be queued again.
    direct_open: std::sync::atomic::AtomicBool,
    http: reqwest::Client,
}

/// How often the dispatcher looks at the database while events arrive in memory, so that retries
/// and events stored WAIT are not starved by a steady stream.
const CLAIM_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy)]
enum Write {
    Insert,
    Update,
}

/// Writes queued events (or their state changes) in batches: one transaction, so one fsync, for
/// all that arrived while the previous batch was being written.
async fn write_batches(store: Store, kind: Write, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (rows, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let n = rows.len();
        let results = match kind {
            Write::Insert => store.insert_async(rows).await,
            Write::Update => store
                .update_async(rows)
                .await
                .map(|()| (0..n).map(|_| Ok(())).collect()),
        };
        match results {
            Ok(results) => {
                for (ack, r) in acks.into_iter().zip(results) {
                    let _ = ack.send(r);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for ack in acks {
                    let _ = ack.send(Err(StoreError::Backend {
                        op: "write async invocations",
                        source: msg.clone().into(),
                    }));
                }
            }
        }
    }
}

impl<S: FunctionSource> AsyncDispatcher<S> {
    pub fn new(invoker: Arc<Invoker<S>>, store: Store, config: AsyncConfig) -> Arc<Self> {
        let (writer, rx) = mpsc::channel(4096);
        tokio::spawn(write_batches(store.clone(), Write::Insert, rx));
        let (updater, rx) = mpsc::channel(4096);
        tokio::spawn(write_batches(store.clone(), Write::Update, rx));
        let (direct, direct_rx) = mpsc::channel(config.concurrency.max(1) * 4);
        Arc::new(AsyncDispatcher {
            direct,
            direct_rx: std::sync::Mutex::new(Some(direct_rx)),
            direct_open: std::sync::atomic::AtomicBool::new(false),
            invoker,
            store,
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            wake: Notify::new(),
            writer,
            updater,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a plain HTTP client builds"),
        })
    }

    /// Queues an event; returns its request id once it is on disk.
    pub async fn submit(
        &self,
        ev: NewEvent,
        request_id: Option<String>,
    ) -> Result<String, InvokeError> {
        // The function must exist now: an unknown one is the caller's error, not a FAIL later.
        self.invoker.function_record(&ev.key, &ev.qualifier).await?;
        let request_id = request_id.unwrap_or_else(crate::new_request_id);
        let now = now_ms();
        let row = AsyncRow {
            request_id: request_id.clone(),
            project: ev.key.project,
            package: ev.key.package,
            name: ev.key.name,
            qualifier: ev.qualifier.to_string(),
            status: AsyncStatus::Wait,
            attempts: 0,
            created_ms: now,
            next_attempt_ms: now,
            started_ms: None,
            ended_ms: None,
            error_code: None,
            error_message: String::new(),
            body: ev.body.to_vec(),
            extra: serde_json::json!({"source": ev.source}).to_string(),
        };
        let mut row = row;
        // Room in the dispatcher's memory: the event is stored RUNNING and handed over, and no
        // claim has to find it. A restart queues RUNNING events again (at-least-once).
        let handover = if self.direct_open.load(std::sync::atomic::Ordering::Acquire) {
            self.direct.try_reserve().ok()
        } else {
            None
        };
        if handover.is_some() {
            row.status = AsyncStatus::Running;
        }
        let (tx, rx) = oneshot::channel();
        self.writer
            .send((row.clone(), tx))
            .await
            .map_err(|_| InvokeError::Platform("the async queue writer stopped".into()))?;
        rx.await
            .map_err(|_| InvokeError::Platform("the async queue writer stopped".into()))?
            .map_err(|e| InvokeError::Platform(format!("storing the async event: {e}")))?;
        match handover {
            Some(permit) => permit.send(row),
            None => self.wake.notify_one(),
        }
        Ok(request_id)
    }

    /// Runs the dispatcher until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        match self.store.requeue_running_async().await {
            Ok(n) if n > 0 => tracing::info!(events = n, "async events requeued after a restart"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "requeueing async events failed"),
        }
        let mut direct = self
            .direct_rx
            .lock()
            .expect("direct queue lock is never poisoned")
            .take()
            .expect("the dispatcher runs once");
        self.direct_open
            .store(true, std::sync::atomic::Ordering::Release);
        // Claimed events wait here for a slot. Claiming a whole slot's worth at once makes one
        // write transaction per `concurrency` events rather than one per event; the events
        // claimed are RUNNING on disk, and a restart queues them again (at-least-once).
        let mut claimed: std::collections::VecDeque<AsyncRow> = Default::default();
        let batch = self.config.concurrency.max(1);
        let mut last_claim = tokio::time::Instant::now();
        loop {
            // Events claimed from the database first (they may be retries that waited), then
            // those handed over in memory, and the database again when neither has any or
            // every CLAIM_EVERY.
            if claimed.is_empty() && (direct.is_empty() || last_claim.elapsed() >= CLAIM_EVERY) {
                last_claim = tokio::time::Instant::now();
                match self.store.claim_due_async(now_ms(), batch).await {
                    Ok(rows) => claimed.extend(rows),
                    Err(e) => tracing::error!(error = %e, "claiming async events failed"),
                }
            }
            let row = match claimed.pop_front() {
                Some(row) => row,
                None => match direct.try_recv() {
                    Ok(row) => row,
                    Err(_) => {
                        let wait = match self.store.next_due_async().await {
                            Ok(Some(due)) => {
                                Duration::from_millis((due - now_ms()).clamp(1, 1000) as u64)
                            }
                            _ => Duration::from_secs(1),
                        };
                        tokio::select! {
                            Some(row) = direct.recv() => row,
                            _ = tokio::time::timeout(wait, self.wake.notified()) => continue,
                        }
                    }
                },
            };
            let permit = Arc::clone(&self.slots)
                .acquire_owned()
                .await
                .expect("the slot semaphore is never closed");
            let this = Arc::clone(&self);
            // Events run on every shard, as sync calls do (fgs_pool::shard).
            fgs_pool::shard::spawn(async move {
                this.process(row).await;
                drop(permit);
            });
        }
    }

    async fn process(&self, mut row: AsyncRow) {
        // It may have waited for a slot since it was claimed.
        row.started_ms = Some(now_ms());
        let key = FunctionKey {
            project: row.project.clone(),
            package: row.package.clone(),
            name: row.name.clone(),
        };
        let qualifier = Qualifier::parse(&row.qualifier).unwrap_or(Qualifier::Latest);
        let invoked_urn = fgs_core::urn::qualified_urn(
            &self.config.region,
            &key.project,
            &key.package,
            &key.name,
            &qualifier,
        );
        let config = match self.invoker.function_record(&key, &qualifier).await {
            Ok(rec) => rec.async_config.clone(),
            Err(e) => {
                // The function or version is gone: nothing can run this event.
                self.finish(&mut row, AsyncStatus::Fail, None, e.to_string())
                    .await;
                return;
            }
        };
        let max_age_ms = i64::from(
            config
                .as_ref()
                .map_or(ASYNC_AGE_DEFAULT, |c| c.max_async_event_age_in_seconds),
        ) * 1000;
        let retries = config
            .as_ref()
            .map_or(ASYNC_RETRY_DEFAULT, |c| c.max_async_retry_attempts);
        let destinations = config.map(|c| c.destination_config).unwrap_or_default();

        if now_ms() - row.created_ms > max_age_ms {
            self.finish(
                &mut row,
                AsyncStatus::Discard,
                None,
                "event age exceeded".into(),
            )
            .await;
            self.deliver(
                &destinations.on_failure,
                &row,
                &invoked_urn,
                "EventAgeExceeded",
                None,
            )
            .await;
            return;
        }
        let outcome = self
            .invoker
            .invoke(
                &key,
                &qualifier,
                Bytes::from(row.body.clone()),
                InvokeOptions {
                    invoke_type: Some(InvokeType::Async),
                    request_id: Some(row.request_id.clone()),
                    invoked_urn: invoked_urn.clone(),
                    headers: Vec::new(),
                },
            )
            .await;
        match outcome {
            Ok(o) => {
                row.attempts += 1;
                match o.result {
                    Ok(result) => {
                        self.finish(&mut row, AsyncStatus::Success, None, String::new())
                            .await;
                        self.deliver(
                            &destinations.on_success,
                            &row,
                            &invoked_urn,
                            "Success",
                            Some(result),
                        )
                        .await;
                    }
                    Err(fe) => {
                        if row.attempts <= retries {
                            self.retry(&mut row, Some(fe.code), fe.message).await;
                        } else {
                            self.finish(
                                &mut row,
                                AsyncStatus::Fail,
                                Some(fe.code),
                                fe.message.clone(),
                            )
                            .await;
                            let payload = Bytes::from(serde_json::to_vec(&fe).unwrap_or_default());
                            self.deliver(
                                &destinations.on_failure,
                                &row,
                                &invoked_urn,
                                "RetriesExhausted",
                                Some(payload),
                            )
                            .await;
                        }
                    }
                }
            }
            // Throttling is not the function's failure: try again soon, without using up an
            // attempt, until the event ages out.
            Err(e @ (InvokeError::Throttled(_) | InvokeError::Disabled(_))) => {
                row.status = AsyncStatus::Wait;
                row.next_attempt_ms = now_ms() + 1000;
                row.error_message = e.to_string();
                self.save(&row).await;
            }
            Err(e) => {
                row.attempts += 1;
                if row.attempts <= retries {
                    self.retry(&mut row, None, e.to_string()).await;
                } else {
                    self.finish(&mut row, AsyncStatus::Fail, None, e.to_string())
                        .await;
                    self.deliver(
                        &destinations.on_failure,
                        &row,
                        &invoked_urn,
                        "RetriesExhausted",
                        None,
                    )
                    .await;
                }
            }
        }
    }

    async fn retry(&self, row: &mut AsyncRow, code: Option<u32>, message: String) {
        let backoff = self.config.retry_base * 2u32.saturating_pow(row.attempts.saturating_sub(1));
        row.status = AsyncStatus::Wait;
        row.next_attempt_ms = now_ms() + backoff.as_millis() as i64;
        row.error_code = code;
        row.error_message = message;
        self.save(row).await;
    }

    async fn finish(
        &self,
        row: &mut AsyncRow,
        status: AsyncStatus,
        code: Option<u32>,
        message: String,
    ) {
        row.status = status;
        row.ended_ms = Some(now_ms());
        row.error_code = code;
        row.error_message = message;
        self.save(row).await;
    }

    async fn save(&self, row: &AsyncRow) {
        let (tx, rx) = oneshot::channel();
        let saved = match self.updater.send((row.clone(), tx)).await {
            Ok(()) => rx.await.unwrap_or_else(|_| {
                Err(StoreError::Backend {
                    op: "update async invocation",
                    source: "the writer stopped".into(),
                })
            }),
            Err(_) => Err(StoreError::Backend {
                op: "update async invocation",
                source: "the writer stopped".into(),
            }),
        };
        if let Err(e) = saved {
            tracing::error!(request_id = row.request_id, error = %e, "recording an async event's state failed");
        }
    }

    /// Sends an outcome to a destination (SPEC.md 3): another function, as a new async event, or
    /// an HTTP webhook. A failed delivery is logged; it never changes the event's own status.
    async fn deliver(
        &self,
        dest: &Option<Destination>,
        row: &AsyncRow,
        invoked_urn: &str,
        condition: &str,
        response: Option<Bytes>,
    ) {
        let Some(dest) = dest else { return };
        let as_json = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
            })
        };
        let record = serde_json::json!({
            "version": "1.0",
            "timestamp": crate::logline::now_iso(),
            "request_id": row.request_id,
            "func_urn": invoked_urn,
            "condition": condition,
            "approximate_invoke_count": row.attempts,
            "error_code": row.error_code,
            "error_message": row.error_message,
            "request_payload": as_json(&row.body),
            "response_payload": response.as_deref().map(as_json),
        });
        let param: serde_json::Value = serde_json::from_str(&dest.param).unwrap_or_default();
        let result = match dest.destination.as_str() {
            "FunctionGraph" => {
                let target = param.get("func_urn").and_then(|v| v.as_str()).unwrap_or("");
                match FunctionRef::parse(target) {
                    Ok(r) if r.project.as_deref().is_none_or(|p| p == row.project) => {
                        let ev = NewEvent {
                            key: FunctionKey {
                                project: row.project.clone(),
                                package: r.package.clone(),
                                name: r.name.clone(),
                            },
                            qualifier: r.qualifier_or_latest(),
                            body: Bytes::from(record.to_string()),
                            source: format!("destination:{}", row.request_id),
                        };
                        Box::pin(self.submit(ev, None))
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    Ok(_) => Err(format!(
                        "destination function {target} is in another project"
                    )),
                    Err(e) => Err(format!("destination func_urn {target:?}: {e}")),
                }
            }
            "HTTP" => {
                let url = param.get("url").and_then(|v| v.as_str()).unwrap_or("");
                match self.http.post(url).json(&record).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("webhook {url} answered {}", r.status())),
                    Err(e) => Err(format!("webhook {url}: {e}")),
                }
            }
            other => Err(format!("destination type {other} is not supported")),
        };
        if let Err(e) = result {
            tracing::warn!(request_id = row.request_id, error = %e, "async destination delivery failed");
        }
    }
}
