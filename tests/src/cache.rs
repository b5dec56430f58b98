//! Where test images' material is cached between runs, and the file lock that lets
//! several test binaries (and threads) share that cache safely.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The workspace root (the directory of the root `Cargo.toml`).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives one level below the workspace root")
}

/// The cache directory, created if missing: `$AGENT_SANDBOX_TEST_CACHE` when set, else
/// `test-cache/` in the cargo target directory (`$CARGO_TARGET_DIR` or `target/`), so
/// `cargo clean` empties it.
pub fn cache_dir() -> PathBuf {
    let dir = match std::env::var_os("AGENT_SANDBOX_TEST_CACHE") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("test-cache"),
    };
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create the test cache {}: {e}", dir.display()));
    dir
}

/// An exclusive advisory lock (flock) on a file of the cache directory, held until
/// dropped. Test binaries run as separate processes, so an in-process mutex is not
/// enough to keep two of them from building the same image at once.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl CacheLock {
    /// Blocks until the lock named `name` (a file `<name>.lock` in the cache) is ours.
    pub fn acquire(name: &str) -> Self {
        let path = cache_dir().join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open the lock file {}: {e}", path.display()));
        file.lock()
            .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
        Self { _file: file }
    }
}
