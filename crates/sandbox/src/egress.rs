//! Egress of a sandbox's network namespace: a veth pair on fgs's bridge as root
//! ([`crate::veth`]), else `pasta` (Debian's `passt` package), the rootless way.
//!
//! pasta connects the namespace to the host's network in user space: it copies the host's
//! address and default route into the namespace on a tap device and turns the namespace's TCP
//! and UDP flows into ordinary host sockets. Connections to the gateway address are mapped to
//! the host's loopback, which is what `host.fgs.internal` names. Chosen over a veth pair with NAT
//! without root because it needs no privilege: it joins the sandbox's user namespace. Its cost is one
//! process per instance (about 29 MB), which is why root uses veth pairs; see docs/sandbox.md.
//!
//! pasta refuses `/proc/<pid>/ns/net` once it has dropped privileges, so the namespace is bound to
//! a file under the run dir for it (removed with the instance, swept at start-up).

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::Signal;

use crate::sys::PidFd;

/// What gives one sandbox its egress; ending it takes the egress away.
#[derive(Debug)]
// Held for their drop, which deletes the veth pair or ends pasta; never read.
#[allow(dead_code)]
pub(crate) enum Egress {
    Veth(crate::veth::Veth),
    Pasta(Pasta),
}

/// The pasta of one sandbox.
#[derive(Debug)]
pub(crate) struct Pasta {
    pasta: Option<PidFd>,
    pid: Option<i32>,
    /// The namespace bound to a file for pasta (as root only).
    ns_file: Option<PathBuf>,
    pid_file: PathBuf,
}

impl Pasta {
    /// Starts pasta for the network namespace of `pid`; it has configured the namespace when
    /// this returns.
    pub(crate) fn start(pasta: &Path, run_dir: &Path, id: &str, pid: u32) -> Result<Pasta, String> {
        let rootless = !crate::probe::is_root();
        let pid_file = pid_file(run_dir, id);
        // Made before pasta starts: a shim that sees fgs gone while its pasta still starts
        // (a pre-warm cut short by `kill -9`) waits for the pid pasta writes here and ends it.
        fs::write(&pid_file, b"").map_err(|e| format!("creating {}: {e}", pid_file.display()))?;
        let mut eg = Pasta {
            pasta: None,
            pid: None,
            ns_file: None,
            pid_file,
        };
        let mut cmd = Command::new(pasta);
        cmd.args(["--quiet", "--config-net"])
            // No inbound port forwarding: the namespace's ports are fgs's to reach, not the host's.
            .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
            .arg("--pid")
            .arg(&eg.pid_file);
        if rootless {
            // pasta was made for this: given the shim's pid, it joins the sandbox's user
            // namespace (ours, so it may) and then its network namespace. No bind mount of the
            // namespace is possible, or needed, without root.
            cmd.arg(pid.to_string());
        } else {
            let ns_file = run_dir.join("netns").join(id);
            fs::write(&ns_file, b"").map_err(|e| format!("creating {}: {e}", ns_file.display()))?;
            eg.ns_file = Some(ns_file.clone());
            mount(
                Some(Path::new(&format!("/proc/{pid}/ns/net"))),
                &ns_file,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("binding the network namespace: {e}"))?;
            cmd.args(["--runas", "0:0", "--netns"]).arg(&ns_file);
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("starting {}: {e}", pasta.display()))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr);
            let msg: Vec<&str> = msg.lines().filter(|l| !l.contains("syslog")).collect();
            return Err(format!("pasta failed ({}): {}", out.status, msg.join("; ")));
        }
        let pid: i32 = fs::read_to_string(&eg.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "pasta wrote no pid file".to_string())?;
        eg.pasta = Some(PidFd::open(pid).map_err(|e| format!("pidfd of pasta: {e}"))?);
        eg.pid = Some(pid);
        Ok(eg)
    }
}

impl Pasta {
    /// pasta's pid, once it runs.
    pub(crate) fn pid(&self) -> Option<i32> {
        self.pid
    }
}

impl Drop for Pasta {
    fn drop(&mut self) {
        if let Some(p) = &self.pasta {
            p.signal(Signal::SIGKILL);
        }
        if let Some(f) = &self.ns_file {
            let _ = umount2(f, MntFlags::MNT_DETACH);
            let _ = fs::remove_file(f);
        }
        let _ = fs::remove_file(&self.pid_file);
    }
}

/// Where the pasta of sandbox `id` writes its pid.
pub(crate) fn pid_file(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join("pasta").join(format!("{id}.pid"))
}

/// A pidfd of `pid` if that process is a pasta (pids are reused).
pub(crate) fn pasta_pidfd(pid: i32) -> Option<PidFd> {
    let fd = PidFd::open(pid).ok()?;
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    // Debian's pasta is a link to passt, built per CPU: its name is `passt.avx2` or the like,
    // not `pasta`.
    let comm = comm.trim();
    (comm.starts_with("pasta") || comm.starts_with("passt")).then_some(fd)
}

/// Ends the pastas and namespace files in `run_dir` whose names `owned` picks; how many.
pub(crate) fn sweep(run_dir: &Path, owned: impl Fn(&str) -> bool) -> usize {
    let mut n = 0;
    let stale = |e: &fs::DirEntry| owned(&e.file_name().to_string_lossy());
    if let Ok(entries) = fs::read_dir(run_dir.join("pasta")) {
        for e in entries.flatten().filter(stale) {
            let pid = fs::read_to_string(e.path())
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok());
            if let Some(fd) = pid.and_then(pasta_pidfd) {
                fd.signal(Signal::SIGKILL);
            }
            let _ = fs::remove_file(e.path());
            n += 1;
        }
    }
    if let Ok(entries) = fs::read_dir(run_dir.join("netns")) {
        for e in entries.flatten().filter(stale) {
            let _ = umount2(&e.path(), MntFlags::MNT_DETACH);
            let _ = fs::remove_file(e.path());
        }
    }
    n
}

/// The host's IPv4 default gateway (from `/proc/net/route`): inside a namespace pasta
/// configured, connections to it reach the host's loopback.
pub(crate) fn default_gateway() -> Option<Ipv4Addr> {
    parse_gateway(&fs::read_to_string("/proc/net/route").ok()?)
}

fn parse_gateway(table: &str) -> Option<Ipv4Addr> {
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[1] != "00000000" {
            return None;
        }
        // Hex in host byte order (little-endian on the machines we run on).
        let v = u32::from_str_radix(f[2], 16).ok()?;
        (v != 0).then(|| Ipv4Addr::from(v.to_le_bytes()))
    })
}

/// Where pasta is installed, if it is: the first in `PATH`.
pub(crate) fn find_pasta() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("pasta"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_from_route_table() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                 eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n\
                 eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n";
        assert_eq!(parse_gateway(t), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(parse_gateway("Iface\tDestination\n"), None);
    }
}
