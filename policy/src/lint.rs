//! Warnings about allowlists that are valid but probably not what their author meant.
//!
//! [`lint`] never fails and never changes a policy; the server logs each finding when it
//! loads a policy, and `check` and `explain` print them on stderr. Findings:
//! - [`LintKind::PublicSuffix`]: a wildcard over a public suffix, a domain under which
//!   anyone can register names (`*.github.io`, `*.herokuapp.com`, `*.s3.amazonaws.com`,
//!   `*.co.uk`), judged with the Public Suffix List compiled into the `psl` crate (no
//!   network). A wildcard over a domain every child of which is a public suffix (a PSL
//!   rule `*.DOMAIN`) is reported too. Not detected: a wildcard *above* a suffix that is
//!   itself a registrable domain (`*.amazonaws.com` covers `s3.amazonaws.com`), because
//!   the crate answers lookups but cannot list the rules under a domain. Only with the
//!   `public-suffix` feature: the list is most of a small binary, and the proxy sidecar
//!   leaves it out (the launcher and `sandbox-proxy check` report this finding).
//! - [`LintKind::Duplicate`]: the same pattern and port written twice (after
//!   normalisation: `Example.com.` is `example.com`).
//! - [`LintKind::Shadowed`]: an entry that another entry already allows on every port it
//!   allows (`api.github.com` under `*.github.com`, `*.api.github.com` under
//!   `*.github.com`, `example.com:443` under `example.com`). An exact entry shadowed by a
//!   wildcard still changes one thing, which the message says: exact entries may reach
//!   private addresses.

use std::collections::HashMap;
use std::fmt;

use crate::allowlist::{Allowlist, Entry, Pattern};
use crate::host::Host;

/// One finding about one allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lint {
    /// Line of the entry the finding is about.
    pub line: u32,
    /// Column of that entry.
    pub(crate) column: u32,
    /// The entry as written.
    pub entry: Box<str>,
    /// What is wrong with it.
    pub kind: LintKind,
}

/// The kinds of finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LintKind {
    /// A wildcard covering a public suffix.
    PublicSuffix {
        /// The public suffix covered.
        suffix: String,
        /// From the PSL's private section (a company's domain open to its customers,
        /// like `github.io`), rather than an ICANN registry (like `co.uk`).
        private: bool,
    },
    /// The same pattern and port as an earlier entry.
    Duplicate {
        /// The earlier entry's line.
        of_line: u32,
    },
    /// Everything the entry allows is already allowed by another entry.
    Shadowed {
        /// The covering entry as written.
        by: Box<str>,
        /// Its line.
        by_line: u32,
        /// The shadowed entry is exact and the covering one a wildcard: the exact entry
        /// still lets the name reach private addresses.
        adds_private: bool,
    },
}

impl LintKind {
    /// Stable lower-case name for logs.
    pub fn code(&self) -> &'static str {
        match self {
            LintKind::PublicSuffix { .. } => "public-suffix-wildcard",
            LintKind::Duplicate { .. } => "duplicate",
            LintKind::Shadowed { .. } => "shadowed",
        }
    }
}

impl fmt::Display for Lint {
    /// `LINE:COLUMN: message`; callers put the file name in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Lint {
            line,
            column,
            entry,
            kind,
        } = self;
        write!(f, "{line}:{column}: '{entry}' ")?;
        match kind {
            LintKind::PublicSuffix {
                suffix,
                private: true,
            } => write!(
                f,
                "covers {suffix}, a public suffix where anyone can register names (Public \
                 Suffix List, private section); list the exact names you need instead"
            ),
            LintKind::PublicSuffix {
                suffix,
                private: false,
            } => write!(
                f,
                "covers {suffix}, a public suffix run by a domain registry; list the \
                 domains you need instead"
            ),
            LintKind::Duplicate { of_line } => write!(f, "duplicates line {of_line}"),
            LintKind::Shadowed {
                by,
                by_line,
                adds_private,
            } => {
                write!(f, "is already allowed by '{by}' (line {by_line})")?;
                if *adds_private {
                    f.write_str("; it only adds that the name may reach private addresses")?;
                }
                Ok(())
            }
        }
    }
}

/// All findings about `allowlist`, in line order.
pub fn lint(allowlist: &Allowlist) -> Vec<Lint> {
    let entries = allowlist.entries();
    let index = Index::new(entries);
    let mut lints = Vec::new();
    for entry in entries {
        #[cfg(feature = "public-suffix")]
        if let Pattern::Subtree(base) = &entry.pattern
            && let Some(kind) = public_suffix(base)
        {
            lints.push(finding(entry, kind));
        }
        if let Some(kind) = covered(entry, &index, allowlist.default_ports()) {
            lints.push(finding(entry, kind));
        }
    }
    lints.sort_by_key(|lint| (lint.line, lint.column));
    lints
}

fn finding(entry: &Entry, kind: LintKind) -> Lint {
    Lint {
        line: entry.line,
        column: entry.column,
        entry: entry.text.clone(),
        kind,
    }
}

/// A label no real domain uses, to ask the PSL whether every child of a domain is a
/// public suffix (a wildcard rule).
#[cfg(feature = "public-suffix")]
const PROBE_LABEL: &str = "sandbox-proxy-lint-probe";

/// The public suffix a wildcard over `base` covers, if any.
#[cfg(feature = "public-suffix")]
fn public_suffix(base: &crate::host::DomainName) -> Option<LintKind> {
    let base = base.as_str();
    let probe = format!("{PROBE_LABEL}.{base}");
    // The base itself, then any child of it (a PSL wildcard rule `*.base`).
    [
        (base, base.to_owned()),
        (probe.as_str(), format!("*.{base}")),
    ]
    .into_iter()
    .find_map(|(name, shown)| {
        let suffix = psl::suffix(name.as_bytes())?;
        let private = match suffix.typ()? {
            psl::Type::Private => true,
            psl::Type::Icann => false,
        };
        (suffix.as_bytes() == name.as_bytes()).then_some(LintKind::PublicSuffix {
            suffix: shown,
            private,
        })
    })
}

/// Entries by the name they are written with: exact names and wildcard bases.
struct Index<'a> {
    exact: HashMap<&'a Host, Vec<&'a Entry>>,
    subtrees: HashMap<&'a str, Vec<&'a Entry>>,
}

impl<'a> Index<'a> {
    fn new(entries: &'a [Entry]) -> Self {
        let mut index = Index {
            exact: HashMap::new(),
            subtrees: HashMap::new(),
        };
        for entry in entries {
            match &entry.pattern {
                Pattern::Exact(host) => index.exact.entry(host).or_default().push(entry),
                Pattern::Subtree(base) => {
                    index.subtrees.entry(base.as_str()).or_default().push(entry)
                }
            }
        }
        index
    }

    /// Entries whose pattern matches everything `entry`'s pattern matches, in line
    /// order (including `entry` itself).
    fn covering(&self, entry: &Entry) -> Vec<&'a Entry> {
        let (name, exact) = match &entry.pattern {
            Pattern::Exact(host @ Host::Ip(_)) => {
                return self.exact.get(host).cloned().unwrap_or_default();
            }
            Pattern::Exact(host @ Host::Name(name)) => {
                (name.as_str(), self.exact.get(host).cloned())
            }
            Pattern::Subtree(base) => (base.as_str(), None),
        };
        let mut found = exact.unwrap_or_default();
        let suffixes = std::iter::successors(Some(name), |rest| {
            rest.split_once('.').map(|(_, parent)| parent)
        });
        for suffix in suffixes {
            found.extend(self.subtrees.get(suffix).into_iter().flatten());
        }
        found.sort_by_key(|covering| covering.line);
        found
    }
}

/// Whether another entry makes `entry` redundant: a duplicate, or a shadowing entry.
fn covered(entry: &Entry, index: &Index<'_>, default_ports: &[u16]) -> Option<LintKind> {
    let ports = |e: &Entry| e.port.map_or_else(|| default_ports.to_vec(), |p| vec![p]);
    let needed = ports(entry);
    index
        .covering(entry)
        .into_iter()
        .filter(|other| !std::ptr::eq(*other, entry))
        .find_map(|other| {
            let same = other.pattern == entry.pattern && other.port == entry.port;
            if same {
                // Report the later of two duplicates only.
                return (other.line < entry.line).then_some(LintKind::Duplicate {
                    of_line: other.line,
                });
            }
            let allowed = ports(other);
            needed
                .iter()
                .all(|port| allowed.contains(port))
                .then(|| LintKind::Shadowed {
                    by: other.text.clone(),
                    by_line: other.line,
                    adds_private: entry.is_exact() && !other.is_exact(),
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lints(text: &str) -> Vec<(u32, String)> {
        let allowlist = Allowlist::parse("test", text, &[80, 443]).unwrap();
        lint(&allowlist)
            .into_iter()
            .map(|lint| (lint.line, lint.to_string()))
            .collect()
    }

    fn codes(text: &str) -> Vec<(u32, &'static str)> {
        let allowlist = Allowlist::parse("test", text, &[80, 443]).unwrap();
        lint(&allowlist)
            .into_iter()
            .map(|lint| (lint.line, lint.kind.code()))
            .collect()
    }

    #[test]
    fn wildcards_over_private_public_suffixes_are_reported() {
        let found =
            lints("*.github.io\n*.herokuapp.com\n*.vercel.app\n*.s3.amazonaws.com\n*.github.com\n");
        let lines: Vec<u32> = found.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [1, 2, 3, 4], "{found:?}");
        assert_eq!(
            found[0].1,
            "1:1: '*.github.io' covers github.io, a public suffix where anyone can register \
             names (Public Suffix List, private section); list the exact names you need \
             instead"
        );
        assert!(found[3].1.contains("covers s3.amazonaws.com"), "{found:?}");
    }

    #[test]
    fn wildcards_over_registry_suffixes_and_wildcard_rules_are_reported() {
        let found = lints("*.co.uk\n*.compute.amazonaws.com\n*.example.org.uk\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0]
                .1
                .contains("covers co.uk, a public suffix run by a domain registry")
        );
        assert!(
            found[1]
                .1
                .contains("covers *.compute.amazonaws.com, a public suffix where anyone"),
            "{found:?}"
        );
    }

    #[test]
    fn duplicates_are_reported_once_on_the_later_line() {
        assert_eq!(
            codes("example.com\nExample.COM.\n1.2.3.4:8080\n1.2.3.4:8080\n*.a.test\n*.A.test\n"),
            [(2, "duplicate"), (4, "duplicate"), (6, "duplicate")]
        );
        assert_eq!(
            lints("a.test\na.test\n")[0].1,
            "2:1: 'a.test' duplicates line 1"
        );
    }

    #[test]
    fn entries_under_a_wildcard_with_the_same_ports_are_shadowed() {
        let found = lints("*.github.com\napi.github.com\n*.api.github.com\n");
        assert_eq!(
            found,
            [
                (
                    2,
                    "2:1: 'api.github.com' is already allowed by '*.github.com' (line 1); it \
                     only adds that the name may reach private addresses"
                        .to_owned()
                ),
                (
                    3,
                    "3:1: '*.api.github.com' is already allowed by '*.github.com' (line 1)"
                        .to_owned()
                ),
            ]
        );
        // A wildcard written after the entry it shadows still shadows it.
        assert_eq!(codes("api.github.com\n*.github.com\n"), [(1, "shadowed")]);
    }

    #[test]
    fn different_ports_do_not_shadow() {
        assert!(codes("*.github.com\napi.github.com:22\n").is_empty());
        assert!(codes("github.com:22\ngithub.com\n").is_empty());
        assert!(codes("*.github.com:443\napi.github.com\n").is_empty());
        // A port that the port-less entry allows is shadowed, wherever it is written.
        assert_eq!(codes("github.com\ngithub.com:443\n"), [(2, "shadowed")]);
        assert_eq!(codes("github.com:443\ngithub.com\n"), [(1, "shadowed")]);
        // A registrable name under a private suffix is one owner's: no warning.
        assert!(codes("*.user.github.io\n").is_empty());
    }

    #[test]
    fn unrelated_names_and_label_boundaries_do_not_shadow() {
        assert!(codes("*.example.com\nevilexample.com\nexample.org\n127.0.0.1\n").is_empty());
    }
}
