//! The interactive terminal, used when stdin and stdout are both terminals: raw mode
//! through a guard that restores the terminal on every path (drop on return, error and
//! signal; [`restore`] from the panic hook, since a panic may abort without unwinding),
//! and the terminal's size, followed on every SIGWINCH.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;

use rustix::termios::{OptionalActions, Termios, tcgetattr, tcgetwinsize, tcsetattr};
use tokio::signal::unix::{SignalKind, signal};

use crate::engine::{Engine, EngineError};
use crate::report;

/// The settings to restore, kept where the panic hook can reach them.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// How often, and how far apart, the first resize is tried: it can fail until the
/// container's TTY exists.
const FIRST_RESIZE_TRIES: u32 = 10;
const FIRST_RESIZE_PAUSE: Duration = Duration::from_millis(20);

/// Whether the run gets a TTY: only when stdin and stdout are both terminals.
pub(crate) fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Raw mode on the terminal while this lives.
#[derive(Debug)]
pub(crate) struct RawMode(());

impl RawMode {
    /// Puts the terminal on stdin in raw mode (no echo, no line editing, no signals from
    /// keys: Ctrl-C, Ctrl-P and the rest go to the container).
    ///
    /// # Errors
    ///
    /// The terminal settings cannot be read or changed.
    pub(crate) fn enable() -> std::io::Result<Self> {
        let stdin = std::io::stdin();
        let original = tcgetattr(&stdin)?;
        let mut raw = original.clone();
        raw.make_raw();
        if let Ok(mut saved) = SAVED.lock() {
            *saved = Some(original);
            report::set_raw_terminal(true);
        }
        tcsetattr(&stdin, OptionalActions::Now, &raw)?;
        Ok(Self(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Restores the terminal settings saved by [`RawMode::enable`], if any (idempotent).
pub(crate) fn restore() {
    let saved = SAVED.lock().ok().and_then(|mut saved| saved.take());
    if let Some(original) = saved {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &original);
        report::set_raw_terminal(false);
    }
}

/// Makes a panic restore the terminal before anything is printed (a panic may abort the
/// process without unwinding, so the guard's drop would not run).
pub(crate) fn restore_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// The terminal's size as (columns, rows), if stdout is a terminal.
pub(crate) fn size() -> Option<(u16, u16)> {
    let size = tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

/// Sizes the container's TTY like the terminal, retrying while the TTY does not exist
/// yet, then again on every SIGWINCH; never returns (drop it to stop).
pub(crate) async fn follow_size(engine: &Engine, container: &str) {
    let mut resized = Err(None::<EngineError>);
    for _ in 0..FIRST_RESIZE_TRIES {
        let Some((columns, rows)) = size() else { break };
        resized = engine
            .resize_tty(container, columns, rows)
            .await
            .map_err(Some);
        if resized.is_ok() {
            break;
        }
        tokio::time::sleep(FIRST_RESIZE_PAUSE).await;
    }
    if let Err(Some(error)) = resized {
        tracing::debug!(error = %report::chain(&error), "cannot size the container's terminal");
    }
    let Ok(mut changes) = signal(SignalKind::window_change()) else {
        return std::future::pending().await;
    };
    while changes.recv().await.is_some() {
        if let Some((columns, rows)) = size()
            && let Err(error) = engine.resize_tty(container, columns, rows).await
        {
            tracing::debug!(error = %report::chain(&error), "cannot resize the container's terminal");
        }
    }
    std::future::pending().await
}
