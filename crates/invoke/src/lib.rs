//! Invocation, below the HTTP api: resolving a function reference to the version that serves it
//! ([`source::find`] is the one place a qualifier becomes a stored record, [`StoreSource`] adds
//! the unpacked code and dependencies), admission through that version's pool, handing the event
//! to an instance, and the outcome a caller sees (result or function error, log, durations,
//! memory), recorded in metrics and, through [`log_store`], in storage. Resolutions are cached so
//! that a warm invocation never touches storage; the [`Invoker`] follows the change feed
//! ([`Invoker::follow`]) to forget what changed. It knows no HTTP wire shapes and no SQL.
//!
//! Inside the [`Invoker`]: `resolve` (cache and alias routing), `pools` (the pool per function
//! version), `record` (log text, metrics, observers), `trace` (the OpenTelemetry spans of
//! functions whose tracing is on, when a [`Tracer`] is set), and [`Instances`] (where instances
//! come from: the sandbox, or fakes in tests).
#![forbid(unsafe_code)]

mod async_dispatch;
pub mod cluster;
mod env;
mod instances;
mod invoker;
mod launcher;
pub mod log_store;
mod logline;
mod observe;
mod pools;
mod record;
mod request_id;
mod resolve;
pub mod source;
mod trace;

pub use async_dispatch::{
    now_ms, AsyncConfig, AsyncDispatcher, AsyncTarget, LeaseConfig, NewEvent, LEASE_LENGTH,
    LEASE_RENEW,
};
pub use fgs_instance::InvokeType;
pub use fgs_store::FunctionKey;
pub use instances::{Instances, Runs, Sandboxed, StartFailure};
pub use invoker::{InvokeError, InvokeOptions, Invoker, InvokerConfig, Outcome};
pub use observe::{Finished, InvocationObserver};
pub use request_id::new_request_id;
pub use resolve::{FunctionSource, Resolution, ResolveError, ResolvedFunction};
pub use source::StoreSource;
pub use trace::{traces_url, TraceSetupError, Tracer};

/// An error with its chain of causes, for messages users and logs read.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
