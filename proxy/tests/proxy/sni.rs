//! The TLS name check on CONNECT tunnels: real rustls clients through the proxy, and an
//! upstream that records every byte it receives, to prove that a refused tunnel sends it
//! nothing (it is connected, since the proxy dials before answering 200, but silent).

use std::sync::Arc;
use std::time::Duration;

use sandbox_proxy::server::sni::SniCheck;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_rustls::client::TlsStream;

use crate::support::http::{closes_within, connect, status};
use crate::support::proxy::{ProxySpec, Running, TestProxy};
use crate::support::tls::{Ech, ech_client, get_over_tls, tls_client, tls_upstream};
use crate::support::{Scratch, curl, eventually};

/// An upstream that answers nothing and records what each connection sent, and when
/// each connection ended.
struct Recorder {
    port: u16,
    connections: Arc<Mutex<Vec<Connection>>>,
}

#[derive(Clone, Default)]
struct Connection {
    received: Vec<u8>,
    ended: bool,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let log = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                let index = {
                    let mut log = log.lock().await;
                    log.push(Connection::default());
                    log.len() - 1
                };
                tokio::spawn(async move {
                    let mut chunk = [0u8; 4096];
                    loop {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => log.lock().await[index]
                                .received
                                .extend_from_slice(&chunk[..n]),
                        }
                    }
                    log.lock().await[index].ended = true;
                });
            }
        });
        Recorder { port, connections }
    }

    /// Waits (bounded) until connection `index` exists and `done` holds for it.
    async fn wait_for(&self, index: usize, done: impl Fn(&Connection) -> bool) -> Connection {
        let what = format!("upstream connection {index} reaches the expected state");
        eventually(&what, || async {
            let connections = self.connections.lock().await;
            connections.get(index).filter(|c| done(c)).cloned()
        })
        .await
    }

    /// Waits until the proxy has closed upstream connection `index`; asserts it got
    /// no byte at all.
    async fn assert_closed_silent(&self, index: usize) {
        let connection = self.wait_for(index, |c| c.ended).await;
        assert!(
            connection.received.is_empty(),
            "upstream received {} bytes",
            connection.received.len()
        );
    }
}

/// The ClientHello a real rustls client sends for `name`, captured on a recorder.
async fn captured_hello(name: &str) -> Vec<u8> {
    let recorder = Recorder::start().await;
    let (_, _, cert) = tls_upstream("unused.test").await;
    let stream = TcpStream::connect(("127.0.0.1", recorder.port))
        .await
        .unwrap();
    let name = name.to_owned();
    let client = tokio::spawn(async move { tls_client(stream, &name, cert).await.map(drop) });
    let connection = recorder.wait_for(0, |c| !c.received.is_empty()).await;
    client.abort();
    connection.received
}

/// A proxy allowing `names` (pinned to loopback) and `127.0.0.1` on `port`, checking
/// the TLS name on that port.
async fn proxy(names: &[&'static str], port: u16, check: SniCheck) -> TestProxy {
    let mut allowlist = format!("127.0.0.1:{port}\n");
    let mut spec = ProxySpec::new("");
    for name in names {
        allowlist.push_str(&format!("{name}:{port}\n"));
        spec = spec.pin(name, &["127.0.0.1"]);
    }
    spec.allowlist = allowlist;
    spec.limits.sni = SniCheck {
        ports: vec![port],
        ..check
    };
    spec.start().await
}

/// Opens a tunnel that must be accepted with 200.
async fn tunnel(proxy: &TestProxy, target: &str) -> TcpStream {
    let (stream, head) = connect(proxy.addr, target).await;
    assert_eq!(status(&head), 200, "{head}");
    stream
}

/// Opens a tunnel to `target` (upstream connection `index` of `recorder`), runs a
/// rustls handshake for `offered` through it, and asserts that the proxy answered with
/// an `access_denied` alert and closed the upstream without sending it a byte.
async fn assert_refused(
    proxy: &TestProxy,
    recorder: &Recorder,
    index: usize,
    target: &str,
    offered: &str,
) {
    // Any certificate: the handshake must end before the server's would be looked at.
    let cert = rcgen::generate_simple_self_signed(vec!["any.test".to_owned()])
        .unwrap()
        .cert
        .der()
        .clone();
    let offered = offered.to_owned();
    assert_refused_handshake(proxy, recorder, index, target, |stream| async move {
        tls_client(stream, &offered, cert).await
    })
    .await;
}

/// Opens a tunnel to `target` (upstream connection `index` of `recorder`), runs
/// `handshake` through it, and asserts that the proxy answered with an `access_denied`
/// alert and closed the upstream without sending it a byte.
async fn assert_refused_handshake<F, Fut>(
    proxy: &TestProxy,
    recorder: &Recorder,
    index: usize,
    target: &str,
    handshake: F,
) where
    F: FnOnce(TcpStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<TlsStream<TcpStream>>>,
{
    let stream = tunnel(proxy, target).await;
    let outcome = tokio::time::timeout(Duration::from_secs(5), handshake(stream))
        .await
        .expect("the handshake was neither refused nor completed");
    let Err(err) = outcome else {
        panic!("{target}: the handshake completed");
    };
    let alert = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert_eq!(
        alert,
        Some(&rustls::Error::AlertReceived(
            rustls::AlertDescription::AccessDenied
        )),
        "{target}: {err}"
    );
    recorder.assert_closed_silent(index).await;
}

/// True when the proxy closes `stream` within a few seconds.
async fn closed_by_proxy(stream: &mut TcpStream) -> bool {
    closes_within(stream, Duration::from_secs(5)).await
}

#[tokio::test]
async fn a_matching_server_name_tunnels_real_tls() {
    let (upstream, _, cert) = tls_upstream("tls.test").await;
    let port = upstream.port();
    let proxy = proxy(&["tls.test"], port, SniCheck::default()).await;
    let stream = tunnel(&proxy, &format!("TLS.test.:{port}")).await;
    let tls = tls_client(stream, "tls.test", cert).await.unwrap();
    let response = get_over_tls(tls).await;
    assert!(response.ends_with("hello over tls"), "{response}");
}

#[tokio::test]
async fn a_server_name_for_another_host_is_refused_and_upstream_gets_nothing() {
    let recorder = Recorder::start().await;
    let names = ["tls.test", "other.test"];
    let proxy = proxy(&names, recorder.port, SniCheck::default()).await;
    let target = format!("tls.test:{}", recorder.port);
    // Another allowed name, then a name not in the allowlist at all.
    assert_refused(&proxy, &recorder, 0, &target, "other.test").await;
    assert_refused(&proxy, &recorder, 1, &target, "evil.test").await;
}

#[tokio::test]
async fn a_name_target_without_server_name_is_refused() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    let target = format!("tls.test:{}", recorder.port);
    // rustls sends no server name when connecting to an IP address.
    assert_refused(&proxy, &recorder, 0, &target, "127.0.0.1").await;
}

#[tokio::test]
async fn a_hello_offering_encrypted_client_hello_is_refused_grease_included() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    let target = format!("tls.test:{}", recorder.port);
    // GREASE ECH, as browsers send it: the outer name is the CONNECT host itself.
    assert_refused_handshake(&proxy, &recorder, 0, &target, |stream| {
        ech_client(stream, "tls.test", Ech::Grease)
    })
    .await;
    // Real ECH: the outer (public) name is the allowed host, the inner one a site the
    // allowlist never named; the proxy cannot see which one the server will use.
    assert_refused_handshake(&proxy, &recorder, 1, &target, |stream| {
        ech_client(stream, "evil.test", Ech::PublicName("tls.test"))
    })
    .await;
}

#[tokio::test]
async fn plain_http_on_a_tls_port_is_refused() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    let mut stream = tunnel(&proxy, &format!("tls.test:{}", recorder.port)).await;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_proxy(&mut stream).await);
    recorder.assert_closed_silent(0).await;
}

#[tokio::test]
async fn a_listed_ip_literal_target_needs_no_server_name() {
    let (upstream, _, cert) = tls_upstream("127.0.0.1").await;
    let port = upstream.port();
    let proxy = proxy(&[], port, SniCheck::default()).await;
    let stream = tunnel(&proxy, &format!("127.0.0.1:{port}")).await;
    let tls = tls_client(stream, "127.0.0.1", cert).await.unwrap();
    let response = get_over_tls(tls).await;
    assert!(response.ends_with("hello over tls"), "{response}");
}

#[tokio::test]
async fn a_server_name_on_an_ip_literal_target_is_refused() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&[], recorder.port, SniCheck::default()).await;
    let target = format!("127.0.0.1:{}", recorder.port);
    assert_refused(&proxy, &recorder, 0, &target, "tls.test").await;
}

#[tokio::test]
async fn with_the_check_off_a_mismatch_is_relayed() {
    let recorder = Recorder::start().await;
    let off = SniCheck {
        enabled: false,
        ..SniCheck::default()
    };
    let proxy = proxy(&["tls.test"], recorder.port, off).await;
    let hello = captured_hello("other.test").await;
    let mut stream = tunnel(&proxy, &format!("tls.test:{}", recorder.port)).await;
    stream.write_all(&hello).await.unwrap();
    let got = recorder
        .wait_for(0, |c| c.received.len() >= hello.len())
        .await;
    assert_eq!(got.received, hello);
}

#[tokio::test]
async fn a_hello_arriving_in_pieces_is_relayed_whole() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    let hello = captured_hello("tls.test").await;
    let mut stream = tunnel(&proxy, &format!("tls.test:{}", recorder.port)).await;
    let (first, second) = hello.split_at(hello.len() / 2);
    for piece in [&first[..3], &first[3..]] {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sent = recorder.connections.lock().await[0].received.len();
        assert_eq!(sent, 0, "bytes went up before the hello was complete");
    }
    stream.write_all(second).await.unwrap();
    let got = recorder
        .wait_for(0, |c| c.received.len() >= hello.len())
        .await;
    assert_eq!(got.received, hello);
}

#[tokio::test]
async fn a_truncated_hello_is_refused_when_the_client_stops() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    let hello = captured_hello("tls.test").await;
    let mut stream = tunnel(&proxy, &format!("tls.test:{}", recorder.port)).await;
    stream.write_all(&hello[..hello.len() - 1]).await.unwrap();
    stream.shutdown().await.unwrap();
    assert!(closed_by_proxy(&mut stream).await);
    recorder.assert_closed_silent(0).await;
}

#[tokio::test]
async fn a_slow_hello_is_refused_after_the_timeout() {
    let recorder = Recorder::start().await;
    let quick = SniCheck {
        timeout: Duration::from_millis(300),
        ..SniCheck::default()
    };
    let proxy = proxy(&["tls.test"], recorder.port, quick).await;
    let mut stream = tunnel(&proxy, &format!("tls.test:{}", recorder.port)).await;
    stream.write_all(&[22, 3, 1]).await.unwrap();
    assert!(closed_by_proxy(&mut stream).await);
    recorder.assert_closed_silent(0).await;
}

#[tokio::test]
async fn garbage_after_a_record_header_is_refused_without_hanging() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    for (index, garbage) in [
        &[22, 3, 1, 0, 5, 2, 0, 0, 1, 0][..], // a ServerHello from a client
        &[22, 3, 1, 0xff, 0xff],              // a record longer than TLS allows
        &[22, 3, 3, 0, 5, 1, 0, 0, 1, 0],     // a ClientHello too short to parse
    ]
    .into_iter()
    .enumerate()
    {
        let mut stream = tunnel(&proxy, &format!("tls.test:{}", recorder.port)).await;
        stream.write_all(garbage).await.unwrap();
        assert!(closed_by_proxy(&mut stream).await, "{garbage:?}");
        recorder.assert_closed_silent(index).await;
    }
}

#[tokio::test]
async fn a_hello_sent_with_the_connect_head_is_checked_too() {
    let recorder = Recorder::start().await;
    let proxy = proxy(&["tls.test"], recorder.port, SniCheck::default()).await;
    let target = format!("tls.test:{}", recorder.port);
    for (index, name) in ["tls.test", "other.test"].into_iter().enumerate() {
        let hello = captured_hello(name).await;
        let mut request =
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
        request.extend_from_slice(&hello);
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(&request).await.unwrap();
        if name == "tls.test" {
            let got = recorder
                .wait_for(index, |c| c.received.len() >= hello.len())
                .await;
            assert_eq!(got.received, hello);
        } else {
            assert!(closed_by_proxy(&mut stream).await);
            recorder.assert_closed_silent(index).await;
        }
    }
}

#[tokio::test]
async fn the_binary_logs_the_refusal_in_the_decision_line_and_curl_sees_access_denied() {
    let (upstream, pem, _) = tls_upstream("tls.test").await;
    let port = upstream.port().to_string();
    let scratch = Scratch::new();
    let allowlist = scratch.file(
        "allow.txt",
        &format!("tls.test:{port}\nother.test:{port}\n"),
    );
    let ca = scratch.file("ca.pem", &pem);
    let proxy = Running::start(
        &allowlist,
        &[
            "--sni-ports",
            &port,
            "--resolve",
            "tls.test=127.0.0.1",
            "--resolve",
            "other.test=127.0.0.1",
        ],
    );
    let via = format!("http://{}", proxy.address);
    let ca = ca.to_str().unwrap();
    let good = curl(&[
        "-x",
        &via,
        "--cacert",
        ca,
        &format!("https://tls.test:{port}/"),
    ])
    .await;
    assert_eq!(good, "hello over tls");
    // curl asks the proxy for tls.test but names other.test inside TLS.
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-x", &via, "--cacert", ca])
        .arg("--connect-to")
        .arg(format!("other.test:{port}:tls.test:{port}"))
        .arg(format!("https://other.test:{port}/"))
        .output()
        .await
        .unwrap();
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("access denied"), "{error}");

    let decisions = proxy.decisions_once(|all| {
        all.iter()
            .filter(|event| event["host"] == "tls.test")
            .count()
            >= 2
    });
    let reasons: Vec<(&str, &str)> = decisions
        .iter()
        .filter(|event| event["host"] == "tls.test")
        .map(|event| {
            (
                event["decision"].as_str().unwrap(),
                event["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [("allow", ""), ("deny", "sni-mismatch")],
        "{decisions:?}"
    );
    let refused = decisions
        .iter()
        .find(|event| event["reason"] == "sni-mismatch")
        .unwrap();
    assert_eq!(refused["status"], 200);
    assert_eq!(refused["bytes_up"], 0);
}

#[tokio::test]
async fn the_binary_logs_an_encrypted_hello_as_sni_ech() {
    let recorder = Recorder::start().await;
    let port = recorder.port.to_string();
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", &format!("tls.test:{port}\n"));
    let proxy = Running::start(
        &allowlist,
        &["--sni-ports", &port, "--resolve", "tls.test=127.0.0.1"],
    );
    let address = proxy.address.parse().unwrap();
    let (stream, head) = connect(address, &format!("tls.test:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");
    assert!(ech_client(stream, "tls.test", Ech::Grease).await.is_err());
    let decisions = proxy.decisions_once(|all| !all.is_empty());
    assert_eq!(decisions[0]["decision"], "deny", "{decisions:?}");
    assert_eq!(decisions[0]["reason"], "sni-ech", "{decisions:?}");
    assert_eq!(decisions[0]["bytes_up"], 0);
    recorder.assert_closed_silent(0).await;
}
