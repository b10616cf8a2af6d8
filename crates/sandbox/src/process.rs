//! The host side of one sandbox: [`Prepared`] (a shim waiting in its namespaces, or a bare
//! listener when isolation is off), [`Running`] (the runtime's tree) and [`ProcessHandle`].
//!
//! Ending is done off the async executor: a dropped [`Running`] or [`Prepared`] hands its
//! teardown (kill, reap, remove cgroups, delete the veth or stop pasta) to one reaper thread.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::cgroup::{InstanceCgroup, Limits, Source};
use crate::config::Host;
use crate::ctl::{self, Reply, Request, ShimConfig, SpawnMsg, UserNs, SHIM_CTL_FD};
use crate::egress::{Egress, Pasta};
use crate::error::SandboxError;
use crate::spec::{ExecSpec, ResourceLimits, CODE_ROOT};
use crate::sys::{self, PidFd};
use crate::veth::Veth;

/// SPEC.md 6: 1024 open files per instance (its processes and threads are
/// [`ResourceLimits::pids`]).
const NOFILE: u64 = 1024;
const TMP_MB: u32 = 512;
const HOSTNAME: &str = "fgs-instance";

/// A sandbox ready for a runtime.
#[derive(Debug)]
pub struct Prepared {
    listener: Option<TcpListener>,
    api_addr: SocketAddr,
    shim: Option<Shim>,
}

/// The shim of a prepared sandbox and what belongs to it.
#[derive(Debug)]
struct Shim {
    child: Child,
    ctl: OwnedFd,
    output: std::io::PipeReader,
    cgroup: Option<InstanceCgroup>,
    egress: Option<Egress>,
    sandbox: Arc<Host>,
}

pub(crate) fn prepare_plain() -> Result<Prepared, SandboxError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(SandboxError::Listen)?;
    listener
        .set_nonblocking(true)
        .map_err(SandboxError::Listen)?;
    let api_addr = listener.local_addr().map_err(SandboxError::Listen)?;
    Ok(Prepared {
        listener: Some(listener),
        api_addr,
        shim: None,
    })
}

pub(crate) fn prepare_isolated(sb: &Arc<Host>) -> Result<Prepared, SandboxError> {
    let id = sys::sandbox_id();
    let cgroup = if sb.layout.kind() == "none" {
        None
    } else {
        Some(
            InstanceCgroup::create(&sb.layout, &sb.cfg.cgroup_parent, &id).map_err(|source| {
                SandboxError::Cgroup {
                    id: id.clone(),
                    source,
                }
            })?,
        )
    };
    // Whatever fails from here on, the cgroups go.
    let guard = CgroupGuard(cgroup);
    let (ours, theirs) = ctl::pair().map_err(|e| SandboxError::Shim(e.into()))?;
    let (reader, writer) = std::io::pipe().map_err(SandboxError::Pipe)?;
    let writer2 = writer.try_clone().map_err(SandboxError::Pipe)?;
    let tiny = crate::tiny::memfd();
    let config = ShimConfig {
        cgroup_procs: guard
            .0
            .as_ref()
            .map(|c| c.procs_files())
            .unwrap_or_default(),
        root_dir: sb.cfg.run_dir.join("root"),
        hostname: HOSTNAME.into(),
        hosts: sb.hosts.clone(),
        api_port: sb.cfg.api_port,
        tmp_size_mb: TMP_MB,
        user_ns: sb.rootless.then(|| UserNs {
            host_uid: nix::unistd::geteuid().as_raw(),
            host_gid: nix::unistd::getegid().as_raw(),
            uid: sb.cfg.uid,
            gid: sb.cfg.gid,
        }),
        pasta_pid_file: sb
            .pasta
            .is_some()
            .then(|| crate::egress::pid_file(&sb.cfg.run_dir, &id)),
        tiny: tiny.is_some(),
    };
    let mut cmd = std::process::Command::new(&sb.exe);
    cmd.arg("__sandbox-exec")
        .arg(serde_json::to_string(&config).expect("shim config serializes"))
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2));
    let fd = theirs.as_raw_fd();
    let tiny_fd = tiny.map(|t| t.as_raw_fd());
    // SAFETY: the closure runs between fork and exec and only calls dup2/fcntl, which are
    // async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(move || {
            // Copies above both targets first: either source may sit at the other's target.
            let moved = |fd: i32| match libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) {
                n if n < 0 => Err(std::io::Error::last_os_error()),
                n => Ok(n),
            };
            let (ctl, program) = (moved(fd)?, tiny_fd.map(moved).transpose()?);
            // dup2 leaves the targets without close-on-exec, as the shim needs them.
            if libc::dup2(ctl, SHIM_CTL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(p) = program {
                if libc::dup2(p, crate::tiny::TINY_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(SandboxError::Shim)?;
    LIVE.fetch_add(1, Ordering::SeqCst);
    drop(cmd);
    drop(theirs);
    let mut shim = Shim {
        child,
        ctl: ours,
        output: reader,
        cgroup: guard.take(),
        egress: None,
        sandbox: Arc::clone(sb),
    };
    let listener = match ctl::recv::<Reply>(shim.ctl.as_fd()) {
        Ok(Some((Reply::Ready, Some(fd)))) => TcpListener::from(fd),
        Ok(Some((Reply::Failed { error }, _))) => {
            teardown_later(Teardown::Shim(shim));
            return Err(SandboxError::Setup(error));
        }
        other => {
            teardown_later(Teardown::Shim(shim));
            return Err(SandboxError::Setup(format!(
                "unexpected answer from the shim: {other:?}"
            )));
        }
    };
    listener
        .set_nonblocking(true)
        .map_err(SandboxError::Listen)?;
    if let Some(bridge) = &sb.bridge {
        // No process: the pair goes with the namespace if fgs is killed.
        match Veth::create(bridge, shim.child.id()) {
            Ok(v) => shim.egress = Some(Egress::Veth(v)),
            Err(message) => {
                teardown_later(Teardown::Shim(shim));
                return Err(SandboxError::Egress { id, message });
            }
        }
    } else if let Some(pasta) = &sb.pasta {
        match Pasta::start(pasta, &sb.cfg.run_dir, &id, shim.child.id()) {
            Ok(e) => {
                if let Some(pid) = e.pid() {
                    // Best effort: the teardown kills pasta too, as long as fgs lives.
                    let _ = ctl::send(shim.ctl.as_fd(), &Request::Egress { pid }, None);
                }
                shim.egress = Some(Egress::Pasta(e));
            }
            Err(message) => {
                teardown_later(Teardown::Shim(shim));
                return Err(SandboxError::Egress { id, message });
            }
        }
    }
    Ok(Prepared {
        listener: Some(listener),
        api_addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, sb.cfg.api_port)),
        shim: Some(shim),
    })
}

struct CgroupGuard(Option<InstanceCgroup>);

impl CgroupGuard {
    fn take(mut self) -> Option<InstanceCgroup> {
        self.0.take()
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.remove();
        }
    }
}

impl Prepared {
    /// The address the instance's processes reach fgs's Runtime and Extension API at (on the
    /// instance's own loopback when isolated).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The listener fgs serves the instance's APIs on. Taken once.
    pub fn take_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// Starts the runtime. Its stdout and stderr both go to the returned pipe, in the order they
    /// were written, so that log lines keep their order across the two streams. Blocks for the
    /// sandbox's final set-up (mounts, pivot, fork, exec: about a millisecond).
    pub fn spawn(mut self, spec: &ExecSpec) -> Result<Running, SandboxError> {
        match self.shim.take() {
            None => spawn_plain(spec),
            Some(shim) => spawn_isolated(shim, spec, false),
        }
    }

    /// Starts a runtime held for a function not known yet (pre-started interpreters,
    /// docs/sandbox.md): `spec` without its code (`code_dir` is not mounted), the runtime
    /// reading its function's message from fd 3, which [`Running::specialize`] writes. Needs
    /// isolation as root.
    pub fn spawn_held(mut self, spec: &ExecSpec) -> Result<Running, SandboxError> {
        match self.shim.take() {
            Some(shim) if !shim.sandbox.rootless => spawn_isolated(shim, spec, true),
            other => {
                self.shim = other;
                Err(SandboxError::Setup(
                    "pre-started runtimes need the sandbox as root".into(),
                ))
            }
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(shim) = self.shim.take() {
            teardown_later(Teardown::Shim(shim));
        }
    }
}

fn spawn_plain(spec: &ExecSpec) -> Result<Running, SandboxError> {
    if spec.image.is_some() {
        return Err(SandboxError::Setup(
            "an image function needs the sandbox: its root is the image's (--sandbox on)".into(),
        ));
    }
    let (reader, writer) = std::io::pipe().map_err(SandboxError::Pipe)?;
    let writer2 = writer.try_clone().map_err(SandboxError::Pipe)?;
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer2))
        // Its own process group, so that ending the instance ends every process the runtime
        // started (SPEC.md 5: the process group gets SIGTERM, then SIGKILL).
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and makes one system call, which is
    // async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(crate::sys::batch_scheduling);
    }
    let child = cmd.spawn().map_err(|source| SandboxError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    // The command holds the write ends; drop it so the reader sees EOF when the tree exits.
    drop(cmd);
    let pid = child.id();
    Ok(Running {
        child: Some(child),
        status: None,
        output: Some(reader),
        handle: ProcessHandle {
            inner: Arc::new(HandleInner {
                pid,
                kind: Kind::Plain {
                    pgid: Pid::from_raw(pid as i32),
                },
                peak: AtomicU64::new(0),
                oom_kills: AtomicU64::new(0),
                memory_limit: AtomicU64::new(0),
                cpu_quota: Mutex::new(Vec::new()),
            }),
        },
        cleanup: None,
        held: None,
    })
}

fn spawn_isolated(mut shim: Shim, spec: &ExecSpec, hold: bool) -> Result<Running, SandboxError> {
    if !spec.network {
        // The shim takes eth0 or pasta's tap device down below, before the runtime starts; the
        // veth (whose deletion waits for the kernel's network grace period) or pasta goes off
        // the call path.
        if let Some(e) = shim.egress.take() {
            teardown_later(Teardown::Egress(e));
        }
    }
    let mut mounts = Vec::new();
    if !hold && spec.image.is_none() {
        mounts.push((spec.code_dir.clone(), PathBuf::from(CODE_ROOT)));
    }
    mounts.extend(spec.mounts.iter().cloned());
    let (uid, gid) = match &spec.image {
        Some(i) => (i.uid, i.gid),
        None => (shim.sandbox.cfg.uid, shim.sandbox.cfg.gid),
    };
    if shim.sandbox.rootless && (uid, gid) != (shim.sandbox.cfg.uid, shim.sandbox.cfg.gid) {
        // The user namespace maps fgs's one uid to the sandbox's (1003); no other id exists.
        teardown_later(Teardown::Shim(shim));
        return Err(SandboxError::Setup(format!(
            "uid/gid {uid}/{gid}: without root, instances run only as {}/{}",
            1003, 1003
        )));
    }
    // The cpu quota waits for the end of the start (`ProcessHandle::apply_cpu_quota`): a quota
    // of 0.3 cpu throttles an interpreter's start-up by whole 100 ms periods.
    let limits = Limits {
        memory_mb: Some(spec.limits.memory_mb),
        pids: spec.limits.pids,
    };
    let (cgroup_writes, cpu_writes) = match &shim.cgroup {
        Some(cg) => (
            shim.sandbox.layout.limit_writes(cg, &limits),
            shim.sandbox
                .layout
                .cpu_writes(cg, Some(spec.limits.cpu_millicores)),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let msg = SpawnMsg {
        program: spec.program.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        mounts,
        cgroup_writes,
        uid,
        gid,
        nofile: NOFILE,
        // Rootless there is no pids cgroup; the instance's own user namespace makes the kernel
        // count its processes (and threads) apart from every other instance's.
        nproc: (shim.sandbox.rootless && shim.sandbox.layout.pids() == Source::None)
            .then_some(u64::from(spec.limits.pids)),
        user_ns: shim.sandbox.rootless,
        network: spec.network,
        hold,
        image_root: spec.image.as_ref().map(|i| i.rootfs.clone()),
    };
    let fail = |shim: Shim, msg: String| {
        teardown_later(Teardown::Shim(shim));
        Err(SandboxError::Setup(msg))
    };
    if let Err(e) = ctl::send(shim.ctl.as_fd(), &Request::Spawn(Box::new(msg)), None) {
        return fail(shim, format!("sending the exec spec: {e}"));
    }
    let (mut init, mut started, mut parented) = (None, false, false);
    while init.is_none() || !started {
        match ctl::recv::<Reply>(shim.ctl.as_fd()) {
            Ok(Some((Reply::Init { pid, parented: p }, _))) => {
                init = Some(pid);
                parented = p;
            }
            Ok(Some((Reply::Started, _))) => started = true,
            Ok(Some((Reply::Failed { error }, _))) => {
                end_parented_init(init.filter(|_| parented));
                return fail(shim, error);
            }
            Ok(Some((
                Reply::Ready
                | Reply::Connected { .. }
                | Reply::ConnectFailed { .. }
                | Reply::Specialized,
                _,
            ))) => {}
            Ok(None) => {
                end_parented_init(init.filter(|_| parented));
                return fail(shim, "the sandbox shim exited during set-up".into());
            }
            Err(e) => {
                end_parented_init(init.filter(|_| parented));
                return fail(shim, format!("reading from the shim: {e}"));
            }
        }
    }
    let init = init.expect("loop ends with the init's pid");
    let pid = shim.child.id();
    // The init's namespace is the shim's, and the init outlives a shim that fgs parents it for.
    // The namespace is opened through the shim, which lives until its control socket closes
    // below: a runtime that cannot exec ends the init at once, and an init that has exited
    // (a zombie until fgs reaps it) has no namespaces to open, which turned that runtime's exit
    // status and output (4204) into "the sandbox ended during start".
    let (init_fd, shim_fd, netns) = match (
        PidFd::open(init),
        PidFd::open(pid as i32),
        std::fs::File::open(format!("/proc/{pid}/ns/net")),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, OwnedFd::from(c)),
        _ => {
            end_parented_init(Some(init).filter(|_| parented));
            return fail(shim, "the sandbox ended during start".into());
        }
    };
    let rootless = shim.sandbox.rootless;
    let Shim {
        child,
        output,
        cgroup,
        egress,
        ctl,
        sandbox,
    } = shim;
    let (ctl, held) = if hold {
        (None, Some(Held { ctl, sandbox }))
    } else {
        (Some(ctl), None)
    };
    // Rootless, the shim connects into the namespace for fgs (see `ProcessHandle::connect`).
    let broker = if rootless {
        Some(Mutex::new(Broker { ctl, seq: 0 }))
    } else {
        drop(ctl);
        None
    };
    let child = if parented && held.is_none() {
        // Its control socket just closed: the shim exits at once. The reaper collects it, so
        // no zombie stays and the start does not wait for its exit (about 0.4 ms).
        teardown_later(Teardown::Reap(child));
        None
    } else {
        Some(child)
    };
    let handle = ProcessHandle {
        inner: Arc::new(HandleInner {
            pid,
            kind: Kind::Isolated {
                init: init_fd,
                shim: shim_fd,
                parented,
                cgroup,
                netns: Mutex::new(Some(netns)),
                broker,
            },
            peak: AtomicU64::new(0),
            oom_kills: AtomicU64::new(0),
            memory_limit: AtomicU64::new(limits.memory_bytes().unwrap_or(0)),
            cpu_quota: Mutex::new(cpu_writes),
        }),
    };
    Ok(Running {
        child,
        status: None,
        output: Some(output),
        handle,
        cleanup: egress,
        held,
    })
}

/// What a held runtime's specialization needs: the control socket to its shim and the
/// host's cgroup layout.
#[derive(Debug)]
struct Held {
    ctl: OwnedFd,
    sandbox: Arc<Host>,
}

/// What makes a held runtime ([`Prepared::spawn_held`]) one function's instance.
#[derive(Debug, Clone)]
pub struct Specialization {
    /// The code on the host, attached read-only at [`CODE_ROOT`].
    pub code_dir: PathBuf,
    /// More read-only trees `(host path, sandbox path)`: those the held runtime lacks.
    pub mounts: Vec<(PathBuf, PathBuf)>,
    pub limits: ResourceLimits,
    pub network: bool,
    /// What the runtime reads from fd 3 once all of the above holds.
    pub message: Vec<u8>,
}

/// How close to its memory limit an instance's peak must be before its OOM kill count is
/// read: more than a charge batch and a transparent huge page.
const OOM_MARGIN: u64 = 8 << 20;

/// A running runtime process tree.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    status: Option<ExitStatus>,
    output: Option<std::io::PipeReader>,
    handle: ProcessHandle,
    /// Held until the tree is gone.
    cleanup: Option<Egress>,
    /// A held runtime not specialized yet.
    held: Option<Held>,
}

/// A cheap, cloneable handle to signal a running process tree and read its usage.
#[derive(Debug, Clone)]
pub struct ProcessHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    /// The runtime's pid (isolation off) or its shim's.
    pid: u32,
    kind: Kind,
    /// Last known memory peak and OOM kill count, kept when the cgroup is removed.
    peak: AtomicU64,
    oom_kills: AtomicU64,
    /// The memory cgroup's limit in bytes, 0 when none was set (a held runtime's changes when
    /// it is specialized).
    memory_limit: AtomicU64,
    /// The cgroup writes of the cpu quota, until [`ProcessHandle::apply_cpu_quota`].
    cpu_quota: Mutex<Vec<(PathBuf, String)>>,
}

#[derive(Debug)]
enum Kind {
    Plain {
        pgid: Pid,
    },
    Isolated {
        init: PidFd,
        shim: PidFd,
        /// fgs is the init's parent: the instance's status is the init's, and fgs reaps it.
        parented: bool,
        cgroup: Option<InstanceCgroup>,
        netns: Mutex<Option<OwnedFd>>,
        /// Rootless: the control socket to the shim, which makes connections for fgs.
        broker: Option<Mutex<Broker>>,
    },
}

/// The host end of a rootless shim's connection service.
#[derive(Debug)]
struct Broker {
    /// `None` once the instance has ended.
    ctl: Option<OwnedFd>,
    seq: u64,
}

impl Broker {
    fn connect(&mut self, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
        let gone =
            || std::io::Error::new(std::io::ErrorKind::NotConnected, "the instance has ended");
        let ctl = self.ctl.as_ref().ok_or_else(gone)?;
        self.seq += 1;
        let seq = self.seq;
        ctl::send(ctl.as_fd(), &Request::Connect { seq, port }, None)
            .map_err(std::io::Error::from)?;
        // A reply that comes later than `timeout` is dropped below by its older seq, so that
        // it is never taken for the answer to the next request.
        let deadline = std::time::Instant::now() + timeout + Duration::from_secs(1);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the sandbox shim did not answer",
                ));
            }
            nix::sys::socket::setsockopt(
                ctl,
                nix::sys::socket::sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(
                    left.as_secs() as i64,
                    left.subsec_micros().max(1) as _,
                ),
            )
            .map_err(std::io::Error::from)?;
            match ctl::recv::<Reply>(ctl.as_fd()) {
                Ok(Some((Reply::Connected { seq: s }, Some(fd)))) if s == seq => {
                    return Ok(TcpStream::from(fd))
                }
                Ok(Some((Reply::ConnectFailed { seq: s, errno }, _))) if s == seq => {
                    return Err(std::io::Error::from_raw_os_error(errno))
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Err(gone()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl ProcessHandle {
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Ends the start's unthrottled phase: from now on the instance runs within its cpu quota
    /// (docs/sandbox.md). Once; later calls do nothing.
    pub fn apply_cpu_quota(&self) {
        let writes = std::mem::take(
            &mut *self
                .inner
                .cpu_quota
                .lock()
                .expect("cpu quota lock is never poisoned"),
        );
        for (file, value) in writes {
            if let Err(e) = std::fs::write(&file, &value) {
                tracing::warn!(file = %file.display(), error = %e, "setting the cpu quota failed");
            }
        }
    }

    /// Sends a signal to every process of the tree. A tree that is already gone is not an
    /// error. In a sandbox the init forwards it to every process of the namespace.
    pub fn signal(&self, sig: Signal) {
        match &self.inner.kind {
            Kind::Plain { pgid } => {
                let _ = killpg(*pgid, sig);
            }
            Kind::Isolated { init, .. } => init.signal(sig),
        }
    }

    /// Kills the whole process tree at once.
    pub fn kill(&self) {
        match &self.inner.kind {
            Kind::Plain { pgid } => {
                let _ = killpg(*pgid, Signal::SIGKILL);
            }
            Kind::Isolated {
                init, shim, cgroup, ..
            } => {
                if let Some(c) = cgroup {
                    c.kill();
                }
                // The init's death takes the whole pid namespace with it.
                init.signal(Signal::SIGKILL);
                shim.signal(Signal::SIGKILL);
            }
        }
    }

    fn remember(&self) {
        if let Kind::Isolated {
            cgroup: Some(c), ..
        } = &self.inner.kind
        {
            let peak = c.memory_peak();
            if let Some(p) = peak {
                self.inner.peak.fetch_max(p, Ordering::Relaxed);
            }
            // The OOM killer runs only for a charge that failed at the limit, so the peak came
            // within one charge (at most a huge page) of it: further below, the kill count
            // cannot have moved and its file is not read (one kernfs read less per event).
            let limit = self.inner.memory_limit.load(Ordering::Relaxed);
            let near_limit = match (peak, (limit > 0).then_some(limit)) {
                (Some(_), Some(limit)) => {
                    self.inner.peak.load(Ordering::Relaxed) + OOM_MARGIN >= limit
                }
                _ => true,
            };
            if near_limit {
                self.inner
                    .oom_kills
                    .fetch_max(c.oom_kills(), Ordering::Relaxed);
            }
        }
    }

    /// How many processes of the tree the kernel's OOM killer has killed (always 0 without a
    /// memory cgroup).
    pub fn oom_kills(&self) -> u64 {
        self.remember();
        self.inner.oom_kills.load(Ordering::Relaxed)
    }

    /// What an invocation reports when it ends, from one read of the counters: the memory of the
    /// tree in bytes (the cgroup's peak in a sandbox, the main process's resident set otherwise,
    /// 0 once it is gone) and [`ProcessHandle::oom_kills`].
    pub fn usage(&self) -> (u64, u64) {
        let used = match &self.inner.kind {
            Kind::Plain { pgid } => std::fs::read_to_string(format!("/proc/{pgid}/statm"))
                .ok()
                .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
                .map(|pages| pages * 4096)
                .unwrap_or(0),
            Kind::Isolated { .. } => {
                self.remember();
                self.inner.peak.load(Ordering::Relaxed)
            }
        };
        (used, self.inner.oom_kills.load(Ordering::Relaxed))
    }

    /// A TCP connection to `127.0.0.1:port` inside the instance's network namespace (the
    /// host's loopback when isolation is off).
    pub fn connect(&self, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let Kind::Isolated { netns, broker, .. } = &self.inner.kind else {
            return TcpStream::connect_timeout(&addr, timeout);
        };
        if let Some(b) = broker {
            return b
                .lock()
                .expect("broker lock is never poisoned")
                .connect(port, timeout);
        }
        let ns = netns
            .lock()
            .expect("netns lock is never poisoned")
            .as_ref()
            .map(|f| f.try_clone())
            .transpose()?
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotConnected, "the instance has ended")
            })?;
        // setns changes only the calling thread's namespace: a short-lived thread makes the
        // socket there, and the socket keeps its namespace after the thread is gone.
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                TcpStream::connect_timeout(&addr, timeout)
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("connect thread panicked")))
        })
    }

    fn release(&self) {
        self.remember();
        if let Kind::Isolated { netns, broker, .. } = &self.inner.kind {
            netns.lock().expect("netns lock is never poisoned").take();
            if let Some(b) = broker {
                b.lock().expect("broker lock is never poisoned").ctl.take();
            }
        }
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.handle.pid()
    }

    pub fn handle(&self) -> ProcessHandle {
        self.handle.clone()
    }

    /// Makes a held runtime ([`Prepared::spawn_held`]) the instance `s` says: fgs writes the
    /// function's memory and pids limits (its cpu quota waits for
    /// [`ProcessHandle::apply_cpu_quota`] as at every start), then the shim attaches the code
    /// and the other trees, takes the network down if the function has none, and hands the
    /// runtime `s.message`. Blocks for about a millisecond: call it off the async executor.
    /// Once.
    pub fn specialize(&mut self, s: &Specialization) -> Result<(), SandboxError> {
        let held = self
            .held
            .take()
            .ok_or_else(|| SandboxError::Setup("the runtime is not held".into()))?;
        let mut targets = vec![PathBuf::from(CODE_ROOT)];
        let mut trees = vec![sys::detached_tree(&s.code_dir)
            .map_err(|e| SandboxError::Setup(format!("cloning {}: {e}", s.code_dir.display())))?];
        for (host, inside) in &s.mounts {
            targets.push(inside.clone());
            trees
                .push(sys::detached_tree(host).map_err(|e| {
                    SandboxError::Setup(format!("cloning {}: {e}", host.display()))
                })?);
        }
        let limits = Limits {
            memory_mb: Some(s.limits.memory_mb),
            pids: s.limits.pids,
        };
        if let Kind::Isolated {
            cgroup: Some(cg), ..
        } = &self.handle.inner.kind
        {
            write_limits(held.sandbox.layout.limit_writes(cg, &limits))?;
            *self
                .handle
                .inner
                .cpu_quota
                .lock()
                .expect("cpu quota lock is never poisoned") = held
                .sandbox
                .layout
                .cpu_writes(cg, Some(s.limits.cpu_millicores));
            self.handle
                .inner
                .memory_limit
                .store(limits.memory_bytes().unwrap_or(0), Ordering::Relaxed);
        }
        if !s.network {
            // As at spawn: the shim takes the interface down, and the veth or pasta goes off
            // the call path.
            if let Some(e) = self.cleanup.take() {
                teardown_later(Teardown::Egress(e));
            }
        }
        let msg = ctl::SpecializeMsg {
            targets,
            network: s.network,
            message: s.message.clone(),
        };
        let fds: Vec<_> = trees.iter().map(AsRawFd::as_raw_fd).collect();
        ctl::send_fds(held.ctl.as_fd(), &Request::Specialize(Box::new(msg)), &fds)
            .map_err(|e| SandboxError::Setup(format!("sending the specialization: {e}")))?;
        match ctl::recv::<Reply>(held.ctl.as_fd()) {
            Ok(Some((Reply::Specialized, _))) => {
                SPECIALIZED.fetch_add(1, Ordering::Relaxed);
                let parented = matches!(
                    self.handle.inner.kind,
                    Kind::Isolated { parented: true, .. }
                );
                drop(held);
                if let Some(child) = self.child.take_if(|_| parented) {
                    // As at spawn: its control socket closed, the shim exits at once, and the
                    // reaper collects it.
                    teardown_later(Teardown::Reap(child));
                }
                Ok(())
            }
            Ok(Some((Reply::Failed { error }, _))) => Err(SandboxError::Setup(error)),
            Ok(Some((other, _))) => Err(SandboxError::Setup(format!(
                "unexpected answer from the shim: {other:?}"
            ))),
            Ok(None) => Err(SandboxError::Setup("the held runtime's shim exited".into())),
            Err(e) => Err(SandboxError::Setup(format!("reading from the shim: {e}"))),
        }
    }

    /// The read end of the combined stdout/stderr pipe. Taken once.
    pub fn take_output(&mut self) -> Option<std::io::PipeReader> {
        self.output.take()
    }

    /// Waits for the runtime's main process to exit (in a sandbox, the init, and the shim when
    /// it is the init's parent, exit as it did).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        if let Kind::Isolated {
            init,
            parented: true,
            ..
        } = &self.handle.inner.kind
        {
            let fd = init.try_clone()?;
            // SAFETY: the AsyncFd owns `fd`, an open pidfd that stays open and the same until
            // the AsyncFd drops it.
            let afd = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            }
            .map_err(std::io::Error::from)?;
            // A pidfd becomes readable when its process exits.
            let _ = afd.readable().await?;
            let status = reap_init(init)?;
            self.status = Some(status);
            return Ok(status);
        }
        let child = self.child.as_mut().expect("the child is kept until drop");
        let fd: OwnedFd = PidFd::open(child.id() as i32)?.into();
        // SAFETY: the AsyncFd owns `fd`, an open pidfd that stays open and the same until the
        // AsyncFd drops it.
        let afd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        // A pidfd becomes readable when its process exits.
        let _ = afd.readable().await?;
        let status = child.wait()?;
        self.status = Some(status);
        Ok(status)
    }

    /// Sends a signal to the whole tree. A tree that is already gone is not an error.
    pub fn signal(&self, sig: Signal) {
        self.handle.signal(sig);
    }

    /// Kills the whole process tree at once.
    pub fn kill(&self) {
        self.handle.kill();
    }

    /// SIGTERM to the tree, then SIGKILL once `grace` has passed (SPEC.md 5 shutdown).
    pub async fn terminate(&mut self, grace: Duration) {
        self.signal(Signal::SIGTERM);
        if tokio::time::timeout(grace, self.wait()).await.is_err() {
            self.kill();
            let _ = self.wait().await;
        }
        // Children of the runtime may outlive it; they go too.
        self.kill();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.kill();
        // A parented init's shim went to the reaper at the end of the start: the tree still
        // has its init, cgroups and egress to end.
        let child = self.child.take();
        if child.is_some() || matches!(self.handle.inner.kind, Kind::Isolated { .. }) {
            teardown_later(Teardown::Tree {
                child,
                reaped: self.status.is_some(),
                handle: self.handle.clone(),
                egress: self.cleanup.take(),
            });
        }
    }
}

/// Kills and reaps an init fgs is the parent of, on a spawn that failed after it was forked: no
/// zombie of it may stay in fgs. Its pid cannot name another process while it is unreaped.
fn end_parented_init(init: Option<i32>) {
    let Some(pid) = init.map(Pid::from_raw) else {
        return;
    };
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
}

/// Reaps an init fgs is the parent of and gives the instance's status as the shim did: the
/// init exits 128+N for a runtime killed by signal N, which is reported as that signal.
fn reap_init(init: &PidFd) -> std::io::Result<ExitStatus> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    use std::os::unix::process::ExitStatusExt;
    loop {
        return match waitid(Id::PIDFd(init.as_fd()), WaitPidFlag::WEXITED) {
            Ok(WaitStatus::Exited(_, code)) if (129..=128 + 64).contains(&code) => {
                Ok(ExitStatus::from_raw(code - 128))
            }
            Ok(WaitStatus::Exited(_, code)) => Ok(ExitStatus::from_raw((code & 0xff) << 8)),
            Ok(WaitStatus::Signaled(_, sig, core)) => Ok(ExitStatus::from_raw(
                sig as i32 | if core { 0x80 } else { 0 },
            )),
            Ok(other) => Err(std::io::Error::other(format!(
                "unexpected init status: {other:?}"
            ))),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// Writes a held runtime's new cgroup limits. On cgroup v1 the memory limit may not exceed
/// the memory+swap limit, so which of the two must go first depends on whether the limit
/// rises or falls: a write the kernel refuses is tried again once the others are done.
fn write_limits(writes: Vec<(PathBuf, String)>) -> Result<(), SandboxError> {
    let mut again = Vec::new();
    for (file, value) in writes {
        // memsw exists only with swap accounting; everything else must take.
        if !file.exists() && file.ends_with("memory.memsw.limit_in_bytes") {
            continue;
        }
        if std::fs::write(&file, &value).is_err() {
            again.push((file, value));
        }
    }
    for (file, value) in again {
        std::fs::write(&file, &value).map_err(|e| {
            SandboxError::Setup(format!("writing {value} to {}: {e}", file.display()))
        })?;
    }
    Ok(())
}

/// Held runtimes specialized in this process (`fgs_interpreters_specialized_total`).
static SPECIALIZED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn specialized() -> u64 {
    SPECIALIZED.load(Ordering::Relaxed)
}

/// Sandboxes whose shim was started and whose teardown has not finished.
static LIVE: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn live() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// What the reaper thread ends.
enum Teardown {
    Shim(Shim),
    Tree {
        /// The shim, unless it went to [`Teardown::Reap`] already.
        child: Option<Child>,
        reaped: bool,
        handle: ProcessHandle,
        egress: Option<Egress>,
    },
    /// A shim that exits by itself (its init's parent is fgs): reaped once it has.
    Reap(Child),
    Egress(Egress),
    Flush(mpsc::Sender<()>),
}

impl Teardown {
    fn run(self) {
        match self {
            Teardown::Shim(mut shim) => {
                drop(shim.egress.take());
                let _ = shim.child.kill();
                let _ = shim.child.wait();
                if let Some(c) = &shim.cgroup {
                    c.kill();
                    c.remove();
                }
                LIVE.fetch_sub(1, Ordering::SeqCst);
            }
            Teardown::Tree {
                child,
                reaped,
                handle,
                egress,
            } => {
                handle.kill();
                match &handle.inner.kind {
                    Kind::Isolated {
                        init,
                        parented: true,
                        ..
                    } => {
                        // The shim exited at spawn's end (reaped there) or dies now; the init
                        // is fgs's to reap.
                        if let Some(mut child) = child {
                            let _ = child.wait();
                        }
                        if !reaped {
                            let _ = reap_init(init);
                        }
                    }
                    _ if !reaped => {
                        if let Some(mut child) = child {
                            let _ = child.wait();
                        }
                    }
                    _ => {}
                }
                handle.release();
                drop(egress);
                if let Kind::Isolated { cgroup, .. } = &handle.inner.kind {
                    if let Some(c) = cgroup {
                        c.remove();
                    }
                    LIVE.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Teardown::Reap(mut child) => {
                let _ = child.wait();
            }
            Teardown::Egress(Egress::Veth(v)) => v.remove(),
            Teardown::Egress(e) => drop(e),
            Teardown::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

fn teardown_later(t: Teardown) {
    static REAPER: OnceLock<Mutex<mpsc::Sender<Teardown>>> = OnceLock::new();
    let tx = REAPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Teardown>();
        std::thread::Builder::new()
            .name("fgs-sandbox-reaper".into())
            .spawn(move || {
                for t in rx {
                    t.run();
                }
            })
            .expect("spawning the sandbox reaper thread");
        Mutex::new(tx)
    });
    let _ = tx
        .lock()
        .expect("reaper sender lock is never poisoned")
        .send(t);
}

/// Waits until every teardown handed over so far is done (at shutdown, and in tests).
pub(crate) fn flush_teardowns() {
    let (tx, rx) = mpsc::channel();
    teardown_later(Teardown::Flush(tx));
    let _ = rx.recv_timeout(Duration::from_secs(10));
}
