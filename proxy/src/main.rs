//! The `sandbox-proxy` binary: parse, run (see [`sandbox_proxy::cmd`]), exit.

use std::process::ExitCode;

use clap::Parser;
use sandbox_proxy::cmd::{self, Exit, cli::Cli};

/// The static sidecar build's allocator: musl's own maps and unmaps memory for every
/// connection, which cost more than the rest of a short tunnel's user-space work.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> ExitCode {
    match Cli::try_parse() {
        Ok(cli) => cmd::run(cli),
        Err(err) => {
            let _ = err.print();
            if err.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            }
            .into()
        }
    }
}
