//! Egress as root through veth pairs on fgs's bridge (issue 19, docs/sandbox.md): an address
//! outside the host (a server in a network namespace this test makes, joined to the host by a
//! veth pair of its own and a route, never the internet), with `passt` out of fgs's reach;
//! instances of two functions that cannot reach each other; nothing left after a stop or a
//! `kill -9` and the next start; and the fallback to pasta when `nft` is missing. Needs root;
//! without it the tests say so and pass.
//!
//! The fixture is sandbox.rs's Custom runtime in sh + curl that runs the event's script.

use std::net::{Ipv4Addr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fgs_e2e::{json, wait_until};

use crate::sandbox::{healthz, start, start_env, start_program};

/// What of the veth egress of the fgs with pid `pid` and bridge `bridge` is left on the host:
/// its veths (named `fgs<pid in hex>.<n>`), a bridge naming it as owner, and the bridge's
/// nftables table while no other fgs has taken the name since.
pub(crate) fn veth_leftovers(pid: u32, bridge: Option<&str>) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("fgs{:x}.", pid & 0x3f_ffff);
    let owner = format!("alias fgs pid={pid} ");
    let links = ip_links();
    for l in &links {
        if l.split_whitespace().nth(1).is_some_and(|n| n.starts_with(&prefix)) || l.contains(&owner) {
            left.push(format!("link {l}"));
        }
    }
    if let Some(b) = bridge {
        let taken_by_another = links
            .iter()
            .any(|l| l.split_whitespace().nth(1) == Some(&format!("{b}:")) && !l.contains(&owner));
        if !taken_by_another && nft_table_exists(b) {
            left.push(format!("nftables table inet {b}"));
        }
    }
    left
}

/// `ip -o link` lines (an alias shows as `alias ...` on its link's line).
fn ip_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip -o link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| format!("{l} "))
        .collect()
}

fn nft_table_exists(name: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("ip");
    assert!(st.success(), "ip {args:?}");
}

/// A network namespace standing for the outside world: `eth0` at `addr`, whose default route is
/// the host end of its veth pair at `host`, and an HTTP server on port 8080 that answers with
/// the address each connection came from. Removed (with its veth pair) when dropped.
struct Outside {
    ns: String,
    addr: Ipv4Addr,
    host: Ipv4Addr,
    server: Child,
}

impl Outside {
    fn new() -> Outside {
        // A /30 of 198.18.0.0/15 (the benchmarking range: routed nowhere) per test process.
        let pid = std::process::id();
        let (a, b) = (((pid >> 6) & 0xff) as u8, ((pid & 0x3f) << 2) as u8);
        let host = Ipv4Addr::new(198, 18, a, b + 1);
        let addr = Ipv4Addr::new(198, 18, a, b + 2);
        let ns = format!("fgs-out-{pid}");
        let link = format!("fgso{pid:x}");
        ip(&["netns", "add", &ns]);
        let mut out = Outside {
            ns: ns.clone(),
            addr,
            host,
            server: Command::new("true").spawn().expect("true"),
        };
        ip(&["link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        ip(&["addr", "add", &format!("{host}/30"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        let inside = |args: &[&str]| {
            let mut a = vec!["netns", "exec", &ns, "ip"];
            a.extend_from_slice(args);
            ip(&a);
        };
        inside(&["addr", "add", &format!("{addr}/30"), "dev", "eth0"]);
        inside(&["link", "set", "eth0", "up"]);
        inside(&["link", "set", "lo", "up"]);
        inside(&["route", "add", "default", "via", &host.to_string()]);
        const SERVER: &str = "import http.server\n\
            class H(http.server.BaseHTTPRequestHandler):\n\
            \x20   def do_GET(s):\n\
            \x20       b = s.client_address[0].encode()\n\
            \x20       s.send_response(200); s.send_header('Content-Length', str(len(b))); s.end_headers(); s.wfile.write(b)\n\
            \x20   def log_message(s, *a): pass\n\
            http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()\n";
        out.server = Command::new("ip")
            .args(["netns", "exec", &ns, "/usr/bin/python3", "-c", SERVER])
            .spawn()
            .expect("start the outside server");
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect_timeout(&(addr, 8080).into(), Duration::from_millis(200)).is_ok()
        });
        assert!(up, "the outside server listens");
        out
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // The namespace's end of the pair goes with it, and the host's with that.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// An address outside the host is reached through the bridge and the node's masquerade (the
/// server sees the host's address on its link, not the instance's), with Debian's `passt` out
/// of fgs's `PATH`: as root, egress needs no pasta.
#[test]
fn an_outside_address_is_reached_without_passt() {
    let Some(sb) = start_env(
        "veth egress without passt",
        &[],
        &[("PATH", "/usr/sbin:/sbin")],
    ) else {
        return;
    };
    assert!(
        !std::path::Path::new("/usr/sbin/pasta").exists(),
        "the test needs pasta outside /usr/sbin"
    );
    let iso = healthz(sb.s())["isolation"].clone();
    assert_eq!(iso["egress"], "veth", "{iso}");
    assert!(iso["warnings"].as_array().is_some_and(|w| w.is_empty()), "{iso}");
    let outside = Outside::new();
    sb.create("egress", json!({}));
    let out = sb.ok(
        "egress",
        &format!("curl -sS -m 5 http://{}:8080/", outside.addr),
    );
    assert_eq!(out, outside.host.to_string(), "masqueraded to the host's address");
    // The instance's own address comes from the range /healthz reports.
    let own = sb.ok("egress", "/usr/sbin/ip -4 -o addr show eth0 | awk '{print $4}'");
    let subnet = iso["egress_subnet"].as_str().expect("a subnet");
    let parse = |cidr: &str| -> (u32, u32) {
        let (a, p) = cidr.trim().split_once('/').expect("address/prefix");
        let a: Ipv4Addr = a.parse().expect("an address");
        (u32::from(a), p.parse().expect("a prefix"))
    };
    let ((ip, ip_len), (net, len)) = (parse(&own), parse(subnet));
    assert_eq!(ip_len, len, "{own} in {subnet}");
    assert_eq!(ip >> (32 - len), net >> (32 - len), "{own} in {subnet}");
    drop(outside);
    sb.finish();
}

/// As root without `nft` (Debian's `nftables` not installed), fgs says so, falls back to pasta,
/// and instances still reach an outside address and `host.fgs.internal`. fgs runs in a mount
/// namespace of its own where `/usr/sbin` (and `/sbin`, its symlink) is an empty tmpfs: no `nft`
/// at any path fgs looks for it.
#[test]
fn without_nft_egress_falls_back_to_pasta() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let test = "pasta fallback without nft";
    let pasta = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("pasta"))
            .find(|p| p.exists() && !p.starts_with("/usr/sbin"))
    });
    if pasta.is_none() {
        eprintln!("skipped {test}: pasta is not installed (Debian's passt)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let wrapper = dir.path().join("fgs-without-nft");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec unshare --mount --propagation private /bin/sh -c \
             'mount -t tmpfs -o size=64k,mode=0755 fgs-no-nft /usr/sbin && exec \"$0\" \"$@\"' \
             '{}' \"$@\"\n",
            fgs_e2e::fgs_bin().display()
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let Some(sb) = start_program(test, &[], &[], Some(wrapper)) else {
        return;
    };
    let iso = healthz(sb.s())["isolation"].clone();
    assert_eq!(iso["egress"], "pasta", "{iso}");
    assert!(iso["bridge"].is_null(), "{iso}");
    let warned = iso["warnings"]
        .as_array()
        .is_some_and(|w| w.iter().any(|w| w.as_str().is_some_and(|w| w.contains("nft is not installed"))));
    assert!(warned, "the fallback is said: {iso}");
    let outside = Outside::new();
    sb.create("egress", json!({}));
    let out = sb.ok(
        "egress",
        &format!("curl -sS -m 5 http://{}:8080/", outside.addr),
    );
    // pasta turns the instance's flows into the host's own sockets.
    assert_eq!(out, outside.host.to_string(), "from the host's address");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a host server");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nhost",
            );
        }
    });
    let out = sb.ok(
        "egress",
        &format!("curl -sS -m 5 http://host.fgs.internal:{port}/"),
    );
    assert_eq!(out, "host");
    drop(outside);
    sb.finish();
}

/// Bridge ports are isolated: an instance of one function cannot open a connection to a port
/// an instance of another function listens on, which the host reaches.
#[test]
fn instances_of_two_functions_cannot_reach_each_other() {
    let Some(sb) = start("veth isolation", &[]) else {
        return;
    };
    assert_eq!(healthz(sb.s())["isolation"]["egress"], "veth");
    sb.create("listener", json!({}));
    sb.create("intruder", json!({}));
    let addr = sb.ok(
        "listener",
        "/usr/bin/python3 -m http.server 9100 --bind 0.0.0.0 >/dev/null 2>&1 &\n\
         for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:9100/ && break; sleep 0.1; done\n\
         /usr/sbin/ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1",
    );
    let addr: Ipv4Addr = addr.trim().parse().expect("the listener's address");
    // It listens: the host, on the bridge, connects.
    assert!(
        TcpStream::connect_timeout(&(addr, 9100).into(), Duration::from_secs(3)).is_ok(),
        "the host reaches the listener at {addr}:9100"
    );
    let tried = sb.ok(
        "intruder",
        &format!(
            "if curl -s -m 3 -o /dev/null http://{addr}:9100/; then echo reached; else echo unreachable; fi"
        ),
    );
    assert_eq!(tried.trim(), "unreachable", "{addr}:9100 from another function");
    sb.finish();
}

/// After `kill -9` the bridge and its table are left (counted), and the next start on the same
/// host removes them; after a stop, nothing is left (counted in `finish`).
#[test]
fn a_bridge_left_by_kill_9_is_swept_at_the_next_start() {
    let Some(mut sb) = start("veth sweep", &[]) else {
        return;
    };
    let iso = healthz(sb.s())["isolation"].clone();
    assert_eq!(iso["egress"], "veth", "{iso}");
    let bridge = iso["bridge"].as_str().expect("a bridge").to_string();
    sb.create("linger", json!({}));
    sb.ok("linger", "echo started");
    let server = sb.server.take().expect("the server runs");
    let old = server.pid();
    let owned = |pid: u32| {
        ip_links()
            .into_iter()
            .filter(|l| l.contains(&format!("alias fgs pid={pid} ")))
            .count()
    };
    let ports = |pid: u32| {
        let prefix = format!("fgs{:x}.", pid & 0x3f_ffff);
        ip_links()
            .into_iter()
            .filter(|l| l.split_whitespace().nth(1).is_some_and(|n| n.starts_with(&prefix)))
            .count()
    };
    // Two pre-warmed sandboxes and the instance.
    assert!(ports(old) >= 2, "veths of the running fgs: {}", ports(old));
    server.kill9();
    assert_eq!(owned(old), 1, "the bridge outlives a kill -9");
    assert!(nft_table_exists(&bridge), "so does its table");
    // The next start, on the same host.
    let next = fgs_e2e::Server::start(sb.opts.clone());
    assert_eq!(owned(old), 0, "the killed fgs's bridge is swept at start");
    assert!(
        wait_until(Duration::from_secs(10), || ports(old) == 0),
        "and its veths: {}",
        ports(old)
    );
    let now = healthz(&next)["isolation"].clone();
    assert_eq!(now["egress"], "veth", "{now}");
    let held = ip_links()
        .iter()
        .any(|l| l.split_whitespace().nth(1) == Some(&format!("{bridge}:")));
    if !held {
        assert!(!nft_table_exists(&bridge), "the killed fgs's table is swept");
    }
    sb.server = Some(next);
    sb.finish();
}
