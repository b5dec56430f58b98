//! The `sandbox-proxy` binary: parse, run (see [`sandbox_proxy::cmd`]), exit.

use std::process::ExitCode;

use clap::Parser;
use sandbox_proxy::cmd::{self, Exit, cli::Cli};

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
