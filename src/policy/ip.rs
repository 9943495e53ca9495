//! A key's IP allowlist: IPv4/IPv6 addresses and CIDR ranges, parsed once when the key record is
//! validated, then matched against the client address of every call.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are treated as the IPv4 address they carry,
//! both in the list and for the client, so one written form covers both.

use ipnet::IpNet;
use std::net::IpAddr;

/// The networks a key may be used from; empty means any address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist(Vec<IpNet>);

impl IpAllowlist {
    /// Parses each entry as a CIDR range (`10.0.0.0/8`, `2001:db8::/32`) or a bare address
    /// (a /32 or /128). Host bits in a range are ignored. The first entry that is neither is
    /// the error.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        entries.into_iter().map(|entry| parse_entry(entry).ok_or(entry)).collect::<Result<_, _>>().map(IpAllowlist)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a call from `client` may proceed: always if the list is empty; otherwise only a
    /// known client address inside one of the networks.
    pub fn permits(&self, client: Option<IpAddr>) -> bool {
        self.is_empty() || client.is_some_and(|ip| self.0.iter().any(|net| net.contains(&ip.to_canonical())))
    }

    /// The position of the first network not inside one of `outer`'s networks (`None`: every
    /// network is inside). Read literally: an empty `outer` contains nothing.
    pub fn first_outside(&self, outer: &IpAllowlist) -> Option<usize> {
        self.0.iter().position(|net| !outer.0.iter().any(|range| range.contains(net)))
    }
}

fn parse_entry(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    match entry.parse::<IpNet>() {
        Ok(net) => Some(net.trunc()),
        Err(_) => entry.parse::<IpAddr>().ok().map(|ip| IpNet::from(ip.to_canonical())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&'static str]) -> IpAllowlist {
        IpAllowlist::parse(entries.iter().copied()).unwrap()
    }

    /// (allowlist, client, permitted)
    const CASES: &[(&[&str], Option<&str>, bool)] = &[
        (&[], None, true),
        (&[], Some("203.0.113.9"), true),
        (&["203.0.113.9"], Some("203.0.113.9"), true),
        (&["203.0.113.9"], Some("203.0.113.10"), false),
        (&["203.0.113.9"], None, false),
        (&["203.0.113.0/24"], Some("203.0.113.0"), true),
        (&["203.0.113.0/24"], Some("203.0.113.255"), true),
        (&["203.0.113.0/24"], Some("203.0.114.0"), false),
        (&["203.0.113.77/24"], Some("203.0.113.1"), true),
        (&["0.0.0.0/0"], Some("198.51.100.1"), true),
        (&["0.0.0.0/0"], Some("2001:db8::1"), false),
        (&["10.0.0.0/8", "2001:db8::/32"], Some("2001:db8:ffff::1"), true),
        (&["10.0.0.0/8", "2001:db8::/32"], Some("2001:db9::1"), false),
        (&["2001:db8::1"], Some("2001:db8::1"), true),
        (&["2001:db8::1"], Some("2001:db8::2"), false),
        (&["2001:db8::/128"], Some("2001:db8::"), true),
        (&["::/0"], Some("2001:db8::1"), true),
        (&["::/0"], Some("192.0.2.1"), false),
        (&["192.0.2.0/24"], Some("::ffff:192.0.2.7"), true),
        (&["::ffff:192.0.2.7"], Some("192.0.2.7"), true),
        (&[" 192.0.2.7 "], Some("192.0.2.7"), true),
    ];

    #[test]
    fn allowlist_matching() {
        for &(entries, client, expected) in CASES {
            let client = client.map(|c| c.parse().unwrap());
            assert_eq!(list(entries).permits(client), expected, "{entries:?} {client:?}");
        }
    }

    #[test]
    fn networks_inside_ranges() {
        // (networks, ranges, first outside)
        let cases: &[(&[&str], &[&str], Option<usize>)] = &[
            (&["10.1.2.3"], &["10.0.0.0/8"], None),
            (&["10.1.0.0/16", "10.2.0.0/16"], &["10.0.0.0/8"], None),
            (&["10.0.0.0/8"], &["10.0.0.0/8"], None),
            (&["10.0.0.0/7"], &["10.0.0.0/8"], Some(0)),
            (&["10.1.2.3", "192.0.2.1"], &["10.0.0.0/8"], Some(1)),
            (&["192.0.2.1"], &["10.0.0.0/8", "192.0.2.0/24"], None),
            (&["::ffff:192.0.2.7"], &["192.0.2.0/24"], None),
            (&["2001:db8::1"], &["0.0.0.0/0"], Some(0)),
            (&["10.1.2.3"], &[], Some(0)),
        ];
        for &(networks, ranges, expected) in cases {
            assert_eq!(list(networks).first_outside(&list(ranges)), expected, "{networks:?} in {ranges:?}");
        }
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in ["", "10.0.0.256", "10.0.0.0/33", "2001:db8::/129", "fe80::1%eth0", "example.com", "10.0.0.0/"] {
            assert_eq!(IpAllowlist::parse(["10.0.0.1", bad]), Err(bad), "{bad:?}");
        }
    }
}
