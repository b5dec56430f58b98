//! Absolute-form plain-HTTP forwarding: headers, pooling, bodies, refusals.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::Scratch;
use crate::support::eventually;
use crate::support::http::{Kind, exchange, raw, read_message, status};
use crate::support::proxy::{ProxySpec, Running, TestProxy};
use crate::support::upstream::HttpUpstream;

/// A proxy allowing `web.test:port`, with web.test on loopback.
async fn web_proxy(port: u16) -> TestProxy {
    ProxySpec::new(&format!("web.test:{port}\n"))
        .pin("web.test", &["127.0.0.1"])
        .start()
        .await
}

fn get(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: ignored.test\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn forwards_with_url_host_and_without_hop_by_hop_headers() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = web_proxy(port).await;
    let extra = "Host: evil.test\r\nConnection: close, X-Private\r\nX-Private: 1\r\n\
                 Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n\
                 Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: websocket\r\n\
                 X-Kept: yes\r\n";
    let request = format!("GET http://WEB.test.:{port}/path?q=1 HTTP/1.1\r\n{extra}\r\n");
    let response = raw(proxy.addr, request.as_bytes()).await;
    assert_eq!(status(&response), 200, "{response}");
    assert!(response.ends_with("hello from upstream"), "{response}");
    let lower = response.to_ascii_lowercase();
    assert!(!lower.contains("x-upstream-secret"), "{response}");
    assert!(!lower.contains("keep-alive: timeout"), "{response}");

    let heads = upstream.heads().await;
    assert_eq!(heads.len(), 1);
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /path?q=1 http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("host: web.test:{port}\r\n")),
        "{head}"
    );
    assert!(!head.contains("evil.test"), "{head}");
    assert!(head.contains("x-kept: yes"), "{head}");
    for absent in [
        "x-private",
        "proxy-authorization",
        "proxy-connection",
        "keep-alive:",
        "\r\nte:",
        "trailer:",
        "upgrade:",
        "via:",
        "x-forwarded-for:",
    ] {
        assert!(!head.contains(absent), "{absent} leaked: {head}");
    }
}

#[tokio::test]
async fn keep_alive_requests_share_one_pooled_upstream_connection() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = web_proxy(port).await;
    let url = format!("http://web.test:{port}/");
    let two = [get(&url, ""), get(&url, "")].concat();
    let response = exchange(proxy.addr, &two, 2).await;
    assert_eq!(
        response.matches("hello from upstream").count(),
        2,
        "{response}"
    );
    let again = raw(proxy.addr, &get(&url, "")).await;
    assert_eq!(status(&again), 200);
    assert_eq!(upstream.contacted(), 1, "pooled connection not reused");
}

#[tokio::test]
async fn request_bodies_stream_upstream_with_their_framing() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = web_proxy(port).await;
    let url = format!("http://web.test:{port}/upload");
    let fixed = format!("POST {url} HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(status(&raw(proxy.addr, fixed.as_bytes()).await), 200);
    let chunked =
        format!("POST {url} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(status(&raw(proxy.addr, chunked.as_bytes()).await), 200);
    assert_eq!(upstream.heads().await.len(), 2);
}

#[tokio::test]
async fn non_proxy_and_https_requests_are_400() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = web_proxy(port).await;
    for target in [
        "/".to_owned(),
        format!("https://web.test:{port}/"),
        format!("ftp://web.test:{port}/"),
        format!("http://user:pw@web.test:{port}/"),
        format!("http://user@web.test:{port}/"),
    ] {
        let response = raw(proxy.addr, &get(&target, "")).await;
        assert_eq!(status(&response), 400, "{target}: {response}");
    }
    assert_eq!(upstream.contacted(), 0);
}

#[tokio::test]
async fn plain_http_to_a_port_not_allowed_is_403() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = ProxySpec::new("web.test\n")
        .pin("web.test", &["127.0.0.1"])
        .start()
        .await;
    let response = raw(proxy.addr, &get(&format!("http://web.test:{port}/"), "")).await;
    assert_eq!(status(&response), 403, "{response}");
    assert!(
        response.contains("x-sandbox-proxy-deny: port"),
        "{response}"
    );
    assert_eq!(upstream.contacted(), 0);
}

#[tokio::test]
async fn ambiguous_framing_is_400_and_never_forwarded() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = web_proxy(port).await;
    let framings = [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: Chunked \r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked,\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ];
    for framing in framings {
        let request = format!(
            "POST http://web.test:{port}/ HTTP/1.1\r\n{framing}\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        let response = raw(proxy.addr, request.as_bytes()).await;
        assert_eq!(status(&response), 400, "{framing:?}: {response}");
    }
    assert_eq!(upstream.contacted(), 0);
    // Still serving.
    let ok = raw(proxy.addr, &get(&format!("http://web.test:{port}/"), "")).await;
    assert_eq!(status(&ok), 200);
}

/// Chunk-size lines that are not a chunk size, though the head was fine.
const MALFORMED_SIZES: [&str; 4] = ["0x5", "-5", "12345678901234567890", "5 5"];

#[tokio::test]
async fn a_chunked_body_malformed_from_its_first_size_is_400_and_no_upstream_is_opened() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let other = HttpUpstream::start().await;
    let mut spec = ProxySpec::new(&format!("web.test:{port}\nother.test:{}\n", other.port()))
        .pin("web.test", &["127.0.0.1"])
        .pin("other.test", &["127.0.0.1"]);
    spec.limits.connect_timeout = std::time::Duration::from_secs(5);
    let proxy = spec.start().await;
    let head =
        format!("POST http://web.test:{port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for size in MALFORMED_SIZES {
        let body = format!("{size}\r\nhello\r\n0\r\n\r\n");
        // With the head, and after it in a write of its own.
        let together = raw(proxy.addr, format!("{head}{body}").as_bytes()).await;
        assert_eq!(status(&together), 400, "{size}: {together}");
        assert!(together.contains("malformed chunked"), "{together}");
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let answer = read_message(&mut stream, &mut buffer, Kind::Response).await;
        assert_eq!(status(&answer.unwrap().head), 400, "{size}");
    }
    // Another exchange end to end: a connection still pending towards web.test would
    // have been opened by now.
    let ok = raw(
        proxy.addr,
        format!("GET http://other.test:{}/ HTTP/1.1\r\n\r\n", other.port()).as_bytes(),
    )
    .await;
    assert_eq!(status(&ok), 200, "{ok}");
    assert_eq!(upstream.contacted(), 0, "an upstream connection was opened");
}

#[tokio::test]
async fn a_chunked_body_turning_malformed_mid_stream_is_400_and_its_connection_is_closed() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = web_proxy(port).await;
    for (index, size) in MALFORMED_SIZES.into_iter().enumerate() {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let head = format!(
            "POST http://web.test:{port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        eventually("the request is on its way upstream", || async {
            (upstream.contacted() == index + 1 && upstream.open() == 1).then_some(())
        })
        .await;
        let rest = format!("{size}\r\nhello\r\n0\r\n\r\n");
        stream.write_all(rest.as_bytes()).await.unwrap();
        let mut buffer = Vec::new();
        let answer = read_message(&mut stream, &mut buffer, Kind::Response).await;
        let answer = answer.unwrap().text();
        assert_eq!(status(&answer), 400, "{size}: {answer}");
        eventually("the upstream connection is closed, not pooled", || async {
            (upstream.open() == 0).then_some(())
        })
        .await;
    }
    assert!(
        upstream.heads().await.is_empty(),
        "a malformed request was completed"
    );
    let ok = raw(proxy.addr, &get(&format!("http://web.test:{port}/"), "")).await;
    assert_eq!(status(&ok), 200);
}

#[tokio::test]
async fn the_binary_logs_why_a_chunked_body_was_refused() {
    let upstream = HttpUpstream::start().await;
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", &format!("web.test:{}\n", upstream.port()));
    let proxy = Running::start(&allowlist, &["--resolve", "web.test=127.0.0.1"]);
    let request = format!(
        "POST http://web.test:{}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
        upstream.port()
    );
    let response = raw(proxy.address.parse().unwrap(), request.as_bytes()).await;
    assert_eq!(status(&response), 400, "{response}");
    let decisions = proxy.decisions_once(|all| !all.is_empty());
    assert_eq!(decisions[0]["decision"], "error");
    assert_eq!(decisions[0]["reason"], "bad-request");
    assert_eq!(decisions[0]["detail"], "malformed chunked request body");
    assert_eq!(upstream.contacted(), 0);
}
