//! Errors of reading and parsing an allowlist file: one per problem, all reported at once.

use std::fmt;
use std::path::PathBuf;

use crate::host::HostError;

/// Why one allowlist entry was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub(crate) enum ParseErrorKind {
    /// `*` alone would allow everything.
    #[error("bare '*' would allow every host; list the domains instead (e.g. '*.example.com')")]
    BareWildcard,
    /// `*.` with nothing after it.
    #[error("'*.' must be followed by a domain (e.g. '*.example.com')")]
    WildcardWithoutDomain,
    /// `*.com`: a wildcard over a single label.
    #[error("wildcard over a top-level domain ('*.{tld}') is not allowed")]
    WildcardOverTld {
        /// The top-level domain as written after `*.`.
        tld: String,
    },
    /// `a.*.com`, `*foo.com`, `**.a.com`.
    #[error("'*' is only allowed as the whole first label, as in '*.example.com'")]
    WildcardPlacement,
    /// `*.1.2.3.4`, `*.[::1]`.
    #[error("wildcards cannot be used with IP addresses")]
    WildcardOverIp,
    /// `https://github.com/x` or `github.com/path`.
    #[error("{}", url_reason(.suggestion.as_deref()))]
    Url {
        /// The host (and port) to write instead, when one can be extracted.
        suggestion: Option<String>,
    },
    /// Whitespace inside an entry, followed by more text.
    #[error("unexpected text after entry (one entry per line; comments start with ' #')")]
    UnexpectedText,
    /// The host or port part is invalid.
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The message for [`ParseErrorKind::Url`].
fn url_reason(suggestion: Option<&str>) -> String {
    match suggestion {
        Some(host) => format!("a URL is not an entry; write the host only: '{host}'"),
        None => "a URL is not an entry; write the host only".to_owned(),
    }
}

/// One rejected entry, located in its file. Displays as `FILE:LINE:COL: reason`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{origin}:{line}:{column}: {kind}")]
pub struct ParseError {
    /// The file name (or other origin) of the text.
    pub(crate) origin: String,
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// What is wrong.
    pub(crate) kind: ParseErrorKind,
}

/// Every error of one allowlist text, in line order (never empty when returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseErrors(pub(crate) Vec<ParseError>);

impl ParseErrors {
    /// Whether there are no errors (never the case for a returned error).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

impl<'a> IntoIterator for &'a ParseErrors {
    type Item = &'a ParseError;
    type IntoIter = std::slice::Iter<'a, ParseError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why an allowlist file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Missing, unreadable or not UTF-8.
    #[error("cannot read allowlist {}", .path.display())]
    Read {
        /// The file that was read.
        path: PathBuf,
        /// The I/O error (`InvalidData` for a file that is not UTF-8).
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has invalid entries; every line names the file.
    #[error(transparent)]
    Invalid(ParseErrors),
}
