//! Where the launcher keeps a run's private directories on the host (the browser
//! hand-off's channel, the allowlist's copy), in order of preference:
//! `$XDG_RUNTIME_DIR` (private to the user, in memory), the launcher's cache directory,
//! the temporary directory. The cache directory comes before the temporary one because
//! the engine mounts from these directories: Docker Desktop and Colima share the home
//! directory with their VM, while Colima does not share macOS's per-user temporary
//! directory (`/var/folders/...`).

use std::path::{Path, PathBuf};

/// The candidate parents, most preferred first.
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

/// Runs `remove` (a removal of stale directories under one parent, returning how many
/// went) in every one of [`parents`]; returns the total.
pub(crate) fn sweep(remove: impl Fn(&Path) -> usize) -> usize {
    parents().iter().map(|parent| remove(parent)).sum()
}
