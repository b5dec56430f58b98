//! The real `agent-sandbox` and `sandbox-proxy` binaries for tests and benches outside
//! their crates, where cargo does not provide `CARGO_BIN_EXE_...`: built once per
//! process with the cargo that runs the tests (a no-op when it is up to date).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::cache::{CacheLock, workspace_root};
use crate::cli::Outcome;

/// The launcher binary of the current sources, in the dev profile or, with `release`,
/// the release profile (what users run; what start-up measurements need).
pub fn launcher_binary(release: bool) -> PathBuf {
    static BUILT: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    BUILT[usize::from(release)]
        .get_or_init(|| build("agent-sandbox", release))
        .clone()
}

/// The proxy binary of the current sources (host build, default features), in the dev
/// profile or, with `release`, the release profile.
pub fn proxy_binary(release: bool) -> PathBuf {
    static BUILT: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    BUILT[usize::from(release)]
        .get_or_init(|| build("sandbox-proxy", release))
        .clone()
}

/// Builds `package`, whose binary has the same name; returns the binary's path.
fn build(package: &str, release: bool) -> PathBuf {
    let _lock = CacheLock::acquire(&format!("{package}-build"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "--locked", "-p", package])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if release {
        command.arg("--release");
    }
    let outcome = Outcome::of(&mut command);
    if !outcome.success() {
        panic!("building {package} failed:\n{}", outcome.stderr);
    }
    target_dir
        .join(if release { "release" } else { "debug" })
        .join(package)
}
