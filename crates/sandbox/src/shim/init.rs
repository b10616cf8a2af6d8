//! PID 1 of the sandbox's pid namespace, and the exec of the runtime.
//!
//! The init reaps every zombie of the namespace, forwards the signals fgs sends it (SIGTERM at
//! shutdown) to every process there, and exits as soon as the runtime's main process does; the
//! kernel then kills whatever is left in the namespace, so nothing outlives the instance.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Gid, Pid, Uid};
use seccompiler::BpfProgram;

use super::{root, seccomp, Ctx, ShimResult};
use crate::ctl::{self, Reply, SpawnMsg};

/// Runs as the namespace's init; never returns.
/// `hold`: a held runtime's pipe (read, write), see hold.rs. `tiny`: the fgs-init program,
/// which takes over once the runtime runs. `shim_is_parent`: false when fgs is (`Reply::Init`).
pub(super) fn run(
    ctl: &OwnedFd,
    spawn: &SpawnMsg,
    programs: &[BpfProgram],
    hold: Option<(OwnedFd, OwnedFd)>,
    tiny: Option<&OwnedFd>,
    root_dir: &std::path::Path,
    shim_is_parent: bool,
) -> ! {
    if shim_is_parent {
        // If the shim dies (fgs killed it), the namespace goes with it. Not when fgs is the
        // parent: the death signal follows the thread that forked, and fgs's threads come and go.
        let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    }
    let all = SigSet::all();
    let setup = root::finish(spawn.image_root.is_none()).and_then(|()| {
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None).ctx(|| "sigprocmask".into())
    });
    if let Err(error) = setup {
        let _ = ctl::send(ctl.as_fd(), &Reply::Failed { error }, None);
        std::process::exit(125);
    }
    // SAFETY: the init is single-threaded (forked from the single-threaded shim).
    let runtime = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let error = match &hold {
                // dup2 leaves the copy without close-on-exec; the write end closes at exec.
                Some((read, _)) => nix::unistd::dup2(read.as_raw_fd(), ctl::HOLD_FD)
                    .map(drop)
                    .ctx(|| "dup2 of the specialization pipe".into())
                    .err()
                    .unwrap_or_else(|| exec_runtime(spawn, programs)),
                None => exec_runtime(spawn, programs),
            };
            // Written to the instance's output, where the start error shows its tail.
            eprintln!("fgs-sandbox: {error}");
            // SAFETY: _exit is always safe; no destructors of the parent's state must run here.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let error = format!("fork of the runtime: {e}");
            let _ = ctl::send(ctl.as_fd(), &Reply::Failed { error }, None);
            std::process::exit(125);
        }
    };
    // Only the runtime and the shim hold the pipe: the runtime sees its end when the shim
    // closes its own.
    drop(hold);
    let _ = ctl::send(ctl.as_fd(), &Reply::Started, None);
    if let Some(program) = tiny {
        // The same loop as `reap`, in a few pages instead of a copy of fgs. Every signal stays
        // blocked across the exec, and one that came meanwhile (the runtime's SIGCHLD, fgs's
        // SIGTERM) stays pending for it.
        let e = crate::tiny::exec(program.as_fd(), "init", runtime.as_raw(), None, root_dir);
        eprintln!("fgs-sandbox: exec of fgs-init: {e}");
    }
    reap(runtime, &all)
}

fn reap(runtime: Pid, set: &SigSet) -> ! {
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            // kill(-1) from a namespace's init reaches every process in it but the init.
            let _ = kill(Pid::from_raw(-1), sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == runtime => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == runtime => {
                    std::process::exit(128 + sig as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// Ends this process by `sig`, so that its parent sees the same status as ours saw.
pub(super) fn die_by(sig: Signal) -> ! {
    // SAFETY: resetting a disposition to the default has no memory-safety preconditions.
    let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(sig);
    std::process::exit(128 + sig as i32)
}

/// In the runtime's process: drop everything and exec. Returns only the error.
fn exec_runtime(spawn: &SpawnMsg, programs: &[BpfProgram]) -> String {
    let r: ShimResult<()> = (|| {
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
            .ctx(|| "sigprocmask".into())?;
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        // SPEC.md 6: 1024 open files per instance.
        setrlimit(Resource::RLIMIT_NOFILE, spawn.nofile, spawn.nofile)
            .ctx(|| "setrlimit".into())?;
        if let Some(n) = spawn.nproc {
            setrlimit(Resource::RLIMIT_NPROC, n, n).ctx(|| "setrlimit nproc".into())?;
        }
        std::env::set_current_dir(&spawn.cwd).ctx(|| format!("chdir {}", spawn.cwd.display()))?;
        let (uid, gid) = (Uid::from_raw(spawn.uid), Gid::from_raw(spawn.gid));
        if !spawn.user_ns {
            nix::unistd::setgroups(&[]).ctx(|| "setgroups".into())?;
        }
        nix::unistd::setresgid(gid, gid, gid).ctx(|| "setresgid".into())?;
        nix::unistd::setresuid(uid, uid, uid).ctx(|| "setresuid".into())?;
        nix::sys::prctl::set_no_new_privs().ctx(|| "no_new_privs".into())?;
        crate::sys::batch_scheduling().ctx(|| "sched_setscheduler".into())?;
        seccomp::apply(programs)?;
        Ok(())
    })();
    if let Err(e) = r {
        return e;
    }
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| "NUL byte in argument".to_string());
    let program = match cstr(spawn.program.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut argv = vec![program.clone()];
    let mut envp = Vec::new();
    for a in &spawn.args {
        match cstr(a.as_bytes()) {
            Ok(c) => argv.push(c),
            Err(e) => return e,
        }
    }
    for (k, v) in &spawn.env {
        match cstr(format!("{k}={v}").as_bytes()) {
            Ok(c) => envp.push(c),
            Err(e) => return e,
        }
    }
    match nix::unistd::execve(&program, &argv, &envp) {
        Err(e) => format!("exec {}: {e}", spawn.program.display()),
        Ok(never) => match never {},
    }
}
