//! Login callbacks without the host's network: when a URL that opens carries a redirect
//! to `http://localhost:PORT/...` or `http://127.0.0.1:PORT/...` (OAuth's `redirect_uri`,
//! or any query parameter holding such a URL, as OpenRouter's `callback_url`), the
//! launcher listens on the host's loopback at that port for the rest of the run and
//! carries each connection into the agent container's own loopback at the same port:
//! an exec with attached streams running `sandbox-proxy pipe` there
//! ([`protocol::pipe_command`]). That needs no network in the container (proxy mode has
//! none) and no route from the host to it (Docker Desktop).
//!
//! Bounds: at most [`MAX_PORTS`] ports per run, [`MAX_CONNECTIONS`] connections at a
//! time per port, each announced on the terminal; a port already taken on the host is
//! said at once, never waited for.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt as _;
use sandbox_policy::protocol;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use url::Url;

use crate::engine::{Attached, Engine, Output};
use crate::report::{chain, notice};

/// The most ports forwarded in one run.
const MAX_PORTS: usize = 4;
/// The most connections carried at a time on one port.
const MAX_CONNECTIONS: usize = 16;
/// The most of the pipe's error output shown.
const MAX_ERROR: usize = 512;

/// The port of a loopback login callback named in `url`'s query: the first parameter
/// whose (percent-decoded) value is an `http` URL on `localhost`, `127.0.0.1` or `[::1]`
/// with an explicit port.
pub(crate) fn redirect_port(url: &Url) -> Option<u16> {
    url.query_pairs().find_map(|(_, value)| {
        let redirect = Url::parse(&value).ok()?;
        let loopback = match redirect.host()? {
            url::Host::Domain(name) => name == "localhost",
            url::Host::Ipv4(ip) => ip == Ipv4Addr::LOCALHOST,
            url::Host::Ipv6(ip) => ip == Ipv6Addr::LOCALHOST,
        };
        (redirect.scheme() == "http" && loopback)
            .then(|| redirect.port())
            .flatten()
            .filter(|&port| port != 0)
    })
}

/// Why a callback port is not forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// Another program on the host listens there.
    #[error(
        "port {port} is already in use on this machine: the login's redirect to localhost:{port} \
         would reach that program, not the sandbox; stop it and start the login again"
    )]
    InUse { port: u16 },
    /// Listening failed for another reason.
    #[error("cannot listen on {address} for the login's redirect")]
    Listen {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// [`MAX_PORTS`] are forwarded already.
    #[error("{MAX_PORTS} login callback ports are forwarded already in this run")]
    TooMany,
    /// The agent container is not there (yet, or any more).
    #[error("the sandbox is not running")]
    NoAgent,
}

/// The callback ports of one run; the listeners close when this is dropped.
pub(crate) struct Callbacks {
    engine: Engine,
    ports: HashSet<u16>,
    listeners: JoinSet<()>,
}

impl Callbacks {
    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            engine,
            ports: HashSet::new(),
            listeners: JoinSet::new(),
        }
    }

    /// The ports carried into the sandbox.
    pub(crate) fn ports(&self) -> &HashSet<u16> {
        &self.ports
    }

    /// Listens on the host's loopback at `port` (IPv4, and IPv6 where the host has it)
    /// and carries every connection into `container` (None: not created yet).
    /// `Ok(false)`: it is carried already.
    ///
    /// # Errors
    ///
    /// The port is taken or cannot be bound, too many are forwarded, or there is no
    /// container.
    pub(crate) fn forward(
        &mut self,
        port: u16,
        container: Option<String>,
    ) -> Result<bool, ForwardError> {
        if self.ports.contains(&port) {
            return Ok(false);
        }
        if self.ports.len() >= MAX_PORTS {
            return Err(ForwardError::TooMany);
        }
        let container = container.ok_or(ForwardError::NoAgent)?;
        let mut listeners = vec![listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?];
        // A program on [::1]:PORT would get the browser's `localhost` first: that is a
        // port in use too. A host without IPv6 loopback is fine.
        match listen(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            Ok(listener) => listeners.push(listener),
            Err(error @ ForwardError::InUse { .. }) => return Err(error),
            Err(_) => {}
        }
        for listener in listeners {
            let (engine, container) = (self.engine.clone(), container.clone());
            self.listeners
                .spawn(accept(listener, engine, container, port));
        }
        self.ports.insert(port);
        Ok(true)
    }
}

/// Binds `address` at once (no waiting for a port in use).
fn listen(address: SocketAddr) -> Result<TcpListener, ForwardError> {
    let bound = std::net::TcpListener::bind(address).and_then(|listener| {
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    });
    bound.map_err(|source| match source.kind() {
        io::ErrorKind::AddrInUse => ForwardError::InUse {
            port: address.port(),
        },
        _ => ForwardError::Listen { address, source },
    })
}

/// Accepts connections on `listener` until dropped, carrying each into `container`.
async fn accept(listener: TcpListener, engine: Engine, container: String, port: u16) {
    let mut connections = JoinSet::new();
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(error) => {
                tracing::debug!(%error, port, "accepting a login callback connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            continue;
        }
        connections.spawn(carry(client, engine.clone(), container.clone(), port));
    }
}

/// Carries one connection through `sandbox-proxy pipe` in the container: what the
/// client sends to its standard input (closed when the client half-closes), its
/// standard output back; the pipe's complaints (nothing listens inside) on the terminal.
async fn carry(client: TcpStream, engine: Engine, container: String, port: u16) {
    let attached = match engine
        .exec_attached(&container, &protocol::pipe_command(port))
        .await
    {
        Ok(attached) => attached,
        Err(error) => {
            notice(&format!(
                "cannot carry a connection on localhost:{port} into the sandbox: {}",
                chain(&error)
            ));
            return;
        }
    };
    let Attached {
        mut output,
        mut input,
    } = attached;
    let (mut from_client, mut to_client) = client.into_split();
    let upstream = async {
        let mut buffer = vec![0; 16 * 1024];
        loop {
            match from_client.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if input.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = input.shutdown().await;
    };
    let downstream = async move {
        let mut complaint = Vec::new();
        while let Some(Ok(chunk)) = output.next().await {
            match chunk {
                Output::Stdout(bytes) => {
                    if to_client.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Output::Stderr(bytes) => {
                    let room = MAX_ERROR.saturating_sub(complaint.len());
                    complaint.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
            }
        }
        let _ = to_client.shutdown().await;
        complaint
    };
    tokio::pin!(upstream, downstream);
    // The pipe ending (the server inside closed) ends the connection; the client's end
    // of input only closes the pipe's input.
    let complaint = tokio::select! {
        complaint = &mut downstream => complaint,
        () = &mut upstream => downstream.await,
    };
    let complaint = String::from_utf8_lossy(&complaint);
    if !complaint.trim().is_empty() {
        notice(&format!(
            "login callback on localhost:{port}: {}",
            complaint.trim().escape_debug()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port_of(url: &str) -> Option<u16> {
        redirect_port(&Url::parse(url).unwrap())
    }

    #[test]
    fn loopback_redirects_are_found_in_any_query_parameter_percent_encoded_or_not() {
        let cases: &[(&str, Option<u16>)] = &[
            // pi's providers (pi-coding-agent 1.5.2).
            (
                "https://claude.ai/oauth/authorize?code=true&client_id=x&response_type=code\
                 &redirect_uri=http%3A%2F%2Flocalhost%3A53692%2Fcallback&scope=a+b&state=s",
                Some(53692),
            ),
            (
                "https://auth.openai.com/oauth/authorize?response_type=code&client_id=x\
                 &redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback",
                Some(1455),
            ),
            (
                "https://auth.openai.com/api/accounts/authorize?\
                 redirect_uri=http%3A%2F%2F127.0.0.1%3A1455%2Fauth%2Fcallback",
                Some(1455),
            ),
            (
                "https://openrouter.ai/auth?callback_url=http%3A%2F%2F127.0.0.1%3A40123\
                 %2Foauth%2Fcallback%2Fabc&code_challenge=x",
                Some(40123),
            ),
            (
                "https://x.example/?redirect_uri=http://[::1]:8085/cb",
                Some(8085),
            ),
            (
                "https://x.example/?a=1&redirect_uri=http://localhost:9000",
                Some(9000),
            ),
            // No port, another host, https, not in the query.
            ("https://x.example/?redirect_uri=http://localhost/cb", None),
            (
                "https://x.example/?redirect_uri=http://evil.example:80/cb",
                None,
            ),
            (
                "https://x.example/?redirect_uri=http://localhost.evil.example:80/",
                None,
            ),
            (
                "https://x.example/?redirect_uri=https://localhost:8443/cb",
                None,
            ),
            (
                "https://x.example/?redirect_uri=http://10.0.0.1:8080/cb",
                None,
            ),
            ("https://x.example/http://localhost:8080/", None),
            (
                "https://x.example/#redirect_uri=http://localhost:8080/",
                None,
            ),
            ("https://x.example/?redirect_uri=http://localhost:0/", None),
            ("https://platform.claude.com/oauth/code/callback", None),
        ];
        for (url, expected) in cases {
            assert_eq!(port_of(url), *expected, "{url}");
        }
    }

    #[tokio::test]
    async fn a_port_in_use_on_the_host_is_said_at_once() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = listen(address).unwrap_err();
        assert!(
            matches!(error, ForwardError::InUse { port } if port == address.port()),
            "{error:?}"
        );
        assert!(error.to_string().contains("already in use"));
        drop(taken);
        assert!(listen(address).is_ok());
    }
}
