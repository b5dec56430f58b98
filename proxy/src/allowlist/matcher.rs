//! The compiled allowlist: a builder that indexes entries once, and hashed lookups.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use super::entry::{Entry, Pattern};
use super::error::{LoadError, ParseErrors};
use super::parse::parse_entries;
use crate::host::Host;

/// Collects entries and compiles them into an [`Allowlist`].
#[derive(Clone, Debug)]
pub struct AllowlistBuilder {
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
    pub entry: Option<&'a Entry>,
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
    pub fn new(default_ports: &[u16]) -> Self {
        let mut default_ports = default_ports.to_vec();
        default_ports.sort_unstable();
        default_ports.dedup();
        Self {
            default_ports,
            entries: Vec::new(),
        }
    }

    /// Adds an entry; entries keep the order they were pushed in.
    pub fn push(&mut self, entry: Entry) -> &mut Self {
        self.entries.push(entry);
        self
    }

    /// Compiles the entries into the matcher.
    pub fn build(self) -> Allowlist {
        let mut names: HashMap<Box<str>, NameRules> = HashMap::new();
        let mut ips: HashMap<IpAddr, Vec<usize>> = HashMap::new();
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

    /// Reads and parses a file; a missing, unreadable or non-UTF-8 file is [`LoadError::Read`].
    pub fn load(path: &Path, default_ports: &[u16]) -> Result<Allowlist, LoadError> {
        let read_error = |source| LoadError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_error)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let message = format!("line {line} is not valid UTF-8");
            read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                message,
            ))
        })?;
        Allowlist::parse(&path.display().to_string(), &text, default_ports)
            .map_err(LoadError::Invalid)
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
    pub fn allowed_ports(&self, host: &Host) -> Vec<u16> {
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
