//! What the tests share: proxies to test ([`proxy`]: in this process, or the real
//! binary), upstreams that record what reaches them ([`upstream`], [`tls`], [`https`]),
//! clients that speak HTTP/1.1 and CONNECT byte by byte ([`http`]) or HTTPS inside a
//! tunnel ([`https`]), a test CA ([`tls`]), and waiting for an event
//! with a deadline instead of sleeping.

pub mod http;
pub mod https;
pub mod proxy;
pub mod tls;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

/// How long [`eventually`] and [`eventually_blocking`] wait before failing the test.
const DEADLINE: Duration = Duration::from_secs(5);
/// How often they look again.
const POLL: Duration = Duration::from_millis(20);

/// The `sandbox-proxy` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sandbox-proxy");

/// Polls `check` until it yields a value; fails the test after 5 s, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached in {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for tests that do not run in a runtime.
pub fn eventually_blocking<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached in {DEADLINE:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// A temporary directory, removed when dropped (also when the test fails).
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch(
            tempfile::Builder::new()
                .prefix("sandbox-proxy-test-")
                .tempdir()
                .unwrap(),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes `text` to `name` in the directory; returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Runs the binary to completion: exit code, stdout, stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BIN).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Runs the real `curl -sS` with `args` (at most 10 s); returns its stdout.
pub async fn curl(args: &[&str]) -> String {
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .await
        .expect("curl is installed");
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Sends `signal` to a child process.
pub fn send_signal(child: &Child, signal: Signal) {
    kill_process(Pid::from_child(child), signal).unwrap();
}

/// Waits for a child to exit; fails the test if it still runs after 5 s.
pub fn wait_exit(child: &mut Child) -> ExitStatus {
    eventually_blocking("the process exits", || child.try_wait().unwrap())
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
