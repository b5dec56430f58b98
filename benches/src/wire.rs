//! The client side of the proxy protocols: CONNECT handshakes and response heads.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::Error;

/// Largest response head accepted; proxies answer CONNECT and errors with small heads.
const MAX_HEAD: usize = 16 * 1024;

/// Where the load goes: straight to the loopback upstream, or through a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Connect to the upstream on 127.0.0.1 without any proxy (the machine's limit).
    Direct,
    /// Ask the proxy listening at this address.
    Proxy(SocketAddr),
}

/// A host name the proxy is asked for, and the upstream port behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The name sent to the proxy; it must resolve to loopback for the proxy.
    pub host: String,
    /// The upstream's port on 127.0.0.1.
    pub port: u16,
}

impl Target {
    /// The `host:port` authority.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Status and body length of a parsed response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The Content-Length, if the head has one.
    pub content_length: Option<u64>,
    /// Length of the head in bytes, including the blank line.
    pub len: usize,
}

/// Opens a TCP connection with Nagle's algorithm off (the tests time small exchanges).
pub async fn connect(addr: SocketAddr) -> Result<TcpStream, Error> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(Error::io("connect"))?;
    stream
        .set_nodelay(true)
        .map_err(Error::io("set TCP_NODELAY"))?;
    Ok(stream)
}

/// Opens a byte stream to `target`: directly, or through the proxy with CONNECT, in
/// which case the proxy must answer 200.
pub async fn open_tunnel(route: Route, target: &Target) -> Result<TcpStream, Error> {
    match route {
        Route::Direct => connect(SocketAddr::from((Ipv4Addr::LOCALHOST, target.port))).await,
        Route::Proxy(proxy) => {
            let mut stream = connect(proxy).await?;
            let (head, rest) = send_connect(&mut stream, target).await?;
            if head.status != 200 {
                return Err(Error::Status {
                    expected: 200,
                    got: head.status,
                });
            }
            if !rest.is_empty() {
                return Err(Error::BadHead {
                    reason: "data after the CONNECT response head",
                });
            }
            Ok(stream)
        }
    }
}

/// Sends `CONNECT target` on `stream` and reads the response head. Returns the head and
/// any bytes read past it.
pub async fn send_connect(
    stream: &mut TcpStream,
    target: &Target,
) -> Result<(Head, Vec<u8>), Error> {
    let authority = target.authority();
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(Error::io("send CONNECT"))?;
    read_head(stream).await
}

/// Reads a response head from `stream`. Returns the head and any bytes read past it.
pub async fn read_head(stream: &mut TcpStream) -> Result<(Head, Vec<u8>), Error> {
    let mut buf = Vec::with_capacity(512);
    loop {
        if buf.len() >= MAX_HEAD {
            return Err(Error::BadHead {
                reason: "head too large",
            });
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(Error::io("read response head"))?;
        if n == 0 {
            return Err(Error::Closed {
                op: "read response head",
            });
        }
        if let Some(head) = parse_head(&buf)? {
            let rest = buf.split_off(head.len);
            return Ok((head, rest));
        }
    }
}

/// Reads and discards a response body: `content_length` bytes (of which `already` were
/// read with the head), or everything until the peer closes if there is no length.
pub async fn drain_body(
    stream: &mut TcpStream,
    content_length: Option<u64>,
    already: usize,
) -> Result<(), Error> {
    let mut left = content_length.map(|l| l.saturating_sub(already as u64));
    let mut buf = [0u8; 4096];
    while left != Some(0) {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(Error::io("read response body"))?;
        match (n, left.as_mut()) {
            (0, None) => break,
            (0, Some(_)) => {
                return Err(Error::Closed {
                    op: "read response body",
                });
            }
            (n, Some(l)) => *l = l.saturating_sub(n as u64),
            (_, None) => {}
        }
    }
    Ok(())
}

/// Parses a response head from the start of `buf`; `None` if it is not complete yet.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| Error::BadHead {
        reason: "not UTF-8",
    })?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(Error::BadHead {
            reason: "no HTTP/1.x status line",
        });
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(Error::BadHead {
            reason: "no status code",
        })?;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::BadHead {
                reason: "header line without a colon",
            });
        };
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.trim().parse().map_err(|_| Error::BadHead {
                reason: "invalid Content-Length",
            })?);
        }
    }
    Ok(Some(Head {
        status,
        content_length,
        len: end + 4,
    }))
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn connect_established_head_parses() {
        let head = parse_head(b"HTTP/1.1 200 Connection established\r\n\r\nxyz").unwrap();
        assert_eq!(
            head,
            Some(Head {
                status: 200,
                content_length: None,
                len: 39
            })
        );
    }

    #[test]
    fn content_length_is_found_case_insensitively() {
        let raw = b"HTTP/1.0 403 Filtered\r\nServer: x\r\ncontent-LENGTH: 12\r\n\r\n";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!((head.status, head.content_length), (403, Some(12)));
    }

    #[test]
    fn incomplete_head_is_none_and_garbage_is_an_error() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        assert!(parse_head(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn connect_through_a_scripted_proxy_returns_the_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (head, _) = read_request_head(&mut s).await;
            assert_eq!(
                head,
                "CONNECT echo.test:7 HTTP/1.1\r\nHost: echo.test:7\r\n\r\n"
            );
            s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).await.unwrap();
            b
        });
        let target = Target {
            host: "echo.test".into(),
            port: 7,
        };
        let mut s = open_tunnel(Route::Proxy(proxy), &target).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        assert_eq!(&server.await.unwrap(), b"ping");
    }

    #[tokio::test]
    async fn refused_connect_reports_the_status_and_body_is_drained() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            read_request_head(&mut s).await;
            s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno")
                .await
                .unwrap();
            s.write_all(b"pe\r\n").await.unwrap();
        });
        let target = Target {
            host: "denied.test".into(),
            port: 7,
        };
        let mut s = connect(proxy).await.unwrap();
        let (head, rest) = send_connect(&mut s, &target).await.unwrap();
        assert_eq!(head.status, 403);
        drain_body(&mut s, head.content_length, rest.len())
            .await
            .unwrap();
    }

    async fn read_request_head(s: &mut TcpStream) -> (String, usize) {
        let mut buf = Vec::new();
        while !buf.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            s.read_exact(&mut b).await.unwrap();
            buf.push(b[0]);
        }
        let len = buf.len();
        (String::from_utf8(buf).unwrap(), len)
    }
}
