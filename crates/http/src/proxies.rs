//! Which peers' `X-Forwarded-For` is believed: sign-in failures are
//! counted per client address, and behind a reverse proxy the peer is the
//! proxy. Loopback always; others (a Docker network's proxy) when named.

use std::net::IpAddr;

/// Addresses and networks whose forwarded client address is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// `172.18.0.0/16, 10.0.0.5, fd00::/8`: addresses or networks,
    /// separated by commas or spaces.
    pub fn parse(list: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in list.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || format!("{item:?} is not an IP address or network (172.18.0.0/16)");
            let (addr, bits) = item.split_once('/').unwrap_or((item, ""));
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits =
                if bits.is_empty() { max } else { bits.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)? };
            nets.push((addr, bits));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        peer.is_loopback() || self.0.iter().any(|(net, bits)| within(peer, *net, *bits))
    }
}

fn within(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_always_and_named_networks_only() {
        let none = TrustedProxies::default();
        let docker = TrustedProxies::parse("172.18.0.0/16, 10.0.0.5 fd00::/8").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for t in [&none, &docker] {
            assert!(t.trusts(ip("127.0.0.1")) && t.trusts(ip("::1")) && t.trusts(ip("::ffff:127.0.0.1")));
            assert!(!t.trusts(ip("192.168.1.9")));
        }
        assert!(docker.trusts(ip("172.18.3.4")) && docker.trusts(ip("::ffff:172.18.0.2")));
        assert!(docker.trusts(ip("10.0.0.5")) && !docker.trusts(ip("10.0.0.6")));
        assert!(docker.trusts(ip("fd12::1")) && !docker.trusts(ip("fe80::1")));
        assert!(!none.trusts(ip("172.18.3.4")));
        assert!(TrustedProxies::parse("0.0.0.0/0").unwrap().trusts(ip("8.8.8.8")));
        for bad in ["172.18.0.0/33", "proxy", "10.0.0.5/x", "fd00::/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }
}
