//! Whether a Docker engine answers, and the loud skip when none does.
//!
//! Docker tests start with `let Some(scope) = docker_scope() else { return };`. Where no
//! engine answers (a laptop without Docker) they print a SKIP banner straight to the
//! terminal and return; under CI (the `CI` variable set and not empty) a missing engine
//! fails the test instead, so a broken CI machine never passes by skipping.

use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;

use crate::scope::Scope;

/// Whether the Docker engine answers. When it does not: panics under CI, otherwise
/// prints a SKIP banner naming the calling test and returns `false`.
pub fn docker_available() -> bool {
    static PROBE: OnceLock<Result<String, String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        // Not `cli::docker`: a missing client is a reason to skip, not a panic.
        match Command::new("docker")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .output()
        {
            Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
            Err(e) => Err(format!("cannot run the docker client: {e}")),
        }
    });
    match probe {
        Ok(_) => true,
        Err(reason) => skip(&format!("no Docker engine answers ({reason})")),
    }
}

/// Skips the calling test because `what` (a sentence saying what is missing) holds:
/// panics under CI, otherwise prints a SKIP banner naming the test and `what`, and
/// returns `false`.
pub(crate) fn skip(what: &str) -> bool {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("CI is set but {what}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned();
    // Written to the stderr handle directly: the test harness captures `eprintln!` of
    // passing tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!! SKIP {test}: {what}.\n!!!! This test did NOT run; under CI (CI=1) this is a failure.\n"
    );
    false
}

/// A [`Scope`] for a Docker test, or `None` (after a loud SKIP; a failure under CI) when
/// no Docker engine answers. See [`docker_available`].
pub fn docker_scope() -> Option<Scope> {
    docker_available().then(Scope::new)
}
