//! The compiled allowlist: a builder that indexes entries once, and hashed lookups.

use std::net::IpAddr;

// foldhash (randomly seeded per process) hashes a short name several times faster than
// SipHash; the keys come from the trusted allowlist, so flooding is not a concern.
use foldhash::HashMap;

use super::entry::{Entry, Pattern};
use super::error::ParseErrors;
use super::parse::parse_entries;
use crate::host::Host;

/// Collects entries and compiles them into an [`Allowlist`].
#[derive(Clone, Debug)]
pub(crate) struct AllowlistBuilder {
    default_ports: Vec<u16>,
    entries: Vec<Entry>,
}

/// Entry indices that apply to one domain name.
#[derive(Clone, Debug, Default)]
struct NameRules {
    /// `name` entries, in line order.
    exact: Vec<usize>,
    /// `*.name` entries, in line order.
    subtree: Vec<usize>,
}

/// The immutable compiled matcher; `Send + Sync`, shared as `Arc` by the server.
///
/// # Matching rules
///
/// - `example.com` (exact) matches the host `example.com` only.
/// - `*.example.com` (subtree) matches `example.com` itself and every subdomain at any
///   depth (`a.example.com`, `a.b.example.com`), on label boundaries only: not
///   `evilexample.com`, not `example.com.evil.net`. (Other tools read `*.` as "strict
///   subdomains only"; this is the old tool's meaning.)
/// - IP entries (`1.2.3.4`, `[::1]`) match only the identical IP literal; there are no
///   wildcards over IPs, and `[::ffff:1.2.3.4]` does not match `1.2.3.4`.
/// - Both sides are normalised by [`Host::parse`]: case-insensitive, one trailing dot
///   ignored, internationalised names compared as punycode.
/// - `host:PORT` allows that port only; an entry without a port allows the default ports.
/// - The deciding entry: exact entries first, then subtrees from the longest (most
///   specific) suffix to the shortest; within each group in line order. The first of
///   them that allows the port decides [`Decision::Allowed`]. If entries match the name
///   but none allows the port, the decision is [`ListDenial::PortNotAllowed`] with the
///   first of them; if none matches the name, [`ListDenial::NotListed`] without entry.
///
/// A lookup hashes each suffix of the host name once (one hash per label); its cost does
/// not depend on the number of entries and it does not allocate.
#[derive(Clone, Debug)]
pub struct Allowlist {
    entries: Box<[Entry]>,
    default_ports: Box<[u16]>,
    names: HashMap<Box<str>, NameRules>,
    ips: HashMap<IpAddr, Vec<usize>>,
}

/// The result of [`Allowlist::lookup`]: the decision and the entry that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// Allowed, or why not.
    pub decision: Decision,
    /// The deciding entry: the allowing one, for `PortNotAllowed` the most specific entry
    /// matching the name, for `NotListed` none.
    pub(crate) entry: Option<&'a Entry>,
}

/// Whether the allowlist admits a host and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// An entry allows it.
    Allowed,
    /// Refused by the list.
    Denied(ListDenial),
}

/// Why the allowlist refused a host and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListDenial {
    /// No entry matches the host.
    NotListed,
    /// Entries match the host, but none allows the port.
    PortNotAllowed,
}

impl AllowlistBuilder {
    /// A builder whose port-less entries allow `default_ports` (sorted, deduplicated).
    pub(crate) fn new(default_ports: &[u16]) -> Self {
        let mut default_ports = default_ports.to_vec();
        default_ports.sort_unstable();
        default_ports.dedup();
        Self {
            default_ports,
            entries: Vec::new(),
        }
    }

    /// Adds an entry; entries keep the order they were pushed in.
    pub(crate) fn push(&mut self, entry: Entry) -> &mut Self {
        self.entries.push(entry);
        self
    }

    /// Compiles the entries into the matcher.
    pub(crate) fn build(self) -> Allowlist {
        let mut names: HashMap<Box<str>, NameRules> = HashMap::default();
        let mut ips: HashMap<IpAddr, Vec<usize>> = HashMap::default();
        for (index, entry) in self.entries.iter().enumerate() {
            match &entry.pattern {
                Pattern::Exact(Host::Ip(ip)) => ips.entry(*ip).or_default().push(index),
                Pattern::Exact(Host::Name(name)) => names
                    .entry(name.as_str().into())
                    .or_default()
                    .exact
                    .push(index),
                Pattern::Subtree(name) => names
                    .entry(name.as_str().into())
                    .or_default()
                    .subtree
                    .push(index),
            }
        }
        // Line order within each group, whatever order the entries were pushed in.
        let by_line = |list: &mut Vec<usize>| {
            list.sort_by_key(|&i| (self.entries[i].line, i));
        };
        for rules in names.values_mut() {
            by_line(&mut rules.exact);
            by_line(&mut rules.subtree);
        }
        ips.values_mut().for_each(by_line);
        Allowlist {
            entries: self.entries.into(),
            default_ports: self.default_ports.into(),
            names,
            ips,
        }
    }
}

impl Allowlist {
    /// Parses `text` (`origin` names it in error messages) and compiles it.
    pub fn parse(
        origin: &str,
        text: &str,
        default_ports: &[u16],
    ) -> Result<Allowlist, ParseErrors> {
        let mut builder = AllowlistBuilder::new(default_ports);
        for entry in parse_entries(origin, text)? {
            builder.push(entry);
        }
        Ok(builder.build())
    }

    /// Decides `host:port` (see the matching rules above); no allocation.
    pub fn lookup(&self, host: &Host, port: u16) -> Lookup<'_> {
        let mut first_match = None;
        for entry in self.matching(host) {
            if self.allows_port(entry, port) {
                return Lookup {
                    decision: Decision::Allowed,
                    entry: Some(entry),
                };
            }
            first_match.get_or_insert(entry);
        }
        let denial = match first_match {
            Some(_) => ListDenial::PortNotAllowed,
            None => ListDenial::NotListed,
        };
        Lookup {
            decision: Decision::Denied(denial),
            entry: first_match,
        }
    }

    /// All entries, in the order they were written.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list has no entries (and so allows nothing).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ports that entries without a port allow (sorted, deduplicated).
    pub fn default_ports(&self) -> &[u16] {
        &self.default_ports
    }

    /// Ports that some entry matching `host` allows, sorted and deduplicated (for
    /// "port not allowed" messages); empty when no entry matches the host.
    pub(crate) fn allowed_ports(&self, host: &Host) -> Vec<u16> {
        let mut ports = Vec::new();
        for entry in self.matching(host) {
            match entry.port {
                Some(port) => ports.push(port),
                None => ports.extend_from_slice(&self.default_ports),
            }
        }
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Whether `entry` admits `port`.
    fn allows_port(&self, entry: &Entry, port: u16) -> bool {
        match entry.port {
            Some(only) => only == port,
            None => self.default_ports.contains(&port),
        }
    }

    /// The entries matching `host`'s name, in precedence order (see the type docs).
    fn matching<'a>(&'a self, host: &Host) -> impl Iterator<Item = &'a Entry> {
        let (ip, name) = match host {
            Host::Ip(ip) => (Some(ip), None),
            Host::Name(name) => (None, Some(name.as_str())),
        };
        let by_ip = ip.and_then(|ip| self.ips.get(ip)).into_iter().flatten();
        let own = name.and_then(|name| self.names.get(name));
        let exact = own.into_iter().flat_map(|rules| &rules.exact);
        let own_subtree = own.into_iter().flat_map(|rules| &rules.subtree);
        // Parent domains, longest first, cut on label boundaries only.
        let parents = name
            .into_iter()
            .flat_map(|name| {
                name.match_indices('.')
                    .map(move |(dot, _)| &name[dot + 1..])
            })
            .filter_map(|suffix| self.names.get(suffix))
            .flat_map(|rules| &rules.subtree);
        by_ip
            .chain(exact)
            .chain(own_subtree)
            .chain(parents)
            .map(|&index| &self.entries[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
example.com
*.github.com
api.example.org:8443
1.2.3.4
[::1]
*.bücher.de
*.deep.example.net
x.deep.example.net:8080
*.example.net
example.com
api.github.com
10.0.0.1:22
*.co.uk
example.net
";

    fn list() -> Allowlist {
        Allowlist::parse("list.txt", LIST, &[80, 443]).unwrap()
    }

    fn host(s: &str) -> Host {
        Host::parse(s).unwrap()
    }

    const NOT_LISTED: Decision = Decision::Denied(ListDenial::NotListed);
    const WRONG_PORT: Decision = Decision::Denied(ListDenial::PortNotAllowed);
    const ALLOWED: Decision = Decision::Allowed;

    /// (rule, host, port, decision, line of the deciding entry)
    #[rustfmt::skip]
    const CASES: &[(&str, &str, u16, Decision, Option<u32>)] = &[
        ("exact matches the host", "example.com", 443, ALLOWED, Some(1)),
        ("exact matches the host only", "www.example.com", 443, NOT_LISTED, None),
        ("exact is not a suffix", "xexample.com", 443, NOT_LISTED, None),
        ("subtree matches its domain", "github.com", 443, ALLOWED, Some(2)),
        ("subtree matches a subdomain", "a.github.com", 443, ALLOWED, Some(2)),
        ("subtree matches any depth", "a.b.c.d.github.com", 80, ALLOWED, Some(2)),
        ("label boundary", "evilgithub.com", 443, NOT_LISTED, None),
        ("label boundary, partial", "ithub.com", 443, NOT_LISTED, None),
        ("suffix trick", "github.com.evil.net", 443, NOT_LISTED, None),
        ("suffix trick, exact", "example.com.evil.net", 443, NOT_LISTED, None),
        ("prefix trick", "github.comevil.com", 443, NOT_LISTED, None),
        ("case", "EXAMPLE.Com", 443, ALLOWED, Some(1)),
        ("trailing dot", "example.com.", 443, ALLOWED, Some(1)),
        ("case and trailing dot on subtree", "A.GitHub.COM.", 443, ALLOWED, Some(2)),
        ("IDN in unicode", "bücher.de", 443, ALLOWED, Some(6)),
        ("IDN in punycode", "xn--bcher-kva.de", 443, ALLOWED, Some(6)),
        ("IDN subdomain, upper case", "shop.BÜCHER.de", 443, ALLOWED, Some(6)),
        ("IDN look-alike", "bucher.de", 443, NOT_LISTED, None),
        ("v4 literal", "1.2.3.4", 443, ALLOWED, Some(4)),
        ("other v4 literal", "1.2.3.5", 443, NOT_LISTED, None),
        ("v6 literal", "[::1]", 80, ALLOWED, Some(5)),
        ("v6 long form", "[0:0:0:0:0:0:0:1]", 80, ALLOWED, Some(5)),
        ("v4-mapped v6 is not the v4 entry", "[::ffff:1.2.3.4]", 443, NOT_LISTED, None),
        ("v4-compatible v6 is not the v4 entry", "[::1.2.3.4]", 443, NOT_LISTED, None),
        ("default ports only", "example.com", 8080, WRONG_PORT, Some(1)),
        ("default port 80", "example.com", 80, ALLOWED, Some(1)),
        ("entry port", "api.example.org", 8443, ALLOWED, Some(3)),
        ("entry port only", "api.example.org", 443, WRONG_PORT, Some(3)),
        ("ip entry port", "10.0.0.1", 22, ALLOWED, Some(12)),
        ("ip entry port only", "10.0.0.1", 443, WRONG_PORT, Some(12)),
        ("exact before subtree", "api.github.com", 443, ALLOWED, Some(11)),
        ("exact before an earlier subtree of the same name", "example.net", 443, ALLOWED, Some(14)),
        ("exact with port before subtree", "x.deep.example.net", 8080, ALLOWED, Some(8)),
        ("subtree when exact lacks the port", "x.deep.example.net", 443, ALLOWED, Some(7)),
        ("longest subtree first", "a.deep.example.net", 443, ALLOWED, Some(7)),
        ("shorter subtree", "shallow.example.net", 443, ALLOWED, Some(9)),
        ("most specific entry for a port denial", "y.x.deep.example.net", 8080, WRONG_PORT, Some(7)),
        ("first line among equals", "example.com", 80, ALLOWED, Some(1)),
        ("two-label subtree", "bbc.co.uk", 443, ALLOWED, Some(13)),
        ("no implicit tld", "uk", 443, NOT_LISTED, None),
        ("sibling of a subtree", "other.uk", 443, NOT_LISTED, None),
    ];

    #[test]
    fn matching_rules() {
        let list = list();
        for &(rule, name, port, decision, line) in CASES {
            let got = list.lookup(&host(name), port);
            assert_eq!(got.decision, decision, "{rule}: {name}:{port}");
            assert_eq!(got.entry.map(|e| e.line), line, "{rule}: {name}:{port}");
        }
    }

    #[test]
    fn odd_ipv4_encodings_never_reach_the_matcher() {
        for odd in ["16909060", "0x01020304", "1.2.0x3.4", "01.2.3.4", "1.2.772"] {
            assert!(Host::parse(odd).is_err(), "{odd}");
        }
    }

    #[test]
    fn lookup_returns_the_deciding_entry() {
        let list = list();
        let lookup = list.lookup(&host("deep.github.com"), 443);
        let entry = lookup.entry.unwrap();
        assert_eq!(
            (entry.line, entry.column, entry.to_string()),
            (2, 1, "*.github.com".into())
        );
        assert!(!entry.is_exact());
        assert!(std::ptr::eq(entry, &list.entries()[1]));
    }

    #[test]
    fn allowed_ports_lists_what_matching_entries_allow() {
        let list = list();
        let cases: &[(&str, &[u16])] = &[
            ("example.com", &[80, 443]),
            ("api.example.org", &[8443]),
            ("x.deep.example.net", &[80, 443, 8080]),
            ("10.0.0.1", &[22]),
            ("unknown.org", &[]),
        ];
        for (name, ports) in cases {
            assert_eq!(list.allowed_ports(&host(name)), *ports, "{name}");
        }
    }

    #[test]
    fn default_ports_are_sorted_and_deduplicated() {
        let list = Allowlist::parse("f", "a.com", &[443, 80, 443]).unwrap();
        assert_eq!(list.default_ports(), [80, 443]);
        assert_eq!(list.lookup(&host("a.com"), 80).decision, ALLOWED);
        let only_tls = Allowlist::parse("f", "a.com", &[443]).unwrap();
        assert_eq!(only_tls.lookup(&host("a.com"), 80).decision, WRONG_PORT);
    }

    #[test]
    fn empty_list_allows_nothing() {
        for text in ["", "# nothing\n\n"] {
            let list = Allowlist::parse("f", text, &[80, 443]).unwrap();
            assert!(list.is_empty());
            assert_eq!(list.len(), 0);
            let lookup = list.lookup(&host("example.com"), 443);
            assert_eq!((lookup.decision, lookup.entry), (NOT_LISTED, None));
        }
    }

    #[test]
    fn builder_orders_by_line_whatever_the_push_order() {
        let parsed = list();
        let mut builder = AllowlistBuilder::new(&[443]);
        for entry in parsed.entries().iter().rev() {
            builder.push(entry.clone());
        }
        let rebuilt = builder.build();
        assert_eq!(rebuilt.len(), parsed.len());
        assert_eq!(
            rebuilt
                .lookup(&host("example.com"), 443)
                .entry
                .map(|e| e.line),
            Some(1)
        );
    }

    #[test]
    fn allowlist_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Allowlist>();
    }
}
