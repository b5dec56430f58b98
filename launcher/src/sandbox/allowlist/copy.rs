//! The per-run copy of the allowlist that the sidecar reads: the sidecar never sees the
//! user's file. A private directory of the launcher's (0700, named after the session,
//! holding a record of the launcher that owns it) holds the directory the sidecar
//! mounts read-only at [`protocol::ALLOWLIST_DIR`]; the copy is replaced by writing a
//! temporary file next to it and renaming it over, so the proxy, which watches the
//! directory, never reads half a file. Removed when dropped, or by [`remove_stale`]
//! once its launcher is gone.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sandbox_policy::protocol;

use crate::sandbox::labels::Owner;
use crate::sandbox::private_dirs::{self, parents};

/// The private directories' name prefix (the session id follows).
const PREFIX: &str = "agent-sandbox-policy-";
/// The file in a private directory naming the launcher that owns it.
const OWNER_FILE: &str = "owner";
/// The directory the sidecar mounts, inside the private one. Readable by the sidecar's
/// own user (the private directory above it is not, but a bind mount does not pass
/// through it).
const SHARED_DIR: &str = "allowlist";
/// The temporary file a new copy is written to before it replaces the old one.
const TEMPORARY: &str = ".allowed_domains.txt.new";

/// A run's copy of the allowlist.
#[derive(Debug)]
pub(crate) struct PolicyCopy {
    private: PathBuf,
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
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        let private = parent.join(format!("{PREFIX}{session}"));
        DirBuilder::new().mode(0o700).create(&private)?;
        let copy = Self { private };
        std::fs::write(copy.private.join(OWNER_FILE), owner.record())?;
        DirBuilder::new().mode(0o755).create(copy.dir())?;
        copy.replace(text)?;
        Ok(copy)
    }

    /// The directory to mount read-only at [`protocol::ALLOWLIST_DIR`].
    pub(crate) fn dir(&self) -> PathBuf {
        self.private.join(SHARED_DIR)
    }

    /// The private directory (to check that no agent mount reaches it).
    pub(crate) fn private_dir(&self) -> &Path {
        &self.private
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

impl Drop for PolicyCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.private);
    }
}

/// Removes `session`'s copy wherever it is (from the panic hook, where nothing is
/// dropped in a release build).
pub(crate) fn remove_session(session: &str) {
    for parent in parents() {
        let _ = std::fs::remove_dir_all(parent.join(format!("{PREFIX}{session}")));
    }
}

/// Removes the copies of launchers that are gone from every one of the private
/// directories' [`parents`]; returns how many.
pub(crate) fn remove_stale_everywhere(running: impl Fn(&Owner) -> bool) -> usize {
    private_dirs::sweep(|parent| remove_stale(parent, &running))
}

/// Removes the copies under `parent` whose launcher is gone (a launcher killed outright
/// cannot remove its own) and returns how many. Directories without a readable owner
/// record are left alone.
pub(crate) fn remove_stale(parent: &Path, running: impl Fn(&Owner) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|entry| entry.path())
        .filter(|dir| {
            std::fs::read_to_string(dir.join(OWNER_FILE))
                .ok()
                .and_then(|record| Owner::from_record(&record))
                .is_some_and(|owner| !running(&owner))
        })
        .filter(|dir| std::fs::remove_dir_all(dir).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_copy_is_private_replaced_whole_and_removed_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let copy = PolicyCopy::create(parent.path(), "s1", &Owner::test(1), "a.example\n").unwrap();
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
        let keep = PolicyCopy::create(parent.path(), "live", &Owner::test(1), "").unwrap();
        let gone = PolicyCopy::create(parent.path(), "dead", &Owner::test(2), "").unwrap();
        let gone_dir = gone.private_dir().to_owned();
        std::mem::forget(gone); // as if its launcher had been killed
        let unowned = parent.path().join(format!("{PREFIX}unowned"));
        std::fs::create_dir(&unowned).unwrap();
        assert_eq!(remove_stale(parent.path(), |o| o.pid == 1), 1);
        assert!(!gone_dir.exists() && keep.private_dir().exists() && unowned.exists());
    }
}
