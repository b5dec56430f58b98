//! The egress policy: the compiled allowlist plus the rules for resolved addresses.
//!
//! A [`Policy`] is an immutable snapshot. Every request is decided by exactly one snapshot,
//! identified by its generation and the sha256 of the allowlist file it was compiled
//! from, so any logged decision can be traced back to the policy that made it.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::allowlist::{Allowlist, Decision, Entry, ListDenial, LoadError};
use crate::guard::AddressClass;
use crate::host::Host;

/// An immutable, compiled egress policy.
pub struct Policy {
    allowlist: Allowlist,
    allow_private: bool,
    generation: u64,
    sha256: String,
}

/// Options that shape a policy beyond the allowlist itself; the default is the proxy's
/// (ports 80 and 443, no private addresses for wildcard entries).
#[derive(Clone, Debug)]
pub struct PolicyOptions {
    /// Ports allowed for entries written without one.
    pub default_ports: Vec<u16>,
    /// Allow non-public resolved addresses for every entry, not only exact ones.
    pub allow_private: bool,
}

/// Permission to go on with a request: the allowlist entry that allowed it.
#[derive(Clone, Copy, Debug)]
pub struct Permit<'a> {
    /// The deciding allowlist entry.
    pub entry: &'a Entry,
}

/// Why a request was refused by policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// No entry matches the host.
    NotAllowlisted,
    /// Entries match the host, but none allows this port.
    PortNotAllowed {
        /// The ports the allowlist does allow for this host.
        allowed: Vec<u16>,
        /// The line of the most specific entry that matched the host.
        line: u32,
    },
    /// The host resolved to a non-public address and its entry is a wildcard.
    PrivateAddress {
        /// The offending address (logged, never sent to the client).
        address: IpAddr,
        /// Its class.
        class: AddressClass,
    },
    /// The destination is the proxy's own listening address.
    SelfConnection,
}

impl Default for PolicyOptions {
    fn default() -> Self {
        Self {
            default_ports: vec![80, 443],
            allow_private: false,
        }
    }
}

impl DenyReason {
    /// The machine-readable reason sent in the `X-Sandbox-Proxy-Deny` header.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::NotAllowlisted => "not-allowlisted",
            DenyReason::PortNotAllowed { .. } => "port",
            DenyReason::PrivateAddress { .. } => "private-address",
            DenyReason::SelfConnection => "self",
        }
    }
}

/// A refused request: what was asked for and why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The requested host, normalised.
    pub host: Host,
    /// The requested port.
    pub port: u16,
    /// Why it was refused.
    pub reason: DenyReason,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} denied ({})",
            self.host,
            self.port,
            self.reason.code()
        )
    }
}

impl Policy {
    /// Compiles a policy from allowlist text; `generation` numbers successive policies.
    pub fn from_text(
        origin: &str,
        text: &str,
        options: &PolicyOptions,
        generation: u64,
    ) -> Result<Policy, crate::allowlist::ParseErrors> {
        let allowlist = Allowlist::parse(origin, text, &options.default_ports)?;
        Ok(Policy {
            allowlist,
            allow_private: options.allow_private,
            generation,
            sha256: format!("{:x}", Sha256::digest(text.as_bytes())),
        })
    }

    /// Reads and compiles the allowlist file at `path`. A missing, unreadable or
    /// non-UTF-8 file is [`LoadError::Read`].
    pub fn load(
        path: &Path,
        options: &PolicyOptions,
        generation: u64,
    ) -> Result<Policy, LoadError> {
        let text = Policy::read_text(path)?;
        Policy::from_text(&path.display().to_string(), &text, options, generation)
            .map_err(LoadError::Invalid)
    }

    /// Reads the allowlist file at `path`: the one way an allowlist file is read (the
    /// launcher compiles what it read with [`Policy::from_text`] and copies exactly that).
    /// A missing, unreadable or non-UTF-8 file is [`LoadError::Read`].
    pub fn read_text(path: &Path) -> Result<String, LoadError> {
        let read_error = |source| LoadError::Read {
            path: path.to_owned(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read_error)?;
        String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            let message = format!("line {line} is not valid UTF-8");
            read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                message,
            ))
        })
    }

    /// The compiled allowlist.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allowlist
    }

    /// The generation number of this policy (1 for the first one loaded).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Hex sha256 of the allowlist text this policy was compiled from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Decides on a host and port before any DNS lookup.
    pub fn check_target(&self, host: &Host, port: u16) -> Result<Permit<'_>, Denial> {
        let lookup = self.allowlist.lookup(host, port);
        let reason = match (lookup.decision, lookup.entry) {
            (Decision::Allowed, Some(entry)) => return Ok(Permit { entry }),
            (Decision::Denied(ListDenial::PortNotAllowed), Some(entry)) => {
                DenyReason::PortNotAllowed {
                    allowed: self.allowlist.allowed_ports(host),
                    line: entry.line,
                }
            }
            _ => DenyReason::NotAllowlisted,
        };
        Err(Denial {
            host: host.clone(),
            port,
            reason,
        })
    }

    /// Checks one resolved address of a permitted target; returns the address's class.
    pub fn check_address(
        &self,
        permit: &Permit<'_>,
        host: &Host,
        port: u16,
        address: IpAddr,
    ) -> Result<AddressClass, Denial> {
        let class = AddressClass::of(address);
        if class.is_public() || self.allow_private || permit.entry.is_exact() {
            return Ok(class);
        }
        Err(Denial {
            host: host.clone(),
            port,
            reason: DenyReason::PrivateAddress { address, class },
        })
    }
}

/// The allowlist line that would allow `host:port`.
fn suggested_entry(host: &Host, port: u16) -> String {
    if port == 80 || port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

impl Denial {
    /// A one-sentence explanation for the client, saying how to allow the request.
    /// It never includes resolved addresses.
    pub fn explanation(&self) -> String {
        let Denial { host, port, reason } = self;
        match reason {
            DenyReason::NotAllowlisted => format!(
                "{host}:{port} is not in the allowlist (add a line \"{}\" to allow it)",
                suggested_entry(host, *port)
            ),
            DenyReason::PortNotAllowed { allowed, line } => {
                let allowed: Vec<String> = allowed.iter().map(u16::to_string).collect();
                format!(
                    "port {port} is not allowed for {host} (line {line} of the allowlist allows \
                 ports {}; add a line \"{host}:{port}\" to allow it)",
                    allowed.join(", ")
                )
            }
            DenyReason::PrivateAddress { class, .. } => format!(
                "{host}:{port} resolves to a {class} address, which wildcard entries may not \
             reach (add the exact name \"{}\" to the allowlist to allow it)",
                suggested_entry(host, *port)
            ),
            DenyReason::SelfConnection => {
                format!("{host}:{port} is the proxy itself; connections to it are refused")
            }
        }
    }
}

impl Policy {
    /// True when this policy would still allow a connection to `host:port` at `address`
    /// (the re-check of open connections after a reload).
    pub fn still_allows(&self, host: &Host, port: u16, address: IpAddr) -> bool {
        self.check_target(host, port)
            .and_then(|permit| self.check_address(&permit, host, port, address))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str, allow_private: bool) -> Policy {
        let options = PolicyOptions {
            allow_private,
            ..PolicyOptions::default()
        };
        Policy::from_text("test", text, &options, 1).unwrap()
    }

    fn host(text: &str) -> Host {
        Host::parse(text).unwrap()
    }

    #[test]
    fn wildcard_entries_may_not_reach_private_addresses() {
        let policy = policy("*.example.com\n", false);
        let target = host("a.example.com");
        let permit = policy.check_target(&target, 443).unwrap();
        let denial = policy
            .check_address(&permit, &target, 443, "10.0.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(denial.reason.code(), "private-address");
        assert!(
            policy
                .check_address(&permit, &target, 443, "93.184.216.34".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn exact_entries_and_allow_private_may_reach_private_addresses() {
        let exact = policy("host.docker.internal\n", false);
        let target = host("host.docker.internal");
        let permit = exact.check_target(&target, 80).unwrap();
        let class = exact
            .check_address(&permit, &target, 80, "172.17.0.1".parse().unwrap())
            .unwrap();
        assert_eq!(class, AddressClass::Private);

        let open = policy("*.example.com\n", true);
        let target = host("a.example.com");
        let permit = open.check_target(&target, 80).unwrap();
        assert!(
            open.check_address(&permit, &target, 80, "127.0.0.1".parse().unwrap())
                .is_ok()
        );
    }

    #[test]
    fn port_denial_names_the_allowed_ports() {
        let policy = policy("github.com\ngithub.com:22\n", false);
        let denial = policy.check_target(&host("github.com"), 8080).unwrap_err();
        assert_eq!(
            denial.reason,
            DenyReason::PortNotAllowed {
                allowed: vec![22, 80, 443],
                line: 1
            }
        );
    }

    #[test]
    fn digest_identifies_the_policy_text() {
        let a = policy("a.com\n", false);
        let b = policy("b.com\n", false);
        // `sha256sum` of the same text.
        assert_eq!(
            a.sha256(),
            "9d91b1739830114a547f6d9474a26aea5da18addc6ecc5c23c87c613b1d11aed"
        );
        assert_ne!(a.sha256(), b.sha256());
    }

    fn load(contents: &[u8]) -> (tempfile::NamedTempFile, Result<Policy, LoadError>) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), contents).unwrap();
        let loaded = Policy::load(file.path(), &PolicyOptions::default(), 1);
        (file, loaded)
    }

    #[test]
    fn load_reads_a_file() {
        let (_file, loaded) = load(b"*.github.com\n");
        let loaded = loaded.unwrap();
        assert!(loaded.check_target(&host("api.github.com"), 443).is_ok());
        assert_eq!(loaded.sha256(), policy("*.github.com\n", false).sha256());
    }

    #[test]
    fn load_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("does-not-exist.txt");
        let error = Policy::load(&missing, &PolicyOptions::default(), 1)
            .err()
            .unwrap();
        assert!(
            matches!(&error, LoadError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert_eq!(
            error.to_string(),
            format!("cannot read allowlist {}", missing.display())
        );

        let (binary, loaded) = load(b"a.com\nb\xffc.com\n");
        let error = loaded.err().unwrap();
        let LoadError::Read { path, source } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(
            (path.as_path(), source.kind()),
            (binary.path(), std::io::ErrorKind::InvalidData)
        );
        assert_eq!(source.to_string(), "line 2 is not valid UTF-8");
        assert!(
            error
                .to_string()
                .contains(&*binary.path().to_string_lossy())
        );

        let (invalid, loaded) = load(b"ok.com\n*.com\na..b\n");
        let error = loaded.err().unwrap();
        assert!(matches!(&error, LoadError::Invalid(errors) if errors.0.len() == 2));
        let shown = invalid.path().display();
        assert_eq!(
            error.to_string(),
            format!(
                "{shown}:2:1: wildcard over a top-level domain ('*.com') is not allowed\n\
                 {shown}:3:3: empty label"
            )
        );
    }
}
