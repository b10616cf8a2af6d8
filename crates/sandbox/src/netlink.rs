//! A minimal rtnetlink client: the few link, address and route requests the veth egress needs
//! (docs/sandbox.md), built by hand on a `NETLINK_ROUTE` socket. A crate for this (`rtnetlink`)
//! is async and brings a dozen crates for what is here a couple of hundred lines; the messages
//! are the kernel's stable ABI (`linux/rtnetlink.h`, `linux/if_link.h`).
//!
//! Every request asks for an acknowledgement and waits for it, so an error is the kernel's
//! answer to that request, with its errno.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BR_FORWARD_DELAY: u16 = 1;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_BRIDGE: u8 = libc::AF_BRIDGE as u8;
const IFF_UP: u32 = libc::IFF_UP as u32;

/// One link as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: i32,
    pub name: String,
    pub alias: Option<String>,
    /// The index of the bridge it is a port of.
    pub master: Option<i32>,
}

/// A `NETLINK_ROUTE` socket, bound to the network namespace of the thread that opened it.
#[derive(Debug)]
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub(crate) fn open() -> std::io::Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Creates a bridge named `name`, up, forwarding at once (no STP and no forward delay:
    /// its ports are veths fgs made, never a loop); fails if the name is taken.
    pub(crate) fn add_bridge(&mut self, name: &str) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, IFF_UP);
        m.str(IFLA_IFNAME, name);
        let info = m.begin(IFLA_LINKINFO);
        m.str(IFLA_INFO_KIND, "bridge");
        let data = m.begin(IFLA_INFO_DATA);
        m.u32(IFLA_BR_FORWARD_DELAY, 0);
        m.end(data);
        m.end(info);
        self.request(m)
    }

    /// Sets the alias (`ifalias`) of link `name`.
    pub(crate) fn set_alias(&mut self, name: &str, alias: &str) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.ifinfo(0, 0, 0);
        m.str(IFLA_IFNAME, name);
        m.str(IFLA_IFALIAS, alias);
        self.request(m)
    }

    /// Creates a veth pair: `host` here, up and a port of bridge `master`, and `peer` moved into
    /// the network namespace `netns`, down (the kernel refuses to bring it up before the pair is
    /// joined: [`Netlink::set_up`] it there).
    pub(crate) fn add_veth(
        &mut self,
        host: &str,
        master: i32,
        peer: &str,
        netns: &OwnedFd,
    ) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, IFF_UP);
        m.str(IFLA_IFNAME, host);
        m.u32(IFLA_MASTER, master as u32);
        let info = m.begin(IFLA_LINKINFO);
        m.str(IFLA_INFO_KIND, "veth");
        let data = m.begin(IFLA_INFO_DATA);
        let p = m.begin(VETH_INFO_PEER);
        m.ifinfo(0, 0, 0);
        m.str(IFLA_IFNAME, peer);
        m.u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32);
        m.end(p);
        m.end(data);
        m.end(info);
        self.request(m)
    }

    /// Brings link `index` up.
    pub(crate) fn set_up(&mut self, index: i32) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.ifinfo(index, 0, IFF_UP);
        self.request(m)
    }

    /// Makes bridge port `index` isolated: it forwards to the bridge itself (the host) and to
    /// ports that are not isolated, never to another isolated port.
    pub(crate) fn isolate_port(&mut self, index: i32) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.ifinfo_family(AF_BRIDGE, index, 0, 0);
        let p = m.begin(IFLA_PROTINFO | NLA_F_NESTED);
        m.u8(IFLA_BRPORT_ISOLATED, 1);
        m.end(p);
        self.request(m)
    }

    /// Deletes link `name` (a veth takes its peer with it).
    pub(crate) fn del_link(&mut self, name: &str) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(0, 0, 0);
        m.str(IFLA_IFNAME, name);
        self.request(m)
    }

    /// The index of link `name`.
    pub(crate) fn index(&mut self, name: &str) -> std::io::Result<i32> {
        let mut m = Msg::new(RTM_GETLINK, 0);
        m.ifinfo(0, 0, 0);
        m.str(IFLA_IFNAME, name);
        let replies = self.exchange(m, false)?;
        replies
            .iter()
            .find_map(|r| parse_link(r))
            .map(|l| l.index)
            .ok_or_else(|| std::io::Error::other(format!("no link {name}")))
    }

    /// Every link of this namespace.
    pub(crate) fn links(&mut self) -> std::io::Result<Vec<Link>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
        m.ifinfo(0, 0, 0);
        let replies = self.exchange(m, true)?;
        Ok(replies.iter().filter_map(|r| parse_link(r)).collect())
    }

    /// Adds `addr/prefix` to link `index`.
    pub(crate) fn add_addr(
        &mut self,
        index: i32,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&[AF_INET, prefix, 0, 0]);
        m.bytes(&(index as u32).to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets());
        m.attr(IFA_ADDRESS, &addr.octets());
        self.request(m)
    }

    /// Adds the default route through `gateway` on link `index`.
    pub(crate) fn add_default_route(
        &mut self,
        index: i32,
        gateway: Ipv4Addr,
    ) -> std::io::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // rtmsg: family, dst_len 0 (default), src_len, tos, table main, protocol boot, scope
        // universe, type unicast; flags.
        m.bytes(&[
            AF_INET,
            0,
            0,
            0,
            libc::RT_TABLE_MAIN,
            3,
            0,
            libc::RTN_UNICAST,
        ]);
        m.bytes(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets());
        m.u32(RTA_OIF, index as u32);
        self.request(m)
    }

    fn request(&mut self, m: Msg) -> std::io::Result<()> {
        self.exchange(m, false).map(drop)
    }

    /// Sends `m` and reads until its acknowledgement (or, for a dump, its end): the payloads
    /// of the other messages of the answer, from their headers on.
    fn exchange(&mut self, mut m: Msg, dump: bool) -> std::io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        m.finish(seq, if dump { 0 } else { NLM_F_ACK });
        send(self.fd.as_raw_fd(), &m.buf, MsgFlags::empty())?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut at = 0;
            while at + 16 <= n {
                let len = u32_at(&buf, at) as usize;
                let kind = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
                let their_seq = u32_at(&buf, at + 8);
                if len < 16 || at + len > n {
                    return Err(std::io::Error::other("a truncated netlink message"));
                }
                let msg = &buf[at..at + len];
                at += align(len);
                if their_seq != seq {
                    continue;
                }
                match kind {
                    NLMSG_ERROR => {
                        let errno = i32::from_ne_bytes([msg[16], msg[17], msg[18], msg[19]]);
                        if errno == 0 {
                            return Ok(out);
                        }
                        return Err(std::io::Error::from_raw_os_error(-errno));
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push(msg.to_vec()),
                }
            }
        }
    }
}

/// A request being built: the header (filled in by [`Msg::finish`]), the family header and
/// the attributes.
struct Msg {
    buf: Vec<u8>,
    kind: u16,
    flags: u16,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        Msg {
            buf: vec![0; 16],
            kind,
            flags,
        }
    }

    fn ifinfo(&mut self, index: i32, change: u32, flags: u32) {
        // A flag being set is also a flag being changed.
        self.ifinfo_family(0, index, change | flags, flags);
    }

    fn ifinfo_family(&mut self, family: u8, index: i32, change: u32, flags: u32) {
        self.bytes(&[family, 0, 0, 0]);
        self.bytes(&index.to_ne_bytes());
        self.bytes(&flags.to_ne_bytes());
        self.bytes(&change.to_ne_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.bytes(&(len as u16).to_ne_bytes());
        self.bytes(&kind.to_ne_bytes());
        self.bytes(payload);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn str(&mut self, kind: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(kind, &b);
    }

    fn u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    fn u8(&mut self, kind: u16, v: u8) {
        self.attr(kind, &[v]);
    }

    /// Opens a nested attribute; [`Msg::end`] sets its length.
    fn begin(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.bytes(&[0, 0]);
        self.bytes(&kind.to_ne_bytes());
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn finish(&mut self, seq: u32, ack: u16) {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[4..6].copy_from_slice(&self.kind.to_ne_bytes());
        self.buf[6..8].copy_from_slice(&(NLM_F_REQUEST | ack | self.flags).to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A link from an `RTM_NEWLINK` message (header included).
fn parse_link(msg: &[u8]) -> Option<Link> {
    if msg.len() < 32 || u16::from_ne_bytes([msg[4], msg[5]]) != RTM_NEWLINK {
        return None;
    }
    let index = i32::from_ne_bytes([msg[20], msg[21], msg[22], msg[23]]);
    let mut link = Link {
        index,
        name: String::new(),
        alias: None,
        master: None,
    };
    let mut at = 32;
    while at + 4 <= msg.len() {
        let len = u16::from_ne_bytes([msg[at], msg[at + 1]]) as usize;
        let kind = u16::from_ne_bytes([msg[at + 2], msg[at + 3]]) & !NLA_F_NESTED;
        if len < 4 || at + len > msg.len() {
            break;
        }
        let payload = &msg[at + 4..at + len];
        let text = || {
            String::from_utf8_lossy(payload.split(|b| *b == 0).next().unwrap_or(&[])).into_owned()
        };
        match kind {
            IFLA_IFNAME => link.name = text(),
            IFLA_IFALIAS => link.alias = Some(text()),
            IFLA_MASTER if payload.len() >= 4 => link.master = Some(u32_at(payload, 0) as i32),
            _ => {}
        }
        at += align(len);
    }
    Some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_are_measured_and_padded() {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE);
        m.ifinfo(0, 0, IFF_UP);
        m.str(IFLA_IFNAME, "fgs0");
        let info = m.begin(IFLA_LINKINFO);
        m.str(IFLA_INFO_KIND, "bridge");
        m.end(info);
        m.finish(7, NLM_F_ACK);
        assert_eq!(u32_at(&m.buf, 0) as usize, m.buf.len());
        assert_eq!(m.buf.len() % 4, 0);
        // ifinfomsg: up, and up is the change.
        assert_eq!(u32_at(&m.buf, 24), IFF_UP);
        assert_eq!(u32_at(&m.buf, 28), IFF_UP);
        // "fgs0\0" is 9 bytes with its header, padded to 12; the nest holds "bridge\0" (11,
        // padded to 12) behind its own 4.
        assert_eq!(&m.buf[32..34], &9u16.to_ne_bytes());
        assert_eq!(&m.buf[44..46], &16u16.to_ne_bytes());
        assert_eq!(u32_at(&m.buf, 8), 7);
    }

    #[test]
    fn links_are_read_back_from_their_attributes() {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(5, 0, 0);
        m.str(IFLA_IFNAME, "fgs1");
        m.str(IFLA_IFALIAS, "fgs pid=12 forward=0");
        m.u32(IFLA_MASTER, 3);
        m.finish(1, 0);
        let link = parse_link(&m.buf).expect("a link");
        assert_eq!(
            link,
            Link {
                index: 5,
                name: "fgs1".into(),
                alias: Some("fgs pid=12 forward=0".into()),
                master: Some(3),
            }
        );
        // Cut short: what is whole is read, the rest ignored.
        assert_eq!(
            parse_link(&m.buf[..44]).map(|l| l.name),
            Some("fgs1".into())
        );
        assert_eq!(parse_link(&m.buf[..20]), None);
    }
}
