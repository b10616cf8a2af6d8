//! Egress as root without a process per instance: one bridge fgs owns, a veth pair per
//! sandbox, and one nftables table for the node (docs/sandbox.md, "Egress").
//!
//! The bridge (`--egress-bridge`, `fgs0`) takes the first address of a private range that
//! clashes with none of the host's routes (`--egress-subnet`, else chosen); that address is
//! `host.fgs.internal`. Each prepared sandbox gets a veth pair: the host end a port of the
//! bridge, isolated (it forwards to the host, never to another instance), the other end the
//! sandbox's `eth0` with an address of the range and a default route through the bridge. All of
//! it is netlink requests from fgs ([`crate::netlink`]), no process per instance. The nftables
//! table (named after the bridge, in the `inet` family) masquerades the range towards every
//! other interface, maps the bridge's address to the host's 127.0.0.1 (with `route_localnet` on
//! the bridge alone, which goes with it) and drops traffic routed from the bridge back into it;
//! `nft` runs once when fgs starts and once when it stops.
//!
//! The bridge's alias, `fgs pid=<pid> forward=<0|1>`, names its owner and whether
//! `net.ipv4.ip_forward` was off before any fgs turned it on: a starting fgs removes the
//! bridges (with their ports and tables) of owners that are gone, and the last fgs to leave puts
//! `ip_forward` back.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::netlink::{Link, Netlink};
use crate::subnet::{self, Subnet};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The bridge of this fgs and what belongs to it.
#[derive(Debug)]
pub(crate) struct Bridge {
    name: String,
    index: i32,
    subnet: Subnet,
    nft: PathBuf,
    /// `ip_forward` before the first fgs of the host turned it on.
    forward_was_on: bool,
    nl: Mutex<Netlink>,
    addrs: Mutex<Addrs>,
    next_link: AtomicU32,
    closed: AtomicBool,
}

/// Instance addresses: ones never used, then those given back longest ago. An address comes
/// back when its sandbox ends, but its veth lives on until the kernel has torn the namespace
/// down; it is not handed out again before [`QUARANTINE`] has passed, unless the range has no
/// other.
#[derive(Debug, Default)]
struct Addrs {
    next: u32,
    free: VecDeque<(u32, Instant)>,
}

/// How long a given-back address rests before it is used again.
const QUARANTINE: Duration = Duration::from_secs(30);

/// The veth pair of one sandbox. Dropped, it is left to the kernel, which deletes a veth pair
/// with its namespace, in batches (a deletion of one pair waits for the network's grace
/// periods, about 50 ms here: 1,000 instances ending would keep the reaper busy for most of a
/// minute); [`Veth::remove`] deletes it while the namespace lives on.
#[derive(Debug)]
pub(crate) struct Veth {
    bridge: Arc<Bridge>,
    host_end: String,
    addr: u32,
}

/// Where `nft` is (Debian's `nftables`, priority important: on every Debian install).
pub(crate) fn find_nft() -> Option<PathBuf> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whether `name` can be a bridge and an nftables table name: 1-15 letters, digits, `_`, `.`
/// or `-`, starting with a letter.
pub(crate) fn valid_bridge_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Bridge {
    /// Makes the bridge, its address, its table and turns forwarding on. The name is `name`,
    /// or the next free one (`fgs1`, `fgs2`...) while another live fgs has it.
    pub(crate) fn setup(name: &str, subnet: Option<Subnet>, nft: &Path) -> Result<Bridge, String> {
        if !valid_bridge_name(name) {
            return Err(format!("{name:?} is not a usable bridge name"));
        }
        let mut nl = Netlink::open().map_err(|e| format!("opening netlink: {e}"))?;
        let links = nl.links().map_err(|e| format!("listing links: {e}"))?;
        // Inherited from a live fgs: it knows what the host had before any fgs.
        let forward_was_on = links
            .iter()
            .filter_map(|l| Owner::of(l).filter(|o| o.alive()))
            .map(|o| o.forward_was_on)
            .fold(read_forward(), |a, b| a && b);
        let (stem, first) = split_number(name);
        let mut chosen = None;
        for k in 0..64u32 {
            let candidate = match first {
                Some(n) => format!("{stem}{}", n + k),
                None if k == 0 => stem.to_string(),
                None => format!("{stem}{k}"),
            };
            if !valid_bridge_name(&candidate) {
                break;
            }
            match nl.add_bridge(&candidate) {
                Ok(()) => {
                    chosen = Some((candidate, k));
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(format!("creating bridge {candidate}: {e}")),
            }
        }
        let (name, k) = chosen.ok_or_else(|| format!("no free bridge name after {name}"))?;
        let mut bridge = Bridge {
            name,
            index: 0,
            subnet: Subnet::new(Ipv4Addr::UNSPECIFIED, 16),
            nft: nft.to_path_buf(),
            forward_was_on,
            nl: Mutex::new(nl),
            addrs: Mutex::new(Addrs::default()),
            next_link: AtomicU32::new(0),
            closed: AtomicBool::new(false),
        };
        // From here on, a failure removes what was made (Drop).
        bridge.configure(subnet, k)?;
        Ok(bridge)
    }

    fn configure(&mut self, subnet: Option<Subnet>, k: u32) -> Result<(), String> {
        let name = self.name.clone();
        let nl = self.nl.get_mut().expect("netlink lock is never poisoned");
        let alias = Owner {
            pid: std::process::id(),
            forward_was_on: self.forward_was_on,
        }
        .alias();
        nl.set_alias(&name, &alias)
            .map_err(|e| format!("naming bridge {name}: {e}"))?;
        self.index = nl
            .index(&name)
            .map_err(|e| format!("finding bridge {name}: {e}"))?;
        let routes =
            subnet::routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
        self.subnet = match subnet {
            Some(s) => {
                if let Some((dev, r)) = routes.iter().find(|(_, r)| r.overlaps(&s)) {
                    return Err(format!(
                        "the egress subnet {s} clashes with the host's route to {r} on {dev}"
                    ));
                }
                s
            }
            None => subnet::choose(&routes, k).ok_or_else(|| {
                "every candidate range for instance addresses clashes with a host route (set --egress-subnet)".to_string()
            })?,
        };
        nl.add_addr(self.index, self.subnet.gateway(), self.subnet.prefix())
            .map_err(|e| format!("addressing bridge {name}: {e}"))?;
        // host.fgs.internal is mapped to 127.0.0.1, which the kernel routes from this interface
        // only with route_localnet; the setting goes with the bridge.
        let localnet = format!("/proc/sys/net/ipv4/conf/{name}/route_localnet");
        std::fs::write(&localnet, "1").map_err(|e| format!("writing {localnet}: {e}"))?;
        nft(&self.nft, &self.table_script())?;
        std::fs::write(IP_FORWARD, "1").map_err(|e| format!("writing {IP_FORWARD}: {e}"))?;
        Ok(())
    }

    /// The nftables table, replacing one of the same name a killed fgs left.
    fn table_script(&self) -> String {
        let (t, gw, s) = (&self.name, self.subnet.gateway(), self.subnet);
        format!(
            "table inet {t} {{}}\ndelete table inet {t}\n\
             table inet {t} {{\n\
             \tchain prerouting {{\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             \t\tiifname \"{t}\" ip daddr {gw} dnat ip to 127.0.0.1\n\
             \t}}\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tip saddr {s} oifname != \"{t}\" masquerade\n\
             \t}}\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tiifname \"{t}\" oifname \"{t}\" drop\n\
             \t}}\n\
             }}\n"
        )
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// Removes the table and the bridge, and puts `ip_forward` back if this was the last fgs.
    /// Once; also on drop.
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = nft(&self.nft, &drop_table_script(&self.name));
        let mut nl = self.nl.lock().expect("netlink lock is never poisoned");
        let _ = nl.del_link(&self.name);
        restore_forward(&mut nl, self.forward_was_on);
    }

    fn take_addr(&self) -> Result<u32, String> {
        let mut a = self.addrs.lock().expect("address lock is never poisoned");
        let rested = a
            .free
            .front()
            .is_some_and(|(_, at)| at.elapsed() >= QUARANTINE);
        if !rested && a.next < self.subnet.capacity() {
            a.next += 1;
            return Ok(a.next - 1);
        }
        a.free
            .pop_front()
            .map(|(n, _)| n)
            .ok_or_else(|| format!("the egress subnet {} is full", self.subnet))
    }

    fn give_back(&self, n: u32) {
        self.addrs
            .lock()
            .expect("address lock is never poisoned")
            .free
            .push_back((n, Instant::now()));
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.close();
    }
}

impl Veth {
    /// Gives the network namespace of process `pid` an `eth0` on the bridge.
    pub(crate) fn create(bridge: &Arc<Bridge>, pid: u32) -> Result<Veth, String> {
        let addr = bridge.take_addr()?;
        let n = bridge.next_link.fetch_add(1, Ordering::Relaxed) & 0xf_ffff;
        // 15 characters at most: `fgs`, the pid (at most 22 bits), a counter.
        let veth = Veth {
            bridge: Arc::clone(bridge),
            host_end: format!("fgs{:x}.{n:x}", std::process::id() & 0x3f_ffff),
            addr,
        };
        let netns: OwnedFd = std::fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(|e| format!("opening the network namespace: {e}"))?
            .into();
        {
            let mut nl = bridge.nl.lock().expect("netlink lock is never poisoned");
            // The port exists from here: the drop of `veth` deletes it on any failure below.
            nl.add_veth(&veth.host_end, bridge.index, "eth0", &netns)
                .map_err(|e| format!("creating veth {}: {e}", veth.host_end))?;
            let index = nl
                .index(&veth.host_end)
                .map_err(|e| format!("finding veth {}: {e}", veth.host_end))?;
            nl.isolate_port(index)
                .map_err(|e| format!("isolating bridge port {}: {e}", veth.host_end))?;
        }
        let (ip, prefix, gw) = (
            bridge.subnet.instance(addr),
            bridge.subnet.prefix(),
            bridge.subnet.gateway(),
        );
        // A netlink socket belongs to the namespace of the thread that opens it; this thread
        // enters the sandbox's for that and ends.
        std::thread::scope(|s| {
            s.spawn(|| -> Result<(), String> {
                nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("entering the network namespace: {e}"))?;
                let mut inner = Netlink::open().map_err(|e| format!("opening netlink: {e}"))?;
                let eth0 = inner
                    .index("eth0")
                    .map_err(|e| format!("finding eth0: {e}"))?;
                inner
                    .set_up(eth0)
                    .map_err(|e| format!("bringing eth0 up: {e}"))?;
                inner
                    .add_addr(eth0, ip, prefix)
                    .map_err(|e| format!("addressing eth0: {e}"))?;
                inner
                    .add_default_route(eth0, gw)
                    .map_err(|e| format!("routing through {gw}: {e}"))
            })
            .join()
            .unwrap_or_else(|_| Err("the namespace thread panicked".into()))
        })?;
        Ok(veth)
    }
}

impl Veth {
    /// Deletes the pair now (both ends): for a sandbox whose namespace outlives its egress.
    pub(crate) fn remove(self) {
        let mut nl = self
            .bridge
            .nl
            .lock()
            .expect("netlink lock is never poisoned");
        // Gone already when its namespace went first: not an error.
        let _ = nl.del_link(&self.host_end);
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        self.bridge.give_back(self.addr);
    }
}

/// Removes the bridges (their ports and tables) whose fgs is gone; how many.
pub(crate) fn sweep(nft: Option<&Path>) -> usize {
    let Ok(mut nl) = Netlink::open() else {
        return 0;
    };
    let Ok(links) = nl.links() else {
        return 0;
    };
    let mut n = 0;
    let mut forward_was_on = true;
    for (bridge, owner) in links
        .iter()
        .filter_map(|l| Owner::of(l).map(|o| (l, o)))
        .filter(|(_, o)| !o.alive())
    {
        for port in links.iter().filter(|l| l.master == Some(bridge.index)) {
            let _ = nl.del_link(&port.name);
        }
        if let Some(nft) = nft {
            let _ = nft_quiet(nft, &drop_table_script(&bridge.name));
        }
        let _ = nl.del_link(&bridge.name);
        forward_was_on &= owner.forward_was_on;
        n += 1;
    }
    if n > 0 {
        restore_forward(&mut nl, forward_was_on);
    }
    n
}

/// Turns `ip_forward` back off if it was off before fgs and no live fgs bridge is left.
fn restore_forward(nl: &mut Netlink, was_on: bool) {
    if was_on {
        return;
    }
    let others = nl.links().map(|links| {
        links
            .iter()
            .filter_map(Owner::of)
            .any(|o| o.alive() && o.pid != std::process::id())
    });
    if matches!(others, Ok(false)) {
        let _ = std::fs::write(IP_FORWARD, "0");
    }
}

fn read_forward() -> bool {
    std::fs::read_to_string(IP_FORWARD).is_ok_and(|s| s.trim() == "1")
}

/// The owner a bridge's alias names.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    forward_was_on: bool,
}

impl Owner {
    fn alias(&self) -> String {
        format!(
            "fgs pid={} forward={}",
            self.pid,
            u8::from(self.forward_was_on)
        )
    }

    fn of(link: &Link) -> Option<Owner> {
        let rest = link.alias.as_deref()?.strip_prefix("fgs pid=")?;
        let (pid, fwd) = rest.split_once(" forward=")?;
        Some(Owner {
            pid: pid.parse().ok()?,
            forward_was_on: fwd == "1",
        })
    }

    fn alive(&self) -> bool {
        self.pid == std::process::id() || !crate::sys::owner_is_gone(&self.pid.to_string())
    }
}

/// `fgs12` as `("fgs", Some(12))`; `br` as `("br", None)`.
fn split_number(name: &str) -> (&str, Option<u32>) {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    (stem, name[stem.len()..].parse().ok())
}

fn drop_table_script(t: &str) -> String {
    format!("table inet {t} {{}}\ndelete table inet {t}\n")
}

/// Runs an nftables script; nft's own message on failure.
fn nft(nft: &Path, script: &str) -> Result<(), String> {
    nft_quiet(nft, script).map_err(|e| format!("nft: {e}"))
}

fn nft_quiet(nft: &Path, script: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", nft.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_bridge_aliases() {
        let link = |alias: Option<&str>| Link {
            index: 3,
            name: "fgs0".into(),
            alias: alias.map(String::from),
            master: None,
        };
        let o = Owner {
            pid: 4321,
            forward_was_on: false,
        };
        assert_eq!(Owner::of(&link(Some(&o.alias()))), Some(o));
        assert_eq!(
            Owner::of(&link(Some("fgs pid=7 forward=1"))).map(|o| o.forward_was_on),
            Some(true)
        );
        assert_eq!(Owner::of(&link(None)), None);
        assert_eq!(Owner::of(&link(Some("docker bridge"))), None);
        assert_eq!(Owner::of(&link(Some("fgs pid=x forward=1"))), None);
    }

    #[test]
    fn bridge_names_and_their_successors() {
        assert_eq!(split_number("fgs0"), ("fgs", Some(0)));
        assert_eq!(split_number("fgs12"), ("fgs", Some(12)));
        assert_eq!(split_number("br"), ("br", None));
        assert!(valid_bridge_name("fgs0"));
        assert!(valid_bridge_name("fgs-e2e.1_x"));
        for bad in ["", "0fgs", "fgs 0", "fgs\"0", "a-name-too-long-x"] {
            assert!(!valid_bridge_name(bad), "{bad}");
        }
    }

    /// A bridge value that made nothing on the host (its drop removes nothing), or None where
    /// there is no netlink (a restricted build sandbox): nothing to test with there.
    fn unmade_bridge(name: &str, subnet: &str) -> Option<Bridge> {
        Some(Bridge {
            name: name.into(),
            index: 0,
            subnet: subnet.parse().unwrap(),
            nft: PathBuf::new(),
            forward_was_on: true,
            nl: Mutex::new(Netlink::open().ok()?),
            addrs: Mutex::new(Addrs::default()),
            next_link: AtomicU32::new(0),
            closed: AtomicBool::new(true),
        })
    }

    #[test]
    fn addresses_given_back_are_used_again() {
        let Some(b) = unmade_bridge("t", "10.9.0.0/29") else {
            return;
        };
        let taken: Vec<u32> = (0..4).map(|_| b.take_addr().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2, 3]);
        // Fresh addresses first while there are any, even once one is back.
        b.give_back(2);
        assert_eq!(b.take_addr(), Ok(4));
        b.give_back(0);
        // The range is used up: the longest-rested comes back, quarantine or not.
        assert_eq!(b.take_addr(), Ok(2));
        assert_eq!(b.take_addr(), Ok(0));
        assert!(b.take_addr().unwrap_err().contains("full"));
        // Rested long enough, a given-back address goes before a fresh one.
        let mut a = b.addrs.lock().unwrap();
        a.next = 1;
        a.free.push_back((3, Instant::now() - QUARANTINE));
        drop(a);
        assert_eq!(b.take_addr(), Ok(3));
        assert_eq!(b.take_addr(), Ok(1));
    }

    #[test]
    fn the_table_masquerades_maps_the_host_and_keeps_instances_apart() {
        let Some(b) = unmade_bridge("fgs3", "10.203.0.0/16") else {
            return;
        };
        let s = b.table_script();
        assert!(
            s.starts_with("table inet fgs3 {}\ndelete table inet fgs3\n"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"fgs3\" ip daddr 10.203.0.1 dnat ip to 127.0.0.1"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.203.0.0/16 oifname != \"fgs3\" masquerade"),
            "{s}"
        );
        assert!(s.contains("iifname \"fgs3\" oifname \"fgs3\" drop"), "{s}");
    }
}
