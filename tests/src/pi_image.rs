//! The pi test image, built from local material only (nothing can be pulled): the
//! Debian test image, Node.js from PyPI, pi's installed `node_modules` from the shared
//! test data, the agent image's entrypoint (`images/agent/entrypoint.sh`) and the test
//! CA, assembled into a build context for `tests/fixtures/pi-image/Dockerfile`.
//!
//! The tag carries a hash of the recipe and every input, so an unchanged recipe reuses
//! the image (warm: hashing the 14 MB tarball and one `docker image ls`) and any change
//! (a new CA in a fresh cache, another Node release) builds a new one.

use std::path::Path;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::cache::{CacheLock, cache_dir, workspace_root};
use crate::cli::docker_ok;
use crate::debian::debian_image;
use crate::node::{node_binary, node_wheel_name};
use crate::pi_agent::pi_modules_tarball;
use crate::test_ca::test_ca;

/// The recipe.
const DOCKERFILE: &str = include_str!("../fixtures/pi-image/Dockerfile");

/// The agent image's entrypoint, relative to the workspace root.
const ENTRYPOINT: &str = "images/agent/entrypoint.sh";

/// The tag of the pi test image, building it on first use (cold: about a minute;
/// warm: well under a second). Safe to call from many threads and test binaries.
pub fn pi_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let base = debian_image();
        let tarball = pi_modules_tarball();
        let entrypoint = read(&workspace_root().join(ENTRYPOINT));
        let ca = test_ca().cert_pem();
        let modules = std::fs::read(&tarball)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", tarball.display()));
        let mut hash = Sha256::new();
        for part in [
            DOCKERFILE.as_bytes(),
            base.as_bytes(),
            node_wheel_name().as_bytes(),
            &Sha256::digest(&modules),
            entrypoint.as_bytes(),
            ca.as_bytes(),
        ] {
            hash.update(Sha256::digest(part));
        }
        let hash: String = hash.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let tag = format!("agent-sandbox-test/pi:{hash}");
        let _lock = CacheLock::acquire("pi-image");
        if docker_ok(["image", "ls", "--quiet", &tag]).is_empty() {
            let started = std::time::Instant::now();
            let context = cache_dir().join("pi-image-context");
            let _ = std::fs::remove_dir_all(&context);
            std::fs::create_dir_all(&context)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", context.display()));
            write(&context.join("Dockerfile"), DOCKERFILE.as_bytes());
            write(&context.join("node_modules.tar.xz"), &modules);
            write(&context.join("agent-entrypoint"), entrypoint.as_bytes());
            write(&context.join("test-ca.crt"), ca.as_bytes());
            link_or_copy(node_binary(), &context.join("node"));
            docker_ok([
                "build",
                "--quiet",
                "--build-arg",
                &format!("BASE={base}"),
                "--tag",
                &tag,
                &context.to_string_lossy(),
            ]);
            let _ = std::fs::remove_dir_all(&context);
            eprintln!("built the pi test image {tag} in {:.1?}", started.elapsed());
        }
        tag
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, contents: &[u8]) {
    std::fs::write(path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Hard-links `from` to `to` (the node binary is 120 MB), copying across file systems.
fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
    }
}
