//! The agent-side relay: a loopback TCP port forwarded to the sidecar's Unix socket.
//!
//! In the agent container (no network at all) HTTP(S)_PROXY points at 127.0.0.1:8888;
//! this relay carries each connection over the shared socket to the proxy. It makes no
//! decisions: the proxy on the other side does.

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;

use sandbox_policy::protocol::ListenAddr;
use tokio::net::{TcpListener, TcpStream, UnixStream};

use super::init::{self, InitError};
use crate::net::listen::accept_retrying;

/// Accepts on `listener` forever, forwarding every connection to `target`.
pub(crate) async fn forward(listener: TcpListener, target: ListenAddr) {
    loop {
        let (client, _) = accept_retrying("relay", || listener.accept()).await;
        let target = target.clone();
        tokio::spawn(async move {
            if let Err(err) = carry(client, &target).await {
                tracing::debug!(error = %err, %target, "relayed connection ended with an error");
            }
        });
    }
}

async fn carry(mut client: TcpStream, target: &ListenAddr) -> io::Result<()> {
    let _ = client.set_nodelay(true);
    match target {
        ListenAddr::Unix(path) => {
            let mut upstream = UnixStream::connect(path).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        }
        ListenAddr::Tcp(address) => {
            let mut upstream = TcpStream::connect(address).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        }
    }
    Ok(())
}

/// Why `relay` could not run its command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// The relay port could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The command could not be started or supervised.
    #[error(transparent)]
    Init(#[from] InitError),
}

impl RelayError {
    /// The exit code: docker's conventions (125 setup, 126 cannot execute, 127 not found).
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            RelayError::Listen { .. } => 125,
            RelayError::Init(err) => err.exit_code(),
        }
    }
}

/// `relay`: binds `listen`, then runs `command` as init while relaying to `connect`;
/// returns the command's exit code.
pub(crate) async fn run(
    listen: SocketAddr,
    connect: ListenAddr,
    command: &[OsString],
) -> Result<u8, RelayError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| RelayError::Listen {
            address: listen,
            source,
        })?;
    let relaying = tokio::spawn(forward(listener, connect));
    let code = init::supervise(command).await;
    relaying.abort();
    Ok(code?)
}
