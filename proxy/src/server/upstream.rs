//! The pooled HTTP client used for plain-HTTP forwarding, and its policy-checking connector.
//!
//! The connector is the only way the client opens a connection: it re-checks the target
//! against the policy in force, resolves, vets every address and dials the checked one.
//! A pooled connection is therefore always one that passed the guard when it was made.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sandbox_policy::{Authority, Host, Policy};
use tokio::net::TcpStream;
use tokio_stream::wrappers::WatchStream;

use super::ProxyBody;
use crate::live::PolicyStore;
use crate::live::revoke;
use crate::net::dial::{DialError, Dialer};
use crate::ops::telemetry::Telemetry;

/// Connection facts attached to every upstream response, for the decision log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UpstreamInfo {
    /// The address the pooled connection is connected to.
    pub(crate) address: std::net::SocketAddr,
}

/// The client type used to forward plain-HTTP requests.
pub(crate) type UpstreamClient = Client<PolicyConnector, ProxyBody>;

/// Builds the pooled forwarding client.
pub(crate) fn client(
    policy: PolicyStore,
    dialer: Dialer,
    telemetry: Arc<Telemetry>,
) -> UpstreamClient {
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build(PolicyConnector {
            policy,
            dialer,
            telemetry,
        })
}

/// Opens upstream connections only to destinations the current policy allows.
#[derive(Clone)]
pub(crate) struct PolicyConnector {
    policy: PolicyStore,
    dialer: Dialer,
    telemetry: Arc<Telemetry>,
}

impl tower_service::Service<Uri> for PolicyConnector {
    type Response = UpstreamConnection;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<UpstreamConnection, DialError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let authority = uri
                .authority()
                .and_then(|authority| Authority::parse(authority.as_str()).ok())
                .ok_or(DialError::InvalidTarget)?;
            let port = authority.port.unwrap_or(80);
            // Subscribed before deciding: a reload while dialing is not missed.
            let mut changes = this.policy.subscribe();
            let policy = changes.borrow_and_update().clone();
            let permit = policy
                .check_target(&authority.host, port)
                .map_err(DialError::Denied)?;
            let dialed = this
                .dialer
                .dial(&policy, &permit, &authority.host, port)
                .await?;
            revoke::recheck(&mut changes, &authority.host, port, dialed.address)
                .map_err(DialError::Denied)?;
            this.telemetry.connected(dialed.elapsed);
            Ok(UpstreamConnection {
                io: TokioIo::new(dialed.stream),
                info: UpstreamInfo {
                    address: dialed.address,
                },
                host: authority.host,
                port,
                changes: WatchStream::from_changes(changes),
            })
        })
    }
}

/// A connection in the forwarding pool. It re-checks itself against every new policy
/// and fails (so the pool drops it) once its destination is no longer allowed.
pub(crate) struct UpstreamConnection {
    io: TokioIo<TcpStream>,
    info: UpstreamInfo,
    host: Host,
    port: u16,
    changes: WatchStream<Arc<Policy>>,
}

impl UpstreamConnection {
    /// Fails with `ConnectionAborted` once a new policy revokes this destination.
    fn poll_revoked(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        while let Poll::Ready(Some(policy)) = self.changes.poll_next_unpin(cx) {
            if !policy.still_allows(&self.host, self.port, self.info.address.ip()) {
                revoke::log_revocation(&policy, &self.host, self.port, self.info.address, "pooled");
                let revoked = std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "access revoked by a policy reload",
                );
                return Poll::Ready(revoked);
            }
        }
        Poll::Pending
    }
}

impl Connection for UpstreamConnection {
    fn connected(&self) -> Connected {
        Connected::new().extra(self.info)
    }
}

impl Read for UpstreamConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Poll::Ready(revoked) = self.poll_revoked(cx) {
            return Poll::Ready(Err(revoked));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for UpstreamConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(revoked) = self.poll_revoked(cx) {
            return Poll::Ready(Err(revoked));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
