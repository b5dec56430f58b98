//! Waiting for something to happen: [`eventually`] polls a check up to a deadline and
//! panics with the check's last word when the deadline passes, so a test that times out
//! says why. The others wait for a container to become healthy, to log a line, or for a
//! TCP port to answer.

use std::fmt::Display;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::scope::Container;

/// How long to sleep between two polls.
const POLL: Duration = Duration::from_millis(50);

/// Calls `check` every 50 ms until it returns `Ok`, and returns that value. When
/// `timeout` passes first, panics saying that `what` did not happen, with the last `Err`
/// `check` returned (what it saw instead). `check` may panic itself to give up early.
pub fn eventually<T, E: Display>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if started.elapsed() >= timeout => {
                panic!(
                    "{what} did not happen within {:.1?}; last seen:\n{seen}",
                    started.elapsed()
                )
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Waits until the container's Docker HEALTHCHECK reports `healthy` and returns how
/// long that took. Panics when the container stops, becomes `unhealthy`, has no
/// healthcheck, or `timeout` passes.
pub fn wait_healthy(container: &Container, timeout: Duration) -> Duration {
    let started = Instant::now();
    eventually(
        timeout,
        &format!("container {} becoming healthy", container.name()),
        || {
            let state = container.inspect(
                "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
            );
            let report = || {
                let health = container.inspect("{{json .State.Health}}");
                let logs = container.logs();
                format!(
                    "state: {state}; health: {health}\nlogs:\n{}{}",
                    logs.stdout, logs.stderr
                )
            };
            match state.split_once(' ') {
                Some((_, "healthy")) => Ok(started.elapsed()),
                Some(("running", "starting")) => Err(report()),
                _ => panic!(
                    "container {} is not healthy after {:.1?}; {}",
                    container.name(),
                    started.elapsed(),
                    report()
                ),
            }
        },
    )
}

/// Waits until a TCP connection to `addr` succeeds (from the host, which on Linux
/// reaches containers' bridge addresses) and returns how long that took. Panics when
/// `timeout` passes.
pub fn wait_tcp(addr: SocketAddr, timeout: Duration) -> Duration {
    let started = Instant::now();
    eventually(timeout, &format!("a connection to {addr}"), || {
        TcpStream::connect_timeout(&addr, POLL).map(|_| started.elapsed())
    })
}

/// Waits until the container's logs (stdout or stderr) contain `needle` and returns how
/// long that took. Panics with the logs when the container stops first or `timeout`
/// passes.
pub fn wait_log(container: &Container, needle: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    let what = format!("container {} logging {needle:?}", container.name());
    eventually(timeout, &what, || {
        let logs = container.logs();
        if logs.stdout.contains(needle) || logs.stderr.contains(needle) {
            return Ok(started.elapsed());
        }
        let seen = format!("logs:\n{}{}", logs.stdout, logs.stderr);
        let state = container.inspect("{{.State.Status}}");
        if state != "running" {
            panic!("{what}: the container is {state}; {seen}");
        }
        Err(seen)
    })
}
