//! The per-run copy of the allowlist that the sidecar reads: the sidecar never sees the
//! user's file. A private per-run directory of the launcher's ([`RunDir`], named after
//! the session) holds the directory the sidecar mounts read-only at
//! [`protocol::ALLOWLIST_DIR`]; the copy is replaced by writing a temporary file next to
//! it and renaming it over, so the proxy, which watches the directory, never reads half a
//! file. Removed when dropped, or by [`remove_stale_everywhere`] once its launcher is gone.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sandbox_policy::protocol;

use crate::sandbox::labels::Owner;
use crate::sandbox::run_dir::{self, RunDir};

/// The private directories' name prefix (the session id follows).
const PREFIX: &str = "policy-";
/// The directory the sidecar mounts, inside the private one. Readable by the sidecar's
/// own user (the private directory above it is not, but a bind mount does not pass
/// through it).
const SHARED_DIR: &str = "allowlist";
/// The temporary file a new copy is written to before it replaces the old one.
const TEMPORARY: &str = ".allowed_domains.txt.new";

/// A run's copy of the allowlist.
#[derive(Debug)]
pub(crate) struct PolicyCopy {
    private: RunDir,
}

impl PolicyCopy {
    /// Creates the private directory under `parent` for `session`, owned by `owner`, with
    /// a copy of `text`.
    ///
    /// # Errors
    ///
    /// A directory or file cannot be created (one left half-made is removed).
    pub(crate) fn create(
        parent: &Path,
        session: &str,
        owner: &Owner,
        text: &str,
    ) -> io::Result<Self> {
        let private = RunDir::create(parent, &format!("{PREFIX}{session}"), owner)?;
        let copy = Self { private };
        DirBuilder::new().mode(0o755).create(copy.dir())?;
        copy.replace(text)?;
        Ok(copy)
    }

    /// The directory to mount read-only at [`protocol::ALLOWLIST_DIR`].
    pub(crate) fn dir(&self) -> PathBuf {
        self.private.path().join(SHARED_DIR)
    }

    /// The private directory (to check that no agent mount reaches it).
    pub(crate) fn private_dir(&self) -> &Path {
        self.private.path()
    }

    /// Replaces the copy with `text` at once: written to a temporary file, flushed, then
    /// renamed over the copy.
    ///
    /// # Errors
    ///
    /// The temporary file cannot be written or renamed.
    pub(crate) fn replace(&self, text: &str) -> io::Result<()> {
        let temporary = self.dir().join(TEMPORARY);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, self.dir().join(protocol::ALLOWLIST_FILE))
    }
}

/// Where copies may go, in order of preference: `$XDG_RUNTIME_DIR` (private to the user,
/// in memory), the launcher's cache directory (under the home directory, which every
/// engine in a VM shares), the temporary directory. A run takes the first that no mount
/// of its agent container reaches.
pub(crate) fn parents() -> Vec<PathBuf> {
    use etcetera::BaseStrategy as _;
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from);
    let cache = etcetera::choose_base_strategy()
        .ok()
        .map(|strategy| strategy.cache_dir().join("agent-sandbox"));
    runtime
        .into_iter()
        .chain(cache)
        .chain([std::env::temp_dir()])
        .collect()
}

/// Removes `session`'s copy wherever it is (from the panic hook, where nothing is
/// dropped in a release build).
pub(crate) fn remove_session(session: &str) {
    for parent in parents() {
        let _ = std::fs::remove_dir_all(run_dir::path(&parent, &format!("{PREFIX}{session}")));
    }
}

/// Removes the copies (and the other per-run directories) of launchers that are gone
/// from every one of [`parents`]; returns how many.
pub(crate) fn remove_stale_everywhere(running: impl Fn(&Owner) -> bool) -> usize {
    parents()
        .iter()
        .map(|parent| run_dir::remove_stale(parent, &running))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn owner(pid: u32) -> Owner {
        Owner {
            pid,
            start: "1".into(),
            host: "h".into(),
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_copy_is_private_replaced_whole_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let copy = PolicyCopy::create(parent.path(), "s1", &owner(1), "a.example\n").unwrap();
        let file = copy.dir().join(protocol::ALLOWLIST_FILE);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a.example\n");
        assert_eq!(mode(copy.private_dir()), 0o700);
        assert_eq!((mode(&copy.dir()), mode(&file)), (0o755, 0o644));
        let before = std::fs::metadata(&file).unwrap();
        copy.replace("b.example\n").unwrap();
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "b.example\n");
        // Replaced by rename (a new inode), with nothing else left in the directory.
        use std::os::unix::fs::MetadataExt as _;
        assert_ne!(before.ino(), after.ino());
        let names: Vec<_> = std::fs::read_dir(copy.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [protocol::ALLOWLIST_FILE]);
        let private = copy.private_dir().to_owned();
        drop(copy);
        assert!(!private.exists());
    }

    #[test]
    fn copies_of_launchers_that_are_gone_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let keep = PolicyCopy::create(parent.path(), "live", &owner(1), "").unwrap();
        let gone = PolicyCopy::create(parent.path(), "dead", &owner(2), "").unwrap();
        let gone_dir = gone.private_dir().to_owned();
        std::mem::forget(gone); // as if its launcher had been killed
        let unowned = run_dir::path(parent.path(), &format!("{PREFIX}unowned"));
        std::fs::create_dir(&unowned).unwrap();
        assert_eq!(run_dir::remove_stale(parent.path(), |o| o.pid == 1), 1);
        assert!(!gone_dir.exists() && keep.private_dir().exists() && unowned.exists());
    }
}
