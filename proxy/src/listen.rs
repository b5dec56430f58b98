//! Listening addresses (`127.0.0.1:8888`, `[::1]:8888`, `unix:/run/sandbox/proxy.sock`)
//! and the sockets bound to them.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// Where the proxy listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path (written `unix:/PATH`).
    Unix(PathBuf),
}

/// A listening address that could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid listen address {0:?}: expected IP:PORT, [IPv6]:PORT or unix:/ABSOLUTE/PATH")]
pub struct ListenAddrError(String);

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            let path = Path::new(path);
            if path.is_absolute() {
                return Ok(ListenAddr::Unix(path.to_owned()));
            }
            return Err(ListenAddrError(text.to_owned()));
        }
        text.parse()
            .map(ListenAddr::Tcp)
            .map_err(|_| ListenAddrError(text.to_owned()))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(address) => write!(f, "{address}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket listener.
    Unix(UnixListener),
}

/// An accepted client connection.
pub(crate) enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

impl Listener {
    /// Binds `address`. A Unix socket is made connectable by any user (the directory it
    /// lives in is what restricts access), replacing a stale socket file left by a crash.
    pub async fn bind(address: &ListenAddr) -> io::Result<Listener> {
        match address {
            ListenAddr::Tcp(address) => TcpListener::bind(address).await.map(Listener::Tcp),
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
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Tcp(stream, peer))
            }
            Listener::Unix(listener) => Ok(Accepted::Unix(listener.accept().await?.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_addresses() {
        assert_eq!(
            "127.0.0.1:8888".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:8888".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/sandbox/proxy.sock"
                .parse::<ListenAddr>()
                .unwrap(),
            ListenAddr::Unix("/run/sandbox/proxy.sock".into())
        );
        for bad in ["localhost:8888", "unix:relative.sock", "8888", ""] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
    }
}
