//! Relaying the agent container's standard streams: its output goes to the launcher's
//! stdout and stderr (demultiplexed when the container has no TTY; with one, everything
//! arrives as stdout); the launcher's stdin is forwarded and the container's stdin closed
//! at end of input, so `echo prompt | pi -p` works. Raw mode and sizing, for a TTY, are
//! in [`crate::terminal`].

use std::io::Read as _;

use futures_util::StreamExt as _;
use tokio::io::{AsyncWriteExt as _, stderr, stdout};
use tokio::sync::mpsc;

use crate::engine::{Attached, EngineError, Output};

const CHUNK: usize = 16 * 1024;

/// Reads the launcher's stdin on a thread of its own (a blocking read, no polling; the
/// thread is detached so a pending read never holds up the launcher's exit) and sends the
/// chunks; the channel closes at end of input or on a read error.
fn read_stdin() -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0; CHUNK];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    receiver
}

/// Relays until the container's output ends (it exited). The launcher's stdin goes to the
/// container, whose stdin is closed at end of input.
///
/// # Errors
///
/// The engine connection fails while relaying.
pub(crate) async fn relay(attached: Attached) -> Result<(), EngineError> {
    let Attached {
        mut output,
        mut input,
    } = attached;
    let mut stdin = Some(read_stdin());
    let (mut out, mut err) = (stdout(), stderr());
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                None => break,
                Some(chunk) => {
                    // A closed stdout/stderr (a pipe whose reader went away) must not stop
                    // the run: the agent keeps running and its status is still reported.
                    let _ = match chunk? {
                        Output::Stdout(bytes) => write_all_flush(&mut out, &bytes).await,
                        Output::Stderr(bytes) => write_all_flush(&mut err, &bytes).await,
                    };
                }
            },
            data = next_input(&mut stdin) => match data {
                Some(data) => {
                    if input.write_all(&data).await.is_err() {
                        stdin = None;
                    }
                }
                None => {
                    let _ = input.shutdown().await;
                    stdin = None;
                }
            },
        }
    }
    Ok(())
}

/// The next stdin chunk; pending forever once stdin is no longer forwarded.
async fn next_input(stdin: &mut Option<mpsc::Receiver<Vec<u8>>>) -> Option<Vec<u8>> {
    match stdin {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

async fn write_all_flush(
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    bytes: &[u8],
) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}
