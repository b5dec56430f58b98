//! The `agent-sandbox` executable (also installed as `pi`): parse, run, exit with the
//! agent's status or the launcher's named failure status.

use std::process::ExitCode;

use agent_sandbox::exit::ExitStatus;
use agent_sandbox::report::{chain, notice};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("AGENT_SANDBOX_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match agent_sandbox::options::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.use_stderr() {
                true => ExitStatus::LAUNCHER_FAILED.into(),
                false => ExitStatus::SUCCESS.into(),
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            notice(&format!("cannot start the async runtime: {error}"));
            return ExitStatus::LAUNCHER_FAILED.into();
        }
    };
    let status = match runtime.block_on(agent_sandbox::cmd::main(cli)) {
        Ok(status) => status,
        Err(error) => {
            notice(&chain(&error));
            error.exit_status()
        }
    };
    status.into()
}
