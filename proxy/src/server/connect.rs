//! `CONNECT host:port`: decide, dial, and only then answer 200 and relay.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;

use super::record::{DecisionRecord, Outcome};
use super::respond::ProxyError;
use super::sniff::Sniffed;
use super::{ProxyBody, Shared, fail, request};
use crate::live::revoke;
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
    let policy = record.policy().clone();
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
    shared.telemetry.connected(dialed.elapsed);
    record.outcome = Outcome::Allowed;
    record.status = StatusCode::OK.as_u16();
    let idle_timeout = shared.limits.idle_timeout;
    let changes = shared.policy.subscribe();
    let telemetry = shared.telemetry.clone();
    let sni = shared.limits.sni.clone();
    shared.tasks.spawn(async move {
        let _slot = slot;
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(error = %err, "client left before the tunnel opened");
                record.tunnel_ended(TunnelEnd::Error, Transferred::default());
                return;
            }
        };
        let Ok(parts) = upgraded.downcast::<TokioIo<Sniffed<S>>>() else {
            // Cannot happen: the connection is served over exactly this stream type.
            record.tunnel_ended(TunnelEnd::Error, Transferred::default());
            return;
        };
        let client = parts.io.into_inner().into_inner();
        // On TLS ports the ClientHello must name the CONNECT host before a byte goes up.
        let first = match sni
            .screen(&target.host, target.port, &client, parts.read_buf)
            .await
        {
            Ok(first) => first,
            Err(refusal) => {
                record.outcome = Outcome::Denied(refusal.code());
                drop(record); // writes the decision line
                return;
            }
        };
        // Bytes the client sent right behind the CONNECT head belong to the tunnel.
        let early = Transferred {
            up: first.len() as u64,
            down: 0,
        };
        if tunnel::write_all(&dialed.stream, &first).await.is_err() {
            record.tunnel_ended(TunnelEnd::Error, early);
            return;
        }
        telemetry.tunnel(true);
        let moved = Counters::default();
        let relay = tunnel::relay(&client, &dialed.stream, idle_timeout, &moved);
        let revoked = revoke::revoked(changes, &target.host, target.port, dialed.address);
        let end = tokio::select! {
            ended = relay => ended,
            _ = revoked => TunnelEnd::Revoked,
        };
        let mut transferred = moved.snapshot();
        telemetry.tunnel(false);
        if end == TunnelEnd::IdleTimeout {
            telemetry.limit(LimitHit::IdleTimeout);
        }
        transferred.up += early.up;
        record.tunnel_ended(end, transferred);
    });
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *response.status_mut() = StatusCode::OK;
    response
}
