//! One allowlist entry: what it matches, which port, and where it was written.

use std::fmt;

use crate::host::{DomainName, Host};

/// What an entry matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `example.com`, `1.2.3.4`, `[::1]`: exactly that host.
    Exact(Host),
    /// `*.example.com`: `example.com` itself and every subdomain at any depth.
    Subtree(DomainName),
}

/// One parsed allowlist line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What the entry matches.
    pub pattern: Pattern,
    /// The only port the entry allows; `None` means the default ports.
    pub port: Option<u16>,
    /// 1-based line number in the file.
    pub line: u32,
    /// 1-based column (in characters) where the entry starts.
    pub(crate) column: u32,
    /// The entry as written, without comment and surrounding whitespace.
    pub text: Box<str>,
}

impl Entry {
    /// Whether the entry names one host (not a wildcard subtree).
    pub fn is_exact(&self) -> bool {
        matches!(self.pattern, Pattern::Exact(_))
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
