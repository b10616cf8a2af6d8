//! The sandbox's minimal root file system, built in the shim's private mount namespace.
//!
//! A tmpfs root holds: the host's `/usr`, `/bin`, `/sbin`, `/lib*` and `/etc` read-only (or the
//! same symlinks where the host has merged /usr), a minimal `/dev`, a private 512 MB `/tmp`
//! (SPEC.md 4 and 6), `/etc/hosts` naming `host.fgs.internal`, and at spawn the read-only mounts of
//! the code, runtime shims and dependencies under `/opt/function`. Nothing else of the host is
//! there: not the data dir, not home directories.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::pivot_root;

use super::{Ctx, ShimResult};
use crate::ctl::ShimConfig;

/// Host trees every runtime needs: interpreters, libraries, certificates and resolver config.
const HOST_TREES: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn flags_ro() -> MsFlags {
    MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
}

/// Bind-mounts `src` read-only at `dst`, creating the mount point (a file for a file).
pub(crate) fn bind_ro(src: &Path, dst: &Path) -> ShimResult<()> {
    let meta = fs::metadata(src).ctx(|| format!("stat {}", src.display()))?;
    if meta.is_dir() {
        fs::create_dir_all(dst).ctx(|| format!("mkdir {}", dst.display()))?;
    } else {
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).ctx(|| format!("mkdir {}", p.display()))?;
        }
        if !dst.exists() {
            fs::write(dst, b"").ctx(|| format!("create {}", dst.display()))?;
        }
    }
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} at {}", src.display(), dst.display()))?;
    mount(
        None::<&str>,
        dst,
        None::<&str>,
        flags_ro() | locked_flags(dst),
        None::<&str>,
    )
    .ctx(|| format!("remount {} read-only", dst.display()))?;
    Ok(())
}

/// The flags a bind mount keeps from its source. In a user namespace (rootless) a mount that
/// came from the host's namespace is locked: a remount that would drop its `noexec` or change
/// its atime handling fails with EPERM, so they are carried over. As root it changes nothing.
fn locked_flags(dst: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(dst) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    m
}

fn tmpfs(dst: &Path, opts: &str, extra: MsFlags) -> ShimResult<()> {
    fs::create_dir_all(dst).ctx(|| format!("mkdir {}", dst.display()))?;
    mount(
        Some("tmpfs"),
        dst,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | extra,
        Some(opts),
    )
    .ctx(|| format!("mount tmpfs at {}", dst.display()))
}

/// The part of the root that does not depend on the function: done while pre-warming.
pub(crate) fn build_base(cfg: &ShimConfig) -> ShimResult<()> {
    let root = &cfg.root_dir;
    tmpfs(root, "mode=0755,size=16m", MsFlags::empty())?;
    for t in HOST_TREES {
        let host = Path::new("/").join(t);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        let dst = root.join(t);
        if meta.file_type().is_symlink() {
            // Merged /usr (Debian 12: /bin -> usr/bin): the same link, resolved inside.
            let target = fs::read_link(&host).ctx(|| format!("readlink {}", host.display()))?;
            symlink(&target, &dst).ctx(|| format!("symlink {}", dst.display()))?;
        } else if meta.is_dir() {
            bind_ro(&host, &dst)?;
        }
    }
    build_dev(&root.join("dev"))?;
    // SPEC.md 4 and 6: /tmp is writable, per instance, 512 MB. Its pages count against the
    // instance's memory cgroup, as on FunctionGraph.
    tmpfs(
        &root.join("tmp"),
        &format!("mode=1777,size={}m", cfg.tmp_size_mb),
        MsFlags::empty(),
    )?;
    fs::create_dir_all(root.join("proc")).ctx(|| "mkdir /proc".into())?;
    for d in [
        "opt/function/code",
        "opt/function/runtime",
        "opt/function/dependency",
    ] {
        fs::create_dir_all(root.join(d)).ctx(|| format!("mkdir {d}"))?;
    }
    // /etc/hosts of our own over the host's read-only one.
    let hosts = root.join("run/fgs/hosts");
    fs::create_dir_all(root.join("run/fgs")).ctx(|| "mkdir /run/fgs".into())?;
    fs::write(&hosts, &cfg.hosts).ctx(|| "write hosts".into())?;
    if root.join("etc/hosts").exists() {
        bind_ro(&hosts, &root.join("etc/hosts"))?;
    }
    Ok(())
}

fn build_dev(dev: &Path) -> ShimResult<()> {
    tmpfs(dev, "mode=0755,size=64k", MsFlags::MS_NOEXEC)?;
    for d in DEVICES {
        let host = Path::new("/dev").join(d);
        if host.exists() {
            let dst = dev.join(d);
            fs::write(&dst, b"").ctx(|| format!("create {}", dst.display()))?;
            mount(
                Some(&host),
                &dst,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .ctx(|| format!("bind {}", host.display()))?;
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(name)).ctx(|| format!("symlink /dev/{name}"))?;
    }
    tmpfs(&dev.join("shm"), "mode=1777,size=64m", MsFlags::MS_NOEXEC)?;
    Ok(())
}

/// The function's read-only mounts (code, runtime shims, dependencies).
pub(crate) fn add_mounts(root: &Path, mounts: &[(PathBuf, PathBuf)]) -> ShimResult<()> {
    for (host, inside) in mounts {
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        if rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "mount target {} escapes the root",
                inside.display()
            ));
        }
        bind_ro(host, &root.join(rel))?;
    }
    Ok(())
}

/// Makes `root` the root of the mount namespace, keeping the old one at `/.oldroot` until the
/// init has mounted `/proc` (see [`finish`]).
pub(crate) fn pivot(root: &Path) -> ShimResult<()> {
    let old = root.join(".oldroot");
    fs::create_dir_all(&old).ctx(|| "mkdir .oldroot".into())?;
    pivot_root(root, &old).ctx(|| "pivot_root".into())?;
    std::env::set_current_dir("/").ctx(|| "chdir /".into())?;
    Ok(())
}

/// In the new pid namespace: its own `/proc`, the host's root detached, the root read-only
/// (`read_only_root`; an image's root keeps its writable layer).
pub(crate) fn finish(read_only_root: bool) -> ShimResult<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .ctx(|| "mount /proc".into())?;
    umount2("/.oldroot", MntFlags::MNT_DETACH).ctx(|| "detach the host root".into())?;
    fs::remove_dir("/.oldroot").ctx(|| "rmdir /.oldroot".into())?;
    let dirs: &[(&str, MsFlags)] = if read_only_root {
        &[("/", MsFlags::empty()), ("/dev", MsFlags::MS_NOEXEC)]
    } else {
        &[("/dev", MsFlags::MS_NOEXEC)]
    };
    for &(dir, extra) in dirs {
        mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | extra,
            None::<&str>,
        )
        .ctx(|| format!("remount {dir} read-only"))?;
    }
    Ok(())
}

/// Attaches a detached mount tree fgs made (`open_tree`, read-only already) at `target`, in
/// this, the sandbox's, mount namespace: how a pre-started runtime gets its function's code.
pub(crate) fn attach(tree: &std::os::fd::OwnedFd, target: &Path) -> ShimResult<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    let c = std::ffi::CString::new(target.as_os_str().as_bytes())
        .map_err(|_| format!("NUL byte in {}", target.display()))?;
    // SAFETY: move_mount reads the fd and the two NUL-terminated paths we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(format!(
            "attaching {}: {}",
            target.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// An image function's root, built at spawn on top of the prepared base root: a tmpfs (sized
/// like `/tmp`, its pages charged to the instance's memory) holds the writable layer of an
/// overlay whose lower layer is the image's unpacked root; the base root's `/dev` and `/tmp`
/// move into it, and `/etc/hosts` and the host's `/etc/resolv.conf` are bound over the
/// image's. Returns the directory to pivot into.
///
/// Where overlayfs cannot be mounted (a kernel without it; before Linux 5.11 in a user
/// namespace), the image's root is bound read-only instead and the instance's output says so:
/// only `/tmp` is writable then.
pub(crate) fn image_root(cfg: &ShimConfig, rootfs: &Path) -> ShimResult<PathBuf> {
    let base = &cfg.root_dir;
    let layer = base.join("run/fgs/layer");
    tmpfs(
        &layer,
        &format!("mode=0755,size={}m", cfg.tmp_size_mb),
        MsFlags::empty(),
    )?;
    let (upper, work, root) = (layer.join("upper"), layer.join("work"), layer.join("root"));
    for d in [&upper, &work, &root] {
        fs::create_dir(d).ctx(|| format!("mkdir {}", d.display()))?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        rootfs.display(),
        upper.display(),
        work.display()
    );
    let overlay = mount(
        Some("overlay"),
        &root,
        Some("overlay"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(opts.as_str()),
    );
    if let Err(e) = overlay {
        eprintln!("fgs-sandbox: no writable layer over the image ({e}): its root is read-only");
        bind_ro(rootfs, &root)?;
    }
    // fgs-image made these mount points when it unpacked the image.
    for (from, to) in [("dev", "dev"), ("tmp", "tmp")] {
        let dst = root.join(to);
        mount(
            Some(&base.join(from)),
            &dst,
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .ctx(|| format!("moving /{from} into the image's root"))?;
    }
    for (src, dst) in [
        (base.join("run/fgs/hosts"), "etc/hosts"),
        (PathBuf::from("/etc/resolv.conf"), "etc/resolv.conf"),
    ] {
        let target = root.join(dst);
        // Never through a link of the image's: it would resolve in the host's tree here.
        let is_file = fs::symlink_metadata(&target).is_ok_and(|m| m.is_file());
        if is_file && src.exists() {
            bind_ro(&src, &target)?;
        }
    }
    Ok(root)
}
