//! What differs when fgs runs without root: where the sandboxes' files go, and which cgroups
//! (none, on most hosts) an unprivileged user may use.
//!
//! The namespaces themselves are the same as root's, made inside a user namespace per sandbox
//! (`shim::userns`). cgroups are not: v1 hierarchies and the v2 root belong to root, and a
//! non-root user only ever gets a delegated v2 subtree (systemd's `Delegate=yes` on a user
//! service or scope). fgs does not yet create instance cgroups inside such a subtree: it would
//! first have to move itself into a leaf of it (v2 lets no cgroup with processes delegate
//! controllers to children). So rootless memory and cpu limits are not enforced, and each
//! is reported; processes are bounded by `RLIMIT_NPROC` instead of `pids.max`.

use std::path::{Path, PathBuf};

use crate::cgroup::CgroupLayout;

/// The cgroup layout rootless sandboxes use: none. The warnings say why, and name a delegated
/// subtree when the host offers one.
pub(crate) fn cgroups(warnings: &mut Vec<String>) -> CgroupLayout {
    let uid = nix::unistd::geteuid();
    let why = match delegated_v2() {
        Some((dir, controllers)) => format!(
            "the delegated cgroup v2 subtree {} (controllers: {}) is writable, but fgs does not place instances in one yet",
            dir.display(),
            if controllers.is_empty() { "none".into() } else { controllers.join(" ") }
        ),
        None => format!(
            "no cgroup is writable by uid {uid}: the hierarchies belong to root and no cgroup v2 subtree is delegated to this user"
        ),
    };
    warnings.push(format!(
        "rootless: {why}; memory, cpu and pids cgroup limits are not enforced"
    ));
    CgroupLayout::default()
}

/// fgs's own cgroup on the unified hierarchy, with its controllers, if this user may write it.
fn delegated_v2() -> Option<(PathBuf, Vec<String>)> {
    let layout = CgroupLayout::detect();
    let unified = layout.unified?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = unified.join(rel.trim_start_matches('/'));
    let writable = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    if !(writable(&dir) && writable(&dir.join("cgroup.procs"))) {
        return None;
    }
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Some((dir, controllers))
}

/// Where rootless sandboxes keep their mount point and pasta pid files: the configured run dir
/// when this user may create it, else `$XDG_RUNTIME_DIR/fgs`, else `<temp dir>/fgs-<uid>`.
pub(crate) fn run_dir(configured: &Path) -> PathBuf {
    let usable = |d: &Path| {
        std::fs::create_dir_all(d).is_ok()
            && nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok()
    };
    if usable(configured) {
        return configured.to_path_buf();
    }
    let fallback = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !x.is_empty() => PathBuf::from(x).join("fgs"),
        _ => std::env::temp_dir().join(format!("fgs-{}", nix::unistd::geteuid())),
    };
    if std::fs::create_dir_all(&fallback).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        // Other users must not reach the sandboxes' mount point or pid files.
        let _ = std::fs::set_permissions(&fallback, std::fs::Permissions::from_mode(0o700));
    }
    tracing::info!(
        run_dir = %fallback.display(),
        "the sandbox run dir {} is not writable without root; using another",
        configured.display()
    );
    fallback
}
