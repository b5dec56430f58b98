//! Dialing a permitted destination: resolve, check every address, connect.
//!
//! Every address the name resolves to is checked before any is dialed, and a name with
//! even one forbidden address is refused whole (mixed answers are a rebinding trick).
//! The socket is connected to exactly the address that was checked, never to a name, so
//! a DNS answer that changes between the check and the connect cannot get through.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sandbox_policy::{AddressClass, Denial, DenyReason, Host, Permit, Policy};
use tokio::net::TcpStream;

use crate::net::resolve::{ResolveError, Resolver};

/// Why a permitted destination could not be connected to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    /// Policy refused a resolved address.
    #[error("{0}")]
    Denied(Denial),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Every address refused or failed the connection.
    #[error("cannot connect to {address}")]
    Connect {
        /// The last address tried.
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The upstream URL has no valid authority (cannot happen for validated requests).
    #[error("invalid upstream target")]
    InvalidTarget,
    /// The connect timeout elapsed.
    #[error("timed out connecting to {host}:{port}")]
    Timeout { host: Host, port: u16 },
}

/// A connected upstream socket and what it was checked as.
#[derive(Debug)]
pub(crate) struct Dialed {
    pub(crate) stream: TcpStream,
    /// The address it is connected to.
    pub(crate) address: SocketAddr,
    /// How long resolving and connecting took.
    pub(crate) elapsed: Duration,
}

/// Resolves, guards and connects; shared by the CONNECT path and the HTTP client pool.
#[derive(Clone)]
pub struct Dialer {
    resolver: Resolver,
    connect_timeout: Duration,
    own_addresses: OwnAddresses,
}

/// The proxy's own listening addresses (its listeners and the management listener),
/// which it must never connect to.
#[derive(Clone, Debug, Default)]
pub struct OwnAddresses {
    listeners: Vec<SocketAddr>,
}

impl OwnAddresses {
    /// The TCP addresses the proxy listens on.
    pub fn new(listeners: Vec<SocketAddr>) -> OwnAddresses {
        OwnAddresses { listeners }
    }

    /// Adds another address the proxy listens on.
    pub fn add(&mut self, listener: SocketAddr) {
        self.listeners.push(listener);
    }

    /// True when connecting to `target` could reach one of our own listeners.
    fn contains(&self, target: SocketAddr) -> bool {
        self.listeners.iter().any(|own| {
            own.port() == target.port()
                && (own.ip() == target.ip()
                    || target.ip().is_unspecified()
                    || target.ip().is_loopback()
                    || own.ip().is_unspecified())
        })
    }
}

impl Dialer {
    /// A dialer using `resolver` and giving up on a connect after `connect_timeout`.
    pub fn new(resolver: Resolver, connect_timeout: Duration, own_addresses: OwnAddresses) -> Self {
        Dialer {
            resolver,
            connect_timeout,
            own_addresses,
        }
    }

    /// Resolves `host` and checks every address against `policy` and the proxy's own
    /// addresses, without connecting.
    pub(crate) async fn vet(
        &self,
        policy: &Policy,
        permit: &Permit<'_>,
        host: &Host,
        port: u16,
    ) -> Result<Vec<(SocketAddr, AddressClass)>, DialError> {
        let addresses: Vec<IpAddr> = match host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => self.resolver.resolve(name).await?,
        };
        addresses
            .into_iter()
            .map(|ip| {
                let class = policy
                    .check_address(permit, host, port, ip)
                    .map_err(DialError::Denied)?;
                let address = SocketAddr::new(ip, port);
                if self.own_addresses.contains(address) {
                    return Err(DialError::Denied(Denial {
                        host: host.clone(),
                        port,
                        reason: DenyReason::SelfConnection,
                    }));
                }
                Ok((address, class))
            })
            .collect()
    }

    /// Resolves, vets and connects to the first address that accepts, within the timeout.
    pub(crate) async fn dial(
        &self,
        policy: &Policy,
        permit: &Permit<'_>,
        host: &Host,
        port: u16,
    ) -> Result<Dialed, DialError> {
        let started = tokio::time::Instant::now();
        let attempt = async {
            let candidates = self.vet(policy, permit, host, port).await?;
            let mut last_error = None;
            for (address, _class) in candidates {
                match TcpStream::connect(address).await {
                    Ok(stream) => {
                        // Small writes (TLS records, request heads) must not wait for Nagle.
                        let _ = stream.set_nodelay(true);
                        return Ok(Dialed {
                            stream,
                            address,
                            elapsed: started.elapsed(),
                        });
                    }
                    Err(source) => last_error = Some(DialError::Connect { address, source }),
                }
            }
            Err(last_error.unwrap_or_else(|| {
                DialError::Resolve(ResolveError::NoAddresses {
                    name: host.to_string(),
                })
            }))
        };
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(DialError::Timeout {
                    host: host.clone(),
                    port,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_cover_loopback_and_unspecified_forms() {
        let own = OwnAddresses::new(vec!["127.0.0.1:8888".parse().unwrap()]);
        assert!(own.contains("127.0.0.1:8888".parse().unwrap()));
        assert!(own.contains("127.0.0.2:8888".parse().unwrap()));
        assert!(own.contains("0.0.0.0:8888".parse().unwrap()));
        assert!(!own.contains("127.0.0.1:8889".parse().unwrap()));
        let any = OwnAddresses::new(vec!["0.0.0.0:3128".parse().unwrap()]);
        assert!(any.contains("10.1.2.3:3128".parse().unwrap()));
    }
}
