//! `fgs __sandbox-exec`: the single-threaded shim that builds one sandbox and execs the runtime
//! in it, in the manner of Firecracker's jailer. fgs starts it (before any tokio runtime exists
//! in this process) with a control socket at fd 3 and its [`ShimConfig`] as the one argument.
//!
//! Prepare (ahead of need): join the instance's cgroups, unshare mount, pid, net, uts, ipc and
//! cgroup namespaces, bring `lo` up, bind the Runtime API listener inside the new network
//! namespace and pass it to fgs, build the base root; then wait.
//!
//! Spawn (when fgs sends a [`SpawnMsg`]): write the cgroup limits, add the function's mounts,
//! pivot into the root, fork the pid namespace's init, which mounts `/proc`, detaches the host
//! root and starts the runtime (`vfork`-style, see `init::spawn_runtime`): new session, rlimits,
//! uid/gid 1003, `no_new_privs`, seccomp, exec.
//! The shim waits for the init and exits as the runtime did, so fgs sees the runtime's status.
//!
//! Rootless (fgs is not root), the shim first makes a user namespace that maps fgs's uid and gid
//! to the function's 1003 ([`userns`]) and, once the runtime runs, connects to the sandbox's
//! loopback on fgs's behalf ([`broker`]), since fgs cannot `setns` into a namespace it does not
//! hold capabilities over.

mod broker;
mod hold;
mod init;
mod root;
mod seccomp;
mod userns;

use std::net::{Ipv4Addr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::ctl::{self, Reply, Request, ShimConfig, SpawnMsg, SHIM_CTL_FD};
use crate::sys::PidFd;
use crate::tiny::TINY_FD;

pub(crate) type ShimResult<T> = Result<T, String>;

/// Adds what was being done to an error.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> ShimResult<T>;
}

impl<T, E: std::fmt::Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> ShimResult<T> {
        self.map_err(|e| format!("{}: {e}", what()))
    }
}

/// The shim's entry point; never returns.
pub fn main() -> ! {
    // SAFETY: fgs started us with our end of the control socket at fd 3 (see `Sandbox::prepare`);
    // nothing else in this fresh process owns it.
    let ctl = unsafe { OwnedFd::from_raw_fd(SHIM_CTL_FD) };
    let code = match run(&ctl) {
        Ok(code) => code,
        Err(error) => {
            let _ = ctl::send(
                ctl.as_fd(),
                &Reply::Failed {
                    error: error.clone(),
                },
                None,
            );
            eprintln!("fgs-sandbox: {error}");
            125
        }
    };
    std::process::exit(code)
}

/// How long a shim whose fgs is gone waits for a starting pasta's pid (it starts in about 10 ms;
/// one that fails never writes it).
const PASTA_START_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn run(ctl: &OwnedFd) -> ShimResult<i32> {
    // The runtime must never inherit the control socket (dup2 cleared close-on-exec).
    nix::fcntl::fcntl(
        ctl.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .ctx(|| "fcntl".into())?;
    let arg = std::env::args()
        .nth(2)
        .ok_or_else(|| "missing the shim configuration argument".to_string())?;
    let cfg: ShimConfig =
        serde_json::from_str(&arg).ctx(|| "parsing the shim configuration".into())?;
    let tiny = if cfg.tiny {
        // Only the shim and the init exec it; the runtime must never inherit it.
        nix::fcntl::fcntl(
            TINY_FD,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .ctx(|| "fcntl of the fgs-init program".into())?;
        // SAFETY: fgs passed the program's memfd at TINY_FD (`cfg.tiny` says so); nothing
        // else in this process owns it.
        Some(unsafe { OwnedFd::from_raw_fd(TINY_FD) })
    } else {
        None
    };

    let pid = std::process::id().to_string();
    for f in &cfg.cgroup_procs {
        std::fs::write(f, &pid).ctx(|| format!("joining {}", f.display()))?;
    }
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    if cfg.user_ns.is_some() {
        // Rootless: the kernel makes the user namespace first and gives it the others, so the
        // capabilities the shim has in it cover their set-up (mounts, hostname, lo).
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    unshare(flags).ctx(|| "unshare".into())?;
    if let Some(map) = &cfg.user_ns {
        userns::map_ids(map)?;
    }
    nix::unistd::sethostname(&cfg.hostname).ctx(|| "sethostname".into())?;
    // Nothing mounted here may reach the host's mount table.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "making mounts private".into())?;
    loopback_up()?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, cfg.api_port))
        .ctx(|| format!("binding 127.0.0.1:{}", cfg.api_port))?;
    root::build_base(&cfg)?;
    ctl::send(ctl.as_fd(), &Reply::Ready, Some(listener.as_raw_fd()))
        .ctx(|| "sending the listener".into())?;
    drop(listener);

    // Ahead of need: which handlers the runtime's process resets before its exec.
    let caught = init::caught_signals();
    let mut pasta = None;
    let spawn: SpawnMsg = loop {
        match ctl::recv(ctl.as_fd()).ctx(|| "reading the exec spec".into())? {
            Some((Request::Spawn(msg), _)) => break *msg,
            Some((Request::Egress { pid }, _)) => pasta = PidFd::open(pid).ok(),
            Some((Request::Connect { .. } | Request::Specialize(_), _)) => {}
            // fgs let the prepared sandbox go (pool shrink, shutdown) or was killed: nothing
            // to run, and nothing of the sandbox may outlive it.
            None => {
                match &pasta {
                    Some(p) => p.signal(nix::sys::signal::Signal::SIGKILL),
                    None => end_starting_pasta(cfg.pasta_pid_file.as_deref()),
                }
                return Ok(0);
            }
        }
    };
    write_cgroup(&spawn.cgroup_writes)?;
    if !spawn.network {
        // A pre-warmed sandbox got its egress before anyone knew whose it would be: a function
        // without network gives it back (fgs ends pasta too) and keeps only `lo`.
        interfaces_down()?;
    }
    root::add_mounts(&cfg.root_dir, &spawn.mounts)?;
    let new_root = match &spawn.image_root {
        Some(rootfs) => root::image_root(&cfg, rootfs)?,
        None => cfg.root_dir.clone(),
    };
    let programs = seccomp::programs()?;
    root::pivot(&new_root)?;
    // A held runtime's pipe (hold.rs): the read end becomes its fd 3, the write end stays here.
    let hold = if spawn.hold {
        Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?)
    } else {
        None
    };

    // As root without pasta nothing needs the shim once the runtime runs: the init becomes
    // fgs's child, which waits for it, and the shim exits (one process per idle sandbox, not
    // two). Rootless the shim serves connections for the instance's life, and it ends a pasta
    // whose fgs was killed, so the init stays its child there.
    let parented = cfg.user_ns.is_none() && pasta.is_none();
    let forked = if parented {
        fork_to_parent()
    } else {
        // SAFETY: this process is single-threaded (the shim never starts threads), so the child
        // may run arbitrary code after fork.
        unsafe { fork() }
    };
    match forked.ctx(|| "fork".into())? {
        ForkResult::Child => init::run(
            ctl,
            &spawn,
            &programs,
            hold,
            tiny.as_ref(),
            &cfg.root_dir,
            !parented,
            caught,
        ),
        ForkResult::Parent { child } => {
            let hold = hold.map(|(read, write)| {
                drop(read);
                write
            });
            ctl::send(
                ctl.as_fd(),
                &Reply::Init {
                    pid: child.as_raw(),
                    parented,
                },
                None,
            )
            .ctx(|| "reporting the init".into())?;
            if let Some(pipe) = hold {
                hold::serve(ctl, pipe, child)?;
            }
            if parented {
                // fgs opens what it needs of the instance through this process's pid before
                // it closes its end: stay until then.
                while let Ok(Some(_)) = ctl::recv::<Request>(ctl.as_fd()) {}
                return Ok(0);
            }
            if cfg.user_ns.is_some() {
                let served = broker::serve(ctl, child, pasta.as_ref());
                if served.is_err() {
                    end_pasta(pasta.as_ref());
                }
                served?;
            } else if let Some(program) = &tiny {
                // Nothing of fgs's code is needed any more: waiting for the init and ending
                // pasta is all that is left, and a few pages of fgs-init do it.
                let e = match &pasta {
                    Some(p) => nix::fcntl::fcntl(
                        p.as_raw_fd(),
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                    )
                    .map_err(std::io::Error::from)
                    .err()
                    .unwrap_or_else(|| {
                        let (pid, fd) = (child.as_raw(), Some(p.as_raw_fd()));
                        crate::tiny::exec(program.as_fd(), "wait", pid, fd, &cfg.root_dir)
                    }),
                    None => {
                        let pid = child.as_raw();
                        crate::tiny::exec(program.as_fd(), "wait", pid, None, &cfg.root_dir)
                    }
                };
                // Written to the instance's output; this process goes on as it was.
                eprintln!("fgs-sandbox: exec of fgs-init: {e}");
            }
            let status = loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    r @ (Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_)) => {
                        break r;
                    }
                    Ok(_) => continue,
                }
            };
            // The instance is over. fgs ends pasta too when it tears the instance down, but it
            // may be gone (`kill -9`): the runtime then dies of its closed pipes, and nothing
            // else would end pasta before the next start's sweep.
            end_pasta(pasta.as_ref());
            match status {
                Ok(WaitStatus::Exited(_, code)) => {
                    // The init exits 128+N for a runtime killed by signal N, like a shell.
                    if (129..=128 + 64).contains(&code) {
                        if let Ok(sig) = nix::sys::signal::Signal::try_from(code - 128) {
                            init::die_by(sig);
                        }
                    }
                    Ok(code)
                }
                Ok(WaitStatus::Signaled(_, sig, _)) => init::die_by(sig),
                Ok(other) => Err(format!("unexpected init status: {other:?}")),
                Err(e) => Err(format!("waiting for the init: {e}")),
            }
        }
    }
}

/// `fork`, except that the child's parent is this process's parent (fgs), which is then told
/// when it exits and reaps it. The child is still pid 1 of the namespace this process unshared.
fn fork_to_parent() -> nix::Result<ForkResult> {
    // SAFETY: clone without CLONE_VM and without a new stack duplicates the calling process as
    // fork does; this process is single-threaded, so the child may run arbitrary code. The exit
    // signal with CLONE_PARENT is this process's own (SIGCHLD: std spawned it with fork).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        -1 => Err(nix::errno::Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: nix::unistd::Pid::from_raw(pid as i32),
        }),
    }
}

/// Ends the sandbox's pasta, if the shim was told of one.
fn end_pasta(pasta: Option<&PidFd>) {
    if let Some(p) = pasta {
        p.signal(nix::sys::signal::Signal::SIGKILL);
    }
}

/// fgs went away before it told of the sandbox's pasta: it may have been killed while pasta
/// started. pasta writes its pid to the file fgs made for it once it has configured the
/// namespace (kept alive meanwhile by this shim); waits for that, boundedly, and ends it.
fn end_starting_pasta(pid_file: Option<&std::path::Path>) {
    let Some(pid_file) = pid_file else { return };
    let deadline = std::time::Instant::now() + PASTA_START_WAIT;
    while std::time::Instant::now() < deadline {
        let Ok(text) = std::fs::read_to_string(pid_file) else {
            // Removed: fgs ended that pasta itself, or never started one.
            return;
        };
        if let Ok(pid) = text.trim().parse::<i32>() {
            if let Some(p) = crate::egress::pasta_pidfd(pid) {
                p.signal(nix::sys::signal::Signal::SIGKILL);
            }
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Writes the instance's cgroup limits.
fn write_cgroup(writes: &[(std::path::PathBuf, String)]) -> ShimResult<()> {
    for (file, value) in writes {
        // memsw exists only with swap accounting; everything else must take.
        if !file.exists() && file.ends_with("memory.memsw.limit_in_bytes") {
            continue;
        }
        std::fs::write(file, value).ctx(|| format!("writing {value} to {}", file.display()))?;
    }
    Ok(())
}

/// Takes every interface but `lo` down, which also drops their addresses and routes.
fn interfaces_down() -> ShimResult<()> {
    // The namespace's own interfaces (`/sys/class/net` still shows the host's here).
    let names: Vec<String> = nix::net::if_::if_nameindex()
        .ctx(|| "listing interfaces".into())?
        .iter()
        .filter_map(|i| i.name().to_str().ok().map(str::to_owned))
        .filter(|n| n != "lo")
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let sock = ioctl_socket()?;
    for name in names {
        // A device gone meanwhile is down already: fgs ends pasta at the same time, and its tap
        // device goes with it.
        set_link(&sock, &name, false).ctx(|| format!("taking {name} down"))?;
    }
    Ok(())
}

/// Brings up `lo` in the new network namespace (a new namespace starts with it down).
fn loopback_up() -> ShimResult<()> {
    match set_link(&ioctl_socket()?, "lo", true) {
        Ok(true) => Ok(()),
        Ok(false) => Err("bringing lo up: no such device".into()),
        Err(e) => Err(format!("bringing lo up: {e}")),
    }
}

fn ioctl_socket() -> ShimResult<OwnedFd> {
    nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "socket for ioctl".into())
}

/// Sets (`up`) or clears `IFF_UP | IFF_RUNNING` on interface `name`; `Ok(false)` when there is
/// no such device.
fn set_link(sock: &OwnedFd, name: &str, up: bool) -> std::io::Result<bool> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    let flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    let absent = |e: std::io::Error| match e.raw_os_error() {
        Some(libc::ENODEV) => Ok(false),
        _ => Err(e),
    };
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we own, which lives across
    // the calls; the fd is a valid socket.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return absent(std::io::Error::last_os_error());
        }
        if up {
            req.ifr_ifru.ifru_flags |= flags;
        } else {
            req.ifr_ifru.ifru_flags &= !flags;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return absent(std::io::Error::last_os_error());
        }
    }
    Ok(true)
}
