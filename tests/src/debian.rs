//! The Debian base image of the tests, built from local material: a `debootstrap
//! --variant=minbase` root filesystem turned into an image with `docker import`.
//!
//! The image tag carries a hash of the recipe below, so changing the recipe builds a
//! new image and an unchanged one is reused: warm, [`debian_image`] costs one
//! `docker image inspect`. The root filesystem tarball is kept in the test cache, so
//! an engine that lost the image gets it back by import, without the network.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::cache::{CacheLock, cache_dir};
use crate::cli::{Outcome, docker_ok};

/// The Debian release the image is made of.
const SUITE: &str = "bookworm";

/// Packages added to minbase: what tests run inside containers (HTTP client and tiny
/// servers, sockets, processes, capabilities, git).
const PACKAGES: &[&str] = &[
    "bash",
    "ca-certificates",
    "curl",
    "git",
    "iproute2",
    "libcap2-bin",
    "netcat-openbsd",
    "procps",
    "python3",
];

/// Image configuration applied by `docker import`.
const CHANGES: &[&str] = &[
    "LABEL agent-sandbox.test=1",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "CMD [\"/bin/bash\"]",
];

/// Paths removed from the root filesystem before it is packed: caches and docs that
/// only make the image bigger.
const TRIM: &[&str] = &[
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
];

/// The tag of the Debian test image, building it on first use (cold: debootstrap from
/// the apt mirrors, a few minutes; warm: instant). Safe to call from many threads and
/// test binaries at once. Requires root and `debootstrap` when cold.
pub fn debian_image() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let hash = recipe_hash();
        let tag = format!("agent-sandbox-test/debian:{SUITE}-{hash}");
        let _lock = CacheLock::acquire("debian-image");
        if !image_exists(&tag) {
            let tarball = cache_dir().join(format!("debian-{SUITE}-{hash}.tar"));
            if !tarball.exists() {
                remove_stale_tarballs(&tarball);
                bootstrap(&tarball);
            }
            import(&tarball, &tag);
        }
        tag
    })
}

/// A short hash of everything that shapes the image.
fn recipe_hash() -> String {
    let recipe = format!("{SUITE}\n{PACKAGES:?}\n{CHANGES:?}\n{TRIM:?}");
    Sha256::digest(recipe.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the engine has an image with this tag.
fn image_exists(tag: &str) -> bool {
    !docker_ok(["image", "ls", "--quiet", tag]).is_empty()
}

/// Runs debootstrap into a scratch directory beside `tarball` and packs the result
/// into `tarball`, written under a temporary name and renamed, so an interrupted build
/// never leaves a truncated tarball behind.
fn bootstrap(tarball: &Path) {
    let rootfs = tarball.with_extension("rootfs");
    let partial = tarball.with_extension("tar.partial");
    remove_dir_if_present(&rootfs);
    let started = std::time::Instant::now();
    checked(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", PACKAGES.join(",")))
            .arg(SUITE)
            .arg(&rootfs),
        "debootstrap (cold build of the Debian test image needs root and the `debootstrap` package)",
    );
    for path in TRIM {
        remove_dir_if_present(&rootfs.join(path));
    }
    checked(
        Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&partial)
            .arg("."),
        "packing the Debian root filesystem",
    );
    std::fs::rename(&partial, tarball)
        .unwrap_or_else(|e| panic!("cannot rename {}: {e}", partial.display()));
    remove_dir_if_present(&rootfs);
    eprintln!(
        "built the Debian test root filesystem {} in {:.1?}",
        tarball.display(),
        started.elapsed()
    );
}

/// Removes root filesystem tarballs of older recipes (each is about 160 MB).
fn remove_stale_tarballs(current: &Path) {
    let Some(dir) = current.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path != current && name.starts_with("debian-") && name.ends_with(".tar") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Imports the root filesystem tarball as `tag`.
fn import(tarball: &Path, tag: &str) {
    let mut args = vec!["import".to_owned()];
    for change in CHANGES {
        args.push("--change".to_owned());
        args.push((*change).to_owned());
    }
    args.push(tarball.display().to_string());
    args.push(tag.to_owned());
    docker_ok(&args);
}

/// Runs `command`, panicking with `what` and its stderr unless it exits 0.
fn checked(command: &mut Command, what: &str) {
    let outcome = Outcome::of(command);
    if !outcome.success() {
        panic!(
            "{what} failed with exit code {}: {}{}",
            outcome.code,
            outcome.stdout.trim(),
            outcome.stderr.trim()
        );
    }
}

/// Removes a directory tree, treating "not there" as done.
fn remove_dir_if_present(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_hash_is_stable_hex() {
        let hash = recipe_hash();
        assert_eq!(hash.len(), 12);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hash, recipe_hash());
    }
}
