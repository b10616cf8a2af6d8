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

pub use async_dispatch::{now_ms, AsyncConfig, AsyncDispatcher, NewEvent};
pub use fgs_instance::InvokeType;
pub use invoker::{
    FunctionKey, FunctionSource, InvokeError, InvokeOptions, Invoker, InvokerConfig, Outcome,
    Resolution, ResolveError, ResolvedFunction,
};
pub use observe::{Finished, InvocationObserver};

/// A new invocation's request id: a UUID of version 7, whose first 48 bits are the time in
/// milliseconds. [FGS] FunctionGraph's ids are random (version 4); time-ordered ids keep the
/// invocation log's request-id index growing at its end instead of at random pages, which
/// halves the cost of storing a warm call's log (bench/README.md), and they sort by start.
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_time_ordered_uuids() {
        let ids: Vec<String> = (0..100).map(|_| super::new_request_id()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} then {}", w[0], w[1]);
        }
        let id = uuid::Uuid::parse_str(&ids[0]).expect("a UUID");
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(ids[0].len(), 36);
    }
}
