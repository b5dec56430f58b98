//! The destination guard: classifies resolved addresses before the proxy dials them.
//!
//! A name on the allowlist may still resolve to an address inside the sandbox host's own
//! networks (a DNS rebinding attack, or simply a careless wildcard). Every address a name
//! resolves to is classified here; anything but [`AddressClass::Public`] is refused unless
//! the policy says otherwise (an exact allowlist entry, or `--allow-private`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What kind of network an address belongs to, as far as egress policy is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// Globally routable unicast: the only class allowed by default.
    Public,
    /// 127.0.0.0/8 and ::1.
    Loopback,
    /// 169.254.0.0/16 (including cloud metadata at 169.254.169.254) and fe80::/10.
    LinkLocal,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 and the deprecated fec0::/10.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT shared space.
    SharedCgnat,
    /// 0.0.0.0/8 ("this network") and ::.
    Unspecified,
    /// 255.255.255.255.
    Broadcast,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// Documentation, benchmarking, IETF-reserved and future-use ranges.
    Reserved,
    /// IPv6 forms that carry an IPv4 address (::ffff:0:0/96, ::/96, 64:ff9b::/96,
    /// 2002::/16, 2001::/32): they can reach any IPv4 destination, so they are refused
    /// whatever the embedded address is.
    Ipv4Embedded,
}

impl AddressClass {
    /// Classifies one address.
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(v4) => classify_v4(v4),
            IpAddr::V6(v6) => classify_v6(v6),
        }
    }

    /// The stable lower-case name used in logs, headers and explanations.
    fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Private => "private",
            AddressClass::SharedCgnat => "shared-cgnat",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved",
            AddressClass::Ipv4Embedded => "ipv4-embedded-in-ipv6",
        }
    }

    /// True for [`AddressClass::Public`].
    pub fn is_public(self) -> bool {
        self == AddressClass::Public
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (169, 254, _) => AddressClass::LinkLocal,
        (10, _, _) | (192, 168, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (100, 64..=127, _) => AddressClass::SharedCgnat,
        (224..=239, _, _) => AddressClass::Multicast,
        // IETF protocol assignments, TEST-NET-1/2/3, benchmarking, 240/4 future use.
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressClass::Reserved,
        (198, 18..=19, _) | (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let s = ip.segments();
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    let embeds_v4 = (s[0..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0)) // ::ffff:0:0/96, ::/96
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) // NAT64 well-known prefix
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // NAT64 local-use 64:ff9b:1::/48
        || s[0] == 0x2002 // 6to4
        || (s[0] == 0x2001 && s[1] == 0); // Teredo
    match s[0] {
        _ if embeds_v4 => AddressClass::Ipv4Embedded,
        0xfe80..=0xfebf => AddressClass::LinkLocal,
        0xfc00..=0xfdff | 0xfec0..=0xfeff => AddressClass::Private,
        0xff00..=0xffff => AddressClass::Multicast,
        0x2001 if s[1] == 0x0db8 => AddressClass::Reserved, // documentation
        0x0100 if s[1..4] == [0; 3] => AddressClass::Reserved, // discard-only 100::/64
        // Only 2000::/3 is allocated global unicast.
        0x2000..=0x3fff => AddressClass::Public,
        _ => AddressClass::Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_forbidden_range_and_public_addresses() {
        let table: &[(&str, AddressClass)] = &[
            ("8.8.8.8", AddressClass::Public),
            ("140.82.112.3", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.255.254", AddressClass::Loopback),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("172.32.0.1", AddressClass::Public),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.127.255.255", AddressClass::SharedCgnat),
            ("100.128.0.1", AddressClass::Public),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("255.255.255.255", AddressClass::Broadcast),
            ("224.0.0.1", AddressClass::Multicast),
            ("192.0.2.1", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
            ("240.0.0.1", AddressClass::Reserved),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("fc00::1", AddressClass::Private),
            ("fd12:3456::1", AddressClass::Private),
            ("ff02::1", AddressClass::Multicast),
            ("::ffff:127.0.0.1", AddressClass::Ipv4Embedded),
            ("::ffff:8.8.8.8", AddressClass::Ipv4Embedded),
            ("::127.0.0.1", AddressClass::Ipv4Embedded),
            ("64:ff9b::7f00:1", AddressClass::Ipv4Embedded),
            ("2002:7f00:1::1", AddressClass::Ipv4Embedded),
            ("2001:0:4136:e378::1", AddressClass::Ipv4Embedded),
            ("2001:db8::1", AddressClass::Reserved),
            ("2606:4700::1111", AddressClass::Public),
        ];
        for (text, class) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(AddressClass::of(ip), *class, "{text}");
        }
    }
}
