//! Following the user's allowlist during a run. The file is read by its name every
//! [`POLL`], which sees in-place edits and editors' rename-replace alike on every
//! platform (no file-watching API sees both through a symlinked path, and macOS has no
//! inotify). A new content is used once it read the same on two polls in a row, so a
//! file caught half-written is never taken for the user's edit. A valid change replaces
//! the sidecar's copy at once and becomes the policy in force; an invalid one (or a file
//! that cannot be read) keeps the last good policy and is reported once.

use std::sync::Arc;
use std::time::Duration;

use sandbox_policy::{Policy, report::chain};
use tokio::sync::watch;

use super::copy::PolicyCopy;
use super::{Checked, PolicyInForce};

/// How often the user's file is read.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A valid new allowlist is in force, with this many entries.
    Applied { entries: usize },
    /// The file changed but cannot be used (why, naming `file:line:col`); the last good
    /// policy stays in force.
    Rejected(String),
}

/// The user's allowlist, followed: the sidecar's copy and the policy in force.
pub(crate) struct LiveAllowlist {
    in_force: Checked,
    copy: PolicyCopy,
    sender: watch::Sender<Arc<Policy>>,
    /// What the latest poll read (the text, or why it could not be read).
    latest: Option<Result<String, String>>,
    /// The latest content acted on (applied or rejected).
    acted: Result<String, String>,
}

impl LiveAllowlist {
    /// Follows `checked` (already copied into `copy`) from now on.
    pub(crate) fn new(checked: Checked, copy: PolicyCopy) -> Self {
        let (sender, _) = watch::channel(Arc::clone(&checked.policy));
        Self {
            acted: Ok(checked.text.clone()),
            in_force: checked,
            copy,
            sender,
            latest: None,
        }
    }

    /// The policy in force, updated on every valid change.
    pub(crate) fn policy(&self) -> PolicyInForce {
        self.sender.subscribe()
    }

    /// The sidecar's copy.
    pub(crate) fn copy(&self) -> &PolicyCopy {
        &self.copy
    }

    /// Reads the user's file once; a content read the same as on the previous poll and
    /// not yet acted on is applied or rejected.
    pub(crate) fn poll(&mut self) -> Option<Change> {
        let path = &self.in_force.path;
        let read = Policy::read_text(path).map_err(|error| chain(&error));
        let settled = self.latest.as_ref() == Some(&read);
        self.latest = Some(read.clone());
        if !settled || read == self.acted {
            return None;
        }
        self.acted = read.clone();
        let text = match read {
            Ok(text) if text == self.in_force.text => return None,
            Ok(text) => text,
            Err(error) => return Some(Change::Rejected(error)),
        };
        let generation = self.in_force.policy.generation() + 1;
        let checked = match Checked::compile(path, text, generation) {
            Ok(checked) => checked,
            Err(error) => return Some(Change::Rejected(chain(&error))),
        };
        if let Err(error) = self.copy.replace(&checked.text) {
            return Some(Change::Rejected(format!(
                "cannot write the proxy's copy of {}: {error}",
                path.display()
            )));
        }
        self.sender.send_replace(Arc::clone(&checked.policy));
        let entries = checked.policy.allowlist().len();
        self.in_force = checked;
        Some(Change::Applied { entries })
    }

    /// Polls every [`POLL`] until the file changes; returns the change.
    pub(crate) async fn next_change(&mut self) -> Change {
        let mut interval = tokio::time::interval(POLL);
        loop {
            interval.tick().await;
            if let Some(change) = self.poll() {
                return change;
            }
        }
    }

    /// The message telling the user about `change`.
    pub(crate) fn describe(&self, change: &Change) -> String {
        let path = self.in_force.path.display();
        match change {
            Change::Applied { entries } => {
                format!("allowlist {path} changed: {entries} entries in force")
            }
            Change::Rejected(error) => {
                format!("{error}; the last good allowlist stays in force")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::labels::Owner;
    use sandbox_policy::protocol::ALLOWLIST_FILE;

    struct Fixture {
        _dir: tempfile::TempDir,
        file: std::path::PathBuf,
        live: LiveAllowlist,
    }

    fn fixture(text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("allow.txt");
        std::fs::write(&file, text).unwrap();
        let checked = Checked::read(&file).unwrap();
        let owner = Owner {
            pid: 1,
            start: String::new(),
            host: "h".into(),
        };
        let copy = PolicyCopy::create(&dir.path().join("run"), "s", &owner, &checked.text).unwrap();
        Fixture {
            live: LiveAllowlist::new(checked, copy),
            file,
            _dir: dir,
        }
    }

    fn copied(live: &LiveAllowlist) -> String {
        std::fs::read_to_string(live.copy().dir().join(ALLOWLIST_FILE)).unwrap()
    }

    fn allows(policy: &Policy, host: &str) -> bool {
        policy.check_target(&host.parse().unwrap(), 443).is_ok()
    }

    /// Polls twice (a change is used once it read the same twice).
    fn settle(live: &mut LiveAllowlist) -> Option<Change> {
        assert_eq!(live.poll(), None, "a change used on first sight");
        live.poll()
    }

    #[test]
    fn valid_changes_replace_the_copy_and_the_policy_in_force() {
        let Fixture {
            _dir,
            file,
            mut live,
        } = fixture("a.example\n");
        let mut policy = live.policy();
        assert_eq!(settle(&mut live), None, "nothing changed");
        // In place.
        std::fs::write(&file, "a.example\nb.example\n").unwrap();
        assert_eq!(settle(&mut live), Some(Change::Applied { entries: 2 }));
        assert!(policy.has_changed().unwrap());
        assert!(allows(&policy.borrow_and_update(), "b.example"));
        assert_eq!(copied(&live), "a.example\nb.example\n");
        // By rename, as editors save.
        let new = file.with_extension("swp");
        std::fs::write(&new, "c.example\n").unwrap();
        std::fs::rename(&new, &file).unwrap();
        assert_eq!(settle(&mut live), Some(Change::Applied { entries: 1 }));
        let now = policy.borrow_and_update().clone();
        assert!(allows(&now, "c.example") && !allows(&now, "b.example"));
        assert_eq!(now.generation(), 3);
        assert_eq!(copied(&live), "c.example\n");
        // The same content again (a touch, a save without change) is no change.
        std::fs::write(&file, "c.example\n").unwrap();
        assert_eq!(settle(&mut live), None);
        assert!(!policy.has_changed().unwrap());
    }

    #[test]
    fn an_invalid_or_missing_file_keeps_the_last_good_policy_and_is_reported_once() {
        let Fixture {
            _dir,
            file,
            mut live,
        } = fixture("a.example\n");
        let policy = live.policy();
        std::fs::write(&file, "a.example\nexa mple.com\n").unwrap();
        let Some(Change::Rejected(error)) = settle(&mut live) else {
            panic!("an invalid edit was not rejected");
        };
        assert!(
            error.contains(&format!("{}:2:", file.display())),
            "no file:line:col in {error}"
        );
        assert!(
            live.describe(&Change::Rejected(error))
                .ends_with("the last good allowlist stays in force")
        );
        for _ in 0..3 {
            assert_eq!(live.poll(), None, "reported again");
        }
        assert!(!policy.has_changed().unwrap());
        assert_eq!(copied(&live), "a.example\n");
        std::fs::remove_file(&file).unwrap();
        assert!(
            matches!(settle(&mut live), Some(Change::Rejected(e)) if e.contains("cannot read"))
        );
        assert_eq!(copied(&live), "a.example\n");
        // Back to the policy in force: nothing to apply.
        std::fs::write(&file, "a.example\n").unwrap();
        assert_eq!(settle(&mut live), None);
        std::fs::write(&file, "b.example\n").unwrap();
        assert_eq!(settle(&mut live), Some(Change::Applied { entries: 1 }));
        assert!(live.copy().dir().exists());
    }

    #[test]
    fn a_content_seen_once_is_not_used() {
        let Fixture {
            _dir,
            file,
            mut live,
        } = fixture("a.example\n");
        std::fs::write(&file, "a.exam").unwrap(); // caught half-written
        assert_eq!(live.poll(), None);
        std::fs::write(&file, "a.example.org\n").unwrap();
        assert_eq!(live.poll(), None);
        assert_eq!(live.poll(), Some(Change::Applied { entries: 1 }));
        assert_eq!(copied(&live), "a.example.org\n");
    }

    #[tokio::test]
    async fn next_change_waits_for_a_change() {
        let Fixture {
            _dir,
            file,
            mut live,
        } = fixture("a.example\n");
        let waited = tokio::time::timeout(POLL * 5, live.next_change()).await;
        assert!(waited.is_err(), "a change without one");
        std::fs::write(&file, "b.example\n").unwrap();
        let change = tokio::time::timeout(POLL * 5, live.next_change()).await;
        assert_eq!(change.unwrap(), Change::Applied { entries: 1 });
    }
}
