//! The loopback upstreams behind the proxies: a TCP echo server and a plain HTTP server.

use std::{convert::Infallible, future::Future};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};
use tracing::debug;

use crate::Error;

/// Read buffer of the echo server; large, so bulk tests are not limited by it.
const ECHO_BUFFER: usize = 64 * 1024;

/// The body every HTTP GET receives.
pub const HTTP_BODY: &[u8] = b"hello from the sandbox-proxy bench upstream\n";

/// Serves the echo protocol on `listener` until the returned future is dropped: every
/// byte received is sent back; the write side is closed when the client closes its own.
pub async fn serve_echo(listener: TcpListener) -> Result<(), Error> {
    serve(listener, echo).await
}

/// Serves HTTP/1.1 with keep-alive on `listener` until the returned future is dropped:
/// every request is answered 200 with [`HTTP_BODY`].
pub async fn serve_http(listener: TcpListener) -> Result<(), Error> {
    serve(listener, http).await
}

/// Accepts connections and runs `handle` on each in a task owned by this future.
async fn serve<F, Fut>(listener: TcpListener, handle: F) -> Result<(), Error>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        while let Some(done) = connections.try_join_next() {
            if let Ok(Err(e)) = done {
                debug!(error = %e, "upstream connection ended with an error");
            }
        }
        match accepted {
            Ok((stream, _)) => {
                stream
                    .set_nodelay(true)
                    .map_err(Error::io("set TCP_NODELAY"))?;
                connections.spawn(handle(stream));
            }
            // Running out of descriptors or similar: back off instead of spinning.
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn echo(mut stream: TcpStream) -> Result<(), Error> {
    let mut buf = vec![0u8; ECHO_BUFFER];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(Error::io("echo read"))?;
        if n == 0 {
            return stream.shutdown().await.map_err(Error::io("echo shutdown"));
        }
        stream
            .write_all(&buf[..n])
            .await
            .map_err(Error::io("echo write"))?;
    }
}

async fn http(stream: TcpStream) -> Result<(), Error> {
    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(HTTP_BODY))))
    });
    http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echo_returns_what_it_receives_and_closes_after_the_client() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_echo(listener));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"hello");
        server.abort();
    }

    #[tokio::test]
    async fn http_answers_get_with_the_body_and_keeps_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_http(listener));
        let mut s = TcpStream::connect(addr).await.unwrap();
        for _ in 0..2 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let (head, rest) = crate::wire::read_head(&mut s).await.unwrap();
            assert_eq!(head.status, 200);
            assert_eq!(head.content_length, Some(HTTP_BODY.len() as u64));
            crate::wire::drain_body(&mut s, head.content_length, rest.len())
                .await
                .unwrap();
        }
        server.abort();
    }
}
