//! Where the allowlist is when none is named: `allowed_domains.txt` in the launcher's own
//! configuration directory, which no agent profile mounts. The old default,
//! `~/.agents/proxy_allowed_domains.txt`, lies in a directory pi's profile mounts
//! read-write, where an agent (in any run, with or without the proxy) can create or
//! widen the file a later run would use. It is still read when the new one is missing,
//! with a notice saying how to move it; a run whose mounts expose it refuses it anyway
//! (see [`super::exposure`]).

use std::path::{Path, PathBuf};

/// The allowlist's name in the launcher's configuration directory.
pub(crate) const FILE_NAME: &str = "allowed_domains.txt";
/// The old default, relative to the home directory.
const LEGACY: &str = ".agents/proxy_allowed_domains.txt";

/// The default allowlist of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultAllowlist {
    /// The file to use (it may not exist).
    pub(crate) path: PathBuf,
    /// When it is the old default: how to move it to the new one (a shell command).
    pub(crate) move_command: Option<String>,
}

impl DefaultAllowlist {
    /// The default for a user with `home` whose launcher configuration directory is
    /// `config_dir`: the new location when it exists or the old one does not, else the
    /// old one.
    pub(crate) fn find(home: &Path, config_dir: &Path) -> Self {
        let path = config_dir.join(FILE_NAME);
        let legacy = home.join(LEGACY);
        if path.exists() || !legacy.exists() {
            return Self {
                path,
                move_command: None,
            };
        }
        let move_command = format!(
            "mkdir -p {} && mv {} {}",
            quoted(config_dir),
            quoted(&legacy),
            quoted(&path)
        );
        Self {
            path: legacy,
            move_command: Some(move_command),
        }
    }

    /// The one-line notice shown when the old default is used.
    pub(crate) fn notice(&self) -> Option<String> {
        let command = self.move_command.as_deref()?;
        Some(format!(
            "using the old default allowlist {}: agents can write there (it is in a directory \
             the sandbox mounts); move it to the launcher's configuration directory: {command}",
            self.path.display()
        ))
    }
}

/// `path` as one shell word.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+@%:,".contains(c))
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_default_wins_and_the_old_one_is_used_with_a_move_command() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("my home");
        let config = home.join(".config/agent-sandbox");
        let new = config.join(FILE_NAME);
        let legacy = home.join(LEGACY);
        // Neither exists: the new location (for the error naming it).
        let neither = DefaultAllowlist::find(&home, &config);
        assert_eq!(
            (neither.path.as_path(), neither.notice()),
            (new.as_path(), None)
        );
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, "example.com\n").unwrap();
        let old = DefaultAllowlist::find(&home, &config);
        assert_eq!(old.path, legacy);
        let notice = old.notice().unwrap();
        assert!(notice.contains("agents can write there"), "{notice}");
        let quote = |p: &Path| format!("'{}'", p.display());
        assert!(
            notice.ends_with(&format!(
                "mkdir -p {} && mv {} {}",
                quote(&config),
                quote(&legacy),
                quote(&new)
            )),
            "{notice}"
        );
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(&new, "example.com\n").unwrap();
        assert_eq!(DefaultAllowlist::find(&home, &config).path, new);
    }

    #[test]
    fn paths_are_quoted_only_when_needed() {
        assert_eq!(
            quoted(Path::new("/home/a/.agents/x.txt")),
            "/home/a/.agents/x.txt"
        );
        assert_eq!(quoted(Path::new("/h/it's")), r"'/h/it'\''s'");
    }
}
