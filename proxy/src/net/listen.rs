//! The sockets bound to the listening addresses (`127.0.0.1:8888`, `[::1]:8888`,
//! `unix:/run/sandbox/proxy.sock`).

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use sandbox_policy::protocol::ListenAddr;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    /// Bound to an IP address and port.
    Tcp(TcpListener),
    /// Bound to a Unix socket path.
    Unix(UnixListener),
}

/// An accepted client connection.
pub(crate) enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

/// Calls `accept` until it succeeds. An error (typically EMFILE: out of descriptors) is
/// logged and retried after a pause that doubles up to 1 s; a listener never gives up.
pub(crate) async fn accept_retrying<T, Fut>(listener: &str, mut accept: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = io::Result<T>>,
{
    let mut backoff = Duration::from_millis(5);
    loop {
        match accept().await {
            Ok(accepted) => return accepted,
            Err(err) => {
                tracing::warn!(error = %err, listener, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

impl Listener {
    /// Binds `address`. A Unix socket is made connectable by any user (the directory it
    /// lives in is what restricts access), replacing a stale socket file left by a crash.
    pub async fn bind(address: &ListenAddr) -> io::Result<Listener> {
        match address {
            ListenAddr::Tcp(address) => {
                let listener = TcpListener::bind(address).await?;
                // Linux copies TCP_NODELAY to every accepted socket: one system call here
                // instead of one per connection. Small writes (the 200, TLS records)
                // must not wait for Nagle.
                socket2::SockRef::from(&listener).set_tcp_nodelay(true)?;
                Ok(Listener::Tcp(listener))
            }
            ListenAddr::Unix(path) => {
                if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket()) {
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
                Ok(Listener::Unix(listener))
            }
        }
    }

    /// The TCP address actually bound (for port 0), if this is a TCP listener.
    pub fn local_tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }

    pub(crate) async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, peer) = listener.accept().await?;
                Ok(Accepted::Tcp(stream, peer))
            }
            Listener::Unix(listener) => Ok(Accepted::Unix(listener.accept().await?.0)),
        }
    }
}
