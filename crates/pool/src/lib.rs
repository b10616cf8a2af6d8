//! Instances per function version: concurrency slots, cold and warm starts, scale-out up to the
//! function's max instances, a bounded queue of callers when every allowed instance is busy,
//! reserved instances kept started ahead, and idle reclaim; in a cluster, a [`Gate`] counts the
//! instances of every node against the same limit (instances started while a pool had none
//! claim their places when it gets one). It knows nothing of HTTP or of how an
//! instance runs: it manages [`Worker`]s a [`Launcher`] makes, so its rules are tested with
//! paused time and fake workers.
#![forbid(unsafe_code)]

mod gate;
mod pool;
pub mod shard;

pub use gate::{Admission, Gate, Ticket, GATE_RETRY};
pub use pool::{AcquireError, Launcher, Lease, Limits, Pool, PoolStats, Worker, FULL_HINT};
