//! Recording the outcome of one invocation: the log text around the runtime's output, the
//! metrics series of the version that ran, and the observers told of every finished invocation.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use fgs_core::FunctionError;
use fgs_instance::{InvokeType, Reply};
use fgs_metrics::{self as metrics, Series};

use crate::observe::{Finished, InvocationObserver};
use crate::{logline, FunctionKey, Outcome, ResolvedFunction};

/// The metrics series of the version a resolution names.
pub(crate) fn series(r: &ResolvedFunction) -> Arc<Series> {
    metrics::global().series(
        &r.record.project,
        &r.record.package,
        &r.record.name,
        &r.version,
    )
}

/// The outcome of an invocation whose instance failed to start as the function's fault.
pub(crate) fn start_failed(
    series: &Series,
    request_id: String,
    r: &ResolvedFunction,
    fe: FunctionError,
) -> Outcome {
    series.refused(metrics::Outcome::Error(fe.code));
    let mut log = logline::start(&request_id, &r.version);
    logline::note(&mut log, &fe.message);
    Outcome {
        request_id,
        result: Err(fe),
        log,
        duration: Duration::ZERO,
        billed_ms: 0,
        memory_size_mb: r.record.spec.memory_size,
        memory_used_mb: 0.0,
        cold: true,
        version: r.version.clone(),
    }
}

/// The outcome of an invocation an instance ran: its log between the platform's start line
/// (`log`, [`logline::start`], written when the instance took the event) and finish line,
/// billed time, and the version's metrics.
pub(crate) fn ran(
    series: &Series,
    request_id: String,
    r: &ResolvedFunction,
    mut log: Vec<u8>,
    reply: Reply,
    duration: Duration,
    cold_start: Option<Duration>,
) -> Outcome {
    let memory_size = r.record.spec.memory_size;
    let billed_ms = (duration.as_micros() as u64).div_ceil(1000).max(1);
    let memory_used_mb = reply.memory_used_bytes as f64 / (1024.0 * 1024.0);
    log.extend_from_slice(&reply.log);
    if let Err(e) = &reply.result {
        logline::note(&mut log, &e.message);
    }
    logline::finish(
        &mut log,
        &request_id,
        reply.result.is_ok(),
        duration,
        billed_ms,
        memory_used_mb,
        memory_size,
    );
    series.ran(
        match &reply.result {
            Ok(_) => metrics::Outcome::Success,
            Err(e) => metrics::Outcome::Error(e.code),
        },
        duration,
        cold_start,
        billed_ms,
        memory_size,
    );
    Outcome {
        request_id,
        result: reply.result,
        log,
        duration,
        billed_ms,
        memory_size_mb: memory_size,
        memory_used_mb,
        cold: cold_start.is_some(),
        version: r.version.clone(),
    }
}

/// Who is told of every finished invocation; added at start-up, read on every invocation.
#[derive(Default)]
pub(crate) struct Observers(RwLock<Vec<Arc<dyn InvocationObserver>>>);

impl Observers {
    pub(crate) fn add(&self, o: Arc<dyn InvocationObserver>) {
        self.0
            .write()
            .expect("observer lock is never poisoned")
            .push(o);
    }

    pub(crate) fn finished(&self, key: &FunctionKey, outcome: &Outcome, invoke_type: InvokeType) {
        let observers = self.0.read().expect("observer lock is never poisoned");
        if observers.is_empty() {
            return;
        }
        let f = Finished {
            key,
            outcome,
            invoke_type,
            ended: SystemTime::now(),
        };
        for o in observers.iter() {
            o.finished(&f);
        }
    }
}
