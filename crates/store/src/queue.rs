//! The async invocation queue: durable accepted events, claimed by a node under a lease.
//!
//! An event is `WAIT` (queued, due at `next_attempt_ms`), `RUNNING` (leased to one owner until
//! `leased_until`), or finished (`SUCCESS`, `FAIL`, `DISCARD`). A lease is identified by its owner
//! and a sequence number that grows with every claim of the event, so that a run whose lease ran
//! out and was claimed again (by another node, or by the same node after a restart) cannot write
//! its late outcome over the new run's. The request id is the idempotency key: a finished event is
//! never claimed again.

use fgs_core::flows::AsyncStatus;
use fgs_core::Qualifier;

use crate::traits::StoreFuture;
use crate::StoreError;

/// The lease an event runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node that holds it (`--node-id`).
    pub owner: String,
    /// Unix milliseconds after which another claim may take the event.
    pub until_ms: i64,
    /// Grows with every claim of the event: which of its runs holds the lease.
    pub seq: i64,
}

/// One async invocation as queued.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncRow {
    pub request_id: String,
    pub project: String,
    pub package: String,
    pub name: String,
    /// The version field as invoked.
    pub qualifier: Qualifier,
    pub status: AsyncStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub error_code: Option<u32>,
    pub error_message: String,
    pub body: Vec<u8>,
    /// JSON object of extra facts (e.g. what submitted the event).
    pub extra: String,
    /// Set while `RUNNING`: who runs it and until when.
    pub lease: Option<Lease>,
}

/// Which async invocations of a function to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AsyncFilter {
    pub project: String,
    pub package: String,
    pub name: String,
    pub request_id: Option<String>,
    pub status: Option<AsyncStatus>,
    pub begin_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub marker: u64,
    pub limit: u64,
}

/// The durable queue of async invocations, shared by every node of a store.
pub trait AsyncQueue: Send + Sync + std::fmt::Debug {
    /// Stores accepted events, one result per row (an unknown function or a request id already
    /// queued fails that row only), durably before it returns: the caller answers 202 after.
    /// A row is `WAIT`, or `RUNNING` with its lease when the accepting node runs it at once.
    fn accept(&self, rows: Vec<AsyncRow>) -> StoreFuture<'_, Vec<Result<(), StoreError>>>;

    /// Leases up to `limit` events to `owner` until `until_ms`, oldest due first: `WAIT` events
    /// due at `now_ms`, and `RUNNING` events whose lease ended by `now_ms` (their owner stopped
    /// or lost touch). Never an event another lease still holds, never a finished one. The
    /// returned rows carry their new lease.
    fn claim<'a>(
        &'a self,
        owner: &'a str,
        now_ms: i64,
        until_ms: i64,
        limit: usize,
    ) -> StoreFuture<'a, Vec<AsyncRow>>;

    /// Moves the given leases of `owner` (`(request_id, seq)`) to `until_ms`; per lease, whether
    /// it was still held (false: it ended and another claim may have taken the event).
    fn extend<'a>(
        &'a self,
        owner: &'a str,
        leases: Vec<(String, i64)>,
        until_ms: i64,
    ) -> StoreFuture<'a, Vec<bool>>;

    /// Records the outcome of runs, each under the lease in its `lease` field: complete or fail
    /// (`SUCCESS`, `FAIL`, `DISCARD`, with `ended_ms`), or retry at a given time (`WAIT` with
    /// `next_attempt_ms`). The lease ends either way. A row whose lease is no longer held (its
    /// owner or sequence changed, or it is no longer `RUNNING`) is left as it is: per row,
    /// whether it was written. May be relaxed about durability (a lost outcome runs the event
    /// again, which at-least-once allows).
    fn settle(&self, rows: Vec<AsyncRow>) -> StoreFuture<'_, Vec<bool>>;

    /// When the dispatcher next has work: the earliest due time of a `WAIT` event or end of a
    /// `RUNNING` event's lease.
    fn next_due(&self) -> StoreFuture<'_, Option<i64>>;

    /// How many events wait (`WAIT`) and when the oldest was accepted, for the queue metrics.
    fn stats(&self) -> StoreFuture<'_, (u64, Option<i64>)>;

    /// One page of a function's events, newest first, and how many match in total.
    fn list(&self, filter: AsyncFilter) -> StoreFuture<'_, (Vec<AsyncRow>, u64)>;

    /// Cancels a `WAIT` event (it becomes `DISCARD`); returns the status it had. Running and
    /// finished events are left as they are (`AsyncNotFound` if there is no such event).
    fn cancel<'a>(
        &'a self,
        project: &'a str,
        package: &'a str,
        name: &'a str,
        request_id: &'a str,
        now_ms: i64,
    ) -> StoreFuture<'a, AsyncStatus>;
}
