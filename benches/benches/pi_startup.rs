//! pi's start-up, in the sandbox and without it: the time from starting
//! `agent-sandbox run pi --proxy -- -p PROMPT` to the first byte pi prints, with warm
//! images, and the same for the same Node.js and pi run directly on the host.
//!
//! Both answer from the same mock OpenAI-compatible model server over TLS (in a
//! container on the egress network for the sandbox, on loopback for the host), so the
//! numbers differ by what the sandbox costs: the launcher (release build), the sidecar,
//! the agent container, the relay and the proxy. In `-p` mode pi prints its whole answer
//! at once when the model's stream ends, so the first byte is the answer. Each sample is
//! one run; every run's output is checked for the mock's answer. Run it with
//! `cargo bench -p sandbox-benches --bench pi_startup` (about 1 min when warm; the first
//! run builds the test images). Without a Docker engine or pi's test data it skips
//! loudly.
#![allow(
    clippy::panic,
    reason = "bench setup: a run that fails or does not print the answer must abort the bench"
)]

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_sandbox_e2e::{
    HostPi, MODEL_HOST, SandboxedPi, docker_available, launcher_binary, pi_image,
    pi_testdata_available, proxy_image,
};
use criterion::{Criterion, SamplingMode, criterion_main};

/// The prompt; the mock answers any prompt with its marker.
const PROMPT: &str = "Say the marker.";

/// Runs `cmd`, returns the time to the first byte on its standard output; panics unless
/// it exits 0 having printed `marker`.
fn first_byte(mut cmd: Command, marker: &str) -> Duration {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("piped stdout"));
    let mut first = [0u8; 1];
    let elapsed = match stdout.read(&mut first) {
        Ok(1) => started.elapsed(),
        _ => Duration::ZERO,
    };
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"));
    let printed = format!("{}{rest}", char::from(first[0]));
    if !output.status.success() || !printed.contains(marker) || elapsed.is_zero() {
        panic!(
            "{cmd:?} exited {:?} printing {printed:?}; stderr:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    elapsed
}

fn pi_startup(c: &mut Criterion) {
    if !docker_available() || !pi_testdata_available() {
        return;
    }
    // Warm everything before measuring: images, the release launcher, the host's pi.
    let launcher = launcher_binary(true);
    let (_, _) = (pi_image(), proxy_image());
    let sandboxed = SandboxedPi::start();
    let host = HostPi::start();
    let allowlist = format!("{MODEL_HOST}\n");

    let mut group = c.benchmark_group("pi_startup");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    group.bench_function("sandbox_first_byte", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let cmd = sandboxed.command(&launcher, &allowlist, PROMPT);
                    first_byte(cmd, sandboxed.model().marker())
                })
                .sum()
        });
    });
    group.bench_function("host_first_byte", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| first_byte(host.command(PROMPT), host.model().marker()))
                .sum()
        });
    });
    group.finish();
}

/// The group lives in a private module: `criterion_group!` makes an undocumented `pub fn`.
mod group {
    criterion::criterion_group!(benches, super::pi_startup);
}
criterion_main!(group::benches);
