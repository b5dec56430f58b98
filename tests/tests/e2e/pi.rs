//! pi, the real agent, through the real launcher in proxy mode: the pi test
//! image (Node.js, pi, the test CA), a mock OpenAI-compatible model server with TLS as
//! `model.test` on an egress network the test creates, and pi's `models.json` in the
//! mounted agent directory declaring it as a provider.
//!
//! The launcher runs as a UID the image does not know (not root), as a user's would.
//!
//! - The allowlist names the mock: `pi -p` prints the mock's answer and exits 0, having
//!   written its state into the mounted agent directory as that user.
//! - The allowlist does not: pi fails, the mock is never contacted, and the launcher's
//!   exit summary names the blocked host.
//!
//! Everything the launcher creates carries the scope's labels (`--label`), so the scope
//! removes it even when a test fails.

use std::os::unix::fs::MetadataExt as _;
use std::time::Duration;

use agent_sandbox_e2e::{
    MODEL_HOST, SandboxedPi, as_user, docker_available, launcher_binary, pi_testdata_available,
};

use crate::bounded::{Run, run_bounded};

/// How long one launcher run may take: image checks, the sidecar, pi's start and, when
/// the provider is refused, its retries (about 1 s with the test's settings, 15 s with
/// pi's defaults).
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The prompt; the mock answers any prompt with its marker.
pub(crate) const PROMPT: &str = "Say the marker.";

/// pi in the sandbox, or `None` (after a loud skip; a failure under CI) without a Docker
/// engine or pi's test data.
fn sandboxed_pi() -> Option<SandboxedPi> {
    pi_available().then(SandboxedPi::start)
}

/// Whether the Docker engine and pi's test data are there (a loud skip otherwise; a
/// failure under CI).
pub(crate) fn pi_available() -> bool {
    docker_available() && pi_testdata_available()
}

/// The UID and GID the launcher runs as: not root and unknown to the image, as a user's
/// would be (the image must cope with any).
pub(crate) const USER: u32 = 5678;

/// Runs pi in the sandbox with `allowlist`, the launcher as [`USER`].
fn run_pi(pi: &SandboxedPi, allowlist: &str) -> Run {
    pi.hand_to(USER);
    let launcher = pi.command(&launcher_binary(false), allowlist, PROMPT);
    run_bounded(as_user(&launcher, USER), RUN_TIMEOUT)
}

#[test]
fn pi_answers_through_the_proxy_when_the_model_host_is_allowed() {
    let Some(pi) = sandboxed_pi() else { return };
    let run = run_pi(&pi, &format!("{MODEL_HOST}\n"));
    let log = pi.model().log();
    assert_eq!(run.code, Some(0), "pi failed; the mock saw:\n{log}");
    assert!(
        run.stdout.contains(pi.model().marker()),
        "pi did not print the mock's answer {:?}",
        pi.model().marker()
    );
    assert!(log.completions() >= 1, "the mock saw no completion:\n{log}");
    // pi keeps its state in the mounted agent directory, as the host user (the test
    // wrote models.json and settings.json).
    let written: Vec<_> = std::fs::read_dir(pi.agent_dir())
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| {
            !["models.json", "settings.json"].contains(&&*entry.file_name().to_string_lossy())
        })
        .map(|entry| (entry.file_name(), entry.metadata().unwrap().uid()))
        .collect();
    assert!(
        !written.is_empty() && written.iter().all(|(_, uid)| *uid == USER),
        "pi wrote nothing to its agent directory as {USER}: {written:?}"
    );
    // In `-p` mode pi contacts its model provider only: the proxy refused nothing, so
    // the launcher has no summary of blocked hosts to print.
    assert!(
        !run.stderr.contains("blocked"),
        "pi tried to reach another host"
    );
}

#[test]
fn pi_fails_and_the_summary_names_the_model_host_when_it_is_not_allowed() {
    let Some(pi) = sandboxed_pi() else { return };
    let run = run_pi(&pi, "# the model host is not listed\nunrelated.test\n");
    assert_ne!(run.code, Some(0), "pi succeeded without its model host");
    assert!(
        !run.stdout.contains(pi.model().marker()),
        "pi printed the mock's answer"
    );
    let log = pi.model().log();
    assert_eq!(log.connections(), 0, "the mock was contacted:\n{log}");
    assert!(
        run.stderr.contains(&format!("{MODEL_HOST}:443")),
        "the exit summary does not name {MODEL_HOST}:443"
    );
}
