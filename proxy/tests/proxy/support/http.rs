//! Raw HTTP/1.1 and CONNECT clients, reading each message exactly as its framing says
//! (`Content-Length`, chunked, or until the peer closes), so a test never waits for
//! silence and never mistakes a slow answer for the end of one.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a whole answer may take before the test fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a message is a request or a response: a response with no length runs until
/// the peer closes, a request with no length has no body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

/// One HTTP/1.1 message as it was on the wire.
pub struct Message {
    pub head: String,
    /// The body as sent (chunked bodies keep their chunk framing).
    pub body: Vec<u8>,
}

impl Message {
    /// Head and body as text.
    pub fn text(&self) -> String {
        format!("{}{}", self.head, String::from_utf8_lossy(&self.body))
    }
}

/// Reads one message from `stream`; `buffer` holds bytes read beyond the previous one
/// and keeps those beyond this one. `None` when the peer closes before a whole message.
pub async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
    kind: Kind,
) -> Option<Message> {
    let head_end = loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            break end + 4;
        }
        fill(stream, buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    buffer.drain(..head_end);
    let body_end = match framing(&head) {
        Framing::Chunked => chunked_end(stream, buffer).await?,
        Framing::Length(length) => {
            while buffer.len() < length {
                fill(stream, buffer).await?;
            }
            length
        }
        Framing::None if kind == Kind::Request || no_body(&head) => 0,
        Framing::None => {
            while fill(stream, buffer).await.is_some() {}
            buffer.len()
        }
    };
    let body = buffer.drain(..body_end).collect();
    Some(Message { head, body })
}

/// Sends raw bytes to the proxy and returns its first answer (head and body), or an
/// empty string when it closes the connection without one.
pub async fn raw(proxy: SocketAddr, request: &[u8]) -> String {
    exchange(proxy, request, 1).await
}

/// Sends raw bytes to the proxy and returns its next `answers` answers, concatenated.
pub async fn exchange(proxy: SocketAddr, request: &[u8], answers: usize) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let reading = async {
        let mut buffer = Vec::new();
        let mut text = String::new();
        for _ in 0..answers {
            match read_message(&mut stream, &mut buffer, Kind::Response).await {
                Some(message) => text.push_str(&message.text()),
                None => break,
            }
        }
        text
    };
    tokio::time::timeout(ANSWER_TIMEOUT, reading)
        .await
        .expect("the proxy's answer did not end")
}

/// The status code of a raw HTTP response (0 for none).
pub fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Opens a CONNECT tunnel; returns the stream and the proxy's answer (head, and the
/// body of a refusal). Nothing beyond the answer is read from the stream.
pub async fn connect(proxy: SocketAddr, target: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let reading = async {
        // Byte by byte: what follows a 200 belongs to the tunnel.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
        if status(&String::from_utf8_lossy(&head)) == 200 {
            return String::from_utf8_lossy(&head).to_string();
        }
        let mut buffer = head;
        read_message(&mut stream, &mut buffer, Kind::Response)
            .await
            .map_or_else(
                || String::from_utf8_lossy(&buffer).to_string(),
                |m| m.text(),
            )
    };
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, reading)
        .await
        .expect("the proxy's answer to CONNECT did not end");
    (stream, answer)
}

/// Whether the peer closes `stream` (end of stream or reset) within `within`; what
/// arrives before is discarded.
pub async fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    let closing = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, closing).await.is_ok()
}

/// Sends `ping` through a tunnel to an echo server; true when it comes back.
pub async fn echo_roundtrip(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut back = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back)).await,
        Ok(Ok(_))
    ) && &back == b"ping"
}

enum Framing {
    Chunked,
    Length(usize),
    None,
}

fn framing(head: &str) -> Framing {
    let header = |wanted: &str| {
        head.lines().skip(1).find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    if header("transfer-encoding").is_some_and(|coding| coding.ends_with("chunked")) {
        Framing::Chunked
    } else if let Some(length) = header("content-length") {
        Framing::Length(length.parse().unwrap_or(0))
    } else {
        Framing::None
    }
}

/// Responses that never have a body: 1xx, 204, 304.
fn no_body(head: &str) -> bool {
    matches!(status(head), 100..=199 | 204 | 304)
}

/// Where a chunked body ends in `buffer` (reading more as needed): after the last
/// chunk and the trailer section.
async fn chunked_end<S: AsyncRead + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> Option<usize> {
    let mut at = 0;
    loop {
        let size_end = line_end(stream, buffer, at).await?;
        let size_text = String::from_utf8_lossy(&buffer[at..size_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = size_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let end = line_end(stream, buffer, at).await?;
                let empty = end == at;
                at = end + 2;
                if empty {
                    return Some(at);
                }
            }
        }
        while buffer.len() < at + size + 2 {
            fill(stream, buffer).await?;
        }
        at += size + 2;
    }
}

/// Where the line starting at `from` ends (its CR), reading more as needed.
async fn line_end<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
    from: usize,
) -> Option<usize> {
    loop {
        if let Some(end) = find(&buffer[from..], b"\r\n") {
            return Some(from + end);
        }
        fill(stream, buffer).await?;
    }
}

/// Reads more bytes into `buffer`; `None` at end of stream or on an error.
async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
