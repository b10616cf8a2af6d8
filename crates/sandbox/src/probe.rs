//! What isolation this host can give, found once at start-up and reported in the log and in
//! `GET /healthz` (`isolation`). What cannot be enforced is listed in `warnings`, never skipped
//! silently (ARCHITECTURE.md invariants).

use std::path::Path;

use serde::Serialize;

use crate::cgroup::{CgroupLayout, Source};

/// How instances end up isolated on this host (`isolation.mode` in `GET /healthz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationMode {
    /// The full sandbox, as root.
    Namespaces,
    /// The same namespaces inside a user namespace per sandbox, without root.
    Rootless,
    /// None: `--sandbox off`, or namespaces unavailable.
    ProcessGroup,
}

impl IsolationMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            IsolationMode::Namespaces => "namespaces",
            IsolationMode::Rootless => "rootless",
            IsolationMode::ProcessGroup => "process-group",
        }
    }
}

impl std::fmt::Display for IsolationMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The probe's findings and what the sandbox does with them.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationReport {
    /// Rootless, see `not_enforced` for what the cgroups cannot limit.
    pub mode: IsolationMode,
    /// Limits the sandbox cannot enforce here (`memory`, `cpu`, `pids`); each also has a
    /// warning saying why.
    pub not_enforced: Vec<&'static str>,
    pub root: bool,
    pub namespaces: Namespaces,
    pub cgroups: CgroupReport,
    pub seccomp: bool,
    /// `veth` (as root), `pasta` (without root, or as root without nftables) or `none`.
    pub egress: &'static str,
    /// The bridge of the veth egress, and the range its instances' addresses come from.
    pub bridge: Option<String>,
    pub egress_subnet: Option<String>,
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
    /// Whether this user may make user namespaces (always true for root where the kernel has
    /// them).
    pub user: bool,
    /// Why an unprivileged user may not, when it may not.
    #[serde(skip)]
    pub(crate) user_unprivileged: Result<(), String>,
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
        let user_unprivileged = if ns("user") {
            unprivileged_userns(|f| std::fs::read_to_string(f).ok())
        } else {
            Err("the kernel has no user namespaces".into())
        };
        let user = ns("user") && (is_root() || user_unprivileged.is_ok());
        Namespaces {
            mount: ns("mnt"),
            pid: ns("pid"),
            net: ns("net"),
            uts: ns("uts"),
            ipc: ns("ipc"),
            cgroup: ns("cgroup"),
            user,
            user_unprivileged,
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

/// Whether the kernel lets an unprivileged user make user namespaces, from the sysctls that
/// forbid it: the upstream limit, Debian's and Ubuntu's switches. The shim still has the last
/// word: the self-test at start-up tries one.
fn unprivileged_userns(read: impl Fn(&str) -> Option<String>) -> Result<(), String> {
    let num = |f: &str| read(f).and_then(|s| s.trim().parse::<u64>().ok());
    if num("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    if num("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
        return Err(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                .into(),
        );
    }
    if num("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
        return Err("AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)".into());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_keep_their_reported_names() {
        for (mode, name) in [
            (IsolationMode::Namespaces, "namespaces"),
            (IsolationMode::Rootless, "rootless"),
            (IsolationMode::ProcessGroup, "process-group"),
        ] {
            assert_eq!(mode.to_string(), name);
            assert_eq!(serde_json::to_value(mode).unwrap(), name);
        }
    }

    #[test]
    fn unprivileged_user_namespaces_by_sysctl() {
        let host = |vals: &'static [(&'static str, &'static str)]| {
            move |f: &str| {
                vals.iter()
                    .find(|(k, _)| f.ends_with(k))
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(unprivileged_userns(host(&[("max_user_namespaces", "96365\n")])).is_ok());
        // Debian's switch is absent on this kernel: that is not a refusal.
        assert!(unprivileged_userns(host(&[])).is_ok());
        let e = unprivileged_userns(host(&[
            ("max_user_namespaces", "96365"),
            ("unprivileged_userns_clone", "0"),
        ]))
        .unwrap_err();
        assert!(e.contains("unprivileged_userns_clone"), "{e}");
        assert!(unprivileged_userns(host(&[("max_user_namespaces", "0")])).is_err());
        assert!(
            unprivileged_userns(host(&[("apparmor_restrict_unprivileged_userns", "1")])).is_err()
        );
    }
}
