//! What decrypting a tunnel to add a secret costs the first byte of a streamed
//! response: the time from sending a request to the first body byte of a server-sent
//! event stream, through a tunnel the proxy decrypts (`--secrets-stdin`, a secret bound
//! to the host) and through a plain tunnel it only relays (the TLS name check, no
//! decryption), to the same HTTPS upstream on loopback.
//!
//! Two cases each: on a new connection (CONNECT, TLS handshake(s), request: the
//! decrypted tunnel adds a second handshake, to the upstream) and on a kept-alive
//! connection (the request alone). The upstream sends its first event at once and ends
//! the stream 5 ms later, outside the measured time. The proxy is the release build,
//! logging warnings only. Run it with `cargo bench -p sandbox-benches --bench
//! secrets_first_byte` (about 1 min).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup: a failure must abort the bench"
)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_sandbox_e2e::{proxy_binary, test_ca};
use bytes::Bytes;
use criterion::{Criterion, SamplingMode, criterion_main};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sandbox_policy::protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

/// The host a secret is bound to: its tunnels are decrypted.
const DECRYPTED: &str = "api.bench.test";
/// A host without a secret: its tunnels are relayed.
const RELAYED: &str = "plain.bench.test";

type Body = BoxBody<Bytes, Infallible>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An HTTPS upstream for both names (test CA): every request gets an event stream whose
/// first event goes at once and whose end follows 5 ms later. Returns its port.
async fn upstream() -> u16 {
    let leaf = test_ca().issue(&[DECRYPTED, RELAYED]);
    let certs = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            // As the proxy's sockets: no Nagle delay on small writes (an event).
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_: Request<Incoming>| async {
                    Ok::<_, Infallible>(events())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

/// A two-event stream: the first at once, the second 5 ms later.
fn events() -> Response<Body> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(2);
    tokio::spawn(async move {
        let _ = sender
            .send(Ok(Frame::data(Bytes::from("data: one\n\n"))))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _ = sender
            .send(Ok(Frame::data(Bytes::from("data: two\n\n"))))
            .await;
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(receiver));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body.boxed())
        .unwrap()
}

/// The release proxy, with a secret bound to [`DECRYPTED`]; killed when dropped.
struct Proxy {
    child: Child,
    address: String,
    run_ca: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    fn start(upstream_port: u16) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let allowlist = dir.path().join("allow.txt");
        std::fs::write(
            &allowlist,
            format!("{DECRYPTED}:{upstream_port}\n{RELAYED}:{upstream_port}\n"),
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let mut child = Command::new(proxy_binary(true))
            .arg("--allowlist")
            .arg(&allowlist)
            .args(["--listen", &address, "--admin", "off", "--secrets-stdin"])
            .args(["--sni-ports", &upstream_port.to_string()])
            .arg("--upstream-ca")
            .arg(test_ca().cert_path())
            .args(["--resolve", &format!("{DECRYPTED}=127.0.0.1")])
            .args(["--resolve", &format!("{RELAYED}=127.0.0.1")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let grant = serde_json::json!([{
            "name": "BENCH_KEY",
            "placeholder": protocol::placeholder("BENCH_KEY", &"0".repeat(32)),
            "value": "bench-secret-value",
            "hosts": [DECRYPTED],
        }]);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(grant.to_string().as_bytes()).unwrap();
        drop(stdin);
        let mut output = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        while !output.lines().any(|line| line == protocol::READY_LINE) {
            if stdout.read_line(&mut output).unwrap() == 0 {
                panic!("the proxy exited before it was ready: {output}");
            }
        }
        let pem = protocol::ca_from_output(&output).expect("the run's CA");
        Proxy {
            child,
            address,
            run_ca: CertificateDer::from_pem_slice(pem.as_bytes()).unwrap(),
            _dir: dir,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client of `host` through the proxy over TLS trusting `root` only.
async fn client(
    proxy: &str,
    host: &str,
    port: u16,
    root: &CertificateDer<'static>,
) -> SendRequest<Empty<Bytes>> {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let connect = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
    stream.write_all(connect.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "CONNECT refused");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_owned()).unwrap(), stream)
        .await
        .unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// Sends a request on `sender`; returns the time to the first body byte, then reads
/// the rest of the stream (unmeasured).
async fn first_byte(
    sender: &mut SendRequest<Empty<Bytes>>,
    host: &str,
    port: u16,
    started: Instant,
) -> Duration {
    sender.ready().await.unwrap();
    let request = Request::get("/v1/stream")
        .header("host", format!("{host}:{port}"))
        .body(Empty::new())
        .unwrap();
    let mut body = sender.send_request(request).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap();
    let elapsed = started.elapsed();
    assert!(first.data_ref().is_some_and(|data| !data.is_empty()));
    body.collect().await.unwrap();
    elapsed
}

fn secrets_first_byte(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let port = runtime.block_on(upstream());
    let proxy = Proxy::start(port);
    let test_root = CertificateDer::from_pem_slice(test_ca().cert_pem().as_bytes()).unwrap();
    let cases = [
        ("decrypted", DECRYPTED, &proxy.run_ca),
        ("plain_tunnel", RELAYED, &test_root),
    ];
    let mut group = c.benchmark_group("secrets_first_byte");
    group
        .sample_size(30)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, host, root) in cases {
        group.bench_function(format!("{name}/new_connection"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let started = Instant::now();
                        let mut sender = client(&proxy.address, host, port, root).await;
                        total += first_byte(&mut sender, host, port, started).await;
                    }
                    total
                })
            });
        });
        group.bench_function(format!("{name}/kept_alive"), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut sender = client(&proxy.address, host, port, root).await;
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += first_byte(&mut sender, host, port, Instant::now()).await;
                    }
                    total
                })
            });
        });
    }
    group.finish();
}

/// The group lives in a private module: `criterion_group!` makes an undocumented `pub fn`.
mod group {
    criterion::criterion_group!(benches, super::secrets_first_byte);
}
criterion_main!(group::benches);
