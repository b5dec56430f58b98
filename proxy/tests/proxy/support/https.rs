//! HTTPS on both sides of a decrypted tunnel: an upstream that records every request it
//! receives (URI, headers, body) and counts completed TLS handshakes, and an HTTP/1.1
//! client over TLS inside a CONNECT tunnel.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::http::{connect, status};
use super::tls::tls_client;

/// The first event of `/sse`; the second follows only after [`HttpsUpstream::release`].
pub const FIRST_EVENT: &str = "data: one\n\n";
/// The last event of `/sse`.
pub const LAST_EVENT: &str = "data: two\n\n";

/// A request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An HTTPS upstream (HTTP/1.1, keep-alive). `/sse` streams [`FIRST_EVENT`], waits
/// for [`HttpsUpstream::release`], then sends [`LAST_EVENT`]; any other path answers
/// `ok` with the request's `Authorization` echoed in `x-echo-authorization`.
pub struct HttpsUpstream {
    pub addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<Notify>,
}

type UpstreamBody = BoxBody<Bytes, Infallible>;

impl HttpsUpstream {
    pub async fn start(config: rustls::ServerConfig) -> HttpsUpstream {
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = HttpsUpstream {
            addr: listener.local_addr().unwrap(),
            handshakes: Arc::default(),
            seen: Arc::default(),
            release: Arc::default(),
        };
        let (handshakes, seen, release) = (
            upstream.handshakes.clone(),
            upstream.seen.clone(),
            upstream.release.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(tls) = acceptor.accept(stream).await else {
                    continue;
                };
                handshakes.fetch_add(1, Ordering::SeqCst);
                let (seen, release) = (seen.clone(), release.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (seen, release) = (seen.clone(), release.clone());
                    async move { Ok::<_, Infallible>(answer(request, &seen, release).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service),
                );
            }
        });
        upstream
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TLS handshakes completed so far (on the server's side: a client that refuses
    /// the certificate of a TLS 1.3 server may still count).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Lets the `/sse` stream in progress send its last event and end.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

async fn answer(
    request: Request<Incoming>,
    seen: &Mutex<Vec<Seen>>,
    release: Arc<Notify>,
) -> Response<UpstreamBody> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let echo = head.headers.get("authorization").cloned();
    let sse = head.uri.path() == "/sse";
    seen.lock().unwrap().push(Seen {
        uri: head.uri.to_string(),
        headers: head.headers,
        body,
    });
    if sse {
        let (events, stream) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
        tokio::spawn(async move {
            let _ = events.send(Ok(Frame::data(Bytes::from(FIRST_EVENT)))).await;
            release.notified().await;
            let _ = events.send(Ok(Frame::data(Bytes::from(LAST_EVENT)))).await;
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(StreamBody::new(ReceiverStream::new(stream)).boxed())
            .unwrap();
    }
    let mut response = Response::builder();
    if let Some(echo) = echo {
        response = response.header("x-echo-authorization", echo);
    }
    response.body(Full::new(Bytes::from("ok")).boxed()).unwrap()
}

/// An HTTP/1.1 client over TLS for `host`, trusting only `root`, inside a CONNECT
/// tunnel to `host:port` through `proxy`; the handshake's error when it fails.
pub async fn https_client(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    root: CertificateDer<'static>,
) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let (stream, head) = connect(proxy, &format!("{host}:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");
    let tls = tls_client(stream, host, root).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends `request` on `sender`; returns the response head and its whole body.
pub async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> (http::response::Parts, String) {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (head, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (head, String::from_utf8_lossy(&body).to_string())
}
