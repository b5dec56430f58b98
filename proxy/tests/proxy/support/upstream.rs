//! Upstream servers on loopback that count the connections they accept, so a test can
//! prove that a refused request never reached them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use super::http::{Kind, read_message};

/// A TCP echo server.
pub struct Echo {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
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

    /// Connections accepted so far.
    pub fn contacted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A plain HTTP/1.1 upstream that records raw request heads and answers
/// `hello from upstream` (keep-alive, with hop-by-hop headers the proxy must drop); a
/// request to upgrade is answered 101, and the connection then echoes bytes.
pub struct HttpUpstream {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl HttpUpstream {
    pub async fn start() -> HttpUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (counter, gauge, log) = (accepted.clone(), open.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                gauge.fetch_add(1, Ordering::SeqCst);
                let (log, gauge) = (log.clone(), gauge.clone());
                tokio::spawn(async move {
                    serve(stream, log).await;
                    gauge.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        HttpUpstream {
            addr,
            accepted,
            open,
            heads,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn contacted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open to this upstream.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The head of every request received, in order.
    pub async fn heads(&self) -> Vec<String> {
        self.heads.lock().await.clone()
    }
}

async fn serve(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    while let Some(request) = read_message(&mut stream, &mut buffer, Kind::Request).await {
        let upgrade = request.head.to_ascii_lowercase().contains("\r\nupgrade:");
        heads.lock().await.push(request.head);
        if upgrade {
            let switched = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\
                            connection: upgrade\r\n\r\n";
            if stream.write_all(switched.as_bytes()).await.is_ok()
                && stream.write_all(&buffer).await.is_ok()
            {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            }
            return;
        }
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
