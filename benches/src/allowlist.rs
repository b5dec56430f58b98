//! Allowlists of any size for the filter-scaling test, written in the format of each
//! system: sandbox-proxy's list, tinyproxy's anchored regex filter (the old tool's
//! conversion) and Squid's `dstdomain` list.

use std::{fmt::Write as _, path::Path};

use crate::Error;

/// One allowlist entry, in sandbox-proxy's meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `example.com`: that host only.
    Exact(String),
    /// `*.example.com`: the domain itself and every subdomain (stored without `*.`).
    Wildcard(String),
}

impl Entry {
    /// Reads an entry as written in sandbox-proxy's list.
    pub fn parse(text: &str) -> Self {
        match text.strip_prefix("*.") {
            Some(domain) => Self::Wildcard(domain.to_owned()),
            None => Self::Exact(text.to_owned()),
        }
    }

    /// The line of sandbox-proxy's allowlist.
    pub fn to_sandbox(&self) -> String {
        match self {
            Self::Exact(host) => host.clone(),
            Self::Wildcard(domain) => format!("*.{domain}"),
        }
    }

    /// The line of tinyproxy's filter file, as the old tool wrote it: an anchored
    /// extended regex (`example.com` becomes `^example\.com$`, `*.example.com` becomes
    /// `^(.*\.)?example\.com$`).
    pub fn to_tinyproxy(&self) -> String {
        match self {
            Self::Exact(host) => format!("^{}$", escape_ere(host)),
            Self::Wildcard(domain) => format!("^(.*\\.)?{}$", escape_ere(domain)),
        }
    }

    /// The line of Squid's `dstdomain` list, where a leading dot means the domain and
    /// all its subdomains.
    pub fn to_squid(&self) -> String {
        match self {
            Self::Exact(host) => host.clone(),
            Self::Wildcard(domain) => format!(".{domain}"),
        }
    }
}

/// Escapes the POSIX extended-regex metacharacters of `text`.
fn escape_ere(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `i`th filler entry: exact and wildcard entries alternate, all distinct, none
/// covering another or any of the bench's test names.
pub fn filler(i: usize) -> Entry {
    if i.is_multiple_of(2) {
        Entry::Exact(format!("api{i}.vendor{}.filler.test", i % 97))
    } else {
        Entry::Wildcard(format!("corp{i}.filler.test"))
    }
}

/// An allowlist of `size` entries (at least the hits) that ends with the `hits`, so a
/// list scanned in order (tinyproxy) has to go through all the fillers first.
pub fn build(size: usize, hits: &[Entry]) -> Vec<Entry> {
    let fillers = size.saturating_sub(hits.len());
    (0..fillers)
        .map(filler)
        .chain(hits.iter().cloned())
        .collect()
}

/// Writes `allowlist.txt`, `tinyproxy.filter` and `squid.domains` for `entries` in `dir`.
pub fn write_all(dir: &Path, entries: &[Entry]) -> Result<(), Error> {
    type Convert = fn(&Entry) -> String;
    let outputs: [(&str, Convert); 3] = [
        ("allowlist.txt", Entry::to_sandbox),
        ("tinyproxy.filter", Entry::to_tinyproxy),
        ("squid.domains", Entry::to_squid),
    ];
    for (name, convert) in outputs {
        let mut text = String::new();
        for entry in entries {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{}", convert(entry));
        }
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| Error::File { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_each_systems_syntax() {
        let cases = [
            ("example.com", "^example\\.com$", "example.com"),
            ("*.example.com", "^(.*\\.)?example\\.com$", ".example.com"),
            ("*.a-b.co.uk", "^(.*\\.)?a-b\\.co\\.uk$", ".a-b.co.uk"),
        ];
        for (line, tinyproxy, squid) in cases {
            let entry = Entry::parse(line);
            assert_eq!(entry.to_sandbox(), line);
            assert_eq!(entry.to_tinyproxy(), tinyproxy, "{line}");
            assert_eq!(entry.to_squid(), squid, "{line}");
        }
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(escape_ere("a+b(c)"), "a\\+b\\(c\\)");
    }

    #[test]
    fn lists_have_the_requested_size_and_end_with_the_hits() {
        let hit = Entry::parse("echo.bench.test");
        let list = build(1000, std::slice::from_ref(&hit));
        assert_eq!(list.len(), 1000);
        assert_eq!(list.last(), Some(&hit));
        assert_eq!(build(1, std::slice::from_ref(&hit)), vec![hit.clone()]);
        assert_eq!(build(0, std::slice::from_ref(&hit)).len(), 1);
    }

    #[test]
    fn fillers_are_distinct_and_never_cover_the_bench_names() {
        let list = build(10_000, &[]);
        let names: std::collections::HashSet<_> = list.iter().map(Entry::to_sandbox).collect();
        assert_eq!(names.len(), list.len());
        assert!(names.iter().all(|n| n.ends_with(".filler.test")));
    }

    #[test]
    fn files_are_written_one_entry_per_line() {
        let dir = std::env::temp_dir().join(format!("allowlist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_all(&dir, &build(3, &[Entry::parse("*.bench.test")])).unwrap();
        let squid = std::fs::read_to_string(dir.join("squid.domains")).unwrap();
        assert_eq!(
            squid,
            "api0.vendor0.filler.test\n.corp1.filler.test\n.bench.test\n"
        );
        let tiny = std::fs::read_to_string(dir.join("tinyproxy.filter")).unwrap();
        assert_eq!(tiny.lines().last(), Some("^(.*\\.)?bench\\.test$"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
