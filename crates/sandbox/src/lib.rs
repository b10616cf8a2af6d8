//! Linux isolation of one instance: the process tree a runtime runs in, how it is started and how
//! it is ended. This is the only crate that touches namespaces, cgroups and signals, and the only
//! one with `unsafe`. It knows nothing of functions or HTTP: callers hand it a program, an
//! environment and directories, and get back a running process tree they can end as a whole.
//!
//! An instance's life here has two steps: [`Sandbox::prepare`] makes the place the instance will
//! run in (today: the loopback listener its Runtime API is served on), and [`Prepared::spawn`]
//! starts the runtime inside it. Keeping the steps apart lets later code prepare sandboxes ahead
//! of need.

mod process;

pub use nix::sys::signal::Signal;
pub use process::{ExecSpec, Prepared, ProcessHandle, Running, Sandbox, SandboxError};
