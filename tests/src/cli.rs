//! Running the `docker` command-line client and collecting what it printed.
//!
//! Tests speak to the engine through the CLI rather than bollard: it is synchronous, so
//! cleanup can run in `Drop`, and a failing call prints exactly what a developer would
//! type to reproduce it. Callers decide on exit codes and object listings, never on
//! the text of error messages.

use std::ffi::OsStr;
use std::process::Command;

/// What a finished command returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code, or -1 when the process was killed by a signal.
    pub code: i32,
    /// Everything written to standard output, lossily decoded as UTF-8.
    pub stdout: String,
    /// Everything written to standard error, lossily decoded as UTF-8.
    pub stderr: String,
}

impl Outcome {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Runs `command` to completion; panics only when it cannot be started at all.
    pub(crate) fn of(command: &mut Command) -> Self {
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `docker ARGS` and returns its outcome, whatever the exit code.
pub fn docker<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Outcome::of(Command::new("docker").args(args))
}

/// Runs `docker ARGS`, panics with the command and its stderr unless it exits 0, and
/// returns its standard output with surrounding whitespace trimmed.
pub fn docker_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let outcome = docker(&args);
    if !outcome.success() {
        panic!(
            "`docker {}` exited {}: {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            outcome.code,
            outcome.stderr.trim()
        );
    }
    outcome.stdout.trim().to_owned()
}
