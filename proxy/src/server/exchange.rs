//! One request sent upstream and its response brought back: the steps shared by
//! absolute-form forwarding ([`super::forward`]) and tunnels served as HTTP
//! ([`super::origin`]).
//!
//! The request body streams; it is checked as it goes. A chunked body's first frame is
//! awaited before anything is sent upstream, so a body malformed from its first size
//! line is refused (400) with no upstream contacted; one that turns malformed later
//! fails the upstream request, whose connection is then closed, never pooled, and the
//! client is answered 400 as well: the fault is the client's.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::TRANSFER_ENCODING;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::counted::Counted;
use super::record::{DecisionRecord, Outcome};
use super::request;
use super::respond::ProxyError;
use super::sniff::BodyCheck;
use super::{BodyError, ProxyBody};
use crate::net::tunnel::Transferred;

/// What a refused request body is answered with (the decision line carries it too).
const MALFORMED_BODY: &str = "malformed chunked request body";

/// The client's request body failed while it was being forwarded.
#[derive(Debug, thiserror::Error)]
#[error("{MALFORMED_BODY}")]
struct MalformedBody;

/// How the body of a request on its way upstream is doing.
pub(super) struct Sent {
    /// Body bytes sent so far.
    pub(super) bytes: Arc<AtomicU64>,
    /// The client's body failed (malformed, or cut short).
    failed: Arc<AtomicBool>,
}

impl Sent {
    /// What to answer when the upstream exchange failed with `err`: 400 when the
    /// client's own body was at fault, `err` otherwise.
    pub(super) fn blame(&self, err: ProxyError) -> ProxyError {
        if self.failed.load(Ordering::Acquire) {
            ProxyError::BadRequest(MALFORMED_BODY.to_owned())
        } else {
            err
        }
    }
}

/// Makes `request` ready to send: its body checked as it streams (`check` is the
/// sniffer's word on it) and counted. A chunked body's first frame is read now.
pub(super) async fn outgoing(
    request: Request<Incoming>,
    check: BodyCheck,
) -> Result<(Request<ProxyBody>, Sent), ProxyError> {
    let (parts, mut body) = request.into_parts();
    let mut first = None;
    // The sniffer let the head through, so a Transfer-Encoding here is exactly `chunked`.
    if parts.headers.contains_key(TRANSFER_ENCODING) {
        match body.frame().await {
            Some(Ok(frame)) => first = Some(frame),
            Some(Err(_)) => return Err(ProxyError::BadRequest(MALFORMED_BODY.to_owned())),
            None => {}
        }
    }
    if check.malformed() {
        return Err(ProxyError::BadRequest(MALFORMED_BODY.to_owned()));
    }
    let sent = Sent {
        bytes: Arc::new(AtomicU64::new(0)),
        failed: Arc::new(AtomicBool::new(false)),
    };
    let checked = Checked {
        first,
        inner: body,
        check,
        failed: sent.failed.clone(),
    };
    let body = Counted::new(checked, sent.bytes.clone(), ()).boxed();
    Ok((Request::from_parts(parts, body), sent))
}

/// Brings an upstream response back to the client: hop-by-hop headers removed, the
/// decision recorded, its line written with the byte counts when the body ends.
pub(super) fn incoming(
    mut response: Response<Incoming>,
    mut record: DecisionRecord,
    sent: &Sent,
) -> Response<ProxyBody> {
    record.outcome = Outcome::Allowed;
    record.status = response.status().as_u16();
    request::strip_hop_by_hop(response.headers_mut());
    let down = Arc::new(AtomicU64::new(0));
    let log = ExchangeLog {
        record,
        up: sent.bytes.clone(),
        down: down.clone(),
    };
    response.map(|body| {
        Counted::new(body, down, log)
            .map_err(BodyError::from)
            .boxed()
    })
}

/// A request body on its way upstream: the frame read ahead first, then the rest,
/// failing as soon as the sniffer found the chunked framing malformed.
struct Checked {
    first: Option<Frame<Bytes>>,
    inner: Incoming,
    check: BodyCheck,
    failed: Arc<AtomicBool>,
}

impl Checked {
    fn fail(&self, err: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.failed.store(true, Ordering::Release);
        Poll::Ready(Some(Err(err)))
    }
}

impl Body for Checked {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(frame) = this.first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if this.check.malformed() {
            return this.fail(MalformedBody.into());
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Err(err)) => this.fail(err.into()),
            other => Poll::Ready(other.map(|frame| frame.map_err(BodyError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let ahead = self
            .first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| data.len() as u64);
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + ahead);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + ahead);
        }
        hint
    }
}

/// Completes the decision record with the byte counts when the response body ends.
struct ExchangeLog {
    record: DecisionRecord,
    up: Arc<AtomicU64>,
    down: Arc<AtomicU64>,
}

impl Drop for ExchangeLog {
    fn drop(&mut self) {
        self.record.transferred = Transferred {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
        };
    }
}
