//! The one place where refusals and failures become HTTP responses.
//!
//! Bodies are short plain text addressed to the sandboxed agent: they say what was
//! refused and how a human could allow it, and leak nothing internal (no resolved
//! addresses, no error chains). Headers carry a machine-readable reason.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use sandbox_policy::{Denial, Host, protocol};

use super::ProxyBody;
use crate::net::dial::DialError;

/// Header naming the policy reason of a 403.
pub(crate) const DENY_HEADER: HeaderName = HeaderName::from_static(protocol::DENY_HEADER);
/// Header naming the failure class of a 4xx/5xx that is not a policy denial.
pub(crate) const ERROR_HEADER: HeaderName = HeaderName::from_static("x-sandbox-proxy-error");

/// Everything that ends a proxy request without an upstream response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The request is not a valid proxy request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request head is longer than the limit.
    #[error("request head too large")]
    HeadTooLarge,
    #[error("{0}")]
    Denied(Denial),
    /// A request inside a tunnel served as HTTP names a host other than the tunnel's.
    #[error("the request names {requested}, but the tunnel leads to {origin}")]
    HostMismatch {
        /// The host the request names (as sent, truncated), for the client and the log.
        requested: String,
        /// The tunnel's authority.
        origin: String,
    },
    /// The host name did not resolve.
    #[error("DNS lookup failed")]
    Dns,
    /// Every address refused or failed the connection.
    #[error("connection failed")]
    Connect,
    /// Resolving and connecting took longer than the connect timeout.
    #[error("timed out connecting to {host}:{port}")]
    Timeout { host: Host, port: u16 },
    /// The upstream failed after the connection was made.
    #[error("upstream request failed")]
    Upstream,
    /// The upstream of a decrypted tunnel failed TLS verification (or the handshake);
    /// no request was sent to it.
    #[error("upstream TLS failed: {0}")]
    UpstreamTls(String),
}

impl From<&DialError> for ProxyError {
    fn from(err: &DialError) -> Self {
        tracing::debug!(error = %err, source = ?std::error::Error::source(err), "dial failed");
        match err {
            DialError::Denied(denial) => ProxyError::Denied(denial.clone()),
            DialError::Resolve(_) => ProxyError::Dns,
            DialError::Connect { .. } | DialError::InvalidTarget => ProxyError::Connect,
            DialError::Timeout { host, port } => ProxyError::Timeout {
                host: host.clone(),
                port: *port,
            },
        }
    }
}

impl From<DialError> for ProxyError {
    fn from(err: DialError) -> Self {
        ProxyError::from(&err)
    }
}

impl ProxyError {
    /// The short reason used in decision logs and the reason headers.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) => "bad-request",
            ProxyError::HeadTooLarge => "head-too-large",
            ProxyError::Denied(denial) => denial.reason.code(),
            ProxyError::HostMismatch { .. } => "host-mismatch",
            ProxyError::Dns => "dns",
            ProxyError::Connect => "connect",
            ProxyError::Timeout { .. } => "connect-timeout",
            ProxyError::Upstream => "upstream",
            ProxyError::UpstreamTls(_) => "upstream-tls",
        }
    }

    /// Whether this is a refusal by policy (403), as opposed to a failure.
    pub(crate) fn is_denial(&self) -> bool {
        matches!(
            self,
            ProxyError::Denied(_) | ProxyError::HostMismatch { .. }
        )
    }

    /// The HTTP status this error is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::Denied(_) | ProxyError::HostMismatch { .. } => StatusCode::FORBIDDEN,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Dns
            | ProxyError::Connect
            | ProxyError::Upstream
            | ProxyError::UpstreamTls(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The response sent to the client.
    pub(crate) fn to_response(&self) -> Response<ProxyBody> {
        let (header, body) = match self {
            ProxyError::Denied(denial) => (DENY_HEADER, denial.explanation()),
            ProxyError::HostMismatch { requested, origin } => (
                DENY_HEADER,
                format!(
                    "this tunnel leads to {origin} only, but the request names {requested}; \
                     requests for another host need their own tunnel or proxy request"
                ),
            ),
            ProxyError::BadRequest(reason) => (ERROR_HEADER, format!("bad request: {reason}")),
            ProxyError::HeadTooLarge => (ERROR_HEADER, "the request head is too large".to_owned()),
            ProxyError::Dns => (
                ERROR_HEADER,
                "the host name did not resolve (DNS lookup failed)".to_owned(),
            ),
            ProxyError::Connect => (
                ERROR_HEADER,
                "the destination refused or failed the connection".to_owned(),
            ),
            ProxyError::Timeout { host, port } => (
                ERROR_HEADER,
                format!("timed out connecting to {host}:{port}"),
            ),
            ProxyError::Upstream => (
                ERROR_HEADER,
                "the upstream server failed to answer".to_owned(),
            ),
            ProxyError::UpstreamTls(reason) => (
                ERROR_HEADER,
                format!(
                    "the upstream's TLS could not be verified ({reason}); nothing was sent to it"
                ),
            ),
        };
        text_response(self.status(), header, self.code(), &body)
    }
}

/// A plain-text response with one reason header.
pub(crate) fn text_response(
    status: StatusCode,
    header: HeaderName,
    code: &'static str,
    message: &str,
) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("sandbox-proxy: {message}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header, HeaderValue::from_static(code));
    response
}
