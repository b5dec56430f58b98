//! The launcher's commands: [`run()`] parses the command line and dispatches to `run` and
//! `shell` ([`run`](mod@run): one sandboxed command), `build`, `gc` and `doctor`; every
//! failure of the launcher itself ends in one reported error chain and docker's 125.

mod build;
mod doctor;
mod run;
mod signals;

use std::ffi::OsString;

use crate::engine::{Engine, EngineError};
use crate::exit::ExitStatus;
use crate::options::cli::{self, Cli, Command};
use crate::options::profile::{Profile, ProfileError};
use crate::options::settings::{Settings, SettingsError};
use crate::report::{chain, notice};
use crate::sandbox::allowlist::copy;
use crate::sandbox::checkout::CheckoutError;
use crate::sandbox::config::ConfigError;
use crate::sandbox::images::ImageError;
use crate::sandbox::sidecar_image::SidecarImageError;
use crate::sandbox::{SandboxError, liveness, teardown};
use crate::terminal::browser;

/// Runs the launcher with `argv` (`argv[0]` included) and returns the status to exit
/// with: the agent's own, or the launcher's (see [`ExitStatus`]). Errors are reported on
/// standard error.
pub fn run<I, T>(argv: I) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let cli = match cli::parse(argv) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.use_stderr() {
                true => ExitStatus::LAUNCHER_FAILED,
                false => ExitStatus::SUCCESS,
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
            return ExitStatus::LAUNCHER_FAILED;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(status) => status,
        Err(error) => {
            notice(&chain(&error));
            error.exit_status()
        }
    }
}

/// Why a command failed (the launcher's own failures, not the agent's).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The settings file is unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The agent profile is unknown or invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The options do not describe an acceptable sandbox.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The sidecar's copy of the allowlist could not be made.
    #[error("cannot make the proxy's copy of the allowlist")]
    AllowlistCopy(#[source] std::io::Error),
    /// The browser hand-off channel could not be created.
    #[error("cannot create the browser hand-off directory")]
    Browser(#[source] std::io::Error),
    /// The terminal could not be put in raw mode.
    #[error("cannot put the terminal in raw mode")]
    Terminal(#[source] std::io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    SidecarImage(#[from] SidecarImageError),
    /// The settings name a source checkout that is not one.
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
}

impl Error {
    /// The exit status for this failure: docker's 125 for everything the launcher itself
    /// could not do (the agent's 126/127 come from the init or relay in the container).
    fn exit_status(&self) -> ExitStatus {
        ExitStatus::LAUNCHER_FAILED
    }
}

/// Runs a parsed command line.
///
/// # Errors
///
/// The launcher's own failures; the agent's exit status is `Ok`.
async fn dispatch(cli: Cli) -> Result<ExitStatus, Error> {
    let settings = match Settings::default_path() {
        Some(path) => Settings::load(&path)?,
        None => Settings::default(),
    };
    match cli.command {
        Command::Run(run) => {
            let profile = Profile::lookup(&run.agent, &settings.agents)?;
            let command = profile.agent_command(&run.agent_args);
            run::sandboxed(&settings.merge(&run.sandbox), &profile, command).await
        }
        Command::Shell(shell) => {
            let profile = Profile::lookup(&shell.agent, &settings.agents)?;
            let command = if shell.command.is_empty() {
                profile.shell.clone()
            } else {
                shell.command
            };
            run::sandboxed(&settings.merge(&shell.sandbox), &profile, command).await
        }
        Command::Build(build) => build::build_images(&settings, &build).await,
        Command::Gc => {
            let engine = Engine::connect().await?;
            let owner = liveness::current_owner();
            let removed = teardown::gc(&engine, &owner.host, None, liveness::is_running).await?;
            browser::remove_stale_everywhere(liveness::is_running);
            copy::remove_stale_everywhere(liveness::is_running);
            notice(&format!(
                "removed the leftovers of {} run(s)",
                removed.len()
            ));
            Ok(ExitStatus::SUCCESS)
        }
        Command::Doctor(args) => Ok(doctor::run(&settings.merge(&args)).await),
    }
}
