//! Durable async invocation (SPEC.md 3): events are on disk before they are accepted, run within
//! the function's instance limits, retried with exponential back-off, aged out, and their outcome
//! sent to the configured destinations. At-least-once, under leases: this node claims events
//! from the queue ([`fgs_store::AsyncQueue`]) as its owner id, extends the leases while they run
//! ([`leases`]), and records an outcome only under the lease it ran with; the events of a node
//! that stopped are claimed again once their lease ends. Runs go through an [`AsyncTarget`]
//! (the [`crate::Invoker`] in fgs).

mod leases;
mod process;
mod target;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fgs_core::flows::AsyncStatus;
use fgs_core::Qualifier;
use fgs_store::{AsyncQueue, AsyncRow, Lease, StoreError};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};

use crate::{FunctionKey, InvokeError};
pub use leases::{LeaseConfig, LEASE_LENGTH, LEASE_RENEW};
pub use target::AsyncTarget;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where the dispatcher reads the time: the system clock, or, in tests, tokio's (pausable)
/// clock from a fixed start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    System,
    #[cfg(test)]
    Tokio {
        base_ms: i64,
        start: tokio::time::Instant,
    },
}

impl Clock {
    pub(crate) fn now_ms(&self) -> i64 {
        match self {
            Clock::System => now_ms(),
            #[cfg(test)]
            Clock::Tokio { base_ms, start } => base_ms + start.elapsed().as_millis() as i64,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Events run at once, across functions.
    pub concurrency: usize,
    /// The first retry waits this long; each next one twice as long.
    pub retry_base: Duration,
    pub region: String,
    /// This node's leases.
    pub lease: LeaseConfig,
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

type Pending<R> = (AsyncRow, oneshot::Sender<Result<R, StoreError>>);

pub struct AsyncDispatcher<T: AsyncTarget> {
    target: Arc<T>,
    queue: Arc<dyn AsyncQueue>,
    config: AsyncConfig,
    clock: Clock,
    wake: Notify,
    slots: Arc<Semaphore>,
    writer: mpsc::Sender<Pending<()>>,
    updater: mpsc::Sender<Pending<bool>>,
    held: Arc<leases::Held>,
    /// Accepted events handed to the dispatcher in memory: stored RUNNING under this node's
    /// lease, so no claim reads them back. Bounded; past it, events are stored WAIT and claimed.
    direct: mpsc::Sender<AsyncRow>,
    direct_rx: Mutex<Option<mpsc::Receiver<AsyncRow>>>,
    /// Set once the dispatcher runs: before, nothing would take a handed-over event.
    direct_open: AtomicBool,
    http: reqwest::Client,
}

/// `e` with its sources, for a message that is sent on to several callers.
fn error_chain(e: &StoreError) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// How often the dispatcher looks at the queue while events arrive in memory, so that retries
/// and events stored WAIT are not starved by a steady stream.
const CLAIM_EVERY: Duration = Duration::from_millis(100);

/// Writes queued events (or their outcomes) in batches: one transaction, so one fsync, for all
/// that arrived while the previous batch was being written.
async fn write_batches<R, W, F>(write: W, mut rx: mpsc::Receiver<Pending<R>>)
where
    R: Send,
    W: Fn(Vec<AsyncRow>) -> F,
    F: std::future::Future<Output = Result<Vec<Result<R, StoreError>>, StoreError>>,
{
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 512 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (rows, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match write(rows).await {
            Ok(results) => {
                for (ack, r) in acks.into_iter().zip(results) {
                    let _ = ack.send(r);
                }
            }
            Err(e) => {
                let msg = error_chain(&e);
                // An unreachable engine stays that (503, retry later) for every caller.
                let unavailable = matches!(e, StoreError::Unavailable { .. });
                for ack in acks {
                    let source = msg.clone().into();
                    let _ = ack.send(Err(if unavailable {
                        StoreError::Unavailable {
                            op: "write async invocations",
                            source,
                        }
                    } else {
                        StoreError::Backend {
                            op: "write async invocations",
                            source,
                        }
                    }));
                }
            }
        }
    }
}

impl<T: AsyncTarget> AsyncDispatcher<T> {
    pub fn new(target: Arc<T>, queue: Arc<dyn AsyncQueue>, config: AsyncConfig) -> Arc<Self> {
        Self::with_clock(target, queue, config, Clock::System)
    }

    pub(crate) fn with_clock(
        target: Arc<T>,
        queue: Arc<dyn AsyncQueue>,
        config: AsyncConfig,
        clock: Clock,
    ) -> Arc<Self> {
        let (writer, rx) = mpsc::channel(4096);
        let q = Arc::clone(&queue);
        tokio::spawn(write_batches(
            move |rows| {
                let q = Arc::clone(&q);
                async move { q.accept(rows).await }
            },
            rx,
        ));
        let (updater, rx) = mpsc::channel(4096);
        let q = Arc::clone(&queue);
        tokio::spawn(write_batches(
            move |rows| {
                let q = Arc::clone(&q);
                async move { Ok(q.settle(rows).await?.into_iter().map(Ok).collect()) }
            },
            rx,
        ));
        let (direct, direct_rx) = mpsc::channel(config.concurrency.max(1) * 4);
        Arc::new(AsyncDispatcher {
            direct,
            direct_rx: Mutex::new(Some(direct_rx)),
            direct_open: AtomicBool::new(false),
            target,
            queue,
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            clock,
            wake: Notify::new(),
            writer,
            updater,
            held: Default::default(),
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
        self.target.async_config(&ev.key, &ev.qualifier).await?;
        let request_id = request_id.unwrap_or_else(crate::new_request_id);
        let now = self.clock.now_ms();
        let mut row = AsyncRow {
            request_id: request_id.clone(),
            project: ev.key.project,
            package: ev.key.package,
            name: ev.key.name,
            qualifier: ev.qualifier,
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
            lease: None,
        };
        // Room in the dispatcher's memory: the event is stored RUNNING under this node's lease
        // (in the same write, no extra round trip) and handed over; no claim has to find it.
        let handover = if self.direct_open.load(Ordering::Acquire) {
            self.direct.try_reserve().ok()
        } else {
            None
        };
        if handover.is_some() {
            let lease = Lease {
                owner: self.config.lease.owner.clone(),
                until_ms: self.config.lease.until(now),
                seq: 1,
            };
            self.held.hold(&request_id, &lease);
            row.status = AsyncStatus::Running;
            row.started_ms = Some(now);
            row.lease = Some(lease);
        }
        let (tx, rx) = oneshot::channel();
        let stored = match self.writer.send((row.clone(), tx)).await {
            Ok(()) => rx
                .await
                .map_err(|_| InvokeError::Platform("the async queue writer stopped".into()))
                .and_then(|r| r.map_err(InvokeError::Queue)),
            Err(_) => Err(InvokeError::Platform(
                "the async queue writer stopped".into(),
            )),
        };
        if let Err(e) = stored {
            self.held.release(&request_id);
            return Err(e);
        }
        match handover {
            Some(permit) => permit.send(row),
            None => self.wake.notify_one(),
        }
        Ok(request_id)
    }

    /// Runs the dispatcher until the task is aborted. Nothing is requeued at start: events this
    /// node or another left RUNNING are claimed again when their lease ends.
    pub async fn run(self: Arc<Self>) {
        let renew = tokio::spawn(Arc::clone(&self.held).renew_forever(
            Arc::clone(&self.queue),
            self.config.lease.clone(),
            self.clock,
        ));
        // Stops the renewal with the dispatcher, when its task is aborted.
        let _renew = AbortOnDrop(renew);
        let Some(mut direct) = self.direct_rx.lock().ok().and_then(|mut rx| rx.take()) else {
            tracing::error!("the async dispatcher was started twice");
            return;
        };
        self.direct_open.store(true, Ordering::Release);
        // Claimed events wait here for a slot. Claiming a whole slot's worth at once makes one
        // write transaction per `concurrency` events rather than one per event; their leases
        // are extended while they wait.
        let mut claimed: VecDeque<AsyncRow> = VecDeque::new();
        let batch = self.config.concurrency.max(1);
        let mut last_claim = tokio::time::Instant::now();
        // Whether the queue may hold events due now that this node has not claimed: at start,
        // after a full batch, and when woken. An event handed over in memory is not in the
        // queue: claiming after each (a transaction and a query that find nothing) cost more
        // round trips to a shared PostgreSQL than the event's own writes.
        let mut look = true;
        // When the queue's next event falls due, as learned after the last claim.
        let mut due = tokio::time::Instant::now();
        loop {
            // Events claimed from the queue first (they may be retries that waited), then
            // those handed over in memory; the queue is looked at when it may have events
            // (`look`, or the next one fell due), and at least every CLAIM_EVERY, for events
            // other nodes stored.
            let now_i = tokio::time::Instant::now();
            if claimed.is_empty()
                && (look || now_i >= due || now_i.duration_since(last_claim) >= CLAIM_EVERY)
            {
                last_claim = now_i;
                let now = self.clock.now_ms();
                let owner = &self.config.lease.owner;
                look = false;
                match self
                    .queue
                    .claim(owner, now, self.config.lease.until(now), batch)
                    .await
                {
                    Ok(rows) => {
                        look = rows.len() >= batch;
                        for row in &rows {
                            if let Some(lease) = &row.lease {
                                self.held.hold(&row.request_id, lease);
                            }
                        }
                        claimed.extend(rows);
                    }
                    Err(e) => tracing::error!(error = %e, "claiming async events failed"),
                }
                let wait = match self.queue.next_due().await {
                    Ok(Some(at)) => {
                        Duration::from_millis((at - self.clock.now_ms()).clamp(1, 1000) as u64)
                    }
                    _ => Duration::from_secs(1),
                };
                due = tokio::time::Instant::now() + wait;
            }
            let row = match claimed.pop_front() {
                Some(row) => row,
                None => match direct.try_recv() {
                    Ok(row) => row,
                    Err(_) => {
                        let until = due.min(last_claim + CLAIM_EVERY);
                        tokio::select! {
                            Some(row) = direct.recv() => row,
                            _ = self.wake.notified() => {
                                look = true;
                                continue;
                            }
                            _ = tokio::time::sleep_until(until) => continue,
                        }
                    }
                },
            };
            let Ok(permit) = Arc::clone(&self.slots).acquire_owned().await else {
                return;
            };
            let this = Arc::clone(&self);
            // Events run on every shard, as sync calls do (fgs_pool::shard).
            fgs_pool::shard::spawn(async move {
                this.process(row).await;
                drop(permit);
            });
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
