//! Whether a host path can be changed through a container's mounts: the file itself, or
//! any directory in which a name is looked up while the path is resolved (its parents,
//! the directories holding each symlink on the way and those of the symlinks' targets),
//! is a mount source or lies below one. A writer there can edit the file, or rename one
//! of those directories or re-point one of those symlinks and put a file of its own in
//! the path's place. Compared by device and inode, after resolving symlinks on both
//! sides, so that no spelling of a path escapes the check. A file with other hard links
//! counts as exposed too: where they are cannot be known, and one below a mount is the
//! same file.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before giving up (the kernel's own limit).
const MAX_SYMLINKS: u32 = 40;

/// How a path can be changed from inside a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exposure<'a> {
    /// Through the mount of this source.
    Mount(&'a Path),
    /// It is a file with this many hard links.
    HardLinks(u64),
}

impl fmt::Display for Exposure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exposure::Mount(source) => {
                write!(f, "through the mount of {}", source.display())
            }
            Exposure::HardLinks(links) => write!(
                f,
                "it has {links} hard links, any of which may lie in a read-write mount"
            ),
        }
    }
}

/// How `path` (absolute) can be changed through the mounts of `sources`, if it can.
///
/// # Errors
///
/// `path` cannot be resolved (a missing component, a symlink loop).
pub(crate) fn exposed_through<'a>(
    path: &Path,
    sources: impl IntoIterator<Item = &'a Path>,
) -> io::Result<Option<Exposure<'a>>> {
    let mut lookups = Vec::new();
    let file = resolve(path, &mut lookups, &mut 0)?;
    let metadata = std::fs::metadata(&file)?;
    if !metadata.is_dir() && metadata.nlink() > 1 {
        return Ok(Some(Exposure::HardLinks(metadata.nlink())));
    }
    let mut reachable = HashSet::new();
    reachable.insert((metadata.dev(), metadata.ino()));
    for dir in &lookups {
        for ancestor in dir.ancestors() {
            reachable.insert(identity(ancestor)?);
        }
    }
    Ok(sources
        .into_iter()
        .find(|source| {
            // A source that cannot be resolved is mounted by no engine.
            identity(source).is_ok_and(|id| reachable.contains(&id))
        })
        .map(Exposure::Mount))
}

/// Resolves `path` as the kernel does, adding every directory in which a name is looked
/// up to `lookups`; returns the resolved path. Each directory added is itself resolved,
/// so its ancestors are the directories above it.
fn resolve(path: &Path, lookups: &mut Vec<PathBuf>, followed: &mut u32) -> io::Result<PathBuf> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not an absolute path", path.display()),
        ));
    }
    let mut current = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir => current = PathBuf::from("/"),
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                current.pop();
            }
            Component::Normal(name) => {
                lookups.push(current.clone());
                let next = current.join(name);
                if std::fs::symlink_metadata(&next)?.is_symlink() {
                    *followed += 1;
                    if *followed > MAX_SYMLINKS {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("too many symlinks resolving {}", path.display()),
                        ));
                    }
                    let target = current.join(std::fs::read_link(&next)?);
                    current = resolve(&target, lookups, followed)?;
                } else {
                    current = next;
                }
            }
        }
    }
    Ok(current)
}

/// The device and inode of `path`, following symlinks.
fn identity(path: &Path) -> io::Result<(u64, u64)> {
    let metadata = std::fs::metadata(path)?;
    Ok((metadata.dev(), metadata.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A temporary tree of directories and files (`name/` is a directory).
    fn tree(paths: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for path in paths {
            let full = root.join(path);
            if path.ends_with('/') {
                std::fs::create_dir_all(full).unwrap();
            } else {
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(full, "example.com\n").unwrap();
            }
        }
        (dir, root)
    }

    fn exposed(path: &Path, sources: &[PathBuf]) -> Option<PathBuf> {
        match exposed_through(path, sources.iter().map(PathBuf::as_path)).unwrap() {
            Some(Exposure::Mount(source)) => Some(source.to_owned()),
            Some(other) => panic!("{other}"),
            None => None,
        }
    }

    #[test]
    fn a_file_below_a_mount_or_the_mounted_file_itself_is_exposed() {
        let (_dir, root) = tree(&["home/.agents/allow.txt", "work/", "safe/allow.txt"]);
        let agents = root.join("home/.agents");
        let home = root.join("home");
        let allow = agents.join("allow.txt");
        assert_eq!(
            exposed(&allow, &[root.join("work"), agents.clone()]),
            Some(agents.clone())
        );
        assert_eq!(exposed(&allow, std::slice::from_ref(&home)), Some(home));
        assert_eq!(exposed(&allow, std::slice::from_ref(&allow)), Some(allow));
        let safe = root.join("safe/allow.txt");
        assert_eq!(exposed(&safe, &[root.join("work"), agents]), None);
    }

    #[test]
    fn a_symlinked_layout_is_seen_through_on_both_sides() {
        // ~/.agents -> ~/dotfiles/agents: a mount of either name exposes the file
        // reached through either name.
        let (_dir, root) = tree(&["home/dotfiles/agents/allow.txt"]);
        symlink(root.join("home/dotfiles/agents"), root.join("home/.agents")).unwrap();
        let through_link = root.join("home/.agents/allow.txt");
        let real = root.join("home/dotfiles/agents/allow.txt");
        let link_mount = root.join("home/.agents");
        for path in [&through_link, &real] {
            assert_eq!(
                exposed(path, std::slice::from_ref(&link_mount)),
                Some(link_mount.clone()),
                "{}",
                path.display()
            );
        }
        assert_eq!(
            exposed(&through_link, &[root.join("home/dotfiles")]),
            Some(root.join("home/dotfiles"))
        );
    }

    #[test]
    fn a_symlink_on_the_way_exposes_the_directory_holding_it() {
        // The file lies outside the mount, but the symlink that leads to it lies inside:
        // the agent can re-point the link, so the file is exposed.
        let (_dir, root) = tree(&["work/", "safe/allow.txt", "other/"]);
        symlink(root.join("safe"), root.join("work/policy")).unwrap();
        let work = root.join("work");
        assert_eq!(
            exposed(
                &root.join("work/policy/allow.txt"),
                std::slice::from_ref(&work)
            ),
            Some(work.clone())
        );
        assert_eq!(exposed(&root.join("safe/allow.txt"), &[work]), None);
        // A link whose target holds a link of its own: /other/x -> /work/y -> /safe.
        symlink(root.join("safe"), root.join("work/y")).unwrap();
        symlink(root.join("work/y"), root.join("other/x")).unwrap();
        let work = root.join("work");
        assert_eq!(
            exposed(&root.join("other/x/allow.txt"), std::slice::from_ref(&work)),
            Some(work)
        );
    }

    #[test]
    fn a_file_with_other_hard_links_is_exposed_wherever_they_are() {
        let (_dir, root) = tree(&["safe/allow.txt", "work/"]);
        let allow = root.join("safe/allow.txt");
        assert_eq!(exposed_through(&allow, []).unwrap(), None);
        std::fs::hard_link(&allow, root.join("work/allow.txt")).unwrap();
        let exposure = exposed_through(&allow, []).unwrap();
        assert_eq!(exposure, Some(Exposure::HardLinks(2)));
        assert!(exposure.unwrap().to_string().contains("2 hard links"));
        // Directories always have several links: not a reason.
        assert_eq!(exposed_through(&root.join("work"), []).unwrap(), None);
    }

    #[test]
    fn relative_and_dotted_paths_and_loops() {
        let (_dir, root) = tree(&["a/b/allow.txt", "c/"]);
        let c = root.join("c");
        let dotted = root.join("c/../a/./b/allow.txt");
        assert_eq!(exposed(&dotted, std::slice::from_ref(&c)), None);
        assert_eq!(exposed(&dotted, &[root.join("a")]), Some(root.join("a")));
        assert!(exposed_through(Path::new("a/b"), []).is_err());
        symlink(root.join("loop"), root.join("loop")).unwrap();
        assert!(exposed_through(&root.join("loop/x"), []).is_err());
        assert!(exposed_through(&root.join("missing/x"), []).is_err());
    }
}
