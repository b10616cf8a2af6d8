//! [`Sandbox`]: the probe at start-up, the sweep of what a killed fgs left, and the pool of
//! pre-warmed sandboxes that makes a cold start pay only for [`Prepared::spawn`].

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::cgroup::{self, CgroupLayout, Source};
use crate::config::{Host, Isolation, SandboxConfig};
use crate::egress;
use crate::error::SandboxError;
use crate::probe::{self, CgroupReport, IsolationMode, IsolationReport, Namespaces};
use crate::process::{self, Prepared};
use crate::rootless;
use crate::spec::CODE_ROOT;
use crate::veth;

/// Starts sandboxes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// What preparing one sandbox needs; each prepared sandbox holds it too.
    pub host: Arc<Host>,
    pub report: IsolationReport,
    pub isolated: bool,
    pool: Mutex<PoolState>,
    pool_cv: Condvar,
    /// Sandboxes being set up now, at most [`max_preparing`] (see there).
    preparing: Mutex<usize>,
    preparing_cv: Condvar,
    /// The pre-warm thread, joined at shutdown so that a sandbox it is preparing is not left
    /// behind when the process exits.
    refill: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Pre-started runtimes (prestart.rs).
    pub prestart: crate::prestart::Pool,
}

#[derive(Debug, Default)]
struct PoolState {
    ready: Vec<Prepared>,
    closed: bool,
    /// When a cold start last took a pre-warmed sandbox.
    last_take: Option<std::time::Instant>,
}

/// While pre-warmed sandboxes are left, the pool refills only once takes have paused this long:
/// preparing one (shim, namespaces, pasta) costs tens of milliseconds of CPU, which on a small
/// host would otherwise be taken from the cold start that just took one. An empty pool refills
/// at once.
const REFILL_SETTLE: Duration = Duration::from_millis(150);

/// How many sandboxes are set up at once: four per cpu. A burst of cold starts (56 at once when a
/// function scales from 8 to 64 instances) otherwise runs that many namespace creations, pasta
/// starts and rtnl-serialised interface set-ups together; on a 2-cpu host that starved the
/// instances already serving (their calls took 0.5-2 s) and stalled the scale-out for seconds in
/// 3 of 5 benchmark runs. Two at once brought the burst up too slowly (p99 2.6-4.4 s for the calls
/// waiting for it); eight kept every call of the warm instances under 0.17 s (bench/README.md).
fn max_preparing() -> usize {
    std::thread::available_parallelism().map_or(8, |n| n.get().max(2) * 4)
}

impl Inner {
    /// [`process::prepare_isolated`] within [`max_preparing`].
    fn prepare_limited(self: &Arc<Self>) -> Result<Prepared, SandboxError> {
        let max = max_preparing();
        {
            let mut n = self
                .preparing
                .lock()
                .expect("preparing lock is never poisoned");
            while *n >= max {
                n = self
                    .preparing_cv
                    .wait(n)
                    .expect("preparing lock is never poisoned");
            }
            *n += 1;
        }
        let out = process::prepare_isolated(&self.host);
        *self
            .preparing
            .lock()
            .expect("preparing lock is never poisoned") -= 1;
        self.preparing_cv.notify_one();
        out
    }
}

impl Default for Sandbox {
    /// No isolation: for tests of other crates.
    fn default() -> Sandbox {
        Sandbox::new(SandboxConfig {
            isolation: Isolation::Off,
            prewarm: 0,
            ..SandboxConfig::default()
        })
    }
}

impl Sandbox {
    /// Probes the host, sweeps what a killed fgs left behind, and starts pre-warming. Never
    /// fails: what the host cannot give is listed in [`IsolationReport::warnings`].
    pub fn new(cfg: SandboxConfig) -> Sandbox {
        let sandbox = Sandbox::build(cfg);
        for w in &sandbox.inner.report.warnings {
            tracing::warn!("isolation: {w}");
        }
        if sandbox.inner.isolated && sandbox.inner.host.cfg.prewarm > 0 {
            let s = sandbox.clone();
            let t = std::thread::Builder::new()
                .name("fgs-prewarm".into())
                .spawn(move || s.refill())
                .expect("spawning the pre-warm thread");
            *sandbox
                .inner
                .refill
                .lock()
                .expect("refill lock is never poisoned") = Some(t);
        }
        sandbox
    }

    fn build(cfg: SandboxConfig) -> Sandbox {
        let sandbox = Sandbox::probe(cfg);
        if sandbox.inner.isolated {
            sandbox.self_test()
        } else {
            sandbox
        }
    }

    /// The host's findings for `cfg`, before any sandbox is prepared.
    fn probe(mut cfg: SandboxConfig) -> Sandbox {
        let namespaces = Namespaces::probe();
        let root = probe::is_root();
        let mut warnings = Vec::new();
        let mut isolated = cfg.isolation == Isolation::Namespaces;
        if !isolated {
            warnings.push("sandbox off: instances run as plain process groups on the host, with no namespaces, cgroups, seccomp or private /tmp".to_string());
        } else if !namespaces.all_but_user() {
            isolated = false;
            warnings.push("the kernel lacks mount, pid, net, uts, ipc or cgroup namespaces: instances run without isolation".to_string());
        } else if !root {
            if let Err(why) = &namespaces.user_unprivileged {
                isolated = false;
                warnings.push(format!("fgs does not run as root and {why}: instances run as plain process groups without isolation"));
            }
        }
        let rootless = isolated && !root;
        let layout = if rootless {
            rootless::cgroups(&cfg.cgroup_parent, &mut warnings)
        } else {
            CgroupLayout::detect()
        };
        if rootless {
            cfg.run_dir = rootless::run_dir(&cfg.run_dir);
        }
        let mut pasta = None;
        let mut gateway = None;
        let mut bridge = None;
        if isolated {
            if let Err(e) = layout.ensure_parent(&cfg.cgroup_parent) {
                warnings.push(format!(
                    "creating the cgroup parent {:?}: {e}",
                    cfg.cgroup_parent
                ));
            }
            let nft = veth::find_nft();
            let swept = cgroup::sweep(&layout, &cfg.cgroup_parent, crate::sys::owner_is_gone)
                + egress::sweep(&cfg.run_dir, crate::sys::owner_is_gone)
                + if root { veth::sweep(nft.as_deref()) } else { 0 };
            if swept > 0 {
                tracing::info!(swept, "removed sandboxes left by an earlier fgs");
            }
            for d in ["root", "netns", "pasta"] {
                if let Err(e) = std::fs::create_dir_all(cfg.run_dir.join(d)) {
                    warnings.push(format!("creating {}: {e}", cfg.run_dir.join(d).display()));
                }
            }
            if layout.memory() == Source::None {
                warnings.push("no memory cgroup controller: memory_size is not enforced and 4205 is never answered".into());
            }
            if layout.pids() == Source::None && rootless {
                warnings.push("no pids cgroup controller: processes are limited only by RLIMIT_NPROC 1024 per instance (counted in its own user namespace)".into());
            } else if layout.pids() == Source::None {
                warnings.push("no pids cgroup controller: fork bombs are not contained".into());
            }
            if layout.cpu() == Source::None {
                warnings.push("no cpu cgroup controller: cpu quotas are not enforced".into());
            }
            if !layout.has_kill(&cfg.cgroup_parent) {
                warnings.push(
                    "no cgroup.kill: instance trees are ended through their pid namespace's init"
                        .into(),
                );
            }
            if !probe::seccomp_available() {
                warnings.push(
                    "the kernel has no seccomp filters: system calls are not restricted".into(),
                );
            }
            if cfg.egress && root {
                match nft.as_deref().map(|nft| veth::Bridge::setup(&cfg.bridge, cfg.egress_subnet, nft)) {
                    Some(Ok(b)) => {
                        tracing::info!(bridge = b.name(), subnet = %b.subnet(), "egress through veth pairs");
                        gateway = Some(b.subnet().gateway());
                        bridge = Some(Arc::new(b));
                    }
                    Some(Err(e)) => warnings.push(format!("veth egress failed ({e}): falling back to pasta")),
                    None => warnings.push("nft is not installed (Debian package nftables): veth egress needs it, falling back to pasta".into()),
                }
            }
            if cfg.egress && bridge.is_none() {
                pasta = egress::find_pasta();
                gateway = egress::default_gateway();
                match (&pasta, gateway) {
                    (None, _) => warnings.push("pasta is not installed (Debian package passt): instances have only their own loopback, no egress and no host.fgs.internal".into()),
                    (Some(_), None) => {
                        pasta = None;
                        warnings.push("the host has no IPv4 default route: instances get no egress and no host.fgs.internal".into());
                    }
                    _ => {}
                }
            } else if !cfg.egress {
                warnings.push("egress disabled: instances have only their own loopback".into());
            }
        }
        let egress_mode = match (&bridge, &pasta) {
            (Some(_), _) => "veth",
            (None, Some(_)) => "pasta",
            (None, None) => "none",
        };
        let host_address = gateway.filter(|_| egress_mode != "none");
        let hosts = hosts_file(host_address);
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
        let mut not_enforced = Vec::new();
        if isolated {
            if layout.memory() == Source::None {
                not_enforced.push("memory");
            }
            if layout.cpu() == Source::None {
                not_enforced.push("cpu");
            }
            if layout.pids() == Source::None && !rootless {
                not_enforced.push("pids");
            }
        }
        let report = IsolationReport {
            mode: match (isolated, rootless) {
                (true, false) => IsolationMode::Namespaces,
                (true, true) => IsolationMode::Rootless,
                (false, _) => IsolationMode::ProcessGroup,
            },
            not_enforced,
            root,
            namespaces,
            cgroups: CgroupReport::new(&layout, &cfg.cgroup_parent),
            seccomp: isolated && probe::seccomp_available(),
            egress: egress_mode,
            bridge: bridge.as_ref().map(|b| b.name().to_string()),
            egress_subnet: bridge.as_ref().map(|b| b.subnet().to_string()),
            host_address: host_address.map(|g| g.to_string()),
            uid: cfg.uid,
            gid: cfg.gid,
            prewarm: if isolated { cfg.prewarm } else { 0 },
            warnings,
        };
        Sandbox {
            inner: Arc::new(Inner {
                host: Arc::new(Host {
                    cfg,
                    rootless,
                    layout,
                    bridge,
                    pasta,
                    exe,
                    hosts,
                }),
                report,
                isolated,
                pool: Mutex::new(PoolState::default()),
                pool_cv: Condvar::new(),
                preparing: Mutex::new(0),
                preparing_cv: Condvar::new(),
                refill: Mutex::new(None),
                prestart: Default::default(),
            }),
        }
    }

    /// Prepares one sandbox to prove the whole path works; on failure, degrades (without
    /// egress first, then to no isolation) and says why.
    fn self_test(self) -> Sandbox {
        let err = match process::prepare_isolated(&self.inner.host) {
            Ok(p) => {
                self.inner.pool.lock().expect("pool lock").ready.push(p);
                return self;
            }
            Err(e) => e,
        };
        let mut cfg = self.inner.host.cfg.clone();
        let mut report = self.inner.report.clone();
        if matches!(err, SandboxError::Egress { .. }) {
            if let Some(b) = &self.inner.host.bridge {
                b.close();
            }
            report.warnings.push(format!(
                "egress through {} failed ({err}): instances get no egress",
                report.egress
            ));
            cfg.egress = false;
        } else {
            report.warnings.push(format!(
                "the sandbox does not work on this host ({err}): instances run without isolation"
            ));
            cfg.isolation = Isolation::Off;
        }
        // Probed only: the self-test below prepares a sandbox that holds a clone of `inner`.
        let next = Sandbox::probe(cfg);
        // Keep the earlier findings next to the new ones.
        let mut inner = Arc::try_unwrap(next.inner).expect("a fresh sandbox has no clones");
        for w in inner.report.warnings.drain(..) {
            if !report.warnings.contains(&w) {
                report.warnings.push(w);
            }
        }
        report.mode = inner.report.mode;
        report.not_enforced = inner.report.not_enforced.clone();
        report.egress = inner.report.egress;
        report.bridge = inner.report.bridge.clone();
        report.egress_subnet = inner.report.egress_subnet.clone();
        report.host_address = inner.report.host_address.clone();
        report.seccomp = inner.report.seccomp;
        report.prewarm = inner.report.prewarm;
        inner.report = report;
        let next = Sandbox {
            inner: Arc::new(inner),
        };
        // The degraded sandbox proves itself too (and degrades further if it must).
        if next.inner.isolated {
            next.self_test()
        } else {
            next
        }
    }

    /// What isolation instances get, for the log and `/healthz`.
    pub fn report(&self) -> &IsolationReport {
        &self.inner.report
    }

    /// Pre-warmed sandboxes ready now (the `fgs_sandbox_prewarmed` gauge).
    pub fn prewarmed(&self) -> usize {
        self.inner.pool.lock().expect("pool lock").ready.len()
    }

    /// Whether instances run in namespaces (and see their code at [`CODE_ROOT`]).
    pub fn isolated(&self) -> bool {
        self.inner.isolated
    }

    /// The address an isolated instance's processes reach the Runtime API at (the same in
    /// every sandbox), or `None` without isolation, where each instance's differs.
    pub fn instance_api_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.isolated.then(|| {
            std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, self.inner.host.cfg.api_port))
        })
    }

    /// Where a host code directory appears to the instance's processes.
    pub fn code_root(&self, host_code_dir: &Path) -> PathBuf {
        if self.inner.isolated {
            PathBuf::from(CODE_ROOT)
        } else {
            host_code_dir.to_path_buf()
        }
    }

    /// A sandbox ready for [`Prepared::spawn`]: a pre-warmed one when there is one. Blocks for
    /// the set-up otherwise (a few milliseconds): call it off the async executor.
    pub fn prepare(&self) -> Result<Prepared, SandboxError> {
        if !self.inner.isolated {
            return process::prepare_plain();
        }
        let taken = {
            let mut pool = self.inner.pool.lock().expect("pool lock is never poisoned");
            let p = pool.ready.pop();
            pool.last_take = Some(std::time::Instant::now());
            self.inner.pool_cv.notify_all();
            p
        };
        match taken {
            Some(p) => Ok(p),
            None => self.inner.prepare_limited(),
        }
    }

    /// Stops pre-warming and ends the pre-warmed sandboxes.
    pub fn shutdown(&self) {
        self.shutdown_prestart();
        let ready = {
            let mut pool = self.inner.pool.lock().expect("pool lock is never poisoned");
            pool.closed = true;
            self.inner.pool_cv.notify_all();
            std::mem::take(&mut pool.ready)
        };
        drop(ready);
        let refill = self
            .inner
            .refill
            .lock()
            .expect("refill lock is never poisoned")
            .take();
        if let Some(t) = refill {
            let _ = t.join();
        }
        process::flush_teardowns();
        if self.inner.isolated {
            // Instances still running now (a stop that did not finish) must not outlive fgs.
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while process::live() > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                process::flush_teardowns();
            }
            let left = cgroup::sweep(
                &self.inner.host.layout,
                &self.inner.host.cfg.cgroup_parent,
                crate::sys::owned_by_us,
            ) + egress::sweep(&self.inner.host.cfg.run_dir, crate::sys::owned_by_us);
            if left > 0 {
                tracing::warn!(left, "sandboxes still running at shutdown were killed");
            }
            // Every veth is gone with its sandbox: the bridge, its table and ip_forward go now.
            if let Some(b) = &self.inner.host.bridge {
                b.close();
            }
            // The parents go too when no other fgs uses them (rmdir fails on a non-empty cgroup).
            for p in self
                .inner
                .host
                .layout
                .parent_dirs(&self.inner.host.cfg.cgroup_parent)
            {
                let _ = std::fs::remove_dir(p);
            }
        }
    }

    /// The pre-warm loop: keeps `prewarm` sandboxes ready.
    fn refill(self) {
        let target = self.inner.host.cfg.prewarm;
        loop {
            {
                let mut pool = self.inner.pool.lock().expect("pool lock is never poisoned");
                while !pool.closed && pool.ready.len() >= target {
                    pool = self
                        .inner
                        .pool_cv
                        .wait(pool)
                        .expect("pool lock is never poisoned");
                }
                if pool.closed {
                    return;
                }
                let settling = pool
                    .last_take
                    .map(|t| REFILL_SETTLE.saturating_sub(t.elapsed()))
                    .filter(|left| !left.is_zero() && !pool.ready.is_empty());
                if let Some(left) = settling {
                    drop(
                        self.inner
                            .pool_cv
                            .wait_timeout(pool, left)
                            .expect("pool lock is never poisoned"),
                    );
                    continue;
                }
            }
            match self.inner.prepare_limited() {
                Ok(p) => {
                    let mut pool = self.inner.pool.lock().expect("pool lock is never poisoned");
                    if pool.closed {
                        return;
                    }
                    pool.ready.push(p);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pre-warming a sandbox failed");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

/// The sandbox's `/etc/hosts`: its own loopback names, and the host as `host.fgs.internal`.
fn hosts_file(host: Option<Ipv4Addr>) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost fgs-instance\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    if let Some(h) = host {
        s.push_str(&format!("{h}\thost.fgs.internal\n"));
    }
    s
}
