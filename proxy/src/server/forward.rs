//! Absolute-form `http://` requests: decide, then forward through the pooled client,
//! streaming both bodies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::counted::Counted;
use super::record::{DecisionRecord, Outcome};
use super::respond::ProxyError;
use super::upstream::UpstreamInfo;
use super::{ProxyBody, Shared, fail, request};
use crate::net::dial::DialError;
use crate::net::tunnel::Transferred;

/// Handles one plain-HTTP proxy request.
pub(super) async fn handle(
    mut request: Request<Incoming>,
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
    let up = Arc::new(AtomicU64::new(0));
    let request = request.map(|body| Counted::new(body, up.clone(), ()).boxed());
    let mut response = match shared.client.request(request).await {
        Ok(response) => response,
        Err(err) => return fail(record, client_error(err)),
    };
    if let Some(info) = response.extensions().get::<UpstreamInfo>() {
        record.address = Some(info.address);
    }
    record.outcome = Outcome::Allowed;
    record.status = response.status().as_u16();
    request::strip_hop_by_hop(response.headers_mut());
    let down = Arc::new(AtomicU64::new(0));
    let log = ForwardLog {
        record,
        up,
        down: down.clone(),
    };
    response.map(|body| Counted::new(body, down, log).boxed())
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

/// Completes the decision record with the byte counts when the response body ends.
struct ForwardLog {
    record: DecisionRecord,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Drop for ForwardLog {
    fn drop(&mut self) {
        self.record.transferred = Transferred {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
        };
    }
}
