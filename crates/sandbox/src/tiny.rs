//! The `fgs-init` program (`tiny/fgs_init.rs`, compiled by `build.rs`): what stays of a sandbox
//! while its instance runs. fgs keeps it in one sealed memfd, made once and passed to every shim
//! at [`TINY_FD`]; the shim, once the runtime runs, and the namespace's init, once it has forked
//! the runtime, `execveat` it. A process of it holds a few pages where a re-exec'd fgs held about
//! 450 KB of relocated data and 70 KB of page tables (docs/sandbox.md).
//!
//! Where it cannot be had (a target `build.rs` does not compile it for, a kernel that refuses
//! executable memfds), the shim and the init stay the fgs code they were, which does the same.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fgs-init"));

/// The fd a shim finds the program at (after [`crate::ctl::SHIM_CTL_FD`]).
pub(crate) const TINY_FD: RawFd = 4;

/// The program's memfd, made at the first call; `None` (said once in the log) where there is
/// none.
pub(crate) fn memfd() -> Option<BorrowedFd<'static>> {
    static FD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    FD.get_or_init(|| match make() {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!(error = %e, "no fgs-init program: each sandbox keeps two fgs processes (about 1 MB more per instance)");
            None
        }
    })
    .as_ref()
    .map(|f| f.as_fd())
}

fn make() -> std::io::Result<OwnedFd> {
    if PROGRAM.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "not built for this architecture",
        ));
    }
    // MFD_EXEC (Linux 6.3) says outright that it is a program, for hosts whose
    // `vm.memfd_noexec` makes memfds non-executable by default; older kernels refuse the flag.
    const MFD_EXEC: libc::c_uint = 0x10;
    let name = c"fgs-init";
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a NUL-terminated name and flags returns a new fd or -1.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(PROGRAM)?;
    // Nobody may change the program every sandbox runs, fgs included.
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on a memfd we own, with a seal mask.
    if unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::F_ADD_SEALS,
            seals,
        )
    } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file.into())
}

/// Replaces this process (a shim or an init) with the program in `role`, given `pid` and, for
/// the shim, pasta's pidfd. Returns only the error. `argv[1]` is the shim's `__sandbox-exec`, so
/// that the process still says what it is, and the last argument (which the program ignores)
/// the sandbox's root directory, which names fgs's run dir as the shim's configuration did:
/// whoever looks for what is left of an fgs by its run dir finds these too.
pub(crate) fn exec(
    fd: BorrowedFd<'_>,
    role: &str,
    pid: i32,
    pidfd: Option<RawFd>,
    root: &std::path::Path,
) -> std::io::Error {
    use std::os::unix::ffi::OsStrExt;
    let pidfd = pidfd.map_or_else(|| "-".to_string(), |p| p.to_string());
    let argv = [
        "fgs".as_bytes(),
        crate::SHIM_ARG.as_bytes(),
        role.as_bytes(),
        pid.to_string().as_bytes(),
        pidfd.as_bytes(),
        root.as_os_str().as_bytes(),
    ]
    .map(|a| CString::new(a).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    let argv: Vec<CString> = match argv.into_iter().collect() {
        Ok(a) => a,
        Err(e) => return e,
    };
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: execveat with a valid fd, an empty NUL-terminated path with AT_EMPTY_PATH, and
    // NULL-terminated argv and envp arrays whose strings outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            c"".as_ptr(),
            ptrs.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    std::io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::Command;

    use super::*;

    #[test]
    fn the_program_is_built_for_this_host() {
        // The hosts fgs is developed and tested on are x86_64 and aarch64 Linux.
        assert!(
            PROGRAM.starts_with(b"\x7fELF"),
            "fgs-init is an ELF program"
        );
        assert!(
            PROGRAM.len() < 16 * 1024,
            "fgs-init is {} bytes",
            PROGRAM.len()
        );
        assert!(memfd().is_some());
    }

    /// Runs `sh -c SCRIPT` where `$P` is the program in a file, every signal blocked as the
    /// init has them (outside a namespace nothing here may reach `kill(-1)`: no test sends the
    /// program a signal).
    fn run(script: &str) -> std::process::ExitStatus {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fgs-init");
        std::fs::write(&path, PROGRAM).expect("writing the program");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).env("P", &path);
        // SAFETY: the closure runs between fork and exec and makes one system call, which is
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let all = nix::sys::signal::SigSet::all();
                nix::sys::signal::sigprocmask(
                    nix::sys::signal::SigmaskHow::SIG_BLOCK,
                    Some(&all),
                    None,
                )
                .map_err(std::io::Error::from)
            });
        }
        cmd.status().expect("running sh")
    }

    #[test]
    fn the_init_exits_as_the_runtime_did() {
        let s = run(r#"sh -c 'sleep 0.1; exit 7' & exec "$P" __sandbox-exec init $!"#);
        assert_eq!(s.code(), Some(7));
        // Another child's exit is reaped, not taken for the runtime's.
        let s = run(r#"(exit 3) & sh -c 'sleep 0.2; exit 9' & exec "$P" __sandbox-exec init $!"#);
        assert_eq!(s.code(), Some(9));
        let s = run(r#"sh -c 'sleep 0.1; kill -9 $$' & exec "$P" __sandbox-exec init $!"#);
        assert_eq!(s.code(), Some(128 + 9));
    }

    #[test]
    fn the_waiting_shim_mirrors_the_init() {
        let s = run(r#"sh -c 'sleep 0.1; exit 4' & exec "$P" __sandbox-exec wait $!"#);
        assert_eq!(s.code(), Some(4));
        // An init's 128+N is the runtime's death by signal N, and the shim dies by it too.
        let s = run(r#"sh -c 'sleep 0.1; exit 143' & exec "$P" __sandbox-exec wait $!"#);
        assert_eq!(s.signal(), Some(libc::SIGTERM));
        let s = run(r#"sh -c 'sleep 0.1; kill -9 $$' & exec "$P" __sandbox-exec wait $!"#);
        assert_eq!(s.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn bad_arguments_exit_125() {
        assert_eq!(run(r#"exec "$P" __sandbox-exec"#).code(), Some(125));
        assert_eq!(run(r#"exec "$P" __sandbox-exec init x1"#).code(), Some(125));
        assert_eq!(run(r#"exec "$P" __sandbox-exec other 1"#).code(), Some(125));
        // Not a child of it.
        assert_eq!(run(r#"exec "$P" __sandbox-exec wait 1"#).code(), Some(125));
    }
}
