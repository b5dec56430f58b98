//! The command line and what each command does: [`cli`] parses it, [`config`] validates
//! the server's options, [`serve`] runs the server, [`check`] and [`explain`] decide
//! targets offline, [`admin`] asks a running proxy, and `relay` and `pipe` hand over
//! to the [`crate::agent`]. Every outcome is a named [`exit`] code.

mod admin;
mod check;
pub mod cli;
mod config;
mod exit;
mod explain;
mod logging;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use cli::{Cli, Command, PipeArgs, RelayArgs, ServeArgs};
use config::ServeConfig;
use sandbox_policy::report;
use tracing::level_filters::LevelFilter;

pub use exit::Exit;

/// Runs the command `cli` names.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Some(Command::Check(args)) => check::run(&args).into(),
        Some(Command::Explain(args)) => explain::run(&args).into(),
        Some(Command::Healthcheck(args)) => admin::healthcheck(&args).into(),
        Some(Command::Denied(args)) => admin::print_report(&args, "/denied").into(),
        Some(Command::Secrets(args)) => admin::print_report(&args, "/secrets").into(),
        Some(Command::Relay(args)) => ExitCode::from(relay(args)),
        Some(Command::Pipe(args)) => pipe(&args).into(),
        None => server(cli.serve).into(),
    }
}

fn relay(args: RelayArgs) -> u8 {
    // The relay shares the agent's terminal: only problems are worth printing there.
    logging::init(logging::LogFormat::Text, LevelFilter::WARN);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, Exit::Internal) as u8,
    };
    match runtime.block_on(crate::agent::relay::run(
        args.listen,
        args.connect,
        &args.command,
    )) {
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

fn pipe(args: &PipeArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err, Exit::Internal),
    };
    match runtime.block_on(crate::agent::pipe::run(&args.connect)) {
        Ok(()) => Exit::Success,
        Err(err) => fail(&err, Exit::Denied),
    }
}

fn server(args: ServeArgs) -> Exit {
    let config = match ServeConfig::try_from(args) {
        Ok(config) => config,
        Err(err) => return fail(&err, Exit::Usage),
    };
    logging::init(config.log_format, LevelFilter::INFO);
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
