//! Test harness: an in-process proxy on an ephemeral loopback port, real upstreams that
//! count every connection they accept, and raw clients.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sandbox_policy::{DomainName, Host, Policy, PolicyOptions, protocol::ListenAddr};
use sandbox_proxy::net::dial::{Dialer, OwnAddresses};
use sandbox_proxy::net::listen::Listener;
use sandbox_proxy::net::resolve::Resolver;
use sandbox_proxy::{Limits, PolicyStore, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};

/// A proxy running in this process until dropped.
pub struct TestProxy {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// How to build a test proxy.
pub struct ProxySpec {
    pub allowlist: String,
    pub pins: Vec<(&'static str, Vec<IpAddr>)>,
    pub allow_private: bool,
    pub ports: Vec<u16>,
    pub limits: Limits,
}

impl ProxySpec {
    pub fn new(allowlist: &str) -> Self {
        ProxySpec {
            allowlist: allowlist.to_owned(),
            pins: Vec::new(),
            allow_private: false,
            ports: vec![80, 443],
            limits: Limits {
                connect_timeout: Duration::from_secs(2),
                ..Limits::default()
            },
        }
    }

    pub fn pin(mut self, name: &'static str, addresses: &[&str]) -> Self {
        self.pins
            .push((name, addresses.iter().map(|a| a.parse().unwrap()).collect()));
        self
    }

    pub fn allow_private(mut self) -> Self {
        self.allow_private = true;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub async fn start(self) -> TestProxy {
        let options = PolicyOptions {
            default_ports: self.ports,
            allow_private: self.allow_private,
        };
        let listener = Listener::bind(&ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = listener.local_tcp_addr().unwrap();
        // `{proxy_port}` in the allowlist stands for the port the proxy listens on.
        let allowlist = self
            .allowlist
            .replace("{proxy_port}", &addr.port().to_string());
        let policy = Policy::from_text("test-allowlist", &allowlist, &options, 1).unwrap();
        let pins: HashMap<DomainName, Vec<IpAddr>> = self
            .pins
            .into_iter()
            .map(|(name, addresses)| match Host::parse(name).unwrap() {
                Host::Name(name) => (name, addresses),
                Host::Ip(_) => panic!("pin an IP?"),
            })
            .collect();
        let dialer = Dialer::new(
            Resolver::pinned_only(pins),
            self.limits.connect_timeout,
            OwnAddresses::new(vec![addr]),
        );
        let server = Server::new(
            PolicyStore::new(policy),
            dialer,
            self.limits,
            Default::default(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(vec![listener], async move {
            let _ = stopped.await;
        }));
        TestProxy { addr, _stop: stop }
    }
}

/// A TCP echo server that counts the connections it accepts.
pub struct Echo {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
}

impl Echo {
    pub async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                    let _ = writer.shutdown().await;
                });
            }
        });
        Echo { addr, accepted }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn contacted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// One request as an upstream HTTP server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub head: String,
}

/// A plain HTTP/1.1 upstream that records raw request heads and answers
/// `hello from upstream` (keep-alive).
pub struct HttpUpstream {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub open: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpUpstream {
    pub async fn start() -> HttpUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (counter, gauge, log) = (accepted.clone(), open.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                gauge.fetch_add(1, Ordering::SeqCst);
                let (log, gauge) = (log.clone(), gauge.clone());
                tokio::spawn(async move {
                    serve_http(stream, log).await;
                    gauge.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        HttpUpstream {
            addr,
            accepted,
            open,
            seen,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn contacted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open to this upstream.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub async fn heads(&self) -> Vec<String> {
        self.seen
            .lock()
            .await
            .iter()
            .map(|s| s.head.clone())
            .collect()
    }
}

async fn serve_http(mut stream: TcpStream, log: Arc<Mutex<Vec<Seen>>>) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        buffer.drain(..head_end);
        let body_len = if chunked {
            loop {
                if let Some(end) = find(&buffer, b"0\r\n\r\n") {
                    break end + 5;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
        } else {
            while buffer.len() < length {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            length
        };
        buffer.drain(..body_len);
        log.lock().await.push(Seen { head });
        let body = "hello from upstream";
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: keep-alive, x-upstream-secret\r\n\
             x-upstream-secret: 1\r\nkeep-alive: timeout=5\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends raw bytes to the proxy and returns everything it answers until it closes the
/// connection or stays quiet for a moment.
pub async fn raw(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_some(&mut stream).await
}

/// Reads what arrives until the peer closes or nothing comes for 300 ms.
pub async fn read_some(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

/// The status code of a raw HTTP response.
pub fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Opens a CONNECT tunnel; returns the stream and the proxy's answer head.
pub async fn connect(proxy: SocketAddr, target: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let mut head = String::from_utf8_lossy(&head).to_string();
    if status(&head) != 200 {
        head.push_str(&read_some(&mut stream).await);
    }
    (stream, head)
}

/// Sends `signal` to a child process.
pub fn send_signal(child: &std::process::Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
}

/// Waits up to `within` for a child to exit.
pub fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` every 30 ms until it yields a value, for at most 5 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached in 5 s"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}
