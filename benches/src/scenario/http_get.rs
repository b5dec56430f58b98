//! Test 3: plain-HTTP GETs, absolute-form through the proxy (origin-form when direct).

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::{BodyExt, Empty};
use hyper::{body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use super::Context;
use crate::{Error, Route, runner::Operation, upstream::HTTP_BODY, wire};

/// A kept-alive client connection; its driver task ends when the connection is dropped.
struct Connection {
    sender: http1::SendRequest<Empty<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One worker issuing GETs, reusing its connection while the server allows it
/// (`keep_alive`), or with `Connection: close` and a new connection each time.
pub(super) struct HttpGet {
    connect_to: SocketAddr,
    uri: Uri,
    host: HeaderValue,
    keep_alive: bool,
    connection: Option<Connection>,
}

impl HttpGet {
    pub(super) fn new(ctx: &Context, keep_alive: bool) -> Result<Self, Error> {
        let authority = ctx.http.authority();
        let (connect_to, uri) = match ctx.route {
            Route::Direct => (
                SocketAddr::from((Ipv4Addr::LOCALHOST, ctx.http.port)),
                Uri::from_static("/"),
            ),
            Route::Proxy(proxy) => (
                proxy,
                Uri::builder()
                    .scheme("http")
                    .authority(authority.as_str())
                    .path_and_query("/")
                    .build()?,
            ),
        };
        Ok(Self {
            connect_to,
            uri,
            host: HeaderValue::try_from(authority).map_err(http::Error::from)?,
            keep_alive,
            connection: None,
        })
    }

    /// The kept connection if the server still allows requests on it (and `true`), or a
    /// new one (and `false`).
    async fn connection(&mut self) -> Result<(&mut Connection, bool), Error> {
        let reused = match self.connection.as_mut() {
            Some(c) => c.sender.ready().await.is_ok(),
            None => false,
        };
        if !reused {
            let stream = wire::connect(self.connect_to).await?;
            let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
            let driver = tokio::spawn(async move {
                // Its failures surface through `sender`.
                let _ = conn.await;
            });
            self.connection = Some(Connection { sender, driver });
        }
        let connection = self
            .connection
            .as_mut()
            .ok_or(Error::Closed { op: "connect" })?;
        Ok((connection, reused))
    }

    fn request(&self) -> Result<Request<Empty<Bytes>>, Error> {
        let mut request = Request::get(self.uri.clone()).header(header::HOST, self.host.clone());
        if !self.keep_alive {
            request = request.header(header::CONNECTION, "close");
        }
        Ok(request.body(Empty::new())?)
    }

    /// One GET: whether the server keeps the connection, the status and the body.
    async fn get(&mut self) -> Result<(bool, StatusCode, Bytes), Error> {
        loop {
            let request = self.request()?;
            let (connection, reused) = self.connection().await?;
            let exchange = async {
                let response = connection.sender.send_request(request).await?;
                let keep = reusable(&response);
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, Error>((keep, status, body))
            };
            match exchange.await {
                Ok(done) => return Ok(done),
                Err(e) => {
                    self.connection = None;
                    // A server may close a kept connection without saying so (tinyproxy
                    // does); like any client, retry once on a new connection.
                    let stale = matches!(&e, Error::Http(h) if h.is_incomplete_message() || h.is_canceled());
                    if !(reused && stale) {
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl Operation for HttpGet {
    async fn run(&mut self) -> Result<(), Error> {
        let (keep, status, body) = self.get().await?;
        if !(self.keep_alive && keep) {
            self.connection = None;
        }
        if !status.is_success() {
            return Err(Error::HttpStatus(status.as_u16()));
        }
        if body != HTTP_BODY {
            return Err(Error::Corrupt { offset: 0 });
        }
        Ok(())
    }
}

/// Whether the server keeps the connection open after this response.
fn reusable(response: &Response<Incoming>) -> bool {
    let connection = response
        .headers()
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match response.version() {
        Version::HTTP_10 => connection.contains("keep-alive"),
        _ => !connection.contains("close"),
    }
}
