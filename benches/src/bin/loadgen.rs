//! `loadgen`: the load generator of the peer comparison (see `benches/README.md`).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use sandbox_benches::cli::Cli;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let mut out = std::io::stdout().lock();
    runtime
        .block_on(sandbox_benches::cli::execute(cli.command, &mut out))
        .context("loadgen failed")
}
