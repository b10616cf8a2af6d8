//! The private IPv4 range the veth egress gives instances their addresses from
//! (`--egress-subnet`), and the choice of one that clashes with none of the host's routes.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix, e.g. `10.200.0.0/16`: the bridge takes its first address, instances the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    addr: Ipv4Addr,
    prefix: u8,
}

/// Why an `--egress-subnet` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an IPv4 subnet of /8 to /29 like 10.200.0.0/16")]
pub struct BadSubnet(String);

impl FromStr for Subnet {
    type Err = BadSubnet;

    fn from_str(s: &str) -> Result<Subnet, BadSubnet> {
        let bad = || BadSubnet(s.to_string());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        // At least the bridge and two instances; no larger than a /8.
        if !(8..=29).contains(&prefix) {
            return Err(bad());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Subnet {
    /// `addr/prefix` with the host bits cleared.
    pub(crate) fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    pub(crate) fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The bridge's address, which instances know as `host.fgs.internal`: the first one.
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        self.host(1)
    }

    /// How many instance addresses there are (all but network, bridge and broadcast).
    pub(crate) fn capacity(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 3
    }

    /// The `n`th instance address, `n` in `0..capacity()`.
    pub(crate) fn instance(&self, n: u32) -> Ipv4Addr {
        self.host(n + 2)
    }

    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    pub(crate) fn overlaps(&self, other: &Subnet) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// The host's IPv4 routes but the default one, from `/proc/net/route`, and the interface each
/// goes through.
pub(crate) fn routes(table: &str) -> Vec<(String, Subnet)> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = |s: &str| u32::from_str_radix(s, 16).ok();
            // Hex in host byte order (little-endian on the machines we run on).
            let dest = Ipv4Addr::from(hex(f.get(1)?)?.to_le_bytes());
            let m = hex(f.get(7)?)?.to_le_bytes();
            let prefix = u32::from_be_bytes(m).leading_ones() as u8;
            (prefix > 0).then(|| (f[0].to_string(), Subnet::new(dest, prefix)))
        })
        .collect()
}

/// The first of fgs's candidate ranges (`10.<200 + start>.0.0/16` onwards, then
/// `172.16-31.0.0/16`) that overlaps none of `routes`. `start` spreads the fgs processes of one
/// host over different ranges before any has added its route.
pub(crate) fn choose(routes: &[(String, Subnet)], start: u32) -> Option<Subnet> {
    let tens = (0..56u32).map(|i| Ipv4Addr::new(10, 200 + ((start + i) % 56) as u8, 0, 0));
    let one_seven_two = (16..32u8).map(|b| Ipv4Addr::new(172, b, 0, 0));
    tens.chain(one_seven_two)
        .map(|a| Subnet::new(a, 16))
        .find(|c| routes.iter().all(|(_, r)| !r.overlaps(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        docker0\t0000C80A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
        wg0\t0000C90A\t00000000\t0001\t0\t0\t0\t0080FFFF\t0\t0\t0\n";

    #[test]
    fn subnets_parse_and_refuse_what_cannot_hold_instances() {
        let s: Subnet = "10.200.7.9/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.200.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 200, 0, 1));
        assert_eq!(s.instance(0), Ipv4Addr::new(10, 200, 0, 2));
        assert_eq!(s.capacity(), 65533);
        assert_eq!("192.168.5.0/29".parse::<Subnet>().unwrap().capacity(), 5);
        for bad in [
            "10.0.0.0",
            "10.0.0.0/30",
            "10.0.0.0/7",
            "x/16",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn routes_are_read_without_the_default_one() {
        let r = routes(TABLE);
        let names: Vec<String> = r.iter().map(|(i, s)| format!("{i} {s}")).collect();
        assert_eq!(
            names,
            [
                "eth0 192.0.2.0/24",
                "docker0 10.200.0.0/16",
                "wg0 10.201.0.0/17"
            ]
        );
    }

    #[test]
    fn the_chosen_range_clashes_with_no_route() {
        let r = routes(TABLE);
        // 10.200/16 and 10.201/16 (overlapping 10.201.0.0/17) are taken.
        assert_eq!(choose(&r, 0), Some("10.202.0.0/16".parse().unwrap()));
        assert_eq!(choose(&r, 5), Some("10.205.0.0/16".parse().unwrap()));
        assert_eq!(choose(&r, 55), Some("10.255.0.0/16".parse().unwrap()));
        // Wrapping round to the start of the tens.
        let top = vec![("x".to_string(), "10.255.0.0/16".parse().unwrap())];
        assert_eq!(choose(&top, 55), Some("10.200.0.0/16".parse().unwrap()));
        // A host routing all of 10/8 leaves 172.16/16.
        let all_ten = vec![("x".to_string(), "10.0.0.0/8".parse().unwrap())];
        assert_eq!(choose(&all_ten, 0), Some("172.16.0.0/16".parse().unwrap()));
        let everything = vec![
            ("x".to_string(), Subnet::new(Ipv4Addr::UNSPECIFIED, 1)),
            ("y".to_string(), Subnet::new(Ipv4Addr::new(128, 0, 0, 0), 1)),
        ];
        assert_eq!(choose(&everything, 0), None);
    }
}
