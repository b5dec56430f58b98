//! The termination signals (SIGINT, SIGTERM, SIGHUP) that end a run, and their names.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// A signal's description and its name as the engine takes it.
pub(super) fn signal_name(number: i32) -> (&'static str, &'static str) {
    match number {
        1 => ("hangup", "SIGHUP"),
        2 => ("interrupted", "SIGINT"),
        _ => ("terminated", "SIGTERM"),
    }
}

/// The termination signals that end a run (and its sandbox) early.
pub(super) struct Terminations(Vec<(i32, Signal)>);

impl Terminations {
    /// Starts listening (before the sandbox exists, so that no signal is missed).
    pub(super) fn listen() -> std::io::Result<Self> {
        let kinds = [
            (2, SignalKind::interrupt()),
            (15, SignalKind::terminate()),
            (1, SignalKind::hangup()),
        ];
        kinds
            .into_iter()
            .map(|(number, kind)| signal(kind).map(|stream| (number, stream)))
            .collect::<std::io::Result<_>>()
            .map(Self)
    }

    /// The number of the first termination signal received.
    pub(super) async fn recv(&mut self) -> i32 {
        let waits = self.0.iter_mut().map(|(number, stream)| {
            let number = *number;
            Box::pin(async move {
                stream.recv().await;
                number
            })
        });
        futures_util::future::select_all(waits).await.0
    }
}
