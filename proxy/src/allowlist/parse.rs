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
