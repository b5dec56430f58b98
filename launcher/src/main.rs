//! The `agent-sandbox` executable (also installed as `pi`): logging set up from
//! `AGENT_SANDBOX_LOG`, then [`agent_sandbox::run`], whose status is the exit code.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("AGENT_SANDBOX_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    agent_sandbox::run(std::env::args_os()).into()
}
