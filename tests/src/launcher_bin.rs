//! The real `agent-sandbox` binary for tests and benches outside the launcher crate,
//! where cargo does not provide `CARGO_BIN_EXE_agent-sandbox`: built once per process
//! with the cargo that runs the tests (a no-op when it is up to date).

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
        .get_or_init(|| {
            let _lock = CacheLock::acquire("launcher-build");
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"));
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "--quiet", "--locked", "-p", "agent-sandbox"])
                .arg("--manifest-path")
                .arg(workspace_root().join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target_dir);
            if release {
                build.arg("--release");
            }
            let outcome = Outcome::of(&mut build);
            if !outcome.success() {
                panic!("building agent-sandbox failed:\n{}", outcome.stderr);
            }
            target_dir
                .join(if release { "release" } else { "debug" })
                .join("agent-sandbox")
        })
        .clone()
}
