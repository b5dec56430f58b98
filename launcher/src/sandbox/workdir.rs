//! Which working directories are too broad to mount read-write into the sandbox: `/`,
//! the home directory and its ancestors (everything the user owns would be exposed:
//! dotfiles, SSH keys, other projects), and system directories (or, for the pseudo and
//! runtime file systems, anything in them: the host's sockets and devices). Compared
//! as canonical paths, so a symlink or `..` does not get around the check. `--force`
//! lifts it.

use std::path::{Path, PathBuf};

/// System directories refused as the working directory themselves (`/lib*` is any
/// top-level directory whose name starts with `lib`).
const SYSTEM_DIRS: &[&str] = &[
    "/usr",
    "/var",
    "/bin",
    "/sbin",
    "/root",
    "/opt",
    "/srv",
    "/mnt",
    "/media",
    "/tmp",
    "/home",
    "/Users",
    "/Volumes",
    "/Library",
    "/Applications",
    "/private",
];

/// Directories refused together with everything below them: pseudo file systems, the
/// host's configuration, and the runtime directories where the host's sockets live
/// (the user's D-Bus, a rootless Docker engine's socket).
const SYSTEM_TREES: &[&str] = &[
    "/proc", "/sys", "/dev", "/etc", "/boot", "/run", "/var/run", "/System",
];

/// Why `cwd` must not be the working directory, or `None` when it may be. `home` is
/// the user's home directory; both are canonicalised when they exist.
pub(crate) fn refusal(cwd: &Path, home: &Path) -> Option<&'static str> {
    let cwd = canonical(cwd);
    let home = canonical(home);
    if cwd.parent().is_none() {
        Some("the root directory")
    } else if cwd == home {
        Some("your home directory")
    } else if home.starts_with(&cwd) {
        Some("an ancestor of your home directory")
    } else if is_system_dir(&cwd) {
        Some("a system directory")
    } else {
        None
    }
}

fn is_system_dir(cwd: &Path) -> bool {
    let top_level_libs = std::fs::read_dir("/")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("lib"))
        .map(|entry| entry.path());
    let exact = SYSTEM_DIRS.iter().map(PathBuf::from).chain(top_level_libs);
    let is_top_level_lib = cwd.parent() == Some(Path::new("/"))
        && cwd
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("lib"));
    is_top_level_lib
        || exact.into_iter().any(|dir| cwd == canonical(&dir))
        || SYSTEM_TREES
            .iter()
            .any(|dir| cwd.starts_with(canonical(Path::new(dir))))
}

/// `path` with symlinks resolved, or as it is when it cannot be resolved.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_home_its_ancestors_and_system_directories_are_refused() {
        let home = Path::new("/nonexistent-home/alice");
        for (cwd, reason) in [
            ("/", "the root directory"),
            ("/nonexistent-home/alice", "your home directory"),
            ("/nonexistent-home/alice/", "your home directory"),
            ("/nonexistent-home", "an ancestor of your home directory"),
            ("/etc", "a system directory"),
            ("/etc/ssh", "a system directory"),
            ("/usr", "a system directory"),
            ("/var", "a system directory"),
            ("/lib", "a system directory"),
            ("/lib64", "a system directory"),
            ("/libx32", "a system directory"),
            ("/proc/self", "a system directory"),
            ("/sys", "a system directory"),
            ("/dev/shm", "a system directory"),
            ("/run/user/1000", "a system directory"),
            ("/opt", "a system directory"),
            ("/root", "a system directory"),
            ("/boot", "a system directory"),
            ("/tmp", "a system directory"),
        ] {
            assert_eq!(refusal(Path::new(cwd), home), Some(reason), "{cwd}");
        }
    }

    #[test]
    fn project_directories_are_accepted() {
        let home = Path::new("/nonexistent-home/alice");
        for cwd in [
            "/nonexistent-home/alice/src/project",
            "/nonexistent-home/bob",
            "/usr/local/src/project",
            "/var/www/site",
            "/opt/project",
            "/srv/app",
            "/tmp/scratch",
        ] {
            assert_eq!(refusal(Path::new(cwd), home), None, "{cwd}");
        }
    }

    #[test]
    fn symlinks_and_dot_dots_do_not_get_around_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("project")).unwrap();
        let link = dir.path().join("link-to-home");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        assert_eq!(refusal(&link, &home), Some("your home directory"));
        assert_eq!(
            refusal(&home.join("project/.."), &home),
            Some("your home directory")
        );
        assert_eq!(
            refusal(dir.path(), &link),
            Some("an ancestor of your home directory")
        );
        assert_eq!(refusal(&link.join("project"), &home), None);
    }
}
