//! Domain types of fgs: functions, URNs in all their shortened forms, runtimes, limits, the
//! statistics' per-minute counts and the validation of everything a user may send. This crate does no I/O of any kind: it is the shared
//! vocabulary of the other crates, and its parsers are safe to feed hostile input.
//!
//! Wire codes (`FSS.xxxx`) are not known here: errors are typed, and `fgs-api` maps them.
#![forbid(unsafe_code)]

pub mod async_config;
pub mod dependency;
pub mod flows;
pub mod func_error;
pub mod function;
pub mod image;
pub mod limits;
pub mod runtime;
pub mod stats;
pub mod tags;
pub mod trigger;
pub mod urn;
pub mod validate;

pub use func_error::FunctionError;
pub use function::{
    CodeInfo, CodeType, FunctionRecord, FunctionSpec, StrategyConfig, DEFAULT_PACKAGE,
};
pub use runtime::Runtime;
pub use urn::{FunctionRef, Qualifier, UrnError};
pub use validate::Invalid;
