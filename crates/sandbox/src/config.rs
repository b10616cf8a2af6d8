//! How sandboxes are set up: the caller's [`SandboxConfig`], and the [`Host`] facts the probe
//! resolved from it that preparing each sandbox needs.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cgroup::CgroupLayout;
use crate::subnet::Subnet;
use crate::veth::Bridge;

/// How instances are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Namespaces, cgroups, seccomp, a minimal root: the sandbox.
    Namespaces,
    /// A plain process group on the host: no isolation at all (reported loudly).
    Off,
}

/// Runtimes held per class by default (docs/sandbox.md: each costs its interpreter's memory and
/// a sandbox).
pub const DEFAULT_PRESTART: &[(&str, usize)] = &[("python", 2), ("nodejs", 2)];

/// The sandbox's configuration; defaults match FunctionGraph.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub isolation: Isolation,
    /// Name of the cgroup every instance cgroup is created under, at each hierarchy's root.
    pub cgroup_parent: String,
    /// Host directory for the sandboxes' mount point, namespace files and pasta pid files.
    pub run_dir: PathBuf,
    /// The unprivileged user function processes run as (FunctionGraph uses 1003).
    pub uid: u32,
    pub gid: u32,
    /// Sandboxes kept prepared ahead of need.
    pub prewarm: usize,
    /// Runtimes kept started ahead of need per class (`python`, `nodejs`), for each kind a
    /// caller asked for ([`crate::Sandbox::prestart`]).
    pub prestart: Vec<(String, usize)>,
    /// Give instances egress and `host.fgs.internal` (veth pairs on a bridge as root, else
    /// pasta).
    pub egress: bool,
    /// The bridge of the veth egress (as root); the next free name (`fgs1`...) while another
    /// live fgs has this one.
    pub bridge: String,
    /// The range instance addresses come from; `None`: the first of fgs's candidates that
    /// clashes with no host route.
    pub egress_subnet: Option<Subnet>,
    /// Port of the Runtime API on each instance's own 127.0.0.1 (not 8000 or 8081-8090, which
    /// belong to the function and its extensions, SPEC.md 5).
    pub api_port: u16,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            isolation: Isolation::Namespaces,
            cgroup_parent: "fgs".into(),
            run_dir: PathBuf::from("/run/fgs"),
            uid: 1003,
            gid: 1003,
            prewarm: 2,
            prestart: DEFAULT_PRESTART
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            egress: true,
            bridge: "fgs0".into(),
            egress_subnet: None,
            api_port: 9001,
        }
    }
}

/// The configuration as the probe settled it (a rootless run dir, egress off when it
/// failed), with what it found; shared by the [`crate::Sandbox`] and every prepared sandbox.
#[derive(Debug)]
pub(crate) struct Host {
    pub cfg: SandboxConfig,
    /// Isolated without root: in a user namespace of each sandbox's own.
    pub rootless: bool,
    pub layout: CgroupLayout,
    /// The bridge instances get veth pairs on (as root), else pasta (or neither: no egress).
    pub bridge: Option<Arc<Bridge>>,
    pub pasta: Option<PathBuf>,
    /// The binary whose `__sandbox-exec` is the shim.
    pub exe: PathBuf,
    /// `/etc/hosts` of every instance.
    pub hosts: String,
}
