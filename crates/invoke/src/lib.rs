//! Invocation: resolving a function reference to the configuration that serves it, admission
//! through that version's pool, handing the event to an instance, and the outcome a caller sees
//! (result or function error, log, durations, memory). It keeps resolved functions cached so that
//! a warm invocation never touches storage; whoever changes a function calls
//! [`Invoker::function_changed`]. It knows no HTTP wire shapes and no SQL: functions come from a
//! [`FunctionSource`] the binary wires to storage.
#![forbid(unsafe_code)]

mod async_dispatch;
mod env;
mod invoker;
mod launcher;
mod logline;
mod observe;
mod request_id;

pub use async_dispatch::{
    now_ms, AsyncConfig, AsyncDispatcher, AsyncTarget, LeaseConfig, NewEvent, LEASE_LENGTH,
    LEASE_RENEW,
};
pub use fgs_instance::InvokeType;
pub use invoker::{
    FunctionKey, FunctionSource, InvokeError, InvokeOptions, Invoker, InvokerConfig, Outcome,
    Resolution, ResolveError, ResolvedFunction,
};
pub use observe::{Finished, InvocationObserver};
pub use request_id::new_request_id;
