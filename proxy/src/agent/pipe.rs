//! `pipe`: standard input to a TCP connection, the connection to standard output.
//!
//! The launcher runs it in the agent container (an exec with attached streams) for each
//! connection its login-callback listener accepts on the host's loopback, so that an
//! OAuth redirect to `http://localhost:PORT/...` reaches the login flow listening on the
//! container's own loopback, whatever the container's network (none in proxy mode) and
//! wherever the engine runs (Docker Desktop). It makes no decisions: the launcher
//! chose the port.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWriteExt as _, stdin, stdout};
use tokio::net::TcpStream;

/// How long one address may take to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why `pipe` failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PipeError {
    /// No address accepted (the last one's error).
    #[error("nothing accepts a connection at {addresses}")]
    Connect {
        addresses: String,
        #[source]
        source: io::Error,
    },
    /// The connection failed while carrying data.
    #[error("the connection to {address} failed")]
    Carry {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
}

/// Connects to the first of `addresses` that accepts, then copies standard input to the
/// connection (closing its write side at end of input) and the connection to standard
/// output, until the peer closes.
///
/// # Errors
///
/// No address accepts, or the connection fails.
pub(crate) async fn run(addresses: &[SocketAddr]) -> Result<(), PipeError> {
    let (stream, address) = connect_first(addresses).await?;
    let carry = |source| PipeError::Carry { address, source };
    let (mut from_peer, mut to_peer) = stream.into_split();
    let upstream = async {
        tokio::io::copy(&mut stdin(), &mut to_peer).await?;
        to_peer.shutdown().await
    };
    let downstream = async {
        let mut out = stdout();
        tokio::io::copy(&mut from_peer, &mut out).await?;
        out.flush().await
    };
    tokio::pin!(upstream, downstream);
    // The peer closing ends the pipe even when standard input stays open; the end of
    // standard input only half-closes the connection.
    tokio::select! {
        done = &mut downstream => done.map_err(carry),
        done = &mut upstream => {
            done.map_err(carry)?;
            downstream.await.map_err(carry)
        }
    }
}

async fn connect_first(addresses: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), PipeError> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address given");
    for &address in addresses {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok((stream, address)),
            Ok(Err(error)) => last = error,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    let addresses: Vec<String> = addresses.iter().map(SocketAddr::to_string).collect();
    Err(PipeError::Connect {
        addresses: addresses.join(", "),
        source: last,
    })
}
