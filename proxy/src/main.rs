//! The `sandbox-proxy` binary: parse, run, map the outcome to a named exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sandbox_policy::report;
use sandbox_proxy::cli::{Cli, Command};
use sandbox_proxy::config::ServeConfig;
use sandbox_proxy::exit::Exit;
use sandbox_proxy::{admin_client, check, explain, logging, relay, serve};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            }
            .into();
        }
    };
    match cli.command {
        Some(Command::Check(args)) => check::run(&args).into(),
        Some(Command::Explain(args)) => explain::run(&args).into(),
        Some(Command::Healthcheck(args)) => admin_client::healthcheck(&args).into(),
        Some(Command::Denied(args)) => admin_client::print_denied(&args).into(),
        Some(Command::Relay(args)) => ExitCode::from(run_relay(args)),
        None => run_server(cli.serve).into(),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

fn run_relay(args: sandbox_proxy::cli::RelayArgs) -> u8 {
    // The relay shares the agent's terminal: only problems are worth printing there.
    logging::init(logging::LogFormat::Text, "warn");
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, Exit::Internal) as u8,
    };
    match runtime.block_on(relay::run(args)) {
        Ok(code) => code,
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "sandbox-proxy relay: {}",
                report::chain(&err)
            );
            err.exit_code()
        }
    }
}

fn run_server(args: sandbox_proxy::cli::ServeArgs) -> Exit {
    let config = match ServeConfig::try_from(args) {
        Ok(config) => config,
        Err(err) => return fail(&err, Exit::Usage),
    };
    logging::init(config.log_format, "info");
    let runtime = match server_runtime(config.threads) {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, Exit::Internal),
    };
    match runtime.block_on(serve::serve(config)) {
        Ok(()) => Exit::Success,
        Err(err) => fail(&err, err.exit()),
    }
}

/// One thread: a current-thread runtime; more: a work-stealing pool of that size.
fn server_runtime(threads: u16) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(threads))
            .enable_all()
            .build()
    }
}

fn fail(err: &dyn std::error::Error, exit: Exit) -> Exit {
    let _ = writeln!(std::io::stderr(), "sandbox-proxy: {}", report::chain(err));
    exit
}
