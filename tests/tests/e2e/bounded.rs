//! Running the launcher with a bound on its time, collecting what it printed, and doing
//! something while it runs.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a launcher run printed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `cmd` with stdin from /dev/null, collecting its output; stops it (SIGTERM, so
/// the launcher tears down) when it runs longer than `timeout`.
pub(crate) fn run_bounded(cmd: Command, timeout: Duration) -> Run {
    run_watched(cmd, timeout, || {})
}

/// [`run_bounded`], calling `watch` every 50 ms while the command runs.
pub(crate) fn run_watched(mut cmd: Command, timeout: Duration, mut watch: impl FnMut()) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            break child.wait().unwrap();
        }
        watch();
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    eprintln!(
        "--- launcher exited {:?} after {:.1?}\n--- stdout:\n{}\n--- stderr:\n{}",
        run.code,
        started.elapsed(),
        run.stdout,
        run.stderr
    );
    run
}
