//! `CONNECT host:port`: decide, dial, and only then answer 200 and open the tunnel.
//!
//! What the tunnel is depends on the port: on `--sni-ports` the TLS name check screens
//! the ClientHello and bytes are then relayed, except to the hosts of secrets, whose
//! tunnels are decrypted and served as HTTP ([`super::intercept`]); on `--http-ports`
//! the proxy serves the HTTP requests inside the tunnel itself, towards the CONNECT host
//! only ([`super::origin`]); any other port the allowlist allows is a raw byte relay.
//!
//! The tunnel subscribes to policy changes before the policy decides, so a reload that
//! lands while the name resolves or the connection opens is not missed: a policy that
//! no longer allows the destination by the time the dial completes is answered 403, and
//! one that arrives later closes the tunnel.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use sandbox_policy::Policy;
use tokio::sync::OwnedSemaphorePermit;

use super::client_end::ClientEnd;
use super::intercept::HandshakeFailure;
use super::intercept::rewrite::WatchSecrets;
use super::origin::{self, DialConnector, Origin, Served};
use super::record::{DecisionRecord, Outcome};
use super::request::Target;
use super::respond::ProxyError;
use super::sniff::Sniffed;
use super::{ProxyBody, Shared, fail, request};
use crate::live::revoke;
use crate::net::dial::Dialed;
use crate::net::tunnel::{self, Counters, Socket, Transferred, TunnelEnd};
use crate::ops::telemetry::LimitHit;

/// Handles one CONNECT request; on success the tunnel runs in its own task, which owns
/// the connection slot and writes the decision log line when the tunnel ends.
pub(super) async fn handle<S>(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    mut record: DecisionRecord,
    slot: Arc<OwnedSemaphorePermit>,
) -> Response<ProxyBody>
where
    S: Socket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let target = match request::connect_target(&request) {
        Ok(target) => target,
        Err(err) => return fail(record, err),
    };
    record.target = Some(target.clone());
    let mut changes = shared.policy.subscribe();
    let policy = changes.borrow_and_update().clone();
    record.decided_by(policy.clone());
    let permit = match policy.check_target(&target.host, target.port) {
        Ok(permit) => permit,
        Err(denial) => return fail(record, ProxyError::Denied(denial)),
    };
    record.entry = Some((permit.entry.text.clone(), permit.entry.line));
    let dialed = match shared
        .dialer
        .dial(&policy, &permit, &target.host, target.port)
        .await
    {
        Ok(dialed) => dialed,
        Err(err) => return fail(record, err.into()),
    };
    record.address = Some(dialed.address);
    if let Err(denial) = revoke::recheck(&mut changes, &target.host, target.port, dialed.address) {
        return fail(record, ProxyError::Denied(denial));
    }
    shared.telemetry.connected(dialed.elapsed);
    record.outcome = Outcome::Allowed;
    record.status = StatusCode::OK.as_u16();
    let tunnel = Tunnel {
        target,
        dialed,
        record,
        shared: shared.clone(),
    };
    shared.tasks.spawn(async move {
        let _slot = slot;
        let mut tunnel = tunnel;
        let Some((client, early)) = opened::<S>(request).await else {
            tunnel
                .record
                .tunnel_ended(TunnelEnd::Error, Transferred::default());
            return;
        };
        let Target { host, port } = tunnel.target.clone();
        let revoked = revoke::revoked(changes, &host, port, tunnel.dialed.address);
        tunnel.run(client, early, revoked).await;
    });
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = StatusCode::OK;
    response
}

/// The client's stream once the 200 is sent, with the bytes it sent behind the CONNECT
/// head; `None` when the client left first.
async fn opened<S>(request: Request<Incoming>) -> Option<(S, Bytes)>
where
    S: Socket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let upgraded = match hyper::upgrade::on(request).await {
        Ok(upgraded) => upgraded,
        Err(err) => {
            tracing::debug!(error = %err, "client left before the tunnel opened");
            return None;
        }
    };
    // Cannot fail: the connection is served over exactly this stream type.
    let parts = upgraded.downcast::<TokioIo<Sniffed<S>>>().ok()?;
    Some((parts.io.into_inner().into_inner(), parts.read_buf))
}

/// An allowed CONNECT whose upstream is connected: what its task needs.
struct Tunnel {
    target: Target,
    dialed: Dialed,
    record: DecisionRecord,
    shared: Arc<Shared>,
}

impl Tunnel {
    /// Runs the tunnel until it ends or `revoked` completes; its decision line is written
    /// when it is dropped.
    async fn run<S>(self, client: S, early: Bytes, revoked: impl Future<Output = Arc<Policy>>)
    where
        S: Socket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let Target { host, port } = &self.target;
        let shared = &self.shared;
        if shared.limits.http_ports.contains(port) {
            self.serve_http(client, early, revoked).await;
        } else if shared.limits.sni.ports.contains(port)
            && shared
                .interceptor
                .as_ref()
                .is_some_and(|interceptor| interceptor.intercepts(host))
        {
            self.intercept(client, early, revoked).await;
        } else {
            self.relay(client, early, revoked).await;
        }
    }

    /// Serves the HTTP requests inside the tunnel, towards the CONNECT host only.
    async fn serve_http<S>(
        self,
        client: S,
        early: Bytes,
        revoked: impl Future<Output = Arc<Policy>>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let Tunnel {
            target,
            dialed,
            record,
            shared,
        } = self;
        let moved = Arc::new(Counters::default());
        let client = ClientEnd::new(client, early, moved.clone());
        let origin = Origin::new(&target, false);
        let rewrite = WatchSecrets {
            secrets: shared.secrets.clone(),
            host: target.host.clone(),
        };
        let who = record.client();
        let connector = DialConnector::new(shared.clone(), target, dialed);
        let served = origin::serve(client, origin, connector, rewrite, shared.clone(), who);
        finish_served(record, async { Ok(served.await) }, revoked, moved, &shared).await;
    }

    /// Decrypts the tunnel, after the TLS name check, and serves the requests inside
    /// with the secrets of its host added ([`super::intercept`]).
    async fn intercept<S>(self, client: S, early: Bytes, revoked: impl Future<Output = Arc<Policy>>)
    where
        S: Socket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let Tunnel {
            target,
            dialed,
            mut record,
            shared,
        } = self;
        let Some(first) = screened(&shared, &target, &client, early, &mut record).await else {
            return;
        };
        let Some(interceptor) = shared.interceptor.as_ref() else {
            return;
        };
        record.detail = Some("decrypted".to_owned());
        let moved = Arc::new(Counters::default());
        let client = ClientEnd::new(client, first, moved.clone());
        let who = record.client();
        let dial = DialConnector::new(shared.clone(), target.clone(), dialed);
        let served = interceptor.serve(client, &target, dial, shared.clone(), who);
        finish_served(record, served, revoked, moved, &shared).await;
    }

    /// Relays bytes both ways, after the TLS name check on TLS ports.
    async fn relay<S: Socket>(
        mut self,
        client: S,
        early: Bytes,
        revoked: impl Future<Output = Arc<Policy>>,
    ) {
        let (target, shared) = (&self.target, &self.shared);
        let Some(first) = screened(shared, target, &client, early, &mut self.record).await else {
            return;
        };
        // Bytes the client sent right behind the CONNECT head belong to the tunnel.
        let early = Transferred {
            up: first.len() as u64,
            down: 0,
        };
        let upstream = &self.dialed.stream;
        if tunnel::write_all(upstream, &first).await.is_err() {
            self.record.tunnel_ended(TunnelEnd::Error, early);
            return;
        }
        shared.telemetry.tunnel(true);
        let moved = Counters::default();
        let end = tokio::select! {
            ended = tunnel::relay(&client, upstream, shared.limits.idle_timeout, &moved) => ended,
            _ = revoked => TunnelEnd::Revoked,
        };
        shared.telemetry.tunnel(false);
        if end == TunnelEnd::IdleTimeout {
            shared.telemetry.limit(LimitHit::IdleTimeout);
        }
        let mut transferred = moved.snapshot();
        transferred.up += early.up;
        self.record.tunnel_ended(end, transferred);
    }
}

/// The TLS name check of a tunnel to `target` (on TLS ports the ClientHello must name
/// the CONNECT host before a byte goes up): the bytes read, or `None` after recording
/// the refusal in `record`.
async fn screened<S: Socket>(
    shared: &Shared,
    target: &Target,
    client: &S,
    early: Bytes,
    record: &mut DecisionRecord,
) -> Option<Bytes> {
    match shared
        .limits
        .sni
        .screen(&target.host, target.port, client, early)
        .await
    {
        Ok(first) => Some(first),
        Err(refusal) => {
            record.outcome = Outcome::Denied(refusal.code());
            None
        }
    }
}

/// Waits until a tunnel served as HTTP ends or `revoked` completes, and completes its
/// decision line with how it ended and the bytes `moved`.
async fn finish_served(
    mut record: DecisionRecord,
    served: impl Future<Output = Result<Served, HandshakeFailure>>,
    revoked: impl Future<Output = Arc<Policy>>,
    moved: Arc<Counters>,
    shared: &Shared,
) {
    shared.telemetry.tunnel(true);
    let end = tokio::select! {
        served = served => match served {
            Ok(Served::Closed) => TunnelEnd::Closed,
            Ok(Served::Timeout) => TunnelEnd::IdleTimeout,
            Ok(Served::Error) => TunnelEnd::Error,
            Ok(Served::NotHttp) => {
                record.outcome = Outcome::Denied("not-http");
                TunnelEnd::Closed
            }
            Err(failure) => {
                record.outcome = Outcome::Failed(failure.code());
                TunnelEnd::Error
            }
        },
        _ = revoked => TunnelEnd::Revoked,
    };
    shared.telemetry.tunnel(false);
    record.tunnel_ended(end, moved.snapshot());
}
