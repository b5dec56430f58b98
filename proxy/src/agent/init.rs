//! Minimal init for the agent container: start the agent, forward signals to it, reap
//! every zombie, and exit with the agent's status.
//!
//! The agent runs in its own process group; when the container has a terminal, that
//! group is made the terminal's foreground group, so keys like Ctrl-C reach the agent
//! once (from the terminal) rather than twice (terminal and forwarded).

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Pid, Signal, WaitOptions, getpgrp, kill_process_group, wait};
use rustix::termios::{tcgetpgrp, tcsetpgrp};
use tokio::signal::unix::{SignalKind, signal};

/// Signals passed on to the agent's process group.
const FORWARDED: [(SignalKind, Signal); 7] = [
    (SignalKind::terminate(), Signal::TERM),
    (SignalKind::interrupt(), Signal::INT),
    (SignalKind::hangup(), Signal::HUP),
    (SignalKind::quit(), Signal::QUIT),
    (SignalKind::user_defined1(), Signal::USR1),
    (SignalKind::user_defined2(), Signal::USR2),
    (SignalKind::window_change(), Signal::WINCH),
];

/// Why the agent could not be started (docker's conventions for the exit code).
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error("no command to run")]
    NoCommand,
    /// The command does not exist (exit 127).
    #[error("{command}: command not found")]
    NotFound { command: String },
    /// The command cannot be executed (exit 126).
    #[error("{command}: cannot execute")]
    CannotExecute {
        command: String,
        #[source]
        source: io::Error,
    },
    /// Signal handling could not be set up.
    #[error("cannot install signal handlers")]
    Signals(#[source] io::Error),
}

impl InitError {
    /// The exit code docker users expect for this failure.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            InitError::NotFound { .. } => 127,
            InitError::NoCommand | InitError::CannotExecute { .. } => 126,
            InitError::Signals(_) => 125,
        }
    }
}

/// Runs `command` to completion as described in the module docs; returns its exit code
/// (128 + signal number when it was killed by a signal).
pub(crate) async fn supervise(command: &[OsString]) -> Result<u8, InitError> {
    let (program, args) = command.split_first().ok_or(InitError::NoCommand)?;
    // Handlers first, so no signal (or child exit) between spawn and here is lost.
    let mut children = signal(SignalKind::child()).map_err(InitError::Signals)?;
    let mut forwarded = Vec::with_capacity(FORWARDED.len());
    for (kind, sig) in FORWARDED {
        forwarded.push((signal(kind).map_err(InitError::Signals)?, sig));
    }
    let interactive = io::stdin().is_terminal();
    let child = Command::new(program)
        .args(args)
        .process_group(0)
        .spawn()
        .map_err(|source| {
            let command = program.to_string_lossy().into_owned();
            match source.kind() {
                io::ErrorKind::NotFound => InitError::NotFound { command },
                _ => InitError::CannotExecute { command, source },
            }
        })?;
    let pid = Pid::from_child(&child);
    if interactive {
        hand_terminal_to(pid);
    }
    loop {
        if let Some(code) = reap(pid) {
            return Ok(code);
        }
        let received = {
            let waits = forwarded
                .iter_mut()
                .map(|(stream, sig)| Box::pin(async move { stream.recv().await.map(|_| *sig) }));
            tokio::select! {
                _ = children.recv() => None,
                (sig, _, _) = futures_util::future::select_all(waits) => sig,
            }
        };
        if let Some(sig) = received {
            let _ = kill_process_group(pid, sig);
        }
    }
}

/// Reaps every exited child; returns the agent's exit code once it has exited.
fn reap(agent: Pid) -> Option<u8> {
    let mut agent_code = None;
    // Any child: orphans re-parented to PID 1 are reaped too.
    while let Ok(Some((pid, status))) = wait(WaitOptions::NOHANG) {
        if pid != agent {
            continue;
        }
        if let Some(code) = status.exit_status() {
            agent_code = Some(u8::try_from(code).unwrap_or(1));
        } else if let Some(signal) = status.terminating_signal() {
            agent_code = Some(128u8.saturating_add(u8::try_from(signal).unwrap_or(u8::MAX)));
        }
    }
    agent_code
}

/// Makes the agent's group the terminal's foreground group and wakes it in case it was
/// stopped for reading the terminal before that.
///
/// Only the foreground group may do so without being stopped by SIGTTOU. The relay is
/// that group as the PID 1 of a container with a terminal; anywhere else (a background
/// job in a shell) the terminal is left as it is.
fn hand_terminal_to(agent: Pid) {
    let stdin = io::stdin();
    match tcgetpgrp(&stdin) {
        Ok(foreground) if foreground == getpgrp() => {
            if let Err(err) = tcsetpgrp(&stdin, agent) {
                tracing::debug!(error = %err, "cannot hand the terminal to the agent");
            }
        }
        _ => tracing::debug!("not the terminal's foreground group: the terminal stays as it is"),
    }
    let _ = kill_process_group(agent, Signal::CONT);
}
