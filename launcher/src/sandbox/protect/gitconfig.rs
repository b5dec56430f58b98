//! Just enough of git's config syntax (git-config(1), "CONFIGURATION FILE") to find
//! which files of a repository can make git run commands: `core.hooksPath`, the files
//! `include.path` and `includeIf.<condition>.path` pull in, and `core.worktree`.
//!
//! Written here rather than taken from gix-config, which brings some forty crates for
//! these three keys. It is lenient (a line it cannot read is skipped) and conservative:
//! it reports every value of a key, not only the last, and the paths of every
//! `includeIf` whatever its condition, so that more is protected rather than less.

/// One `section[.subsection].key = value` entry; section and key in lower case (git
/// compares them case-insensitively), the subsection as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) section: String,
    pub(super) subsection: Option<String>,
    pub(super) key: String,
    /// `None` for a key without `=` (boolean true).
    pub(super) value: Option<String>,
}

/// The entries of a config file's text, in order.
pub(super) fn parse(text: &str) -> Vec<Entry> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries = Vec::new();
    let mut section: Option<(String, Option<String>)> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut rest = line.trim_start();
        if let Some(header) = rest.strip_prefix('[') {
            let Some((parsed, after)) = section_header(header) else {
                section = None;
                continue;
            };
            section = Some(parsed);
            rest = after.trim_start();
        }
        if rest.is_empty() || rest.starts_with(['#', ';']) {
            continue;
        }
        let Some((section, subsection)) = &section else {
            continue;
        };
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(name_end);
        if key.is_empty() {
            continue;
        }
        let after = after.trim_start();
        let value = match after.strip_prefix('=') {
            Some(raw) => Some(value(raw, &mut lines)),
            None if after.is_empty() || after.starts_with(['#', ';']) => None,
            None => continue,
        };
        entries.push(Entry {
            section: section.clone(),
            subsection: subsection.clone(),
            key: key.to_ascii_lowercase(),
            value,
        });
    }
    entries
}

/// The section (lower case) and subsection of a header whose `[` is consumed, and the
/// rest of the line after its `]`.
fn section_header(header: &str) -> Option<((String, Option<String>), &str)> {
    let name_end = header
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(header.len());
    let (name, rest) = header.split_at(name_end);
    if name.is_empty() {
        return None;
    }
    let rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix(']') {
        // `[section.subsection]`, the deprecated form: the subsection is lower-cased.
        let (name, subsection) = match name.split_once('.') {
            Some((name, sub)) => (name, Some(sub.to_ascii_lowercase())),
            None => (name, None),
        };
        return Some(((name.to_ascii_lowercase(), subsection), after));
    }
    let mut chars = rest.strip_prefix('"')?.char_indices();
    let mut subsection = String::new();
    while let Some((index, c)) = chars.next() {
        match c {
            '\\' => subsection.push(chars.next()?.1),
            '"' => {
                let after = rest[1 + index + 1..].trim_start().strip_prefix(']')?;
                return Some(((name.to_ascii_lowercase(), Some(subsection)), after));
            }
            c => subsection.push(c),
        }
    }
    None
}

/// A value after its `=`: quotes removed, escapes decoded, comments dropped, surrounding
/// whitespace trimmed; a `\` at the end of a line continues it on the next one.
fn value<'a>(raw: &'a str, lines: &mut impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    // Length of `out` up to its last character that was quoted or not whitespace:
    // trailing unquoted whitespace is dropped.
    let mut kept = 0;
    let mut quoted = false;
    let mut line = raw.trim_start();
    loop {
        let mut chars = line.chars();
        let mut continued = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    None => {
                        continued = true;
                        break;
                    }
                    Some(escaped) => {
                        out.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'b' => '\u{8}',
                            other => other,
                        });
                        kept = out.len();
                    }
                },
                '"' => {
                    quoted = !quoted;
                    kept = out.len();
                }
                '#' | ';' if !quoted => break,
                c => {
                    out.push(c);
                    if quoted || !c.is_whitespace() {
                        kept = out.len();
                    }
                }
            }
        }
        if !continued {
            break;
        }
        match lines.next() {
            Some(next) => line = next,
            None => break,
        }
    }
    out.truncate(kept);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str, wanted: (&str, Option<&str>, &str)) -> Vec<Option<String>> {
        parse(text)
            .into_iter()
            .filter(|e| (e.section.as_str(), e.subsection.as_deref(), e.key.as_str()) == wanted)
            .map(|e| e.value)
            .collect()
    }

    #[test]
    fn keys_are_found_whatever_the_case_spacing_and_comments() {
        let text = "\u{feff}# comment\n[core]\n\trepositoryformatversion = 0\n\
                    \thooksPath = .husky/_ ; husky\n[CORE] HOOKSPATH=\"a b\" # quoted\n\
                    [core]\n    bare\n";
        assert_eq!(
            values(text, ("core", None, "hookspath")),
            [Some(".husky/_".to_owned()), Some("a b".to_owned())]
        );
        assert_eq!(values(text, ("core", None, "bare")), [None]);
    }

    #[test]
    fn subsections_escapes_and_continuations() {
        let text = "[includeIf \"gitdir:~/work/\"]\n  path = ~/.gitconfig-work\n\
                    [include]\n  path = \"../shared \\\"cfg\\\"\"\n\
                    [section.Sub]\n  key = one\\\n  two\n\
                    [submodule \"a\\\\b\"]\n  path = x\n";
        assert_eq!(
            values(text, ("includeif", Some("gitdir:~/work/"), "path")),
            [Some("~/.gitconfig-work".to_owned())]
        );
        assert_eq!(
            values(text, ("include", None, "path")),
            [Some("../shared \"cfg\"".to_owned())]
        );
        assert_eq!(
            values(text, ("section", Some("sub"), "key")),
            [Some("one  two".to_owned())]
        );
        assert_eq!(
            values(text, ("submodule", Some("a\\b"), "path")),
            [Some("x".to_owned())]
        );
    }

    #[test]
    fn unreadable_lines_are_skipped_not_fatal() {
        let text = "key = before any section\n[broken\n  hooksPath = ignored\n\
                    [core]\n  = no name\n  !bad = x\n  hooksPath = kept\n";
        assert_eq!(
            values(text, ("core", None, "hookspath")),
            [Some("kept".to_owned())]
        );
    }
}
