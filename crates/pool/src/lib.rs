//! Instances per function version: concurrency slots, cold and warm starts, scale-out up to the
//! function's max instances, a bounded queue of callers when every allowed instance is busy,
//! reserved instances kept started ahead, and idle reclaim. It knows nothing of HTTP or of how
//! an instance runs: it manages [`Worker`]s a [`Launcher`] makes, so its rules are tested with
//! paused time and fake workers.
#![forbid(unsafe_code)]

mod pool;
pub mod shard;

pub use pool::{AcquireError, Launcher, Lease, Limits, Pool, PoolStats, Worker};
