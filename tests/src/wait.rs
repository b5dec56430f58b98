//! Waiting for a container to become healthy, to log a line, or for a TCP port to
//! answer.
//!
//! Both poll every few milliseconds up to a deadline and panic with what they saw (the
//! container's state, health log and logs) when the deadline passes, so a test that
//! times out says why.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::scope::Container;

/// How long to sleep between two polls.
const POLL: Duration = Duration::from_millis(50);

/// Waits until the container's Docker HEALTHCHECK reports `healthy` and returns how
/// long that took. Panics when the container stops, becomes `unhealthy`, has no
/// healthcheck, or `timeout` passes.
pub fn wait_healthy(container: &Container, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let state = container.inspect(
            "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
        );
        match state.split_once(' ') {
            Some((_, "healthy")) => return started.elapsed(),
            Some(("running", "starting")) if started.elapsed() < timeout => {}
            _ => {
                let health = container.inspect("{{json .State.Health}}");
                let logs = container.logs();
                panic!(
                    "container {} is not healthy after {:.1?} (state: {state}); health: {health}\nlogs:\n{}{}",
                    container.name(),
                    started.elapsed(),
                    logs.stdout,
                    logs.stderr
                );
            }
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until a TCP connection to `addr` succeeds (from the host, which on Linux
/// reaches containers' bridge addresses) and returns how long that took. Panics when
/// `timeout` passes.
pub fn wait_tcp(addr: SocketAddr, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match TcpStream::connect_timeout(&addr, POLL) {
            Ok(_) => return started.elapsed(),
            Err(e) if started.elapsed() >= timeout => {
                panic!(
                    "{addr} does not answer after {:.1?}: {e}",
                    started.elapsed()
                )
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Waits until the container's logs (stdout or stderr) contain `needle` and returns how
/// long that took. Panics with the logs when the container stops first or `timeout`
/// passes.
pub fn wait_log(container: &Container, needle: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let logs = container.logs();
        if logs.stdout.contains(needle) || logs.stderr.contains(needle) {
            return started.elapsed();
        }
        let state = container.inspect("{{.State.Status}}");
        if state != "running" || started.elapsed() >= timeout {
            panic!(
                "container {} ({state}) did not log {needle:?} within {:.1?}; logs:\n{}{}",
                container.name(),
                started.elapsed(),
                logs.stdout,
                logs.stderr
            );
        }
        std::thread::sleep(POLL);
    }
}
