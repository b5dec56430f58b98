//! Files that run on the host without the user deciding to run them: what the agent must
//! not change although it can write the directories they are in. In the working
//! directory: git's config and hooks (and everything of the kind in [`git`]), editor and
//! direnv settings that run commands, CI workflows, pi's project extensions (the
//! [`DEFAULT_PROTECTED`] list, changed with the settings file's `protect`/`unprotect`);
//! in the agent's config, the parts its profile marks as code (unless
//! `--writable-config`).
//!
//! Those that exist are mounted read-only over the read-write mounts that expose them
//! ([`Protection::mounts`]). A read-only mount alone is not enough: the agent could
//! rename its parent directory away and put a new one in its place, so every directory
//! between the read-write mount and a protected path becomes a mount point too (of
//! itself, as writable as before), and the kernel refuses to rename or remove a mount
//! point. Those that do not exist cannot be mounted without creating them on the host;
//! they, and all the others, are compared before and after the run ([`snapshot`]), and
//! what the run created, changed or deleted is reported at exit. The agent's config files
//! it writes itself are compared by the values in them that run commands ([`values`]).

mod git;
mod gitconfig;
pub(crate) mod snapshot;
pub(crate) mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bollard::models::{Mount, MountType};

use super::bind;
use crate::options::profile::ResolvedMount;
use crate::options::subpath::SubPath;

/// The paths of the working directory protected by default, besides those of git
/// repositories (found by [`git`]): they run on the host when the project is opened,
/// entered or committed, or in CI with the user's secrets.
pub(crate) const DEFAULT_PROTECTED: &[&str] = &[
    ".gitmodules",             // submodule URLs and paths git clones and checks out
    ".envrc",                  // direnv: a shell script run on `cd`
    ".vscode/",                // tasks that run on folder open, settings naming programs
    ".idea/",                  // run configurations, startup tasks
    ".zed/",                   // tasks, language servers named in settings
    ".devcontainer/",          // `initializeCommand` runs on the host
    ".devcontainer.json",      // the same, at the top level
    ".pre-commit-config.yaml", // commands the pre-commit hook runs
    "lefthook.yml",            // commands lefthook's hooks run
    ".lefthook.yml",           // the same, hidden
    ".github/workflows/",      // CI, with the repository's secrets
    ".pi/",                    // pi's project extensions, skills, settings, MCP servers
];

/// The protection of one run, computed on the host before it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Protection {
    /// Existing paths (canonical), read-only wherever a read-write mount exposes them.
    pub(crate) read_only: Vec<PathBuf>,
    /// Paths (canonical) inside read-only ones that stay writable (a linked worktree's
    /// own gitdir inside its repository's `worktrees/`).
    pub(crate) writable: Vec<PathBuf>,
    /// Missing code directories of the agent's config, to be created empty (as the
    /// user) before the container is, so that they can be read-only too.
    pub(crate) create: Vec<PathBuf>,
    /// Every protected path the sandbox can reach, as the user names it, existing or
    /// not: compared before and after the run.
    pub(crate) watched: Vec<PathBuf>,
    /// Directories git needs outside the working directory (the gitdir of a linked
    /// worktree), to be mounted at the same path.
    pub(crate) outside: Vec<PathBuf>,
    /// The git repositories (`.git` entries) in the working directory, to tell new ones
    /// at exit.
    pub(crate) repositories: Vec<PathBuf>,
    /// The agent's writable config files whose values are compared before and after
    /// the run (they can make it run commands when it next starts).
    pub(crate) values: Vec<values::Watched>,
}

impl Protection {
    /// What to protect for a run in `workdir` with the agent's `mounts`: the default
    /// paths plus `protect` minus `unprotect` (relative to `workdir`), the git
    /// repositories' paths, and the mounts' code parts unless `writable_config`.
    /// `home` expands `~/` in git configs.
    pub(crate) fn new(
        workdir: &Path,
        home: &Path,
        protect: &[SubPath],
        unprotect: &[SubPath],
        mounts: &[ResolvedMount],
        writable_config: bool,
    ) -> Self {
        let defaults = DEFAULT_PROTECTED.iter().filter_map(|p| p.parse().ok());
        let mut wanted: Vec<PathBuf> = defaults
            .chain(protect.iter().cloned())
            .map(|p: SubPath| workdir.join(p.path()))
            .collect();
        let git = git::git_paths(workdir, home, &global_git_configs(home));
        wanted.extend(git.protected);
        let unprotected: BTreeSet<PathBuf> =
            unprotect.iter().map(|u| workdir.join(u.path())).collect();
        wanted.retain(|path| !unprotected.contains(path));
        let mut create = Vec::new();
        for mount in mounts.iter().filter(|m| !m.read_only && !writable_config) {
            for part in &mount.code {
                let path = mount.source.join(part.path());
                if part.is_dir() && path.symlink_metadata().is_err() {
                    create.push(path.clone());
                }
                wanted.push(path);
            }
        }
        let mut exposed: Vec<PathBuf> = std::iter::once(workdir)
            .chain(
                mounts
                    .iter()
                    .filter(|m| !m.read_only)
                    .map(|m| m.source.as_path()),
            )
            .chain(git.outside.iter().map(PathBuf::as_path))
            .map(canonical)
            .collect();
        exposed.sort();
        let is_exposed = |path: &Path| exposed.iter().any(|dir| path.starts_with(dir));
        let mut protection = Self {
            writable: git.writable.iter().map(|p| canonical(p)).collect(),
            create,
            outside: git.outside,
            repositories: git.repositories,
            values: values::watched(mounts),
            ..Self::default()
        };
        let wanted: BTreeSet<PathBuf> = wanted.into_iter().collect();
        for path in wanted {
            let resolved = canonical(&path);
            if !is_exposed(&resolved) {
                continue;
            }
            let exists = path.symlink_metadata().is_ok();
            if exists || protection.create.contains(&path) {
                protection.read_only.push(resolved.clone());
            }
            if exists && resolved != path {
                protection.watched.push(resolved);
            }
            protection.watched.push(path);
        }
        protection.read_only.sort();
        protection.read_only.dedup();
        protection.watched.sort();
        protection.watched.dedup();
        protection
    }

    /// The mounts that protect this run in a container whose other mounts are `base`:
    /// for every read-write bind mount of `base` that exposes a protected path, a
    /// read-only bind of it, binds of the writable paths inside, and a bind of each
    /// directory in between (as writable as it was: only so that it cannot be renamed
    /// away). Paths exposed by several mounts are protected in each; nothing is added
    /// where `base` already has a mount or where another mount of `base` covers it.
    pub(crate) fn mounts(&self, base: &[Mount]) -> Vec<Mount> {
        let targets: BTreeSet<PathBuf> = base
            .iter()
            .filter_map(|m| m.target.as_deref().map(PathBuf::from))
            .collect();
        let writable_binds = base
            .iter()
            .filter(|m| m.typ == Some(MountType::BIND) && m.read_only != Some(true));
        let mut mounts: BTreeMap<PathBuf, Mount> = BTreeMap::new();
        for mount in writable_binds {
            let (Some(source), Some(target)) = (mount.source.as_deref(), mount.target.as_deref())
            else {
                continue;
            };
            let source = canonical(Path::new(source));
            let target = Path::new(target);
            for point in self.mount_points(&source) {
                let Ok(inner) = point.strip_prefix(&source) else {
                    continue;
                };
                let at = target.join(inner);
                let covered = targets.iter().any(|other| {
                    other != target && other.starts_with(target) && at.starts_with(other)
                });
                if covered || mounts.contains_key(&at) {
                    continue;
                }
                let read_only = self.is_read_only(&point);
                let mount = bind(&point.to_string_lossy(), &at.to_string_lossy(), read_only);
                mounts.insert(at, mount);
            }
        }
        mounts.into_values().collect()
    }

    /// The paths below `source` (itself excluded) that must be mount points: the
    /// protected and writable ones and every directory between them and `source`.
    fn mount_points(&self, source: &Path) -> BTreeSet<PathBuf> {
        let mut points = BTreeSet::new();
        for path in self.read_only.iter().chain(&self.writable) {
            if !path.starts_with(source) {
                continue;
            }
            for ancestor in path.ancestors().take_while(|a| *a != source) {
                points.insert(ancestor.to_owned());
            }
        }
        points
    }

    /// Whether `path` is read-only: the deepest protected or writable path that holds
    /// it decides.
    fn is_read_only(&self, path: &Path) -> bool {
        let deepest = |paths: &[PathBuf]| {
            paths
                .iter()
                .filter(|p| path.starts_with(p))
                .map(|p| p.components().count())
                .max()
        };
        match (deepest(&self.read_only), deepest(&self.writable)) {
            (Some(read_only), Some(writable)) => read_only > writable,
            (read_only, _) => read_only.is_some(),
        }
    }
}

/// The user's and the system's git config files (their `core.hooksPath` applies to
/// every repository).
fn global_git_configs(home: &Path) -> Vec<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| home.join(".config"), PathBuf::from);
    vec![
        home.join(".gitconfig"),
        xdg.join("git/config"),
        PathBuf::from("/etc/gitconfig"),
    ]
}

/// `path` with the symlinks of its longest existing part resolved (the rest, which
/// does not exist yet, appended as it is).
fn canonical(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(resolved) = std::fs::canonicalize(existing) {
            return missing
                .iter()
                .rev()
                .fold(resolved, |dir, name| dir.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::profile::Missing;
    use std::fs;

    fn subpaths(paths: &[&str]) -> Vec<SubPath> {
        paths.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn shown(paths: &[PathBuf], base: &Path) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.strip_prefix(base).unwrap_or(p).display().to_string())
            .collect()
    }

    /// A project with a git repository, a `.vscode/` and a `.github/workflows/`.
    fn project() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        for sub in [".git/hooks", ".vscode", ".github/workflows", "src"] {
            fs::create_dir_all(work.join(sub)).unwrap();
        }
        fs::write(work.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(work.join(".git/config"), "[core]\n").unwrap();
        let work = fs::canonicalize(work).unwrap();
        (dir, work)
    }

    fn protection(work: &Path, protect: &[&str], unprotect: &[&str]) -> Protection {
        Protection::new(
            work,
            Path::new("/nonexistent-home"),
            &subpaths(protect),
            &subpaths(unprotect),
            &[],
            false,
        )
    }

    #[test]
    fn existing_paths_are_read_only_and_every_path_is_watched() {
        let (_dir, work) = project();
        let protection = protection(&work, &["src/hooks/"], &[".github/workflows/"]);
        assert_eq!(
            shown(&protection.read_only, &work),
            [".git/config", ".git/hooks", ".vscode"]
        );
        let watched = shown(&protection.watched, &work);
        for expected in [".envrc", ".pi", ".git/worktrees", "src/hooks", ".vscode"] {
            assert!(
                watched.iter().any(|w| w == expected),
                "{expected}: {watched:?}"
            );
        }
        assert!(
            !watched.iter().any(|w| w == ".github/workflows"),
            "{watched:?}"
        );
    }

    #[test]
    fn mounts_protect_in_every_writable_mount_and_pin_the_directories_between() {
        let (_dir, work) = project();
        let protection = protection(&work, &[], &[]);
        let work_text = work.to_string_lossy();
        let base = vec![
            bind(&work_text, &work_text, false),
            bind(&work_text, "/elsewhere", false),
            bind(&work_text, "/read-only-view", true),
        ];
        let mounts: Vec<(String, String, bool)> = protection
            .mounts(&base)
            .iter()
            .map(|m| {
                (
                    m.source.clone().unwrap().replace(&*work_text, "W"),
                    m.target.clone().unwrap().replace(&*work_text, "W"),
                    m.read_only.unwrap(),
                )
            })
            .collect();
        let expected = |target: &str, source: &str, read_only| {
            (source.to_owned(), target.to_owned(), read_only)
        };
        assert_eq!(
            mounts,
            [
                expected("/elsewhere/.git", "W/.git", false),
                expected("/elsewhere/.git/config", "W/.git/config", true),
                expected("/elsewhere/.git/hooks", "W/.git/hooks", true),
                expected("/elsewhere/.github", "W/.github", false),
                expected("/elsewhere/.github/workflows", "W/.github/workflows", true),
                expected("/elsewhere/.vscode", "W/.vscode", true),
                expected("W/.git", "W/.git", false),
                expected("W/.git/config", "W/.git/config", true),
                expected("W/.git/hooks", "W/.git/hooks", true),
                expected("W/.github", "W/.github", false),
                expected("W/.github/workflows", "W/.github/workflows", true),
                expected("W/.vscode", "W/.vscode", true),
            ]
        );
    }

    #[test]
    fn a_writable_path_inside_a_read_only_one_stays_writable() {
        let protection = Protection {
            read_only: vec![
                "/r/.git/worktrees".into(),
                "/r/.git/worktrees/x/gitdir".into(),
            ],
            writable: vec!["/r/.git/worktrees/x".into()],
            ..Protection::default()
        };
        let mounts = protection.mounts(&[bind("/r/.git", "/r/.git", false)]);
        let modes: Vec<(&str, bool)> = mounts
            .iter()
            .map(|m| (m.target.as_deref().unwrap(), m.read_only.unwrap()))
            .collect();
        assert_eq!(
            modes,
            [
                ("/r/.git/worktrees", true),
                ("/r/.git/worktrees/x", false),
                ("/r/.git/worktrees/x/gitdir", true),
            ]
        );
    }

    #[test]
    fn mounts_leave_other_mounts_alone() {
        let protection = Protection {
            read_only: vec!["/w/.vscode".into(), "/w/sub/.git/config".into()],
            ..Protection::default()
        };
        let base = vec![
            bind("/w", "/w", false),
            bind("/other/sub", "/w/sub", false),
            bind("/w/.vscode", "/w/.vscode", false),
        ];
        assert!(protection.mounts(&base).is_empty());
    }

    #[test]
    fn code_parts_of_the_agent_config_unless_writable_config() {
        let (dir, work) = project();
        let agent = dir.path().join("agent");
        fs::create_dir_all(agent.join("extensions")).unwrap();
        fs::write(agent.join("mcp.json"), "{}").unwrap();
        let agent = fs::canonicalize(agent).unwrap();
        let mounts = [ResolvedMount {
            source: agent.clone(),
            target: "/home/piuser/.pi/agent".into(),
            read_only: false,
            missing: Missing::Create,
            code: subpaths(&["extensions/", "npm/", "mcp.json", "SYSTEM.md"]),
            watch: Vec::new(),
        }];
        let protection = Protection::new(&work, dir.path(), &[], &[], &mounts, false);
        let under_agent = |paths: &[PathBuf]| {
            shown(
                &paths
                    .iter()
                    .filter(|p| p.starts_with(&agent))
                    .cloned()
                    .collect::<Vec<_>>(),
                &agent,
            )
        };
        assert_eq!(
            under_agent(&protection.read_only),
            ["extensions", "mcp.json", "npm"]
        );
        assert_eq!(under_agent(&protection.create), ["npm"]);
        assert_eq!(
            under_agent(&protection.watched),
            ["SYSTEM.md", "extensions", "mcp.json", "npm"]
        );
        let writable = Protection::new(&work, dir.path(), &[], &[], &mounts, true);
        assert!(under_agent(&writable.read_only).is_empty() && writable.create.is_empty());
    }

    #[test]
    fn paths_no_mount_exposes_are_left_out() {
        let (_dir, work) = project();
        fs::write(
            work.join(".git/config"),
            "[include]\n\tpath = /nonexistent-elsewhere/cfg\n",
        )
        .unwrap();
        let protection = protection(&work, &[], &[]);
        assert!(
            protection.watched.iter().all(|p| p.starts_with(&work)),
            "{:?}",
            protection.watched
        );
    }

    #[test]
    fn canonical_resolves_what_exists_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let real = fs::canonicalize(&real).unwrap();
        assert_eq!(canonical(&link.join("a/b")), real.join("a/b"));
        assert_eq!(canonical(&link), real);
    }
}
