//! What a caller hands the sandbox to run: [`ExecSpec`] with its [`ResourceLimits`], and where
//! the function's trees appear inside an isolated instance.

use std::path::PathBuf;

/// Where the function's code appears inside a sandbox (SPEC.md 4: `RUNTIME_CODE_ROOT`).
pub const CODE_ROOT: &str = "/opt/function/code";
/// Where runtime shims (Python, Node.js) are mounted.
pub const RUNTIME_ROOT: &str = "/opt/function/runtime";
/// Where dependencies are mounted (SPEC.md 4).
pub const DEPENDENCY_ROOT: &str = "/opt/function/dependency";

/// The limits of one instance (SPEC.md 6), as numbers: the caller's typed values, never parsed
/// back from the environment the function sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Memory limit, without swap.
    pub memory_mb: u32,
    /// CPU quota in thousandths of a core, applied once the instance is ready.
    pub cpu_millicores: u32,
    /// Processes and threads of the instance together.
    pub pids: u32,
}

/// What to run in a prepared sandbox. Paths in `program` and `cwd` are as the runtime sees them
/// ([`crate::Sandbox::code_root`]).
#[derive(Debug, Clone)]
pub struct ExecSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The complete environment, rendered by the caller; nothing of fgs's own environment
    /// leaks in.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The code on the host, mounted read-only at [`CODE_ROOT`].
    pub code_dir: PathBuf,
    /// More read-only mounts `(host path, sandbox path)`: runtime shims, dependencies.
    pub mounts: Vec<(PathBuf, PathBuf)>,
    pub limits: ResourceLimits,
    /// Whether the instance may reach beyond its own loopback.
    pub network: bool,
    /// An image function: its root file system instead of the host's trees.
    pub image: Option<ImageRoot>,
}

/// The root of an image function's instance: the image's unpacked root read-only under a
/// private writable layer (an overlay on a tmpfs, sized like `/tmp`), with the sandbox's own
/// `/dev`, `/tmp`, `/proc` and `/etc/hosts`, and the ids the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRoot {
    /// The unpacked root on the host, never written to.
    pub rootfs: PathBuf,
    pub uid: u32,
    pub gid: u32,
}
