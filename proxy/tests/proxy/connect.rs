//! CONNECT tunnels: dial before 200, relay both ways, half-close, ports, IP literals.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::free_port;
use crate::support::http::{connect, status};
use crate::support::proxy::ProxySpec;
use crate::support::upstream::Echo;

#[tokio::test]
async fn tunnel_relays_both_ways_and_passes_half_close() {
    let echo = Echo::start().await;
    let proxy = ProxySpec::new(&format!("echo.test:{}\n", echo.port()))
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let (mut stream, head) = connect(proxy.addr, &format!("echo.test:{}", echo.port())).await;
    assert_eq!(status(&head), 200, "{head}");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    stream.write_all(&payload).await.unwrap();
    // Half-close: the echo server sees EOF, echoes everything, then closes its side.
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, payload);
}

#[tokio::test]
async fn bulk_transfers_arrive_exact_in_both_directions() {
    // Large enough that both directions fill whole reads and switch to splice(2).
    let echo = Echo::start().await;
    let proxy = ProxySpec::new(&format!("echo.test:{}\n", echo.port()))
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let (stream, head) = connect(proxy.addr, &format!("echo.test:{}", echo.port())).await;
    assert_eq!(status(&head), 200, "{head}");
    let payload: Vec<u8> = (0..16 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let (mut reader, mut writer) = stream.into_split();
    let sent = payload.clone();
    let sending = tokio::spawn(async move {
        writer.write_all(&sent).await.unwrap();
        writer.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(payload.len());
    reader.read_to_end(&mut back).await.unwrap();
    sending.await.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "bytes changed in transit");
}

#[tokio::test]
async fn bytes_pipelined_behind_the_connect_head_reach_the_upstream() {
    let echo = Echo::start().await;
    let proxy = ProxySpec::new(&format!("echo.test:{}\n", echo.port()))
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let target = format!("echo.test:{}", echo.port());
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nearly bytes");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("early bytes"), "{answer}");
}

#[tokio::test]
async fn refused_upstream_is_502_and_never_200() {
    let closed = free_port();
    let proxy = ProxySpec::new(&format!("gone.test:{closed}\n"))
        .pin("gone.test", &["127.0.0.1"])
        .start()
        .await;
    let (_, head) = connect(proxy.addr, &format!("gone.test:{closed}")).await;
    assert_eq!(status(&head), 502, "{head}");
    assert!(head.contains("x-sandbox-proxy-error: connect"), "{head}");
}

#[tokio::test]
async fn connect_timeout_is_504() {
    // A listener with a full accept queue drops further SYNs: a loopback-only black hole.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            fillers.push(stream);
        }
    }
    let mut spec = ProxySpec::new(&format!("slow.test:{port}\n")).pin("slow.test", &["127.0.0.1"]);
    spec.limits.connect_timeout = std::time::Duration::from_millis(300);
    let proxy = spec.start().await;
    let (_, head) = connect(proxy.addr, &format!("slow.test:{port}")).await;
    assert_eq!(status(&head), 504, "{head}");
    drop(socket);
}

#[tokio::test]
async fn connect_to_a_port_not_allowed_is_403_and_upstream_untouched() {
    let echo = Echo::start().await;
    let proxy = ProxySpec::new("echo.test\n")
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let (_, head) = connect(proxy.addr, &format!("echo.test:{}", echo.port())).await;
    assert_eq!(status(&head), 403, "{head}");
    assert!(head.contains("x-sandbox-proxy-deny: port"), "{head}");
    assert!(
        head.contains(&format!("add a line \"echo.test:{}\"", echo.port())),
        "{head}"
    );
    assert_eq!(echo.contacted(), 0);
}

#[tokio::test]
async fn ip_literal_targets_must_be_listed_themselves() {
    let echo = Echo::start().await;
    let port = echo.port();
    let listed = ProxySpec::new(&format!("127.0.0.1:{port}\n")).start().await;
    let (_, head) = connect(listed.addr, &format!("127.0.0.1:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");

    let unlisted = ProxySpec::new(&format!("*.echo.test:{port}\necho.test:{port}\n"))
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let before = echo.contacted();
    for target in ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"] {
        let (_, head) = connect(unlisted.addr, &format!("{target}:{port}")).await;
        assert_eq!(status(&head), 403, "{target}: {head}");
        assert!(head.contains("not-allowlisted"), "{head}");
    }
    assert_eq!(echo.contacted(), before);
}

#[tokio::test]
async fn connections_to_the_proxy_itself_are_refused() {
    let proxy = ProxySpec::new("self.test:{proxy_port}\n127.0.0.1:{proxy_port}\n")
        .pin("self.test", &["127.0.0.1"])
        .start()
        .await;
    let port = proxy.addr.port();
    for target in [format!("self.test:{port}"), format!("127.0.0.1:{port}")] {
        let (_, head) = connect(proxy.addr, &target).await;
        assert_eq!(status(&head), 403, "{target}: {head}");
        assert!(head.contains("x-sandbox-proxy-deny: self"), "{head}");
    }
}

#[tokio::test]
async fn hundreds_of_concurrent_tunnels_carry_verified_data() {
    let echo = Echo::start().await;
    let proxy = ProxySpec::new(&format!("echo.test:{}\n", echo.port()))
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let target = format!("echo.test:{}", echo.port());
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..300u32 {
        let target = target.clone();
        let addr = proxy.addr;
        tasks.spawn(async move {
            let (mut stream, head) = connect(addr, &target).await;
            assert_eq!(status(&head), 200);
            let payload: Vec<u8> = (0..20_000u32).map(|i| ((i + id) % 256) as u8).collect();
            stream.write_all(&payload).await.unwrap();
            let mut back = vec![0u8; payload.len()];
            stream.read_exact(&mut back).await.unwrap();
            assert_eq!(back, payload);
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.unwrap();
    }
}
