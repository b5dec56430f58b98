//! Limits: head size and read time, connection cap, tunnel idle timeout.

use std::time::Duration;

use sandbox_proxy::Limits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::eventually;
use crate::support::http::{closes_within, connect, echo_roundtrip, raw, status};
use crate::support::proxy::ProxySpec;
use crate::support::upstream::Echo;

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(400),
        max_connections: 3,
        connect_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let proxy = ProxySpec::new("a.test\n").start().await;
    let big = format!(
        "GET http://a.test/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let response = raw(proxy.addr, big.as_bytes()).await;
    assert_eq!(status(&response), 431, "{response}");
}

#[tokio::test]
async fn slow_heads_are_cut_off_and_the_proxy_keeps_serving() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = ProxySpec::new(&format!("echo.test:{port}\n"))
        .pin("echo.test", &["127.0.0.1"])
        .limits(limits())
        .start()
        .await;
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"CONNECT echo.test:").await.unwrap();
    assert!(
        closes_within(&mut slow, Duration::from_secs(5)).await,
        "a slow head must not hold the connection"
    );
    assert_eq!(echo.contacted(), 0);
    let (_, head) = connect(proxy.addr, &format!("echo.test:{port}")).await;
    assert_eq!(status(&head), 200);
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    let proxy = ProxySpec::new("a.test\n").limits(limits()).start().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(b"GET http://a.test:1/ HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    // The held connections take their slots as soon as the proxy accepts them.
    let response = eventually("the connection cap is reached", || async {
        let response = raw(proxy.addr, b"GET http://a.test/ HTTP/1.1\r\n\r\n").await;
        (status(&response) == 503).then_some(response)
    })
    .await;
    assert!(response.contains("x-sandbox-proxy-error: overloaded"));
    drop(held);
}

#[tokio::test]
async fn idle_tunnels_are_closed_after_the_idle_timeout() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = ProxySpec::new(&format!("echo.test:{port}\n"))
        .pin("echo.test", &["127.0.0.1"])
        .limits(limits())
        .start()
        .await;
    let (mut stream, head) = connect(proxy.addr, &format!("echo.test:{port}")).await;
    assert_eq!(status(&head), 200);
    // Traffic keeps the tunnel open well past the idle timeout...
    let idle = limits().idle_timeout;
    let active_until = tokio::time::Instant::now() + idle * 3;
    loop {
        assert!(
            echo_roundtrip(&mut stream).await,
            "a tunnel in use was closed"
        );
        if tokio::time::Instant::now() >= active_until {
            break;
        }
        tokio::time::sleep(idle / 4).await;
    }
    // ...half the timeout in silence leaves it open...
    assert!(
        !closes_within(&mut stream, idle / 2).await,
        "closed before the idle timeout"
    );
    // ...and the rest of it closes it.
    assert!(
        closes_within(&mut stream, Duration::from_secs(5)).await,
        "idle tunnel still open"
    );
}
