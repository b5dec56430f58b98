//! `sandbox-policy`: the egress policy of agent-sandbox, shared by the proxy, the
//! launcher and the tests. Nothing here does I/O beyond reading the allowlist file.
//!
//! - [`Host`] and [`Authority`]: validated, normalised host names and `host[:port]`.
//! - [`Allowlist`]: the file format (errors located by file, line and column) and the
//!   compiled matcher, whose doc comment states the matching rules.
//! - [`AddressClass`]: the destination guard's classes of resolved addresses.
//! - [`Policy`]: an allowlist plus the address rules; decides a host and port, then
//!   each resolved address, and explains every refusal.
//! - [`lint`] (feature `lint`; `public-suffix` adds the Public Suffix List): warnings
//!   about valid but suspicious allowlists.
//! - [`protocol`]: what the launcher and the proxy sidecar agree on.
//! - [`report`]: an error and its causes on one line.

mod allowlist;
mod guard;
mod host;
#[cfg(feature = "lint")]
pub mod lint;
mod policy;
pub mod protocol;
pub mod report;

pub use allowlist::{
    Allowlist, Decision, Entry, ListDenial, LoadError, Lookup, ParseError, ParseErrors, Pattern,
};
pub use guard::AddressClass;
pub use host::{Authority, DomainName, Host, HostError};
pub use policy::{Denial, DenyReason, Permit, Policy, PolicyOptions};
