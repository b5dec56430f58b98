//! Private per-run directories on the host, shared with a container through a bind
//! mount (the browser hand-off channel, the agent's trust files, the sidecar's copy of
//! the allowlist): created 0700, with a record of the launcher that owns them, removed
//! when dropped, and removed by a later run when their launcher was killed outright.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use crate::sandbox::labels::Owner;

/// The directories' name prefix.
const PREFIX: &str = "agent-sandbox-";
/// The file in a directory naming the launcher that owns it.
const OWNER_FILE: &str = "owner";

/// A private per-run directory, removed when dropped.
#[derive(Debug)]
pub(crate) struct RunDir {
    dir: PathBuf,
}

impl RunDir {
    /// Creates [`path`]`(parent, name)` (mode 0700, and `parent` when missing) with a
    /// record of `owner` (for [`remove_stale`]).
    ///
    /// # Errors
    ///
    /// The directory or the record cannot be created (one of that name exists).
    pub(crate) fn create(parent: &Path, name: &str, owner: &Owner) -> std::io::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)?;
        let dir = path(parent, name);
        DirBuilder::new().mode(0o700).create(&dir)?;
        let run_dir = Self { dir };
        std::fs::write(run_dir.dir.join(OWNER_FILE), owner.record())?;
        Ok(run_dir)
    }

    /// A parent for these directories: `$XDG_RUNTIME_DIR` (private to the user) when
    /// set, else the temporary directory (each directory is private either way).
    pub(crate) fn default_parent() -> PathBuf {
        std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where the per-run directory `name` is under `parent`: `agent-sandbox-NAME`.
pub(crate) fn path(parent: &Path, name: &str) -> PathBuf {
    parent.join(format!("{PREFIX}{name}"))
}

/// Removes the per-run directories under `parent` whose launcher is gone and returns how
/// many. Directories without a readable owner record are left alone.
pub(crate) fn remove_stale(parent: &Path, running: impl Fn(&Owner) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let owner_of = |dir: &Path| {
        let record = std::fs::read_to_string(dir.join(OWNER_FILE)).ok()?;
        Owner::from_record(&record)
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(PREFIX))
        .map(|entry| entry.path())
        .filter(|dir| owner_of(dir).is_some_and(|owner| !running(&owner)))
        .filter(|dir| std::fs::remove_dir_all(dir).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn directories_are_private_and_removed_when_dropped() {
        let parent = tempfile::tempdir().unwrap();
        let owner = crate::sandbox::liveness::current_owner();
        let run_dir = RunDir::create(parent.path(), "s1-trust", &owner).unwrap();
        let mode = std::fs::metadata(run_dir.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(run_dir.path().ends_with("agent-sandbox-s1-trust"));
        assert!(RunDir::create(parent.path(), "s1-trust", &owner).is_err());
        let dir = run_dir.path().to_owned();
        drop(run_dir);
        assert!(!dir.exists());
    }

    #[test]
    fn directories_of_launchers_that_are_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path();
        let live = Owner {
            pid: 1,
            start: "1".into(),
            host: "h".into(),
        };
        let dead = Owner {
            pid: 2,
            ..live.clone()
        };
        let keep = RunDir::create(parent, "live", &live).unwrap();
        let gone = RunDir::create(parent, "dead", &dead).unwrap();
        let (gone_dir, keep_dir) = (gone.path().to_owned(), keep.path().to_owned());
        std::mem::forget(gone); // as if its launcher had been killed
        std::fs::create_dir(parent.join("agent-sandbox-unowned")).unwrap();
        assert_eq!(remove_stale(parent, |owner| owner.pid == 1), 1);
        assert!(
            !gone_dir.exists()
                && keep_dir.exists()
                && parent.join("agent-sandbox-unowned").exists()
        );
        drop(keep);
    }
}
