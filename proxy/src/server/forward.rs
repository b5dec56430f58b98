//! Absolute-form `http://` requests: decide, then forward through the pooled client,
//! streaming both bodies.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use super::record::DecisionRecord;
use super::respond::ProxyError;
use super::sniff::BodyCheck;
use super::upstream::UpstreamInfo;
use super::{ProxyBody, Shared, exchange, fail, request};
use crate::net::dial::DialError;

/// Handles one plain-HTTP proxy request; `body` is the sniffer's check of its body.
pub(super) async fn handle(
    mut request: Request<Incoming>,
    body: BodyCheck,
    shared: &Arc<Shared>,
    mut record: DecisionRecord,
) -> Response<ProxyBody> {
    let (target, authority) = match request::forward_target(&request) {
        Ok(found) => found,
        Err(err) => return fail(record, err),
    };
    record.target = Some(target.clone());
    let policy = record.policy().clone();
    match policy.check_target(&target.host, target.port) {
        Ok(permit) => record.entry = Some((permit.entry.text.clone(), permit.entry.line)),
        Err(denial) => return fail(record, ProxyError::Denied(denial)),
    }
    if let Err(err) = request::rewrite_for_upstream(&mut request, &authority) {
        return fail(record, err);
    }
    let marks = shared
        .secrets
        .watch(request.uri(), request.headers(), &target.host);
    record.mark_secrets(marks);
    let (request, sent) = match exchange::outgoing(request, body).await {
        Ok(outgoing) => outgoing,
        Err(err) => return fail(record, err),
    };
    let response = match shared.client.request(request).await {
        Ok(response) => response,
        Err(err) => return fail(record, sent.blame(client_error(err))),
    };
    if let Some(info) = response.extensions().get::<UpstreamInfo>() {
        record.address = Some(info.address);
    }
    exchange::incoming(response, record, &sent)
}

/// Maps a client error to the refusal or failure behind it.
fn client_error(err: hyper_util::client::legacy::Error) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if let Some(dial) = current.downcast_ref::<DialError>() {
            return ProxyError::from(dial);
        }
        source = current.source();
    }
    tracing::debug!(error = ?err, "upstream request failed");
    ProxyError::Upstream
}
