//! How an invocation ended, the one fact both the live counters ([`crate::Series`]) and the
//! per-minute history count by.

/// How one invocation ended, as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The function failed with this code (SPEC.md 3).
    Error(u32),
    /// Refused with 429: every allowed instance busy and the queue full, or disabled.
    Throttled,
    /// fgs could not give the invocation an instance.
    SystemError,
}
