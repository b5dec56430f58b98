//! A source checkout of agent-sandbox to build the sidecar image from when it cannot be
//! pulled: the one the settings name (`source_checkout`), else the one this launcher
//! was built from (`cargo install --path launcher`, `cargo run`), while it exists.
//!
//! The image is built by the checkout's own `scripts/build-proxy-image.sh`, the recipe
//! the README documents: on Linux it compiles `sandbox-proxy` with cargo on the host and
//! pulls nothing; elsewhere (macOS) it builds the multi-stage Dockerfile in the engine.
//! That runs the checkout's code as the user, as building it by hand does; the working
//! directory of a run is never taken for a checkout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::engine::Engine;
use crate::options::image_ref::VERSION;
use crate::terminal::progress::Progress;

/// The build script, relative to the checkout's root.
const SCRIPT: &str = "scripts/build-proxy-image.sh";

/// The workspace root this launcher was built from.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Why the sidecar image could not be built from a checkout.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckoutError {
    /// The configured path is not a checkout of agent-sandbox.
    #[error("{} is not a source checkout of agent-sandbox (no {SCRIPT})", .0.display())]
    NotACheckout(PathBuf),
    /// The checkout is of another version than this launcher.
    #[error("the checkout {} is version {found}, this launcher {expected}", root.display())]
    Version {
        root: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    /// The build script could not be started.
    #[error("cannot run {}", .0.display())]
    Spawn(PathBuf, #[source] std::io::Error),
    /// The build script failed: its exit status and the end of its output.
    #[error("{SCRIPT} exited with {status}:\n{output}")]
    Failed {
        status: std::process::ExitStatus,
        output: String,
    },
}

/// A source checkout of agent-sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkout {
    root: PathBuf,
}

impl Checkout {
    /// The checkout to build from: `setting` (the settings file's `source_checkout`; an
    /// empty path turns building off), else the one this launcher was built from, if it
    /// is still there.
    ///
    /// # Errors
    ///
    /// `setting` names a directory that is not a checkout.
    pub(crate) fn find(setting: Option<&Path>) -> Result<Option<Self>, CheckoutError> {
        match setting {
            Some(path) if path.as_os_str().is_empty() => Ok(None),
            Some(path) => Self::at(path)
                .map(Some)
                .ok_or_else(|| CheckoutError::NotACheckout(path.to_owned())),
            None => Ok(Self::at(Path::new(BUILT_FROM))),
        }
    }

    /// The checkout at `path`, if it is one.
    fn at(path: &Path) -> Option<Self> {
        let root = path.canonicalize().ok()?;
        let checkout = Self { root };
        [SCRIPT, "images/proxy/Dockerfile", "Cargo.toml"]
            .iter()
            .all(|file| checkout.root.join(file).is_file())
            .then_some(checkout)
    }

    /// The checkout's root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The workspace version of the checkout (`[workspace.package] version`).
    ///
    /// # Errors
    ///
    /// `Cargo.toml` cannot be read or has no version.
    pub(crate) fn version(&self) -> Result<String, CheckoutError> {
        let path = self.root.join("Cargo.toml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| CheckoutError::Read(path.clone(), e))?;
        let manifest: toml::Table = toml::from_str(&text)
            .map_err(|e| CheckoutError::Read(path.clone(), std::io::Error::other(e)))?;
        manifest
            .get("workspace")
            .and_then(|w| w.get("package"))
            .and_then(|p| p.get("version"))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                CheckoutError::Read(
                    path,
                    std::io::Error::other("no [workspace.package] version"),
                )
            })
    }

    /// Builds the sidecar image `tag` with the checkout's script, for the engine
    /// `engine` talks to, with a spinner on a terminal.
    ///
    /// # Errors
    ///
    /// The checkout is of another version, or the script fails.
    pub(crate) async fn build_sidecar(
        &self,
        engine: &Engine,
        tag: &str,
    ) -> Result<(), CheckoutError> {
        let found = self.version()?;
        if found != VERSION {
            return Err(CheckoutError::Version {
                root: self.root.clone(),
                found,
                expected: VERSION,
            });
        }
        let script = self.root.join(SCRIPT);
        let started = Instant::now();
        let _progress = Progress::spinner(format!(
            "building the sidecar image {tag} from {}",
            self.root.display()
        ));
        let output = tokio::process::Command::new("bash")
            .arg(&script)
            .args(["--tag", tag])
            .current_dir(&self.root)
            // The docker CLI in the script talks to the engine this launcher uses.
            .env("DOCKER_HOST", &engine.endpoint().host)
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| CheckoutError::Spawn(script.clone(), e))?;
        tracing::debug!(elapsed = ?started.elapsed(), "sidecar image built");
        if !output.status.success() {
            let text = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = text.lines().collect();
            return Err(CheckoutError::Failed {
                status: output.status,
                output: lines[lines.len().saturating_sub(20)..].join("\n"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_this_launcher_was_built_from_is_found_with_its_version() {
        let checkout = Checkout::find(None)
            .unwrap()
            .expect("built from a checkout");
        assert!(checkout.root().join(SCRIPT).is_file());
        assert_eq!(checkout.version().unwrap(), VERSION);
    }

    #[test]
    fn an_empty_setting_turns_building_off_and_a_wrong_one_is_an_error() {
        assert_eq!(Checkout::find(Some(Path::new(""))).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Checkout::find(Some(dir.path())),
            Err(CheckoutError::NotACheckout(_))
        ));
    }
}
