//! The proxy server: accept loops, connection limits, per-connection HTTP/1.1 service,
//! graceful shutdown.

pub(crate) mod client_end;
mod connect;
mod counted;
mod exchange;
mod forward;
pub mod framing;
pub(crate) mod intercept;
pub(crate) mod origin;
pub(crate) mod record;
pub(crate) mod request;
pub(crate) mod respond;
pub mod sni;
pub mod sniff;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{HttpService, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use record::{Client, DecisionRecord, Outcome};
use respond::ProxyError;
use sniff::{HeadRefusal, Judged, Sniffed, Verdicts};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::live::PolicyStore;
use crate::net::dial::Dialer;
use crate::net::listen::{Accepted, Listener, accept_retrying};
use crate::net::tunnel::Socket;
use crate::ops::telemetry::{LimitHit, Telemetry};
use crate::secrets::Secrets;
use intercept::Interceptor;

/// Why a body stopped streaming.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the proxy sends and every request it forwards.
pub(crate) type ProxyBody = BoxBody<Bytes, BodyError>;

/// Resource limits and timeouts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Time allowed for a client to send a complete request head.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (431 beyond).
    pub max_header_bytes: usize,
    /// Time allowed to resolve and connect to an upstream (504 beyond).
    pub connect_timeout: Duration,
    /// A tunnel with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Concurrent client connections (503 beyond).
    pub max_connections: usize,
    /// How long shutdown waits for open connections and tunnels to finish.
    pub shutdown_grace: Duration,
    /// The TLS name check on tunnels to TLS ports (bounded in bytes and time).
    pub sni: crate::server::sni::SniCheck,
    /// Tunnel ports served as HTTP towards the CONNECT host (`--http-ports`).
    pub http_ports: Vec<u16>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15 * 60),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(10),
            sni: crate::server::sni::SniCheck::default(),
            http_ports: vec![80],
        }
    }
}

/// State shared by every connection of one server.
pub(crate) struct Shared {
    policy: PolicyStore,
    telemetry: Arc<Telemetry>,
    dialer: Dialer,
    client: upstream::UpstreamClient,
    limits: Limits,
    /// The secrets: watched for in every request, added in decrypted tunnels.
    secrets: Arc<Secrets>,
    /// Decrypts tunnels to the secrets' hosts; `None` without secrets.
    interceptor: Option<Interceptor>,
    connections: Arc<Semaphore>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// A proxy server, ready to run on listeners the caller has bound.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// A server deciding with `policy`, dialing with `dialer`, within `limits`, counting
    /// in `telemetry`; it holds no secret and decrypts nothing.
    pub fn new(
        policy: PolicyStore,
        dialer: Dialer,
        limits: Limits,
        telemetry: Arc<Telemetry>,
    ) -> Server {
        Server::with_secrets(policy, dialer, limits, telemetry, Arc::default(), None)
    }

    /// A server that also watches for the placeholders of `secrets`, and adds them in
    /// the tunnels `interceptor` decrypts.
    pub(crate) fn with_secrets(
        policy: PolicyStore,
        dialer: Dialer,
        limits: Limits,
        telemetry: Arc<Telemetry>,
        secrets: Arc<Secrets>,
        interceptor: Option<Interceptor>,
    ) -> Server {
        let client = upstream::client(policy.clone(), dialer.clone(), telemetry.clone());
        Server {
            shared: Arc::new(Shared {
                telemetry,
                connections: Arc::new(Semaphore::new(limits.max_connections)),
                policy,
                dialer,
                client,
                limits,
                secrets,
                interceptor,
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Serves `listeners` until `shutdown` completes, then stops accepting and waits up to
    /// the shutdown grace period for open connections and tunnels.
    pub async fn run(self, listeners: Vec<Listener>, shutdown: impl Future<Output = ()>) {
        let shared = self.shared;
        let accept_loops = TaskTracker::new();
        for listener in listeners {
            accept_loops.spawn(accept_loop(listener, shared.clone()));
        }
        accept_loops.close();
        shutdown.await;
        tracing::info!("shutting down: no new connections; draining open ones");
        shared.shutdown.cancel();
        accept_loops.wait().await;
        shared.tasks.close();
        if tokio::time::timeout(shared.limits.shutdown_grace, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = shared.tasks.len(),
                "shutdown grace period over; closing remaining connections"
            );
        }
    }
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = accept_retrying("proxy", || listener.accept()) => accepted,
        };
        let permit = shared.connections.clone().try_acquire_owned().ok();
        let task_shared = shared.clone();
        match accepted {
            Accepted::Tcp(stream, peer) => shared.tasks.spawn(handle_connection(
                stream,
                Client::Tcp(peer),
                permit,
                task_shared,
            )),
            Accepted::Unix(stream) => {
                shared
                    .tasks
                    .spawn(handle_connection(stream, Client::Unix, permit, task_shared))
            }
        };
    }
}

/// Serves one client connection, or refuses it with 503 when over the connection limit.
async fn handle_connection<S>(
    stream: S,
    client: Client,
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
) where
    S: Socket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Some(permit) = permit else {
        shared.telemetry.limit(LimitHit::Connections);
        refuse_overloaded(stream).await;
        return;
    };
    let permit = Arc::new(permit);
    let verdicts = Verdicts::default();
    let stream = Sniffed::new(stream, shared.limits.max_header_bytes, verdicts.clone());
    let service_shared = shared.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = service_shared.clone();
        let permit = permit.clone();
        let judged = verdicts.next();
        async move {
            let response = handle_request::<S>(request, judged, client, shared, permit).await;
            Ok::<_, Infallible>(response)
        }
    });
    if let Err(err) = serve_http1(stream, service, &shared).await {
        tracing::debug!(error = %err, "client connection ended with an error");
    }
}

/// Serves HTTP/1.1 requests from `stream` with `service` (upgrades included) within the
/// server's limits, until the client is done; at shutdown, finishes the request in
/// progress first.
async fn serve_http1<I, Svc>(stream: I, service: Svc, shared: &Shared) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    Svc: HttpService<Incoming, ResBody = ProxyBody>,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout)
        .max_buf_size(shared.limits.max_header_bytes.max(8192))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shared.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = &result
        && err.is_timeout()
    {
        shared.telemetry.limit(LimitHit::HeaderTimeout);
    }
    result
}

async fn handle_request<S>(
    request: Request<Incoming>,
    judged: Judged,
    client: Client,
    shared: Arc<Shared>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<ProxyBody>
where
    S: Socket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let record = DecisionRecord::new(
        client,
        request.method().clone(),
        shared.policy.current(),
        shared.telemetry.clone(),
    );
    if let Err(err) = head_verdict(judged.head, &shared) {
        return fail(record, err);
    }
    if request::is_connect(&request) {
        connect::handle::<S>(request, &shared, record, permit).await
    } else {
        forward::handle(request, judged.body, &shared, record).await
    }
}

/// The refusal for a request head the sniffer refused, counted where it is a limit.
fn head_verdict(verdict: sniff::Verdict, shared: &Shared) -> Result<(), ProxyError> {
    match verdict {
        Ok(()) => Ok(()),
        Err(HeadRefusal::TooLarge) => {
            shared.telemetry.limit(LimitHit::HeadSize);
            Err(ProxyError::HeadTooLarge)
        }
        Err(HeadRefusal::Framing(reason)) => Err(ProxyError::BadRequest(reason.to_owned())),
    }
}

/// Ends a request with the response for `err`, logging the decision.
fn fail(mut record: DecisionRecord, err: ProxyError) -> Response<ProxyBody> {
    record.outcome = if err.is_denial() {
        Outcome::Denied(err.code())
    } else {
        Outcome::Failed(err.code())
    };
    record.detail = match &err {
        ProxyError::BadRequest(reason) => Some(reason.clone()),
        ProxyError::HostMismatch { requested, .. } => Some(format!("requested {requested}")),
        _ => None,
    };
    let mut response = err.to_response();
    // After a refusal the connection is not reused: the next bytes on it may be anything
    // (a body never read, tunnel data after a refused CONNECT).
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    record.status = response.status().as_u16();
    response
}

/// Answers a connection over the limit with 503 and closes it.
async fn refuse_overloaded<S: tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    const BODY: &str = "sandbox-proxy: too many connections, try again later\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         x-sandbox-proxy-error: overloaded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    tracing::warn!("connection limit reached; refusing a connection with 503");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
