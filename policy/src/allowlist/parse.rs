//! The allowlist file format: lines to [`Entry`] values, or every error at once.
//!
//! One entry per line; blank lines and lines whose first non-blank character is `#` are
//! ignored; text after ` #` or `\t#` is a comment; surrounding whitespace is trimmed.
//! An entry is `HOST[:PORT]` or `*.DOMAIN[:PORT]` (see [`super::Allowlist`]).

use super::entry::{Entry, Pattern};
use super::error::{ParseError, ParseErrorKind, ParseErrors};
use crate::host::{Authority, Host, HostError};

/// An entry-level failure: byte offset into the entry text, and the reason.
type EntryError = (usize, ParseErrorKind);

/// Parses a whole allowlist text; `origin` names it in errors.
pub(crate) fn parse_entries(origin: &str, text: &str) -> Result<Vec<Entry>, ParseErrors> {
    // A byte-order mark from a Windows editor is not part of the first entry.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let Some((start, written)) = entry_text(raw) else {
            continue;
        };
        let column_of = |offset: usize| column(raw, start + offset);
        match parse_entry(written) {
            Ok((pattern, port)) => entries.push(Entry {
                pattern,
                port,
                line,
                column: column_of(0),
                text: written.into(),
            }),
            Err((offset, kind)) => errors.push(ParseError {
                origin: origin.to_owned(),
                line,
                column: column_of(offset),
                kind,
            }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(ParseErrors(errors))
    }
}

/// The entry on a line, without comment and surrounding whitespace, with its byte start;
/// `None` for blank and comment lines.
fn entry_text(raw: &str) -> Option<(usize, &str)> {
    let comment = raw
        .char_indices()
        .find(|&(i, c)| c == '#' && (i == 0 || raw[..i].ends_with([' ', '\t'])))
        .map_or(raw.len(), |(i, _)| i);
    let content = &raw[..comment];
    let written = content.trim();
    if written.is_empty() {
        return None;
    }
    Some((content.len() - content.trim_start().len(), written))
}

/// 1-based character column of byte `offset` in `line`.
fn column(line: &str, offset: usize) -> u32 {
    let chars = line
        .get(..offset)
        .map_or(0, |prefix| prefix.chars().count());
    u32::try_from(chars + 1).unwrap_or(u32::MAX)
}

/// Parses one entry (already trimmed, comment removed).
fn parse_entry(text: &str) -> Result<(Pattern, Option<u16>), EntryError> {
    if let Some(space) = text.find(char::is_whitespace) {
        let rest = text[space..].trim_start();
        return Err((text.len() - rest.len(), ParseErrorKind::UnexpectedText));
    }
    if let Some(error) = url_error(text) {
        return Err(error);
    }
    match text.find('*') {
        Some(_) if text == "*" || text.starts_with("*:") => Err((0, ParseErrorKind::BareWildcard)),
        Some(0) if text.starts_with("*.") => parse_subtree(text),
        Some(star) => Err((star, ParseErrorKind::WildcardPlacement)),
        None => {
            let authority = Authority::parse(text).map_err(|e| host_error(e, 0))?;
            Ok((Pattern::Exact(authority.host), authority.port))
        }
    }
}

/// Parses `*.DOMAIN[:PORT]`; wildcard-level errors point at the `*`.
fn parse_subtree(text: &str) -> Result<(Pattern, Option<u16>), EntryError> {
    const PREFIX: usize = "*.".len();
    let domain = &text[PREFIX..];
    if let Some(star) = domain.find('*') {
        return Err((PREFIX + star, ParseErrorKind::WildcardPlacement));
    }
    if domain.is_empty() || domain.starts_with(':') {
        return Err((0, ParseErrorKind::WildcardWithoutDomain));
    }
    let authority = Authority::parse(domain).map_err(|e| host_error(e, PREFIX))?;
    match authority.host {
        Host::Ip(_) => Err((0, ParseErrorKind::WildcardOverIp)),
        Host::Name(name) if !name.as_str().contains('.') => {
            let tld = name.as_str().to_owned();
            Err((0, ParseErrorKind::WildcardOverTld { tld }))
        }
        Host::Name(name) => Ok((Pattern::Subtree(name), authority.port)),
    }
}

/// A host error of the entry part starting at byte `start`.
fn host_error(error: HostError, start: usize) -> EntryError {
    let offset = error.offset().map_or(0, |o| o + start);
    (offset, ParseErrorKind::Host(error.shifted(start)))
}

/// `https://github.com/x` or `github.com/path`: a URL error with a suggested entry.
fn url_error(text: &str) -> Option<EntryError> {
    let (offset, authority) = match text.find("://") {
        Some(scheme_end) => (0, &text[scheme_end + 3..]),
        None => (text.find('/')?, text),
    };
    let end = authority.find(['/', '?', '#']).unwrap_or(authority.len());
    // Credentials never belong in a suggestion.
    let authority = &authority[..end];
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let suggestion = parse_entry(authority)
        .ok()
        .map(|(pattern, port)| suggested(&pattern, port));
    Some((offset, ParseErrorKind::Url { suggestion }))
}

/// The canonical text of an entry, as offered in a suggestion.
fn suggested(pattern: &Pattern, port: Option<u16>) -> String {
    let host = match pattern {
        Pattern::Exact(host) => host.to_string(),
        Pattern::Subtree(domain) => format!("*.{domain}"),
    };
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{HostError, HostErrorKind as K};

    fn errors(text: &str) -> Vec<(u32, u32, ParseErrorKind)> {
        parse_entries("f.txt", text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.line, e.column, e.kind))
            .collect()
    }

    fn subtree(domain: &str) -> Pattern {
        match Host::parse(domain).unwrap() {
            Host::Name(name) => Pattern::Subtree(name),
            Host::Ip(_) => unreachable!(),
        }
    }

    fn exact(host: &str) -> Pattern {
        Pattern::Exact(Host::parse(host).unwrap())
    }

    #[test]
    fn each_error_kind_with_line_and_column() {
        use ParseErrorKind::*;
        let long_label = "a".repeat(64);
        let long_name = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(62));
        let url = |s: Option<&str>| Url {
            suggestion: s.map(str::to_owned),
        };
        let tld = |t: &str| WildcardOverTld { tld: t.to_owned() };
        let host = |e: HostError| ParseErrorKind::Host(e);
        let cases: Vec<(String, u32, ParseErrorKind)> = vec![
            ("*".into(), 1, BareWildcard),
            ("*:443".into(), 1, BareWildcard),
            ("*.".into(), 1, WildcardWithoutDomain),
            ("*.:443".into(), 1, WildcardWithoutDomain),
            ("*.com".into(), 1, tld("com")),
            ("*.COM.".into(), 1, tld("com")),
            ("*.localhost:8080".into(), 1, tld("localhost")),
            ("a.*.com".into(), 3, WildcardPlacement),
            ("*foo.com".into(), 1, WildcardPlacement),
            ("**.a.com".into(), 1, WildcardPlacement),
            ("*.*.a.com".into(), 3, WildcardPlacement),
            ("foo*.com".into(), 4, WildcardPlacement),
            ("a.com*".into(), 6, WildcardPlacement),
            ("*.1.2.3.4".into(), 1, WildcardOverIp),
            ("*.[::1]".into(), 1, WildcardOverIp),
            ("https://github.com/x".into(), 1, url(Some("github.com"))),
            (
                "http://User:pw@GitHub.com:8080/x?y".into(),
                1,
                url(Some("github.com:8080")),
            ),
            ("https://*.github.com/".into(), 1, url(Some("*.github.com"))),
            ("https://".into(), 1, url(None)),
            ("github.com/path".into(), 11, url(Some("github.com"))),
            ("a..b/".into(), 5, url(None)),
            ("a.com b.com".into(), 7, UnexpectedText),
            ("a.com\t\tb".into(), 8, UnexpectedText),
            ("a..com".into(), 3, host(HostError::at(K::EmptyLabel, 2))),
            ("*.a..com".into(), 5, host(HostError::at(K::EmptyLabel, 4))),
            ("a.com..".into(), 7, host(HostError::at(K::EmptyLabel, 6))),
            (
                long_label.clone(),
                1,
                host(HostError::at(K::LabelTooLong, 0)),
            ),
            (
                format!("*.x.{long_label}"),
                5,
                host(HostError::at(K::LabelTooLong, 4)),
            ),
            (long_name, 1, host(HostError::new(K::NameTooLong))),
            (
                "a_b!.com".into(),
                4,
                host(HostError::at(K::InvalidChar('!'), 3)),
            ),
            (
                "a.com#x".into(),
                6,
                host(HostError::at(K::InvalidChar('#'), 5)),
            ),
            (
                "a%2ecom".into(),
                2,
                host(HostError::at(K::InvalidChar('%'), 1)),
            ),
            ("user@a.com".into(), 5, host(HostError::at(K::Userinfo, 4))),
            (
                "-a.com".into(),
                1,
                host(HostError::at(K::HyphenAtLabelEdge, 0)),
            ),
            (
                "\u{301}a.com".into(),
                1,
                host(HostError::new(K::InvalidIdna)),
            ),
            ("a.com:0".into(), 7, host(HostError::at(K::PortZero, 6))),
            (
                "a.com:65536".into(),
                7,
                host(HostError::at(K::PortOutOfRange, 6)),
            ),
            (
                "a.com:http".into(),
                7,
                host(HostError::at(K::InvalidPort, 6)),
            ),
            ("a.com:".into(), 7, host(HostError::at(K::EmptyPort, 6))),
            ("*.a.com:0".into(), 9, host(HostError::at(K::PortZero, 8))),
            ("::1".into(), 1, host(HostError::at(K::UnbracketedIpv6, 0))),
            ("[::1".into(), 1, host(HostError::at(K::UnclosedBracket, 0))),
            (
                "2130706433".into(),
                1,
                host(HostError::at(K::NonCanonicalIpv4, 0)),
            ),
            (
                "0x7f.0.0.1".into(),
                1,
                host(HostError::at(K::NonCanonicalIpv4, 0)),
            ),
            (
                "0177.0.0.1".into(),
                1,
                host(HostError::at(K::NonCanonicalIpv4, 0)),
            ),
            (
                "127.1".into(),
                1,
                host(HostError::at(K::NonCanonicalIpv4, 0)),
            ),
            (
                "1.2.3.4.5".into(),
                1,
                host(HostError::at(K::InvalidIpv4, 0)),
            ),
        ];
        for (entry, column, kind) in cases {
            let text = format!("# header\n\n{entry}\n");
            assert_eq!(errors(&text), vec![(3, column, kind)], "{entry:?}");
            // Indentation moves the column by the number of characters (tabs count one).
            let indented = format!(" \t{entry}  # comment");
            assert_eq!(errors(&indented)[0].1, column + 2, "{entry:?}");
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        assert_eq!(
            errors("  bücher.de x"),
            vec![(1, 13, ParseErrorKind::UnexpectedText)]
        );
        assert_eq!(
            errors("ü.example.com\n*.bücher..de"),
            // Non-ASCII input: IDNA runs first, so the offset inside the name is unknown
            // and the column points at the entry.
            vec![(2, 1, ParseErrorKind::Host(HostError::new(K::EmptyLabel)))]
        );
        assert_eq!(
            errors("a.b.c.d.e.f..com"),
            vec![(
                1,
                13,
                ParseErrorKind::Host(HostError::at(K::EmptyLabel, 12))
            )]
        );
    }

    #[test]
    fn reports_every_error_of_the_file_at_once() {
        let text = "github.com\n*\nok.example.com\nhttps://x.org/a\n\n*.com\na.com:99999\n";
        let result = parse_entries("allow.txt", text).unwrap_err();
        let shown: Vec<String> = result.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "allow.txt:2:1: bare '*' would allow every host; list the domains instead (e.g. '*.example.com')",
                "allow.txt:4:1: a URL is not an entry; write the host only: 'x.org'",
                "allow.txt:6:1: wildcard over a top-level domain ('*.com') is not allowed",
                "allow.txt:7:7: port greater than 65535",
            ]
        );
        assert_eq!(result.to_string(), shown.join("\n"));
    }

    #[test]
    fn entries_keep_pattern_port_position_and_text() {
        let text = "\u{feff}Example.COM.\r\n  *.GitHub.com:8443   # ci\r\n\t[::1]:8080\n1.2.3.4\n";
        let got = parse_entries("f", text).unwrap();
        let want = [
            (exact("example.com"), None, 1, 1, "Example.COM."),
            (subtree("github.com"), Some(8443), 2, 3, "*.GitHub.com:8443"),
            (exact("[::1]"), Some(8080), 3, 2, "[::1]:8080"),
            (exact("1.2.3.4"), None, 4, 1, "1.2.3.4"),
        ];
        assert_eq!(got.len(), want.len());
        for (entry, (pattern, port, line, column, text)) in got.iter().zip(want) {
            assert_eq!(entry.pattern, pattern);
            assert_eq!((entry.port, entry.line, entry.column), (port, line, column));
            assert_eq!(entry.to_string(), text);
        }
        assert!(got[0].is_exact() && !got[1].is_exact());
    }

    #[test]
    fn comments_and_blank_lines() {
        let text =
            "# full line\n   # indented comment\n\n \t \na.com # trailing\nb.com\t# tab\n#c.com\n";
        let got = parse_entries("f", text).unwrap();
        let texts: Vec<&str> = got.iter().map(|e| &*e.text).collect();
        assert_eq!(texts, ["a.com", "b.com"]);
        assert_eq!(parse_entries("f", "").unwrap(), []);
        assert_eq!(parse_entries("f", "# only comments\n\n").unwrap(), []);
    }

    #[test]
    fn the_old_tools_example_file_parses() {
        // The old tool's documented example (the shipped example is narrower now).
        let text = "# Example allowlist\n# One entry per line.\ngithub.com\napi.github.com\n\
                    raw.githubusercontent.com\n*.githubusercontent.com\n*.github.com\n\
                    *.atlassian.com\n*.atlassian.net\n\
                    host.docker.internal   # services on the Docker host\n";
        let got = parse_entries("allowed_domains.txt", text).unwrap();
        let texts: Vec<&str> = got.iter().map(|e| &*e.text).collect();
        assert_eq!(
            texts,
            [
                "github.com",
                "api.github.com",
                "raw.githubusercontent.com",
                "*.githubusercontent.com",
                "*.github.com",
                "*.atlassian.com",
                "*.atlassian.net",
                "host.docker.internal",
            ]
        );
        assert_eq!(got[4].pattern, subtree("github.com"));
        assert_eq!(got[7].line, 10);
    }
}
