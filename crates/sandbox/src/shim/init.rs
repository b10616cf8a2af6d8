//! PID 1 of the sandbox's pid namespace, and the exec of the runtime.
//!
//! The init reaps every zombie of the namespace, forwards the signals fgs sends it (SIGTERM at
//! shutdown) to every process there, and exits as soon as the runtime's main process does; the
//! kernel then kills whatever is left in the namespace, so nothing outlives the instance.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{Gid, Pid, Uid};
use seccompiler::BpfProgram;

use super::{root, seccomp, Ctx, ShimResult};
use crate::ctl::{self, Reply, SpawnMsg};

/// Runs as the namespace's init; never returns.
/// `hold`: a held runtime's pipe (read, write), see hold.rs. `tiny`: the fgs-init program,
/// which takes over once the runtime runs. `shim_is_parent`: false when fgs is (`Reply::Init`).
/// `caught`: the signals the shim catches, from [`caught_signals`].
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    ctl: &OwnedFd,
    spawn: &SpawnMsg,
    programs: &[BpfProgram],
    hold: Option<(OwnedFd, OwnedFd)>,
    tiny: Option<&OwnedFd>,
    root_dir: &std::path::Path,
    shim_is_parent: bool,
    caught: u64,
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
    let start = RuntimeStart {
        spawn,
        programs,
        hold: hold.as_ref().map(|(read, _)| read.as_raw_fd()),
        exec: ExecArgs::new(spawn),
        caught,
    };
    // Before the runtime's process starts, so that fgs takes up the instance (its pidfds and
    // network namespace, from this process) while that process prepares and execs, as it did
    // while a forked one did: an init that waited for the exec would tell a runtime that failed
    // it only once it had exited itself, and fgs would find no sandbox left to take up instead
    // of reporting the runtime's exit and its output. A failed clone is such an exit too.
    let _ = ctl::send(ctl.as_fd(), &Reply::Started, None);
    let runtime = match spawn_runtime(&start) {
        Ok(child) => child,
        Err(e) => {
            eprintln!("fgs-sandbox: clone of the runtime: {e}");
            std::process::exit(125);
        }
    };
    drop(start);
    // Only the runtime and the shim hold the pipe: the runtime sees its end when the shim
    // closes its own.
    drop(hold);
    if let Some(program) = tiny {
        // The same loop as `reap`, in a few pages instead of a copy of fgs. Every signal stays
        // blocked across the exec, and one that came meanwhile (the runtime's SIGCHLD, fgs's
        // SIGTERM) stays pending for it.
        let e = crate::tiny::exec(program.as_fd(), "init", runtime.as_raw(), None, root_dir);
        eprintln!("fgs-sandbox: exec of fgs-init: {e}");
    }
    reap(runtime, &all)
}

/// What the runtime's process needs from the init's memory (see [`spawn_runtime`]).
struct RuntimeStart<'a> {
    spawn: &'a SpawnMsg,
    programs: &'a [BpfProgram],
    /// A held runtime's end of the specialization pipe, to become its fd 3.
    hold: Option<RawFd>,
    /// Built before the clone: the runtime's process allocates nothing on its way to the exec.
    exec: Result<ExecArgs, String>,
    /// The signals the init catches (see [`caught_signals`]).
    caught: u64,
}

/// `execve`'s arguments: the program and the NULL-terminated `argv` and `envp` arrays, whose
/// pointers point into the strings kept alongside.
struct ExecArgs {
    program: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _strings: Vec<CString>,
}

impl ExecArgs {
    fn new(spawn: &SpawnMsg) -> Result<ExecArgs, String> {
        let cstr = |b: &[u8]| CString::new(b).map_err(|_| "NUL byte in argument".to_string());
        let program = cstr(spawn.program.as_os_str().as_bytes())?;
        let args = std::iter::once(Ok(program.clone()))
            .chain(spawn.args.iter().map(|a| cstr(a.as_bytes())))
            .collect::<Result<Vec<_>, _>>()?;
        let env = (spawn.env.iter())
            .map(|(k, v)| cstr(format!("{k}={v}").as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let array = |strings: &[CString]| {
            let mut a: Vec<_> = strings.iter().map(|c| c.as_ptr()).collect();
            a.push(std::ptr::null());
            a
        };
        let (argv, envp) = (array(&args), array(&env));
        let mut strings = args;
        strings.extend(env);
        // Moving a CString moves its pointer, not its heap buffer: `argv` and `envp` stay valid.
        Ok(ExecArgs {
            program,
            argv,
            envp,
            _strings: strings,
        })
    }
}

/// The stack the runtime's process runs on until its exec: `exec_runtime` and the error
/// report need a few kilobytes. Below it, one inaccessible page, so that an overflow faults
/// instead of writing over the init's memory.
const RUNTIME_STACK: usize = 256 * 1024;

/// An anonymous mapping of [`RUNTIME_STACK`] bytes above a guard page.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn new() -> nix::Result<Stack> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = RUNTIME_STACK + page;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to the range.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(nix::errno::Errno::last());
        }
        let stack = Stack { base, len };
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } < 0 {
            return Err(nix::errno::Errno::last());
        }
        Ok(stack)
    }

    /// The initial stack pointer: the end of the mapping, which is page-aligned and so meets
    /// the x86-64 and AArch64 ABIs' 16-byte alignment.
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.len)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made; no process runs on it any more (see `spawn_runtime`).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Starts the runtime's process as `vfork` and glibc's `posix_spawn` do (`clone` with
/// `CLONE_VM | CLONE_VFORK`, on a stack of its own): it shares the init's memory until it
/// execs, and the init waits until then. A `fork` copied the page tables of the init (a copy of
/// fgs) only for the exec to tear that copy down again: 0.4-0.5 ms more from the clone to the
/// runtime's exec done (docs/sandbox.md).
///
/// What the process does before its exec is safe in the init's memory: the init is
/// single-threaded and stopped, so no lock (the allocator's, stderr's) is held and nothing else
/// touches what the process writes (errno, and the error report's allocations if the start
/// fails); glibc's set*id wrappers are plain system calls in a process that never started a
/// thread; credentials, rlimits, the session, the working directory, the fd table, the signal
/// mask and dispositions, `no_new_privs` and the seccomp filter are the new process's own, as
/// after `fork` (no `CLONE_THREAD`, `CLONE_FS`, `CLONE_FILES` or `CLONE_SIGHAND`). Signals
/// stay blocked (the init blocked them all) until the process has reset every handler it
/// inherited to the default, so that none runs in the shared memory.
fn spawn_runtime(start: &RuntimeStart) -> nix::Result<Pid> {
    let stack = Stack::new()?;
    // SAFETY: the child runs `runtime_main` on `stack`, which outlives it: with CLONE_VFORK,
    // clone returns only once the child has exec'd or exited, and `stack` and `start` live
    // until then. See above for what the child may do in the shared memory.
    let r = unsafe {
        libc::clone(
            runtime_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            start as *const RuntimeStart as *mut libc::c_void,
        )
    };
    match r {
        -1 => Err(nix::errno::Errno::last()),
        pid => Ok(Pid::from_raw(pid)),
    }
}

/// The runtime's process until its exec (see [`spawn_runtime`]); never returns.
extern "C" fn runtime_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `spawn_runtime` passes a `RuntimeStart` that lives until this process has exec'd
    // or exited (CLONE_VFORK).
    let start = unsafe { &*(arg as *const RuntimeStart) };
    default_handlers(start.caught);
    let error = match start.hold {
        // dup2 leaves the copy without close-on-exec; the write end closes at exec.
        Some(read) => nix::unistd::dup2(read, ctl::HOLD_FD)
            .map(drop)
            .ctx(|| "dup2 of the specialization pipe".into())
            .err()
            .unwrap_or_else(|| exec_runtime(start)),
        None => exec_runtime(start),
    };
    // Written to the instance's output, where the start error shows its tail.
    eprintln!("fgs-sandbox: {error}");
    // SAFETY: _exit is always safe; no destructors of the init's state may run here.
    unsafe { libc::_exit(127) }
}

/// The signals this process catches, as a bit mask (bit `n - 1` for signal `n`): read ahead of
/// need by the shim, whose dispositions the init and so the runtime's process inherit.
pub(super) fn caught_signals() -> u64 {
    let mut caught = 0;
    for sig in 1..=libc::SIGRTMAX().min(64) {
        // SAFETY: all-zero is a valid `sigaction` (SIG_DFL, no flags, an empty mask).
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // glibc refuses its own signals (32, 33), which this process never caught.
        // SAFETY: a query: sigaction writes the current disposition into `old`.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0
            && old.sa_sigaction != libc::SIG_DFL
            && old.sa_sigaction != libc::SIG_IGN
        {
            caught |= 1 << (sig - 1);
        }
    }
    caught
}

/// Resets the `caught` signals (see [`caught_signals`]) to their default action, as
/// `posix_spawn` does in its child: a handler of the init's (std's for SIGSEGV and SIGBUS) must
/// not run in the runtime's process while it shares the init's memory. Ignored signals stay
/// ignored, as across `fork` and exec.
fn default_handlers(caught: u64) {
    for sig in (1..=64).filter(|s| caught & (1 << (s - 1)) != 0) {
        // SAFETY: sigaction only reads the struct passed; all-zero is SIG_DFL, no flags, an
        // empty mask.
        unsafe {
            let dfl: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
    }
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
fn exec_runtime(start: &RuntimeStart) -> String {
    let spawn = start.spawn;
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
        seccomp::apply(start.programs)?;
        Ok(())
    })();
    if let Err(e) = r {
        return e;
    }
    let exec = match &start.exec {
        Ok(exec) => exec,
        Err(e) => return e.clone(),
    };
    // SAFETY: `program` is a C string and `argv` and `envp` NULL-terminated arrays of C strings
    // (`ExecArgs::new`), all alive until the exec.
    unsafe {
        libc::execve(
            exec.program.as_ptr(),
            exec.argv.as_ptr(),
            exec.envp.as_ptr(),
        )
    };
    let e = nix::errno::Errno::last();
    format!("exec {}: {e}", spawn.program.display())
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::path::PathBuf;

    use super::*;

    fn spawn_msg(args: &[&str], env: &[(&str, &str)]) -> SpawnMsg {
        SpawnMsg {
            program: PathBuf::from("/code/bootstrap"),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: (env.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: PathBuf::from("/code"),
            mounts: Vec::new(),
            cgroup_writes: Vec::new(),
            uid: 1003,
            gid: 1003,
            nofile: 1024,
            nproc: None,
            user_ns: false,
            network: true,
            hold: false,
            image_root: None,
        }
    }

    /// The strings behind a NULL-terminated array of C strings.
    fn strings(array: &[*const libc::c_char]) -> Vec<String> {
        assert_eq!(array.last(), Some(&std::ptr::null()), "NULL-terminated");
        array[..array.len() - 1]
            .iter()
            // SAFETY: the pointers of `ExecArgs`, alive with it.
            .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn exec_args_are_null_terminated_arrays_of_the_spawn_message() {
        let e = ExecArgs::new(&spawn_msg(
            &["-u", "x y"],
            &[("A", "1"), ("RUNTIME_API", "h:1")],
        ))
        .expect("no NUL byte");
        assert_eq!(e.program.as_bytes(), b"/code/bootstrap");
        assert_eq!(strings(&e.argv), ["/code/bootstrap", "-u", "x y"]);
        assert_eq!(strings(&e.envp), ["A=1", "RUNTIME_API=h:1"]);
        let e = ExecArgs::new(&spawn_msg(&[], &[])).expect("no NUL byte");
        assert_eq!(strings(&e.argv), ["/code/bootstrap"]);
        assert!(strings(&e.envp).is_empty());
        let bad = ExecArgs::new(&spawn_msg(&[], &[("A", "1\0x")]));
        assert_eq!(bad.err().as_deref(), Some("NUL byte in argument"));
    }

    /// std catches SIGSEGV and SIGBUS (its stack overflow report) and ignores SIGPIPE in every
    /// program, this test's included: the first two must be reset, the ignored one kept.
    #[test]
    fn the_caught_signals_are_std_s_handlers_not_the_ignored_ones() {
        let bit = |s: libc::c_int| 1u64 << (s - 1);
        let caught = caught_signals();
        assert_ne!(caught & bit(libc::SIGSEGV), 0, "{caught:#x}");
        assert_ne!(caught & bit(libc::SIGBUS), 0, "{caught:#x}");
        assert_eq!(caught & bit(libc::SIGPIPE), 0, "{caught:#x}");
        assert_eq!(caught & bit(libc::SIGTERM), 0, "{caught:#x}");
    }
}
