//! What differs when fgs runs without root: where the sandboxes' files go, and which cgroups
//! (none, on most hosts) an unprivileged user may use.
//!
//! The namespaces themselves are the same as root's, made inside a user namespace per sandbox
//! (`shim::userns`). cgroups are not: v1 hierarchies and the v2 root belong to root, and a
//! non-root user only ever gets a delegated v2 subtree (systemd's `Delegate=yes` on a user
//! service or scope). When fgs runs in one, instance cgroups go there (with `cgroup.kill`, and
//! with memory, pids and cpu limits where the subtree offers those controllers); otherwise
//! memory and cpu limits are not enforced, and each is reported, and processes are bounded by
//! `RLIMIT_NPROC` instead of `pids.max`.

use std::path::{Path, PathBuf};

use crate::cgroup::CgroupLayout;

/// The cgroup layout rootless sandboxes use: the delegated v2 subtree fgs runs in, if this user
/// may write it, with whichever of memory, pids and cpu it could enable there; else none. The
/// warnings say why when there is none.
pub(crate) fn cgroups(parent: &str, warnings: &mut Vec<String>) -> CgroupLayout {
    let Some((own, controllers)) = delegated_v2() else {
        warnings.push(format!(
            "rootless: no cgroup is writable by uid {}: the hierarchies belong to root and no cgroup v2 subtree is delegated to this user",
            nix::unistd::geteuid()
        ));
        return CgroupLayout::default();
    };
    let enabled = enable_controllers(&own, parent, &controllers).unwrap_or_else(|e| {
        warnings.push(format!(
            "rootless: the delegated cgroup v2 subtree {} offers {} but they cannot be enabled for instances ({e}): fgs shares its cgroup with other processes",
            own.display(),
            controllers.join(" ")
        ));
        Vec::new()
    });
    tracing::info!(
        subtree = %own.display(),
        controllers = ?enabled,
        "rootless: instance cgroups go into the delegated cgroup v2 subtree"
    );
    CgroupLayout {
        unified: Some(own),
        unified_controllers: enabled,
        ..CgroupLayout::default()
    }
}

/// Enables the wanted controllers of `own` for its children. cgroup v2 lets no cgroup with
/// processes in it do that, so fgs first moves itself into a leaf `<parent>-server` of its own
/// subtree (as rootless container engines do). Returns the controllers enabled.
fn enable_controllers(
    own: &Path,
    parent: &str,
    offered: &[String],
) -> std::io::Result<Vec<String>> {
    let wanted: Vec<String> = offered
        .iter()
        .filter(|c| ["memory", "pids", "cpu"].contains(&c.as_str()))
        .cloned()
        .collect();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let leaf = own.join(format!("{parent}-server"));
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    // Writing the pid moves every thread of fgs (cgroup v2 moves whole processes).
    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())?;
    let line: Vec<String> = wanted.iter().map(|c| format!("+{c}")).collect();
    std::fs::write(own.join("cgroup.subtree_control"), line.join(" "))?;
    Ok(wanted)
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
