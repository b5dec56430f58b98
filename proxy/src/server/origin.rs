//! HTTP served inside a tunnel, towards one fixed origin.
//!
//! A tunnel to an HTTP port (`--http-ports`) is not relayed byte for byte: the proxy
//! reads the requests the client sends into it and forwards each one itself, as it
//! forwards absolute-form requests (the same framing checks on the raw bytes, the same
//! hop-by-hop handling, one decision line per request), always to the tunnel's
//! [`Origin`] and always with `Host` set to it. A request naming another host is refused
//! with 403 (`host-mismatch`) and the tunnel is closed; bytes that are not HTTP close it
//! too; the upstream sees nothing of a refused request. Keep-alive and pipelining work;
//! an `Upgrade` (WebSocket) is passed on, and once the origin switches protocols the
//! tunnel relays bytes to that origin only.
//!
//! # Interface
//!
//! [`serve`] takes the three things that differ from one kind of tunnel to another:
//! - the client's stream: anything `AsyncRead + AsyncWrite + Send + Unpin` (a socket
//!   with the bytes read behind the CONNECT head put back,
//!   [`super::client_end::ClientEnd`]; a TLS stream accepted over one). The framing
//!   checks run on the bytes read from it, so on plaintext.
//! - a [`Connector`], which makes each upstream connection to the origin: the first one
//!   when the first request comes, a new one whenever the previous one was closed.
//!   [`DialConnector`] hands out the connection the CONNECT already dialed, then dials
//!   again through the policy check and the address guard; a TLS connector wraps the
//!   connections of a [`DialConnector`] in a client handshake.
//! - a [`Rewrite`] hook, shown each request head just before it goes upstream (target in
//!   origin form, `Host` set, hop-by-hop headers gone) and each response head just
//!   before it goes back; it may change them and note what it did in the request's
//!   decision record (`intercept::rewrite`: secrets added in decrypted tunnels, only
//!   watched for in cleartext ones).
//!
//! The caller owns the tunnel: it races [`serve`] against revocation (dropping the future
//! closes the client and every upstream connection) and completes the CONNECT's decision
//! line from the returned [`Served`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::header::{HOST, HeaderValue, UPGRADE};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sandbox_policy::{Authority, Host};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::task::AbortOnDropHandle;

use super::record::{Client, DecisionRecord, Outcome};
use super::request::{self, Target};
use super::respond::ProxyError;
use super::sniff::{Judged, Sniffed, Verdicts};
use super::{ProxyBody, Shared, exchange, fail, head_verdict, serve_http1};
use crate::net::dial::Dialed;
use crate::net::tunnel::{Transferred, TunnelEnd};

/// Longest requested host copied into a refusal and its log line.
const MAX_SHOWN_HOST: usize = 253;

/// The one origin a tunnel's requests go to.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) host: Host,
    pub(crate) port: u16,
    /// Whether the origin is reached over TLS (`https`), which makes 443 the port a
    /// `Host` without one means; 80 otherwise.
    pub(crate) tls: bool,
}

impl Origin {
    /// The CONNECT target `target`, reached over TLS or not.
    pub(crate) fn new(target: &Target, tls: bool) -> Origin {
        Origin {
            host: target.host.clone(),
            port: target.port,
            tls,
        }
    }

    fn default_port(&self) -> u16 {
        if self.tls { 443 } else { 80 }
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The `Host` value sent upstream: the host, and the port unless it is the default.
    pub(crate) fn host_header(&self) -> String {
        if self.port == self.default_port() {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `authority` (from a `Host` header or an absolute URL) names this origin.
    fn is_named_by(&self, authority: &Authority) -> bool {
        authority.host == self.host && authority.port.unwrap_or(self.default_port()) == self.port
    }

    fn target(&self) -> Target {
        Target {
            host: self.host.clone(),
            port: self.port,
        }
    }
}

/// A connection to the origin made by a [`Connector`].
pub(crate) struct Upstream<Io> {
    pub(crate) io: Io,
    /// The address it is connected to, for the decision lines.
    pub(crate) address: SocketAddr,
}

/// Makes connections to a tunnel's origin.
pub(crate) trait Connector: Send + Sync + 'static {
    /// The connection's stream.
    type Io: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// A new connection; an error is the answer to the request that needed it.
    fn connect(&self) -> impl Future<Output = Result<Upstream<Self::Io>, ProxyError>> + Send;
}

/// Sees, and may change, what crosses a tunnel served as HTTP.
pub(crate) trait Rewrite: Send + Sync + 'static {
    /// Called with each request head before it goes upstream; an error refuses the
    /// request (the tunnel is then closed) and nothing is sent.
    fn request(
        &self,
        _head: &mut http::request::Parts,
        _record: &mut DecisionRecord,
    ) -> Result<(), ProxyError> {
        Ok(())
    }

    /// Called when a request went upstream (its response head came back).
    fn forwarded(&self, _record: &DecisionRecord) {}

    /// Called with each response head before it goes back to the client.
    fn response(&self, _head: &mut http::response::Parts, _record: &mut DecisionRecord) {}
}

/// How serving a tunnel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Served {
    /// The client closed, or a refused request closed the tunnel.
    Closed,
    /// The client sent bytes that are not HTTP (answered 400 by the parser).
    NotHttp,
    /// No request head came within the header read timeout.
    Timeout,
    /// Reading or writing failed.
    Error,
}

/// Serves the HTTP requests a client sends on `stream` into a tunnel to `origin`,
/// forwarding each through a connection from `connector`, with `rewrite` shown every
/// head; `who` is the client in the decision lines. Returns when the client is done or
/// the tunnel was closed.
pub(crate) async fn serve<S, C, R>(
    stream: S,
    origin: Origin,
    connector: C,
    rewrite: R,
    shared: Arc<Shared>,
    who: Client,
) -> Served
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    C: Connector,
    R: Rewrite,
{
    let verdicts = Verdicts::default();
    let stream = Sniffed::new(stream, shared.limits.max_header_bytes, verdicts.clone());
    let host = match HeaderValue::try_from(origin.host_header()) {
        Ok(host) => host,
        // Cannot happen: a normalised host is a valid header value.
        Err(_) => return Served::Error,
    };
    let session = Arc::new(Session {
        origin,
        host,
        connector,
        rewrite,
        shared: shared.clone(),
        who,
        link: Mutex::new(None),
        switched: Mutex::new(None),
    });
    let serving = session.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let session = serving.clone();
        let judged = verdicts.next();
        async move { Ok::<_, Infallible>(session.handle(request, judged).await) }
    });
    let result = serve_http1(stream, service, &shared).await;
    let switched = session
        .switched
        .lock()
        .ok()
        .and_then(|mut relay| relay.take());
    if let Some(relay) = switched {
        let _ = relay.await;
    }
    match result {
        Ok(()) => Served::Closed,
        Err(err) if err.is_parse() => Served::NotHttp,
        Err(err) if err.is_timeout() => Served::Timeout,
        Err(_) => Served::Error,
    }
}

/// One tunnel's state, shared by its requests.
struct Session<C, R> {
    origin: Origin,
    /// The `Host` value every request carries upstream.
    host: HeaderValue,
    connector: C,
    rewrite: R,
    shared: Arc<Shared>,
    who: Client,
    /// The upstream connection, between requests.
    link: Mutex<Option<Link>>,
    /// The byte relay after a protocol switch.
    switched: Mutex<Option<AbortOnDropHandle<()>>>,
}

/// An HTTP/1.1 client connection to the origin.
struct Link {
    sender: SendRequest<ProxyBody>,
    address: SocketAddr,
    /// Drives the connection; aborted (closing it) when the tunnel goes.
    _driver: AbortOnDropHandle<()>,
}

impl<C: Connector, R: Rewrite> Session<C, R> {
    /// Answers one request from inside the tunnel (module documentation).
    async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        judged: Judged,
    ) -> Response<ProxyBody> {
        let mut record = DecisionRecord::new(
            self.who,
            request.method().clone(),
            self.shared.policy.current(),
            self.shared.telemetry.clone(),
        );
        record.target = Some(self.origin.target());
        if let Err(err) = head_verdict(judged.head, &self.shared) {
            return fail(record, err);
        }
        let policy = record.policy().clone();
        match policy.check_target(&self.origin.host, self.origin.port) {
            Ok(permit) => record.entry = Some((permit.entry.text.clone(), permit.entry.line)),
            Err(denial) => return fail(record, ProxyError::Denied(denial)),
        }
        if let Err(err) = names_origin(&request, &self.origin) {
            return fail(record, err);
        }
        let upgrade = request::upgrade_of(request.headers());
        let client_side = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        if let Err(err) = request::rewrite_for_origin(&mut request, self.host.clone(), upgrade) {
            return fail(record, err);
        }
        let (request, sent) = match exchange::outgoing(request, judged.body).await {
            Ok(outgoing) => outgoing,
            Err(err) => return fail(record, err),
        };
        let (mut head, body) = request.into_parts();
        if let Err(err) = self.rewrite.request(&mut head, &mut record) {
            return fail(record, err);
        }
        let (response, address) = match self.send(Request::from_parts(head, body)).await {
            Ok(sent) => sent,
            Err(err) => return fail(record, sent.blame(err)),
        };
        record.address = Some(address);
        self.rewrite.forwarded(&record);
        let (mut head, body) = response.into_parts();
        self.rewrite.response(&mut head, &mut record);
        let response = Response::from_parts(head, body);
        match client_side {
            Some(client_side) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                self.switch(response, client_side, record)
            }
            _ => exchange::incoming(response, record, &sent),
        }
    }

    /// Sends `request` on the kept connection, or on a new one when there is none or it
    /// closed before taking the request.
    async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, SocketAddr), ProxyError> {
        let kept = self.link.lock().ok().and_then(|mut link| link.take());
        let mut request = request;
        if let Some(mut link) = kept
            && link.sender.ready().await.is_ok()
        {
            match link.sender.try_send_request(request).await {
                Ok(response) => return Ok(self.keep(link, response)),
                // Closed before the request was written: try once on a new connection.
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(upstream_failed(failed.error())),
                },
            }
        }
        let mut link = self.open().await?;
        match link.sender.send_request(request).await {
            Ok(response) => Ok(self.keep(link, response)),
            Err(err) => Err(upstream_failed(&err)),
        }
    }

    /// Keeps `link` for the next request; returns the response with its address.
    fn keep(&self, link: Link, response: Response<Incoming>) -> (Response<Incoming>, SocketAddr) {
        let address = link.address;
        if let Ok(mut kept) = self.link.lock() {
            *kept = Some(link);
        }
        (response, address)
    }

    /// A new connection to the origin, from the connector.
    async fn open(&self) -> Result<Link, ProxyError> {
        let upstream = self.connector.connect().await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(upstream.io))
            .await
            .map_err(|err| upstream_failed(&err))?;
        let driver = tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(error = %err, "upstream connection of a tunnel failed");
            }
        });
        Ok(Link {
            sender,
            address: upstream.address,
            _driver: AbortOnDropHandle::new(driver),
        })
    }

    /// Answers a protocol switch the origin accepted, and relays bytes between the two
    /// switched connections until both are done; the request's decision line is
    /// written then, with the bytes relayed.
    fn switch(
        &self,
        mut response: Response<Incoming>,
        client_side: OnUpgrade,
        mut record: DecisionRecord,
    ) -> Response<ProxyBody> {
        let upstream_side = hyper::upgrade::on(&mut response);
        record.outcome = Outcome::Allowed;
        record.status = StatusCode::SWITCHING_PROTOCOLS.as_u16();
        let relay = tokio::spawn(async move {
            let (Ok(client), Ok(upstream)) = tokio::join!(client_side, upstream_side) else {
                return;
            };
            let moved = tokio::io::copy_bidirectional(
                &mut TokioIo::new(client),
                &mut TokioIo::new(upstream),
            )
            .await;
            let end = match moved {
                Ok(_) => TunnelEnd::Closed,
                Err(_) => TunnelEnd::Error,
            };
            let (up, down) = moved.unwrap_or_default();
            record.tunnel_ended(end, Transferred { up, down });
        });
        if let Ok(mut switched) = self.switched.lock() {
            *switched = Some(AbortOnDropHandle::new(relay));
        }
        let (mut head, _) = response.into_parts();
        let protocol = head.headers.get(UPGRADE).cloned();
        request::strip_hop_by_hop(&mut head.headers);
        if let Some(protocol) = protocol {
            head.headers.insert(UPGRADE, protocol);
        }
        head.headers.insert(
            http::header::CONNECTION,
            HeaderValue::from_static("upgrade"),
        );
        Response::from_parts(head, Empty::new().map_err(|never| match never {}).boxed())
    }
}

/// The failure of an exchange the origin did not complete.
fn upstream_failed(err: &hyper::Error) -> ProxyError {
    tracing::debug!(error = %err, "request to a tunnel's origin failed");
    ProxyError::Upstream
}

/// Checks that a request inside the tunnel is for `origin`: a path (or `*` for
/// OPTIONS), or an absolute URL of the origin; and a `Host` naming the origin (required
/// from HTTP/1.1 on, exactly once).
fn names_origin<B>(request: &Request<B>, origin: &Origin) -> Result<(), ProxyError> {
    let bad = |reason: &str| ProxyError::BadRequest(reason.to_owned());
    let uri = request.uri();
    match (uri.scheme_str(), uri.authority()) {
        (None, None) if uri.path().starts_with('/') => {}
        (None, None) if uri.path() == "*" && request.method() == Method::OPTIONS => {}
        (Some(scheme), Some(authority)) if scheme == origin.scheme() => {
            check_named(authority.as_str(), origin)?;
        }
        _ => {
            return Err(bad(
                "inside a tunnel, the request target must be a path or a URL of the tunnel's host",
            ));
        }
    }
    let mut hosts = request.headers().get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if request.version() < Version::HTTP_11 => Ok(()),
        (None, _) => Err(bad("the request has no Host header")),
        (Some(_), Some(_)) => Err(bad("the request has more than one Host header")),
        (Some(host), None) => {
            let text = host
                .to_str()
                .map_err(|_| bad("the Host header is not valid text"))?;
            check_named(text, origin)
        }
    }
}

/// Refuses `text` (a `Host` value or URL authority) unless it names `origin`.
fn check_named(text: &str, origin: &Origin) -> Result<(), ProxyError> {
    let authority = request::parse_authority(text)?;
    if origin.is_named_by(&authority) {
        return Ok(());
    }
    Err(ProxyError::HostMismatch {
        requested: text.chars().take(MAX_SHOWN_HOST).collect(),
        origin: origin.host_header(),
    })
}

/// The plain connector: the connection the CONNECT dialed first, then new connections
/// decided by the policy in force and dialed through the address guard.
pub(crate) struct DialConnector {
    shared: Arc<Shared>,
    target: Target,
    dialed: Mutex<Option<Dialed>>,
}

impl DialConnector {
    /// A connector to `target` that hands out `dialed` first.
    pub(crate) fn new(shared: Arc<Shared>, target: Target, dialed: Dialed) -> DialConnector {
        DialConnector {
            shared,
            target,
            dialed: Mutex::new(Some(dialed)),
        }
    }
}

impl Connector for DialConnector {
    type Io = TcpStream;

    fn connect(&self) -> impl Future<Output = Result<Upstream<TcpStream>, ProxyError>> + Send {
        let first = self.dialed.lock().ok().and_then(|mut dialed| dialed.take());
        async move {
            let dialed = match first {
                Some(dialed) => dialed,
                None => {
                    let Target { host, port } = &self.target;
                    let policy = self.shared.policy.current();
                    let permit = policy
                        .check_target(host, *port)
                        .map_err(ProxyError::Denied)?;
                    let dialed = self
                        .shared
                        .dialer
                        .dial(&policy, &permit, host, *port)
                        .await?;
                    self.shared.telemetry.connected(dialed.elapsed);
                    dialed
                }
            };
            Ok(Upstream {
                io: dialed.stream,
                address: dialed.address,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(host: &str, port: u16, tls: bool) -> Origin {
        Origin {
            host: Host::parse(host).unwrap(),
            port,
            tls,
        }
    }

    fn get(target: &str, hosts: &[&str]) -> Request<()> {
        let mut builder = Request::get(target);
        for host in hosts {
            builder = builder.header(HOST, *host);
        }
        builder.body(()).unwrap()
    }

    fn verdict(request: &Request<()>, origin: &Origin) -> Result<(), &'static str> {
        names_origin(request, origin).map_err(|err| err.code())
    }

    #[test]
    fn the_host_header_omits_the_default_port_only() {
        assert_eq!(origin("a.test", 80, false).host_header(), "a.test");
        assert_eq!(origin("a.test", 8080, false).host_header(), "a.test:8080");
        assert_eq!(origin("a.test", 443, true).host_header(), "a.test");
        assert_eq!(origin("a.test", 80, true).host_header(), "a.test:80");
        assert_eq!(origin("[::1]", 80, false).host_header(), "[::1]");
    }

    #[test]
    fn requests_must_name_the_origin() {
        let plain = origin("a.test", 80, false);
        let table: &[(&str, &[&str], Result<(), &str>)] = &[
            ("/x", &["a.test"], Ok(())),
            ("/x", &["A.Test.:80"], Ok(())),
            ("http://a.test/x", &["a.test"], Ok(())),
            ("/x", &["b.test"], Err("host-mismatch")),
            ("/x", &["a.test:8080"], Err("host-mismatch")),
            ("/x", &["a.test.b.test"], Err("host-mismatch")),
            ("http://b.test/x", &["a.test"], Err("host-mismatch")),
            ("http://a.test/x", &["b.test"], Err("host-mismatch")),
            ("https://a.test/x", &["a.test"], Err("bad-request")),
            ("/x", &[], Err("bad-request")),
            ("/x", &["a.test", "a.test"], Err("bad-request")),
            ("/x", &["user@a.test"], Err("bad-request")),
            ("/x", &["a.test/"], Err("bad-request")),
        ];
        for (target, hosts, expected) in table {
            assert_eq!(
                verdict(&get(target, hosts), &plain),
                *expected,
                "{target} {hosts:?}"
            );
        }
        let odd = origin("a.test", 8080, false);
        assert_eq!(verdict(&get("/", &["a.test:8080"]), &odd), Ok(()));
        assert_eq!(verdict(&get("/", &["a.test"]), &odd), Err("host-mismatch"));
        let old = Request::get("/")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        assert_eq!(verdict(&old, &plain), Ok(()));
        let star = Request::options("*")
            .header(HOST, "a.test")
            .body(())
            .unwrap();
        assert_eq!(verdict(&star, &plain), Ok(()));
    }
}
