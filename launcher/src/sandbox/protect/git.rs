//! The files of git repositories that make git run commands on the host: a
//! repository's config (`core.fsmonitor`, `core.sshCommand`, filter and diff drivers,
//! aliases: all of git's command-running keys live there), the files it includes, its
//! hooks and the directory `core.hooksPath` names, the config and hooks of every
//! submodule's gitdir (`.git/modules/...`), and what points git at a gitdir (a `.git`
//! file, a linked worktree's `commondir`), which an agent could otherwise aim at a
//! gitdir of its own making.
//!
//! Repositories are found in the working directory (its own `.git` and nested ones, to
//! a bounded depth) and above it (whose `core.hooksPath` may name a directory inside).
//! What `.git/info/attributes` or `.gitattributes` can do needs a driver defined in a
//! config, so they are not protected.

use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};

use super::gitconfig::{self, Entry};

/// How deep below the working directory nested repositories are looked for.
const MAX_DEPTH: usize = 4;
/// How many directories are read at most while looking for nested repositories.
const MAX_DIRS: usize = 5_000;
/// How deep `include.path` chains are followed (git's own limit is 10).
const MAX_INCLUDE_DEPTH: usize = 10;
/// How deep submodules of submodules are followed.
const MAX_MODULE_DEPTH: usize = 8;

/// What the repositories in and around a working directory need protected.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct GitPaths {
    /// Paths (existing or not) that must not change.
    pub(super) protected: Vec<PathBuf>,
    /// Paths inside protected ones that git must be able to write: the gitdir of a
    /// linked worktree, below its repository's `worktrees/`.
    pub(super) writable: Vec<PathBuf>,
    /// Directories outside the working directory that git needs there (the gitdir and
    /// common directory of a working directory that is a linked worktree or a
    /// submodule's checkout), to be mounted at the same path.
    pub(super) outside: Vec<PathBuf>,
    /// The `.git` entries found in the working directory ([`repositories`]).
    pub(super) repositories: Vec<PathBuf>,
}

/// The `.git` entries (directories or files) in `workdir` and below it, breadth first
/// to [`MAX_DEPTH`] levels and [`MAX_DIRS`] directories, without following symlinks or
/// looking inside `.git` directories.
pub(crate) fn repositories(workdir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut queue = VecDeque::from([(workdir.to_owned(), 0)]);
    let mut read = 0;
    while let Some((dir, depth)) = queue.pop_front() {
        if read == MAX_DIRS {
            tracing::debug!(workdir = %workdir.display(), "stopped looking for nested repositories");
            break;
        }
        read += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                found.push(path);
            } else if depth < MAX_DEPTH && entry.file_type().is_ok_and(|t| t.is_dir()) {
                queue.push_back((path, depth + 1));
            }
        }
    }
    found.sort();
    found
}

/// What the repositories in and around `workdir` need protected. `home` expands `~/`
/// in config paths; `global_configs` are the user's and the system's git config files,
/// whose `core.hooksPath` applies to every repository.
pub(super) fn git_paths(workdir: &Path, home: &Path, global_configs: &[PathBuf]) -> GitPaths {
    let mut paths = GitPaths::default();
    let global = Configs::read(global_configs, home);
    paths.protected.extend(global.included.iter().cloned());
    paths.repositories = repositories(workdir);
    let mut dotgits = paths.repositories.clone();
    if let Some(enclosing) = workdir
        .ancestors()
        .skip(1)
        .map(|d| d.join(".git"))
        .find(|d| d.symlink_metadata().is_ok())
    {
        dotgits.push(enclosing);
    }
    for dotgit in dotgits {
        let Some(worktree) = dotgit.parent() else {
            continue;
        };
        let Some(gitdir) = gitdir_of(&dotgit, &mut paths) else {
            continue;
        };
        let common = common_dir(&gitdir);
        protect_gitdir(
            &gitdir,
            &common,
            Some(worktree),
            home,
            &global,
            &mut paths,
            0,
        );
        if worktree == workdir {
            for dir in [&common, &gitdir] {
                if !dir.starts_with(workdir) && !paths.outside.iter().any(|o| dir.starts_with(o)) {
                    paths.outside.push(dir.clone());
                }
            }
        }
    }
    paths
}

/// The gitdir a `.git` entry stands for: itself when a directory; the one a `.git`
/// file names (the file itself is protected: it decides which gitdir git uses).
fn gitdir_of(dotgit: &Path, paths: &mut GitPaths) -> Option<PathBuf> {
    // A symlink to a directory is a gitdir for git too (the link itself cannot be made
    // read-only; the snapshot reports it if it is replaced).
    if dotgit.metadata().is_ok_and(|m| m.is_dir()) {
        return Some(dotgit.to_owned());
    }
    dotgit.symlink_metadata().ok()?;
    paths.protected.push(dotgit.to_owned());
    let text = std::fs::read_to_string(dotgit).ok()?;
    let target = text.lines().next()?.strip_prefix("gitdir:")?.trim();
    let base = dotgit.parent()?;
    Some(normalise(&base.join(target)))
}

/// A gitdir's common directory: the one its `commondir` file names (a linked
/// worktree's), or itself.
fn common_dir(gitdir: &Path) -> PathBuf {
    match std::fs::read_to_string(gitdir.join("commondir")) {
        Ok(text) if !text.trim().is_empty() => normalise(&gitdir.join(text.trim())),
        _ => gitdir.to_owned(),
    }
}

/// Protects the gitdir `gitdir` (with common directory `common`) of the working tree
/// `worktree`, and the gitdirs of its submodules.
fn protect_gitdir(
    gitdir: &Path,
    common: &Path,
    worktree: Option<&Path>,
    home: &Path,
    global: &Configs,
    paths: &mut GitPaths,
    depth: usize,
) {
    for name in ["config", "config.worktree", "hooks", "worktrees"] {
        paths.protected.push(common.join(name));
    }
    if gitdir != common {
        for name in ["config.worktree", "commondir", "gitdir"] {
            paths.protected.push(gitdir.join(name));
        }
        if gitdir.starts_with(common.join("worktrees")) {
            paths.writable.push(gitdir.to_owned());
        }
    }
    let own = Configs::read(
        &[
            common.join("config"),
            common.join("config.worktree"),
            gitdir.join("config.worktree"),
        ],
        home,
    );
    paths.protected.extend(own.included.iter().cloned());
    if let Some(worktree) = worktree {
        for hooks in own.hooks_paths.iter().chain(&global.hooks_paths) {
            let dir = resolve(hooks, worktree, home);
            // husky's layout: the hooks in `.husky/_/` run the scripts beside it.
            if dir.file_name().is_some_and(|name| name == "_")
                && let Some(parent) = dir.parent()
            {
                paths.protected.push(parent.to_owned());
            }
            paths.protected.push(dir);
        }
    }
    // Submodules of the main worktree live in the common directory's `modules`, those
    // of a linked worktree in its own gitdir's.
    let mut modules = module_gitdirs(&common.join("modules"));
    if gitdir != common {
        modules.extend(module_gitdirs(&gitdir.join("modules")));
    }
    if depth < MAX_MODULE_DEPTH {
        for module in modules {
            let module_worktree = Configs::read(&[module.join("config")], home)
                .worktree
                .map(|dir| resolve(&dir, &module, home));
            if let Some(dir) = &module_worktree {
                paths.protected.push(dir.join(".git"));
            }
            protect_gitdir(
                &module,
                &module,
                module_worktree.as_deref(),
                home,
                global,
                paths,
                depth + 1,
            );
        }
    }
}

/// The gitdirs below a `modules` directory (a submodule's name may contain `/`, so
/// they can be nested): directories with a `HEAD`.
fn module_gitdirs(modules: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut queue = vec![(modules.to_owned(), 0)];
    while let Some((dir, depth)) = queue.pop() {
        if dir.join("HEAD").is_file() {
            found.push(dir);
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if depth < MAX_DEPTH && entry.file_type().is_ok_and(|t| t.is_dir()) {
                queue.push((entry.path(), depth + 1));
            }
        }
    }
    found.sort();
    found
}

/// What config files (and the files they include) say about running commands.
#[derive(Debug, Default)]
struct Configs {
    /// Every `core.hooksPath` value, as written.
    hooks_paths: Vec<String>,
    /// Every file included, resolved.
    included: Vec<PathBuf>,
    /// The last `core.worktree`, as written.
    worktree: Option<String>,
}

impl Configs {
    /// Reads `files` (missing ones are skipped) and what they include.
    fn read(files: &[PathBuf], home: &Path) -> Self {
        let mut configs = Self::default();
        for file in files {
            configs.read_file(file, home, 0);
        }
        configs
    }

    fn read_file(&mut self, file: &Path, home: &Path, depth: usize) {
        let Ok(text) = std::fs::read_to_string(file) else {
            return;
        };
        for Entry {
            section,
            key,
            value,
            ..
        } in gitconfig::parse(&text)
        {
            let Some(value) = value else { continue };
            match (section.as_str(), key.as_str()) {
                ("core", "hookspath") => self.hooks_paths.push(value),
                ("core", "worktree") => self.worktree = Some(value),
                ("include" | "includeif", "path") if depth < MAX_INCLUDE_DEPTH => {
                    let base = file.parent().unwrap_or(Path::new("/"));
                    let included = resolve(&value, base, home);
                    self.included.push(included.clone());
                    self.read_file(&included, home, depth + 1);
                }
                _ => {}
            }
        }
    }
}

/// A path from a git config: `~/` is the home directory, a relative path is relative
/// to `base`.
fn resolve(value: &str, base: &Path, home: &Path) -> PathBuf {
    let path = match value.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => base.join(value),
    };
    normalise(&path)
}

/// `path` with `.` and `..` resolved lexically (git resolves gitdir and include paths
/// the same way before touching the file system).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// A gitdir as `git init` leaves it, with `config` holding `config`.
    fn gitdir(dir: &Path, config: &str) {
        write(&dir.join("HEAD"), "ref: refs/heads/main\n");
        write(&dir.join("config"), config);
        fs::create_dir_all(dir.join("hooks")).unwrap();
    }

    fn relative(paths: &[PathBuf], base: &Path) -> Vec<String> {
        let mut shown: Vec<String> = paths
            .iter()
            .map(|p| match p.strip_prefix(base) {
                Ok(rest) => rest.display().to_string(),
                Err(_) => p.display().to_string(),
            })
            .collect();
        shown.sort();
        shown.dedup();
        shown
    }

    #[test]
    fn a_repository_its_hooks_path_includes_and_husky_layout() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        gitdir(
            &work.join(".git"),
            "[core]\n\thooksPath = .husky/_\n[include]\n\tpath = ../.gitconfig.shared\n\
             [includeIf \"onbranch:main\"]\n\tpath = ~/.gitconfig-main\n",
        );
        write(
            &work.join(".gitconfig.shared"),
            "[include]\n\tpath = nested.cfg\n",
        );
        let paths = git_paths(&work, Path::new("/home/alice"), &[]);
        assert_eq!(
            relative(&paths.protected, &work),
            [
                ".git/config",
                ".git/config.worktree",
                ".git/hooks",
                ".git/worktrees",
                ".gitconfig.shared",
                ".husky",
                ".husky/_",
                "/home/alice/.gitconfig-main",
                "nested.cfg",
            ]
        );
        assert!(paths.writable.is_empty() && paths.outside.is_empty());
    }

    #[test]
    fn a_symlinked_git_directory_is_a_gitdir_not_a_protected_file() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        gitdir(&work.join(".repo/git"), "");
        std::os::unix::fs::symlink(".repo/git", work.join(".git")).unwrap();
        let paths = git_paths(&work, Path::new("/h"), &[]);
        let shown = relative(&paths.protected, &work);
        assert!(shown.iter().any(|s| s == ".git/config"), "{shown:?}");
        assert!(!shown.iter().any(|s| s == ".git"), "{shown:?}");
    }

    #[test]
    fn a_global_relative_hooks_path_applies_to_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        gitdir(&work.join(".git"), "");
        let global = dir.path().join("gitconfig");
        write(&global, "[core]\n\thooksPath = .githooks\n");
        let paths = git_paths(&work, Path::new("/home/alice"), &[global]);
        assert!(paths.protected.contains(&work.join(".githooks")));
    }

    #[test]
    fn submodule_gitdirs_and_their_dot_git_files() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        gitdir(&work.join(".git"), "");
        gitdir(
            &work.join(".git/modules/libs/sub"),
            "[core]\n\tworktree = ../../../../libs/sub\n",
        );
        write(
            &work.join("libs/sub/.git"),
            "gitdir: ../../.git/modules/libs/sub\n",
        );
        let paths = git_paths(&work, Path::new("/h"), &[]);
        let shown = relative(&paths.protected, &work);
        for expected in [
            ".git/modules/libs/sub/config",
            ".git/modules/libs/sub/hooks",
            "libs/sub/.git",
        ] {
            assert!(shown.iter().any(|s| s == expected), "{expected}: {shown:?}");
        }
        // The submodule's gitdir is inside the working directory: nothing to mount.
        assert!(paths.outside.is_empty());
    }

    #[test]
    fn a_linked_worktree_gets_its_gitdirs_mounted_and_protected() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main/.git");
        gitdir(&main, "[core]\n\thooksPath = hooks-elsewhere\n");
        let own = main.join("worktrees/feature");
        write(&own.join("commondir"), "../..\n");
        write(&own.join("gitdir"), "/work/.git\n");
        write(&own.join("HEAD"), "ref: refs/heads/feature\n");
        // A submodule of the linked worktree: its gitdir is in the worktree's own.
        gitdir(
            &own.join("modules/sub"),
            "[core]\n\tworktree = ../../../../../../work/sub\n",
        );
        let work = dir.path().join("work");
        write(&work.join(".git"), &format!("gitdir: {}\n", own.display()));
        let paths = git_paths(&work, Path::new("/h"), &[]);
        let shown = relative(&paths.protected, dir.path());
        for expected in [
            "work/.git",
            "main/.git/config",
            "main/.git/hooks",
            "main/.git/worktrees",
            "main/.git/worktrees/feature/commondir",
            "main/.git/worktrees/feature/gitdir",
            "main/.git/worktrees/feature/modules/sub/config",
            "main/.git/worktrees/feature/modules/sub/hooks",
            "work/sub/.git",
            "work/hooks-elsewhere",
        ] {
            assert!(shown.iter().any(|s| s == expected), "{expected}: {shown:?}");
        }
        assert_eq!(paths.writable, [own]);
        assert_eq!(paths.outside, [main]);
    }

    #[test]
    fn nested_repositories_are_found_to_a_depth_and_an_enclosing_one_above() {
        let dir = tempfile::tempdir().unwrap();
        gitdir(
            &dir.path().join(".git"),
            "[core]\n\thooksPath = work/hooks\n",
        );
        let work = dir.path().join("work");
        gitdir(&work.join("a/.git"), "");
        gitdir(&work.join("a/b/c/d/.git"), "");
        gitdir(&work.join("a/b/c/d/e/.git"), "");
        assert_eq!(
            relative(&repositories(&work), &work),
            ["a/.git", "a/b/c/d/.git"]
        );
        let paths = git_paths(&work, Path::new("/h"), &[]);
        let shown = relative(&paths.protected, &work);
        assert!(shown.iter().any(|s| s == "a/.git/config"), "{shown:?}");
        // The enclosing repository's hooks path names a directory inside.
        assert!(shown.iter().any(|s| s == "hooks"), "{shown:?}");
        assert!(paths.outside.is_empty());
    }
}
