//! `sandbox-proxy`: a default-deny allowlist forward proxy for sandboxed coding agents.

pub mod allowlist;
pub mod host;

pub use allowlist::{
    Allowlist, AllowlistBuilder, Decision, Entry, ListDenial, LoadError, Lookup, ParseError,
    ParseErrorKind, ParseErrors, Pattern,
};
pub use host::{Authority, DomainName, Host, HostError};
