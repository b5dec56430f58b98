//! Protected paths compared before and after a run: for each file its type, size,
//! permissions, modification and change times, inode, and (up to [`HASHED_BYTES`]) a
//! SHA-256 of its contents; for each symlink its target. The change time cannot be set
//! by the agent, so a file rewritten with the same size and an old modification time
//! still shows. Also compared: the git repositories in the working directory, so that
//! a repository the run created (whose config git would obey) is reported too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use super::values::{self, Values};
use super::{Protection, git};

/// Files up to this size are hashed; larger ones are compared by their metadata.
const HASHED_BYTES: u64 = 1 << 20;
/// Entries recorded at most below one protected path.
const MAX_ENTRIES: usize = 10_000;
/// Changes listed at most in the warning (the rest are counted).
const MAX_LISTED: usize = 20;

/// The protected paths as they were when the snapshot was taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    workdir: PathBuf,
    /// Each watched path (no watched path inside another) and what is at and below it.
    trees: BTreeMap<PathBuf, Tree>,
    /// The `.git` entries in the working directory.
    repositories: BTreeSet<PathBuf>,
}

/// The entries at and below a path, by path.
type Tree = BTreeMap<PathBuf, State>;

/// What is at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    File {
        size: u64,
        mode: u32,
        modified: (i64, i64),
        changed: (i64, i64),
        inode: u64,
        digest: Option<[u8; 32]>,
    },
    Dir {
        mode: u32,
    },
    Symlink(PathBuf),
    Other {
        changed: (i64, i64),
    },
}

/// How a path differs after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Created,
    Changed,
    Deleted,
}

/// One path the run created, changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) path: PathBuf,
    pub(crate) how: How,
}

impl Snapshot {
    /// Records the `watched` paths (existing or not), with `repositories`, the
    /// repositories in `workdir` now.
    pub(crate) fn take(watched: &[PathBuf], repositories: &[PathBuf], workdir: &Path) -> Self {
        let mut roots: Vec<&PathBuf> = watched.iter().collect();
        roots.sort();
        let mut trees = BTreeMap::new();
        let mut last: Option<&PathBuf> = None;
        for root in roots {
            if last.is_some_and(|outer| root.starts_with(outer)) {
                continue;
            }
            trees.insert(root.clone(), record(root));
            last = Some(root);
        }
        Self {
            workdir: workdir.to_owned(),
            trees,
            repositories: repositories.iter().cloned().collect(),
        }
    }

    /// What differs now from the snapshot, in path order.
    pub(crate) fn changes(&self) -> Vec<Change> {
        let mut changes = Vec::new();
        for (root, before) in &self.trees {
            let after = record(root);
            let paths: BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
            for path in paths {
                let how = match (before.get(path), after.get(path)) {
                    (None, Some(_)) => How::Created,
                    (Some(_), None) => How::Deleted,
                    (Some(old), Some(new)) if old != new => How::Changed,
                    _ => continue,
                };
                changes.push(Change {
                    path: path.clone(),
                    how,
                });
            }
        }
        for repository in git::repositories(&self.workdir) {
            if !self.repositories.contains(&repository)
                && !changes.iter().any(|c| c.path == repository)
            {
                changes.push(Change {
                    path: repository,
                    how: How::Created,
                });
            }
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        changes
    }
}

/// A snapshot (with the watched values of the agent's config) taken once and reported
/// once, whichever way the run ends: taken just before the agent starts, reported right
/// after it exits (before the proxy's summary), or after teardown when the run ended
/// another way (a signal, an error).
#[derive(Debug, Default)]
pub(crate) struct Watch {
    snapshot: Mutex<Option<(Snapshot, Values)>>,
}

impl Watch {
    /// Takes the snapshot of what `protection` protects in `workdir` (its repositories
    /// are those of `protection`: nothing ran in between) and reads its watched values.
    pub(crate) fn begin(&self, protection: &Protection, workdir: &Path) {
        let snapshot = Snapshot::take(&protection.watched, &protection.repositories, workdir);
        let values = Values::take(&protection.values);
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = Some((snapshot, values));
    }

    /// The warnings about what changed since [`Watch::begin`] (see [`warning`] and
    /// [`values::warning`]); nothing when nothing changed, when it was not taken, or
    /// when it was reported already.
    pub(crate) fn end(&self) -> Vec<String> {
        let snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some((snapshot, values)) = snapshot else {
            return Vec::new();
        };
        let mut lines = warning(&snapshot.changes());
        lines.extend(values::warning(&values.changes()));
        lines
    }
}

/// The warning about `changes`, one line each, or nothing when there are none.
pub(crate) fn warning(changes: &[Change]) -> Vec<String> {
    let entries = changes.iter().map(|change| {
        let how = match change.how {
            How::Created => "created",
            How::Changed => "changed",
            How::Deleted => "deleted",
        };
        vec![format!("  {how:<8} {}", change.path.display())]
    });
    banner(
        &[
            "WARNING: this run changed files that can run code on this machine",
            "(git config or hooks, editor tasks, CI workflows, agent extensions...).",
            "Review them before you run git, open the project or start the agent again:",
        ],
        entries.collect(),
    )
}

/// `entries` (each of one or more lines, at most [`MAX_LISTED`], the rest counted) under
/// `heading`, between rules, so that they stand out among the launcher's other
/// messages; nothing when there are no entries.
pub(crate) fn banner(heading: &[&str], entries: Vec<Vec<String>>) -> Vec<String> {
    if entries.is_empty() {
        return Vec::new();
    }
    let rule = "=".repeat(72);
    let mut lines = vec![rule.clone()];
    lines.extend(heading.iter().map(|line| (*line).to_owned()));
    let more = entries.len().saturating_sub(MAX_LISTED);
    lines.extend(entries.into_iter().take(MAX_LISTED).flatten());
    if more > 0 {
        lines.push(format!("  ... and {more} more"));
    }
    lines.push(rule);
    lines
}

/// What is at and below `root` now (nothing when it does not exist), without following
/// symlinks, at most [`MAX_ENTRIES`] entries.
fn record(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        if tree.len() == MAX_ENTRIES {
            tracing::debug!(root = %root.display(), "too many entries to compare them all");
            break;
        }
        let Ok(metadata) = path.symlink_metadata() else {
            continue;
        };
        let file_type = metadata.file_type();
        let changed = (metadata.ctime(), metadata.ctime_nsec());
        let state = if file_type.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
            State::Dir {
                mode: metadata.mode(),
            }
        } else if file_type.is_symlink() {
            State::Symlink(std::fs::read_link(&path).unwrap_or_default())
        } else if file_type.is_file() {
            State::File {
                size: metadata.len(),
                mode: metadata.mode(),
                modified: (metadata.mtime(), metadata.mtime_nsec()),
                changed,
                inode: metadata.ino(),
                digest: (metadata.len() <= HASHED_BYTES)
                    .then(|| digest(&path))
                    .flatten(),
            }
        } else {
            State::Other { changed }
        };
        tree.insert(path, state);
    }
    tree
}

/// The SHA-256 of a file's contents, read without blocking on a FIFO put in its place.
fn digest(path: &Path) -> Option<[u8; 32]> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut file = std::fs::File::from(rustix::fs::open(path, flags, Mode::empty()).ok()?);
    let mut hasher = Sha256::new();
    let mut buffer = [0; 64 * 1024];
    let mut total = 0;
    loop {
        let read = file.read(&mut buffer).ok()?;
        if read == 0 || total > HASHED_BYTES {
            break;
        }
        total += read as u64;
        hasher.update(&buffer[..read]);
    }
    Some(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn changes(dir: &Path, watched: &[&str], run: impl FnOnce()) -> Vec<(String, How)> {
        let watched: Vec<PathBuf> = watched.iter().map(|w| dir.join(w)).collect();
        let snapshot = Snapshot::take(&watched, &git::repositories(dir), dir);
        run();
        snapshot
            .changes()
            .into_iter()
            .map(|c| {
                (
                    c.path.strip_prefix(dir).unwrap().display().to_string(),
                    c.how,
                )
            })
            .collect()
    }

    #[test]
    fn created_changed_and_deleted_paths_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join(".git/hooks")).unwrap();
        fs::write(d.join(".git/hooks/pre-push"), "old").unwrap();
        fs::write(d.join(".git/config"), "[core]\n").unwrap();
        fs::write(d.join(".envrc"), "x").unwrap();
        let found = changes(
            d,
            &[".git/hooks", ".git/config", ".envrc", ".vscode"],
            || {
                fs::write(d.join(".git/hooks/pre-commit"), "evil").unwrap();
                fs::write(d.join(".git/hooks/pre-push"), "new").unwrap();
                fs::remove_file(d.join(".envrc")).unwrap();
                fs::create_dir_all(d.join(".vscode")).unwrap();
                fs::write(d.join(".vscode/tasks.json"), "{}").unwrap();
                fs::write(d.join("unwatched"), "x").unwrap();
            },
        );
        assert_eq!(
            found,
            [
                (".envrc".to_owned(), How::Deleted),
                (".git/hooks/pre-commit".to_owned(), How::Created),
                (".git/hooks/pre-push".to_owned(), How::Changed),
                (".vscode".to_owned(), How::Created),
                (".vscode/tasks.json".to_owned(), How::Created),
            ]
        );
    }

    #[test]
    fn a_rewrite_with_the_same_size_and_modification_time_shows() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("hook");
        fs::write(&hook, "echo hi\n").unwrap();
        let modified = fs::metadata(&hook).unwrap().modified().unwrap();
        let found = changes(dir.path(), &["hook"], || {
            fs::write(&hook, "rm -rf\n").unwrap();
            fs::File::options()
                .write(true)
                .open(&hook)
                .unwrap()
                .set_modified(modified)
                .unwrap();
        });
        assert_eq!(found, [("hook".to_owned(), How::Changed)]);
    }

    #[test]
    fn an_untouched_tree_and_a_replaced_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("safe")).unwrap();
        fs::write(d.join("safe/a"), "a").unwrap();
        std::os::unix::fs::symlink("safe", d.join("hooks")).unwrap();
        assert!(changes(d, &["safe"], || {}).is_empty());
        let found = changes(d, &["hooks", "hooks/x"], || {
            fs::remove_file(d.join("hooks")).unwrap();
            std::os::unix::fs::symlink("elsewhere", d.join("hooks")).unwrap();
        });
        assert_eq!(found, [("hooks".to_owned(), How::Changed)]);
    }

    #[test]
    fn a_new_repository_anywhere_in_the_working_directory_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("old/.git")).unwrap();
        let found = changes(d, &[], || {
            fs::create_dir_all(d.join("docs/.git")).unwrap();
        });
        assert_eq!(found, [("docs/.git".to_owned(), How::Created)]);
    }

    #[test]
    fn a_fifo_does_not_block_the_comparison() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("config"), "x").unwrap();
        let found = changes(d, &["config"], || {
            fs::remove_file(d.join("config")).unwrap();
            rustix::fs::mkfifoat(rustix::fs::CWD, d.join("config"), rustix::fs::Mode::RUSR)
                .unwrap();
        });
        assert_eq!(found, [("config".to_owned(), How::Changed)]);
    }

    #[test]
    fn the_warning_lists_paths_and_counts_the_rest() {
        assert!(warning(&[]).is_empty());
        let many: Vec<Change> = (0..25)
            .map(|i| Change {
                path: PathBuf::from(format!("/w/.vscode/f{i:02}")),
                how: How::Created,
            })
            .collect();
        let lines = warning(&many);
        assert!(lines[1].starts_with("WARNING"));
        assert!(lines.iter().any(|l| l == "  created  /w/.vscode/f00"));
        assert!(lines.iter().any(|l| l == "  ... and 5 more"));
    }
}
