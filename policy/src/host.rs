//! Validated, normalised host names, IP literals and `host[:port]` authorities.
//!
//! Every host the proxy looks at (allowlist entries, CONNECT targets, URL authorities)
//! goes through [`Host::parse`], so both sides of a comparison are normalised the same
//! way. The rules are security rules: anything ambiguous is an error, never a guess.
//!
//! - ASCII case-insensitive (stored in lower case); exactly one trailing dot is removed.
//! - `%`, `@`, `/`, `\`, `?`, `#`, `:` (outside brackets), whitespace, control and other
//!   characters outside letters, digits, `-`, `_` and `.` are rejected (after IDNA).
//! - Labels are 1..=63 bytes and do not start or end with `-`; names are at most 253 bytes.
//! - Internationalised names become punycode (UTS 46 through the `idna` crate); names
//!   that are already punycode are checked and kept.
//! - A name whose last label is a number (decimal, or `0x` hex) is an IPv4 literal and
//!   must be a canonical dotted quad; `2130706433`, `0x7f.0.0.1`, `0177.0.0.1` and
//!   `127.1` are errors, never names and never addresses.
//! - IPv6 only in brackets, parsed by the standard library, zone ids rejected.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use idna::uts46::AsciiDenyList;

/// Longest label in bytes (RFC 1035).
const MAX_LABEL: usize = 63;
/// Longest name in bytes without the trailing dot (RFC 1035).
const MAX_NAME: usize = 253;

/// A validated, normalised host: a DNS name or an IP literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name in canonical ASCII form.
    Name(DomainName),
    /// An IPv4 literal (dotted quad) or a bracketed IPv6 literal.
    Ip(IpAddr),
}

/// A DNS name: ASCII lower case, punycode, no trailing dot, validated labels.
///
/// Only built by [`Host::parse`], so every value is normalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(Box<str>);

/// `host[:port]` as written in a CONNECT request line or a URL authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The normalised host.
    pub host: Host,
    /// The port, when one was written.
    pub port: Option<u16>,
}

/// Why a host or authority was rejected, and where.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{kind}")]
pub struct HostError {
    kind: HostErrorKind,
    /// Byte offset into the parsed input; `None` when unknown (after IDNA mapping) or
    /// when the error is about the whole input.
    offset: Option<usize>,
}

/// What is wrong with a host or authority.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostErrorKind {
    #[error("empty host")]
    Empty,
    #[error("invalid character '{}' in host", .0.escape_debug())]
    InvalidChar(char),
    /// `user@host`: credentials in the authority are refused.
    #[error("userinfo ('@') is not allowed")]
    Userinfo,
    /// Two dots in a row, a leading dot, or more than one trailing dot.
    #[error("empty label")]
    EmptyLabel,
    /// Above 63 bytes after punycode.
    #[error("label longer than {MAX_LABEL} characters")]
    LabelTooLong,
    /// Above 253 bytes after punycode.
    #[error("name longer than {MAX_NAME} characters")]
    NameTooLong,
    /// `-a.com` or `a-.com`.
    #[error("label must not start or end with '-'")]
    HyphenAtLabelEdge,
    /// An internationalised name that UTS 46 refuses (or invalid punycode).
    #[error("invalid internationalised domain name")]
    InvalidIdna,
    /// A number-like IPv4 form other than the canonical dotted quad.
    #[error("non-canonical IPv4 literal (decimal, octal or hex form)")]
    NonCanonicalIpv4,
    /// A name ending in a number that is no IPv4 address at all (`1.2.3.4.5`, `999.1.1.1`).
    #[error("invalid IPv4 literal (a name must not end in a number)")]
    InvalidIpv4,
    #[error("IPv6 address must be in brackets")]
    UnbracketedIpv6,
    /// `[...]` that does not hold a valid IPv6 address.
    #[error("invalid IPv6 address")]
    InvalidIpv6,
    /// `[::1` without the closing bracket.
    #[error("missing ']' after IPv6 address")]
    UnclosedBracket,
    /// `host:` with nothing after the colon.
    #[error("empty port")]
    EmptyPort,
    /// Not a plain decimal number.
    #[error("invalid port")]
    InvalidPort,
    #[error("port 0 is not allowed")]
    PortZero,
    #[error("port greater than 65535")]
    PortOutOfRange,
}

impl HostError {
    /// An error about the whole input, or at an unknown place.
    pub(crate) fn new(kind: HostErrorKind) -> Self {
        Self { kind, offset: None }
    }

    /// An error at byte `offset` of the input.
    pub(crate) fn at(kind: HostErrorKind, offset: usize) -> Self {
        Self {
            kind,
            offset: Some(offset),
        }
    }

    /// Byte offset into the input that the error refers to, for column reporting.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// The same error with its offset moved by `by` bytes, for input parsed as a slice.
    pub(crate) fn shifted(self, by: usize) -> Self {
        Self {
            offset: self.offset.map(|offset| offset + by),
            ..self
        }
    }
}

impl DomainName {
    /// The canonical ASCII form, e.g. `xn--bcher-kva.de`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Host {
    /// Parses the host part of an authority: `Example.COM.`, `bücher.de`, `1.2.3.4`, `[::1]`.
    pub fn parse(input: &str) -> Result<Host, HostError> {
        if input.is_empty() {
            return Err(HostError::new(HostErrorKind::Empty));
        }
        check_chars(input)?;
        if input.starts_with('[') {
            return parse_bracketed(input).map(|ip| Host::Ip(IpAddr::V6(ip)));
        }
        if let Some(offset) = input.find(':') {
            return Err(if input.parse::<Ipv6Addr>().is_ok() {
                HostError::at(HostErrorKind::UnbracketedIpv6, 0)
            } else {
                HostError::at(HostErrorKind::InvalidChar(':'), offset)
            });
        }
        if let Some(offset) = input.find(']') {
            return Err(HostError::at(HostErrorKind::InvalidChar(']'), offset));
        }
        parse_name(input)
    }
}

impl FromStr for Host {
    type Err = HostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Host::parse(s)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name.as_str()),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

impl Authority {
    /// Parses `host[:port]`; `[v6]:port` is supported, userinfo and bare IPv6 are refused.
    pub fn parse(input: &str) -> Result<Authority, HostError> {
        if let Some(offset) = input.find('@') {
            return Err(HostError::at(HostErrorKind::Userinfo, offset));
        }
        let host_end = if input.starts_with('[') {
            // The port, if any, follows the closing bracket.
            input.find(']').map_or(input.len(), |close| close + 1)
        } else {
            match (input.find(':'), input.rfind(':')) {
                (Some(first), Some(last)) if first != last => {
                    return Err(unbracketed_colons(input, first, last));
                }
                (Some(colon), _) => colon,
                _ => input.len(),
            }
        };
        let host = Host::parse(&input[..host_end])?;
        let port = match input[host_end..].strip_prefix(':') {
            Some(digits) => Some(parse_port(digits).map_err(|e| e.shifted(host_end + 1))?),
            None if host_end == input.len() => None,
            None => {
                let ch = input[host_end..].chars().next().unwrap_or(']');
                return Err(HostError::at(HostErrorKind::InvalidChar(ch), host_end));
            }
        };
        Ok(Authority { host, port })
    }
}

impl FromStr for Authority {
    type Err = HostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Authority::parse(s)
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

/// Error for an unbracketed authority with several colons: IPv6 (with or without a
/// port) gets the dedicated message, anything else points at the second colon.
fn unbracketed_colons(input: &str, first: usize, last: usize) -> HostError {
    let looks_v6 = input.parse::<Ipv6Addr>().is_ok() || input[..last].parse::<Ipv6Addr>().is_ok();
    if looks_v6 {
        HostError::at(HostErrorKind::UnbracketedIpv6, 0)
    } else {
        let second = input[first + 1..].find(':').map_or(last, |i| first + 1 + i);
        HostError::at(HostErrorKind::InvalidChar(':'), second)
    }
}

/// Parses a decimal port, 1..=65535, digits only (offsets relative to `digits`).
fn parse_port(digits: &str) -> Result<u16, HostError> {
    if digits.is_empty() {
        return Err(HostError::at(HostErrorKind::EmptyPort, 0));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::at(HostErrorKind::InvalidPort, 0));
    }
    match digits.parse::<u16>() {
        Ok(0) => Err(HostError::at(HostErrorKind::PortZero, 0)),
        Ok(port) => Ok(port),
        // Only digits, so the only failure is overflow (including very long strings).
        Err(_) => Err(HostError::at(HostErrorKind::PortOutOfRange, 0)),
    }
}

/// Rejects the ASCII characters that are never part of a host, wherever they are.
///
/// Brackets and `:` are left to the caller (they are legal around IPv6).
fn check_chars(input: &str) -> Result<(), HostError> {
    for (offset, ch) in input.char_indices() {
        match ch {
            '@' => return Err(HostError::at(HostErrorKind::Userinfo, offset)),
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '[' | ']') => {}
            // Non-ASCII letters are IDNA's business; spaces and controls never are.
            c if !c.is_ascii() && !c.is_whitespace() && !c.is_control() => {}
            c => {
                return Err(HostError::at(HostErrorKind::InvalidChar(c), offset));
            }
        }
    }
    Ok(())
}

/// Parses `[v6]`; the input starts with `[`.
fn parse_bracketed(input: &str) -> Result<Ipv6Addr, HostError> {
    let Some(close) = input.find(']') else {
        return Err(HostError::at(HostErrorKind::UnclosedBracket, 0));
    };
    if close + 1 != input.len() {
        let ch = input[close + 1..].chars().next().unwrap_or(']');
        return Err(HostError::at(HostErrorKind::InvalidChar(ch), close + 1));
    }
    input[1..close]
        .parse::<Ipv6Addr>()
        .map_err(|_| HostError::at(HostErrorKind::InvalidIpv6, 0))
}

/// Parses a DNS name or dotted-quad IPv4 (no brackets, no colons, characters pre-checked).
fn parse_name(input: &str) -> Result<Host, HostError> {
    // Offsets are exact for ASCII input (checked before IDNA); unknown otherwise.
    let exact_offsets = input.is_ascii();
    let mapped = if exact_offsets {
        input.to_ascii_lowercase()
    } else {
        to_ascii(input)?
    };
    let name = mapped.strip_suffix('.').unwrap_or(&mapped);
    check_labels(name, exact_offsets)?;
    // Already-punycode labels must decode to a valid IDN.
    if exact_offsets && name.split('.').any(|label| label.starts_with("xn--")) {
        to_ascii(name)?;
    }
    if let Some(ip) = ipv4_if_numeric(name)? {
        return Ok(Host::Ip(IpAddr::V4(ip)));
    }
    if name.len() > MAX_NAME {
        return Err(HostError::new(HostErrorKind::NameTooLong));
    }
    Ok(Host::Name(DomainName(name.into())))
}

/// UTS 46 ToASCII with the WHATWG URL deny list.
fn to_ascii(input: &str) -> Result<String, HostError> {
    idna::domain_to_ascii_cow(input.as_bytes(), AsciiDenyList::URL)
        .map(|ascii| ascii.into_owned())
        .map_err(|_| HostError::new(HostErrorKind::InvalidIdna))
}

/// Checks every label of an ASCII name (no trailing dot): characters, length, hyphens.
fn check_labels(name: &str, exact_offsets: bool) -> Result<(), HostError> {
    let mut start = 0;
    for label in name.split('.') {
        let at = exact_offsets.then_some(start);
        if label.is_empty() {
            return Err(HostError {
                kind: HostErrorKind::EmptyLabel,
                offset: at,
            });
        }
        // IDNA output can hold ASCII that the pre-check never saw (`！` maps to `!`).
        if let Some((i, ch)) = label
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(HostError {
                kind: HostErrorKind::InvalidChar(ch),
                offset: at.map(|start| start + i),
            });
        }
        if label.len() > MAX_LABEL {
            return Err(HostError {
                kind: HostErrorKind::LabelTooLong,
                offset: at,
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostError {
                kind: HostErrorKind::HyphenAtLabelEdge,
                offset: at,
            });
        }
        start += label.len() + 1;
    }
    Ok(())
}

/// WHATWG "ends in a number": the last label is all digits, or `0x`/`0X` and hex digits.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// `Ok(None)` for a name that does not end in a number; otherwise the canonical dotted
/// quad or an error saying why it is not one.
fn ipv4_if_numeric(name: &str) -> Result<Option<Ipv4Addr>, HostError> {
    if !ends_in_number(name) {
        return Ok(None);
    }
    let parts: Vec<&str> = name.split('.').collect();
    let canonical = |p: &&str| {
        p.len() <= 3
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() == 1 || !p.starts_with('0'))
            && p.parse::<u8>().is_ok()
    };
    if parts.len() == 4 && parts.iter().all(canonical) {
        // Canonical by the check above, so std's strict parser agrees.
        return name
            .parse::<Ipv4Addr>()
            .map(Some)
            .map_err(|_| HostError::at(HostErrorKind::InvalidIpv4, 0));
    }
    if is_legacy_ipv4(&parts) {
        Err(HostError::at(HostErrorKind::NonCanonicalIpv4, 0))
    } else {
        Err(HostError::at(HostErrorKind::InvalidIpv4, 0))
    }
}

/// Whether browsers, curl or `inet_aton` would read `parts` as an IPv4 address (WHATWG
/// IPv4 parser: 1 to 4 parts, each decimal, `0`-octal or `0x`-hex, the last one filling
/// the remaining bytes).
fn is_legacy_ipv4(parts: &[&str]) -> bool {
    let value = |p: &str| -> Option<u64> {
        if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            return if hex.is_empty() {
                Some(0)
            } else {
                u64::from_str_radix(hex, 16).ok()
            };
        }
        match p.strip_prefix('0') {
            Some(octal) if !octal.is_empty() => u64::from_str_radix(octal, 8).ok(),
            _ => p.parse().ok(),
        }
    };
    let Some((last, init)) = parts.split_last() else {
        return false;
    };
    if parts.len() > 4 {
        return false;
    }
    let init_ok = init.iter().all(|p| value(p).is_some_and(|v| v <= 255));
    let room = 8 * (5 - parts.len() as u32);
    init_ok && value(last).is_some_and(|v| v < 1u64 << room)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Host {
        Host::Name(DomainName(s.into()))
    }

    fn ip(s: &str) -> Host {
        Host::Ip(s.parse().unwrap())
    }

    fn at(kind: HostErrorKind, offset: usize) -> HostError {
        HostError::at(kind, offset)
    }

    fn none(kind: HostErrorKind) -> HostError {
        HostError::new(kind)
    }

    #[test]
    fn normalises_valid_hosts() {
        let label63 = "a".repeat(63);
        let name253 = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        let cases: &[(&str, Host)] = &[
            ("example.com", name("example.com")),
            ("Example.COM", name("example.com")),
            ("example.com.", name("example.com")),
            ("EXAMPLE.com.", name("example.com")),
            ("localhost", name("localhost")),
            ("_dmarc.example.com", name("_dmarc.example.com")),
            ("a-b.c-d.e", name("a-b.c-d.e")),
            ("0x.com", name("0x.com")),
            ("123.example.com", name("123.example.com")),
            ("bücher.de", name("xn--bcher-kva.de")),
            ("BÜCHER.de.", name("xn--bcher-kva.de")),
            ("xn--bcher-kva.de", name("xn--bcher-kva.de")),
            ("XN--BCHER-KVA.DE", name("xn--bcher-kva.de")),
            // Fullwidth letters and the ideographic full stop map to ASCII under UTS 46.
            ("ｅｘａｍｐｌｅ。com", name("example.com")),
            (&label63, name(&label63)),
            (&name253, name(&name253)),
            ("1.2.3.4", ip("1.2.3.4")),
            ("1.2.3.4.", ip("1.2.3.4")),
            ("0.0.0.0", ip("0.0.0.0")),
            ("255.255.255.255", ip("255.255.255.255")),
            // Fullwidth digits map to ASCII digits first, then the IPv4 rules apply.
            ("１２７.0.0.1", ip("127.0.0.1")),
            ("[::1]", ip("::1")),
            ("[2001:DB8::1]", ip("2001:db8::1")),
            (
                "[::ffff:127.0.0.1]",
                Host::Ip(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Host::parse(input).as_ref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn v4_mapped_v6_stays_v6() {
        let host = Host::parse("[::ffff:127.0.0.1]").unwrap();
        assert_ne!(host, ip("127.0.0.1"));
        assert!(matches!(host, Host::Ip(IpAddr::V6(_))));
    }

    #[test]
    fn rejects_bad_hosts_with_offsets() {
        use HostErrorKind::*;
        let long_label = "a".repeat(64);
        let long_name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        let long_idn_label = "ü".repeat(60);
        let inv = |ch, offset| at(InvalidChar(ch), offset);
        let cases: &[(&str, HostError)] = &[
            ("", none(Empty)),
            ("a%2e.com", inv('%', 1)),
            ("%65xample.com", inv('%', 0)),
            ("[fe80::1%25eth0]", inv('%', 8)),
            ("user@a.com", at(Userinfo, 4)),
            ("a.com/x", inv('/', 5)),
            ("a\\b.com", inv('\\', 1)),
            ("a.com?x", inv('?', 5)),
            ("a.com#x", inv('#', 5)),
            ("a .com", inv(' ', 1)),
            ("a\t.com", inv('\t', 1)),
            ("a\n.com", inv('\n', 1)),
            ("a\0.com", inv('\0', 1)),
            ("a\u{7f}.com", inv('\u{7f}', 1)),
            ("a\u{a0}b.com", inv('\u{a0}', 1)),
            ("a!b.com", inv('!', 1)),
            ("*.a.com", inv('*', 0)),
            ("a[b.com", inv('[', 1)),
            ("a]b.com", inv(']', 1)),
            ("a:b", inv(':', 1)),
            // `！` only becomes `!` through IDNA, so its place is unknown.
            ("a！b.com", none(InvalidChar('!'))),
            (".", at(EmptyLabel, 0)),
            ("..", at(EmptyLabel, 0)),
            (".a.com", at(EmptyLabel, 0)),
            ("a..com", at(EmptyLabel, 2)),
            ("a.com..", at(EmptyLabel, 6)),
            (&long_label, at(LabelTooLong, 0)),
            (&format!("x.{long_label}.com"), at(LabelTooLong, 2)),
            (&format!("{long_idn_label}.de"), none(LabelTooLong)),
            (&long_name, none(NameTooLong)),
            ("-a.com", at(HyphenAtLabelEdge, 0)),
            ("a-.com", at(HyphenAtLabelEdge, 0)),
            ("x.com-", at(HyphenAtLabelEdge, 2)),
            // A combining mark cannot start a label; ZWJ outside its context is invalid.
            ("\u{301}a.com", none(InvalidIdna)),
            ("a\u{200d}b.com", none(InvalidIdna)),
            ("xn--a-ecp.xn--zz.com", none(InvalidIdna)),
            ("2130706433", at(NonCanonicalIpv4, 0)),
            ("0x7f000001", at(NonCanonicalIpv4, 0)),
            ("0x7f.0.0.1", at(NonCanonicalIpv4, 0)),
            ("0X7F.0.0.1", at(NonCanonicalIpv4, 0)),
            ("0177.0.0.1", at(NonCanonicalIpv4, 0)),
            ("127.0.0.01", at(NonCanonicalIpv4, 0)),
            ("127.1", at(NonCanonicalIpv4, 0)),
            ("127.0.1", at(NonCanonicalIpv4, 0)),
            ("1.2.3.0x", at(NonCanonicalIpv4, 0)),
            ("1.2.3.4.5", at(InvalidIpv4, 0)),
            ("256.0.0.1", at(InvalidIpv4, 0)),
            ("1.2.3.256", at(InvalidIpv4, 0)),
            ("999.1.1.1", at(InvalidIpv4, 0)),
            ("example.1", at(InvalidIpv4, 0)),
            ("example.0x1f", at(InvalidIpv4, 0)),
            ("0189.0.0.1", at(InvalidIpv4, 0)),
            ("::1", at(UnbracketedIpv6, 0)),
            ("2001:db8::1", at(UnbracketedIpv6, 0)),
            ("::ffff:127.0.0.1", at(UnbracketedIpv6, 0)),
            ("[::1", at(UnclosedBracket, 0)),
            ("[::1]x", inv('x', 5)),
            ("[1.2.3.4]", at(InvalidIpv6, 0)),
            ("[::g]", at(InvalidIpv6, 0)),
            ("[]", at(InvalidIpv6, 0)),
        ];
        for (input, want) in cases {
            assert_eq!(Host::parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn parses_authorities() {
        let cases: &[(&str, Host, Option<u16>)] = &[
            ("example.com", name("example.com"), None),
            ("Example.com.:443", name("example.com"), Some(443)),
            ("example.com:1", name("example.com"), Some(1)),
            ("example.com:65535", name("example.com"), Some(65535)),
            ("example.com:0080", name("example.com"), Some(80)),
            ("1.2.3.4:80", ip("1.2.3.4"), Some(80)),
            ("[::1]", ip("::1"), None),
            ("[::1]:8080", ip("::1"), Some(8080)),
            ("bücher.de:443", name("xn--bcher-kva.de"), Some(443)),
        ];
        for (input, host, port) in cases {
            let want = Authority {
                host: host.clone(),
                port: *port,
            };
            assert_eq!(Authority::parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_bad_authorities_with_offsets() {
        use HostErrorKind::*;
        let cases: &[(&str, HostError)] = &[
            ("", none(Empty)),
            (":80", none(Empty)),
            ("a.com:", at(EmptyPort, 6)),
            ("a.com:0", at(PortZero, 6)),
            ("a.com:00", at(PortZero, 6)),
            ("a.com:65536", at(PortOutOfRange, 6)),
            ("a.com:99999999999999999999999", at(PortOutOfRange, 6)),
            ("a.com:+80", at(InvalidPort, 6)),
            ("a.com:-1", at(InvalidPort, 6)),
            ("a.com:8o", at(InvalidPort, 6)),
            ("a.com: 80", at(InvalidPort, 6)),
            ("a.com:٨٠", at(InvalidPort, 6)),
            ("[::1]:", at(EmptyPort, 6)),
            ("[::1]:0", at(PortZero, 6)),
            ("[::1]80", at(InvalidChar('8'), 5)),
            ("user@a.com:80", at(Userinfo, 4)),
            ("user:pw@a.com", at(Userinfo, 7)),
            ("::1", at(UnbracketedIpv6, 0)),
            ("::1:80", at(UnbracketedIpv6, 0)),
            ("2001:db8::1:443", at(UnbracketedIpv6, 0)),
            ("a:b:c", at(InvalidChar(':'), 3)),
            ("a%40b.com:80", at(InvalidChar('%'), 1)),
            ("0x7f.0.0.1:80", at(NonCanonicalIpv4, 0)),
        ];
        for (input, want) in cases {
            assert_eq!(Authority::parse(input).as_ref(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn displays_canonical_forms_that_parse_back() {
        let cases = [
            ("Example.COM.", "example.com"),
            ("bücher.de", "xn--bcher-kva.de"),
            ("1.2.3.4", "1.2.3.4"),
            ("[::1]", "[::1]"),
            ("[2001:DB8:0::1]", "[2001:db8::1]"),
        ];
        for (input, shown) in cases {
            let host = Host::parse(input).unwrap();
            assert_eq!(host.to_string(), shown);
            assert_eq!(Host::parse(shown), Ok(host));
        }
        let authorities = [
            ("[::1]:8080", "[::1]:8080"),
            ("A.com:443", "a.com:443"),
            ("a.com", "a.com"),
        ];
        for (input, shown) in authorities {
            assert_eq!(Authority::parse(input).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn error_messages_are_lower_case_and_specific() {
        let cases = [
            ("a%b", "invalid character '%' in host"),
            ("a\tb", "invalid character '\\t' in host"),
            ("u@a", "userinfo ('@') is not allowed"),
            ("a..b", "empty label"),
            (
                "2130706433",
                "non-canonical IPv4 literal (decimal, octal or hex form)",
            ),
            ("::1", "IPv6 address must be in brackets"),
        ];
        for (input, message) in cases {
            assert_eq!(Host::parse(input).unwrap_err().to_string(), message);
        }
        assert_eq!(
            Authority::parse("a:0").unwrap_err().to_string(),
            "port 0 is not allowed"
        );
        assert_eq!(
            Authority::parse("a:x").unwrap_err().to_string(),
            "invalid port"
        );
    }

    #[test]
    fn offsets_shift_for_sliced_input() {
        let error = HostError::at(HostErrorKind::EmptyLabel, 2).shifted(3);
        assert_eq!(error.offset(), Some(5));
        assert_eq!(
            HostError::new(HostErrorKind::InvalidIdna)
                .shifted(3)
                .offset(),
            None
        );
    }
}
