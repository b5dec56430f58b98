//! The sidecar image for the tests, built once per test run by
//! `scripts/build-proxy-image.sh` (static host binary, final stage of
//! `images/proxy/Dockerfile`, no pulls), so tests exercise the same path users take.

use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

use crate::cache::{CacheLock, workspace_root};
use crate::cli::{Outcome, docker_ok};

/// The repository the tests build the sidecar image in; the tag names the checkout, so
/// that test runs of several checkouts on one engine do not replace each other's image.
const REPOSITORY: &str = "agent-sandbox-test/proxy";

/// Selects images built for the tests.
const TEST_IMAGE_FILTER: &str = "label=agent-sandbox.test=1";

/// The tag of the sidecar image built from the current sources, building it on first
/// use in this process (cargo and docker make a rebuild from unchanged sources quick).
/// Safe to call from many threads and test binaries at once.
pub fn proxy_image() -> &'static str {
    static BUILT: OnceLock<String> = OnceLock::new();
    BUILT.get_or_init(|| {
        let _lock = CacheLock::acquire("proxy-image");
        let script = workspace_root().join("scripts/build-proxy-image.sh");
        let checkout = format!(
            "{:x}",
            Sha256::digest(workspace_root().as_os_str().as_encoded_bytes())
        );
        let tag = format!("{REPOSITORY}:{}", &checkout[..12]);
        let outcome = Outcome::of(Command::new("bash").arg(&script).args([
            "--tag",
            &tag,
            "--label",
            "agent-sandbox.test=1",
        ]));
        if !outcome.success() {
            panic!(
                "{} exited {}:\n{}{}",
                script.display(),
                outcome.code,
                outcome.stdout,
                outcome.stderr
            );
        }
        // Each rebuild leaves the previous test image untagged: drop those.
        docker_ok(["image", "prune", "--force", "--filter", TEST_IMAGE_FILTER]);
        outcome.stdout.trim().to_owned()
    })
}
