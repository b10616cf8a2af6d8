//! Linux isolation of one instance: namespaces (mount, pid, net, uts, ipc, cgroup), cgroups (v1,
//! v2 and the hybrid layout), a minimal read-only root with a private `/tmp`, rlimits, an
//! unprivileged uid, `no_new_privs` and seccomp, and egress (a veth pair per sandbox on a bridge
//! fgs owns as root, pasta without root). It also probes what
//! the host can give and reports it. This is the only crate that touches namespaces, cgroups and
//! signals, and the only one with `unsafe`. It knows nothing of functions or HTTP: callers hand
//! it a program, an environment, directories and limits, and get back a running process tree
//! they can end as a whole.
//!
//! An instance's life here has two steps: [`Sandbox::prepare`] makes the place the instance will
//! run in (a shim waiting in fresh namespaces and cgroups, with the instance's Runtime API
//! listener already bound on its own loopback), and [`Prepared::spawn`] starts the runtime inside
//! it. Sandboxes are prepared ahead of need (`prewarm`), so a cold start pays only for `spawn`.
//! Runtimes can be started ahead too ([`Sandbox::prestart`], [`Prepared::spawn_held`]): held on
//! fd 3 with no code until [`Running::specialize`] attaches a function's trees, sets its limits
//! and hands it its message.
//! The privileged set-up runs in `fgs __sandbox-exec` ([`shim_main`]), a single-threaded re-exec
//! of the binary, never in the async server. Once the runtime runs, what stays of the sandbox
//! (the namespace's init and the shim waiting for it) is `fgs-init`, a 2 KB program of its own
//! that `build.rs` compiles and fgs embeds (`src/tiny.rs`).

mod cgroup;
mod config;
mod ctl;
mod egress;
mod error;
mod netlink;
mod prestart;
mod probe;
mod process;
mod rootless;
mod sandbox;
mod shim;
mod spec;
mod subnet;
mod sys;
mod tiny;
mod veth;

pub use cgroup::Source as CgroupSource;
pub use config::{Isolation, SandboxConfig, DEFAULT_PRESTART};
pub use error::SandboxError;
pub use nix::sys::signal::Signal;
pub use prestart::Prestarted;
pub use probe::{IsolationMode, IsolationReport};
pub use process::{Prepared, ProcessHandle, Running, Specialization};
pub use sandbox::Sandbox;
pub use shim::main as shim_main;
pub use spec::{ExecSpec, ImageRoot, ResourceLimits, CODE_ROOT, DEPENDENCY_ROOT, RUNTIME_ROOT};
pub use subnet::{BadSubnet, Subnet};

/// The first argument that makes `fgs` run as a sandbox shim ([`shim_main`]).
pub const SHIM_ARG: &str = "__sandbox-exec";
