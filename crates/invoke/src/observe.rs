//! Watching invocations finish: what the platform records about each one (stored logs, and
//! whatever else wants to count them) without slowing the invocation down.

use std::time::SystemTime;

use fgs_instance::InvokeType;

use crate::{FunctionKey, Outcome};

/// One finished invocation, as observers see it.
#[derive(Debug)]
pub struct Finished<'a> {
    pub key: &'a FunctionKey,
    pub outcome: &'a Outcome,
    pub invoke_type: InvokeType,
    /// Wall-clock time the invocation finished.
    pub ended: SystemTime,
}

/// Told of every invocation that produced an [`Outcome`] (success or function error), on the
/// invoking task, right before its caller gets the outcome. It must not block or await: take what
/// it needs and hand it to a task of its own (e.g. through a bounded channel with `try_send`).
pub trait InvocationObserver: Send + Sync + 'static {
    fn finished(&self, f: &Finished<'_>);
}
