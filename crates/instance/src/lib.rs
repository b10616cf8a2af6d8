//! The life of one instance: starting a runtime in a sandbox, serving that instance's own
//! Runtime API (and later its Extension and Telemetry APIs) on the instance's loopback, handing
//! it events one at a time (or `concurrent_num` at a time), capturing its output and attributing
//! it to request ids, and ending it. It knows nothing of pools, other instances or SQL: a pool
//! decides when instances start and stop, this crate makes one work.
#![forbid(unsafe_code)]

mod adapters;
mod binary;
mod config;
mod environment;
mod error;
mod event_headers;
mod extensions;
mod fn_server;
mod go_fn;
mod gob;
mod http_fn;
mod image_fn;
mod instance;
mod loopback;
mod output;
mod prestart;
mod runtime_api;
mod runtime_paths;
mod runtimes;
mod telemetry;

pub use config::{FunctionEnv, Hook, ImageRun, InstanceConfig, InvokeType, Request};
pub use error::StartError;
pub use extensions::{ExtensionSpan, ExtensionTimings};
pub use instance::{InitializerRun, Instance, Reply};
pub use runtime_paths::runtime_mounts;
pub use runtimes::{
    compile_java_shim, compile_python_shim, discover, install_shims, DiscoverOptions,
};
