//! The exit codes of `sandbox-proxy`, one name per meaning (documented in `--help`).

use std::process::ExitCode;

/// Exit codes of every `sandbox-proxy` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success; for `check`, every target is allowed.
    Success = 0,
    /// `check`: at least one target is denied. `healthcheck`: not ready. `pipe`: no
    /// address accepts, or the connection failed.
    Denied = 1,
    /// The allowlist file is missing, unreadable or invalid.
    InvalidAllowlist = 2,
    /// A listening address could not be bound.
    Listen = 3,
    /// The system DNS configuration could not be read.
    Resolver = 4,
    /// The secrets on stdin or the `--upstream-ca` file are invalid.
    InvalidSecrets = 5,
    /// The command line is invalid.
    Usage = 64,
    /// An unexpected internal failure (the async runtime could not start).
    Internal = 70,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// The table printed at the end of `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success (check: every target allowed)
  1   check: a target is denied; healthcheck: not ready; pipe: cannot connect
  2   the allowlist file is missing, unreadable or invalid
  3   a listening address could not be bound
  4   the system DNS configuration could not be read
  5   the secrets on stdin (--secrets-stdin) or the --upstream-ca file are invalid
  64  invalid command line
  70  internal failure";
