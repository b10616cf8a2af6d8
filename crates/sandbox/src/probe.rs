//! What isolation this host can give, found once at start-up and reported in the log and in
//! `GET /healthz` (`isolation`). What cannot be enforced is listed in `warnings`, never skipped
//! silently (ARCHITECTURE.md invariants).

use std::path::Path;

use serde::Serialize;

use crate::cgroup::{CgroupLayout, Source};

/// The probe's findings and what the sandbox does with them.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationReport {
    /// `namespaces` (the full sandbox) or `process-group` (none: `--sandbox off` or unavailable).
    pub mode: &'static str,
    pub root: bool,
    pub namespaces: Namespaces,
    pub cgroups: CgroupReport,
    pub seccomp: bool,
    /// `pasta` or `none`.
    pub egress: &'static str,
    /// The address `host.fgs.internal` names inside instances, when egress works.
    pub host_address: Option<String>,
    pub uid: u32,
    pub gid: u32,
    pub prewarm: usize,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Namespaces {
    pub mount: bool,
    pub pid: bool,
    pub net: bool,
    pub uts: bool,
    pub ipc: bool,
    pub cgroup: bool,
    pub user: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CgroupReport {
    /// `v1`, `v2`, `hybrid` or `none`.
    pub layout: &'static str,
    pub memory: Source,
    pub pids: Source,
    pub cpu: Source,
    /// Whether a whole instance is killed with one write to `cgroup.kill`.
    pub kill: bool,
    /// The parent every instance cgroup is created under, per hierarchy.
    pub parents: Vec<String>,
}

impl Namespaces {
    pub(crate) fn probe() -> Namespaces {
        let ns = |n: &str| Path::new("/proc/self/ns").join(n).exists();
        let user = ns("user")
            && std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0);
        Namespaces {
            mount: ns("mnt"),
            pid: ns("pid"),
            net: ns("net"),
            uts: ns("uts"),
            ipc: ns("ipc"),
            cgroup: ns("cgroup"),
            user,
        }
    }

    pub(crate) fn all_but_user(&self) -> bool {
        self.mount && self.pid && self.net && self.uts && self.ipc && self.cgroup
    }
}

impl CgroupReport {
    pub(crate) fn new(layout: &CgroupLayout, parent: &str) -> CgroupReport {
        CgroupReport {
            layout: layout.kind(),
            memory: layout.memory(),
            pids: layout.pids(),
            cpu: layout.cpu(),
            kill: layout.has_kill(parent),
            parents: layout
                .parent_dirs(parent)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        }
    }
}

/// Whether the kernel offers seccomp filters.
pub(crate) fn seccomp_available() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false)
        && Path::new("/proc/sys/kernel/seccomp/actions_avail").exists()
}

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
