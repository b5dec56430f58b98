//! A read-side wrapper that checks the framing of every request head in the raw byte
//! stream, before hyper parses (and normalises) it.
//!
//! The wrapper follows message boundaries itself (heads, fixed-length and chunked bodies)
//! and queues one verdict per head; the service takes the verdict of each request in
//! order. After a CONNECT head, or anything it cannot follow, it stops looking and queues
//! nothing more, so any later request on that connection finds no verdict and is refused:
//! the check fails closed. A chunked body that turns out malformed after its head was
//! judged (`0x5`, `-5`, a 20-digit size, `5 5`) is reported through the request's
//! [`BodyCheck`], which the service consults before and while it forwards the body.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::framing::{BodyFraming, body_framing};

/// Why a request head is refused before it reaches the service logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadRefusal {
    /// The head is longer than the limit (431).
    TooLarge,
    /// The framing is ambiguous or the request could not be followed (400).
    Framing(&'static str),
}

/// The verdict on one request head.
pub type Verdict = Result<(), HeadRefusal>;

/// Whether a request's chunked body has turned out malformed so far; set by the reader
/// as the body streams in.
#[derive(Clone, Debug, Default)]
pub struct BodyCheck(Arc<AtomicBool>);

impl BodyCheck {
    /// True once the reader found the chunked body malformed.
    pub fn malformed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set_malformed(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// What the reader found about one request: the verdict on its head and the check of
/// its body.
#[derive(Clone, Debug)]
pub struct Judged {
    /// The head's verdict.
    pub head: Verdict,
    /// The body's check (never set for bodies that are not chunked).
    pub body: BodyCheck,
}

impl PartialEq for Judged {
    fn eq(&self, other: &Judged) -> bool {
        self.head == other.head && self.body.malformed() == other.body.malformed()
    }
}

/// Verdicts queued by the reader, taken by the service in request order.
#[derive(Clone, Default)]
pub struct Verdicts(Arc<Mutex<VecDeque<Judged>>>);

impl Verdicts {
    fn push(&self, judged: Judged) {
        if let Ok(mut queue) = self.0.lock() {
            queue.push_back(judged);
        }
    }

    /// What was found about the next request; a request the reader did not follow is
    /// refused.
    pub fn next(&self) -> Judged {
        self.0
            .lock()
            .ok()
            .and_then(|mut queue| queue.pop_front())
            .unwrap_or(Judged {
                head: Err(HeadRefusal::Framing(
                    "request framing could not be verified",
                )),
                body: BodyCheck::default(),
            })
    }
}

/// Where the reader is in the byte stream.
enum Phase {
    /// Accumulating a request head.
    Head,
    /// Skipping a fixed-length body.
    Body(u64),
    /// Following a chunked body.
    Chunked(Chunk),
    /// Not looking any more (tunnel, or a stream it could not follow).
    Blind,
}

/// Position inside a chunked body.
#[derive(Clone, Copy)]
enum Chunk {
    Size {
        size: u64,
        digits: u8,
    },
    /// Whitespace after the size: only more of it, `;` or the line end may follow.
    SizeSpace {
        size: u64,
    },
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf {
        empty: bool,
    },
}

/// A client stream whose request heads are checked as they are read.
pub struct Sniffed<S> {
    inner: S,
    phase: Phase,
    head: Vec<u8>,
    max_head: usize,
    verdicts: Verdicts,
    /// The check of the chunked body being followed.
    body: Option<BodyCheck>,
}

impl<S> Sniffed<S> {
    /// Wraps `inner`; heads longer than `max_head` are left to hyper to refuse.
    pub fn new(inner: S, max_head: usize, verdicts: Verdicts) -> Self {
        Sniffed {
            inner,
            phase: Phase::Head,
            head: Vec::new(),
            max_head,
            verdicts,
            body: None,
        }
    }

    /// The wrapped stream (after an upgrade, to relay on it directly).
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }

    fn blind(&mut self) {
        self.phase = Phase::Blind;
        self.head = Vec::new();
    }

    fn refuse_too_large(&mut self) {
        self.verdicts.push(Judged {
            head: Err(HeadRefusal::TooLarge),
            body: BodyCheck::default(),
        });
        self.blind();
    }

    /// Follows `bytes` through heads and bodies, queueing a verdict per head.
    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.phase {
                Phase::Blind => return,
                Phase::Head => bytes = self.scan_head(bytes),
                Phase::Body(left) => {
                    let taken = left.min(bytes.len() as u64);
                    bytes = &bytes[taken as usize..];
                    self.phase = if left == taken {
                        Phase::Head
                    } else {
                        Phase::Body(left - taken)
                    };
                }
                Phase::Chunked(state) => {
                    let (next, rest) = step_chunk(state, bytes);
                    bytes = rest;
                    self.phase = match next {
                        Some(Some(state)) => Phase::Chunked(state),
                        Some(None) => Phase::Head,
                        None => {
                            if let Some(body) = &self.body {
                                body.set_malformed();
                            }
                            Phase::Blind
                        }
                    };
                }
            }
        }
    }

    /// Consumes head bytes; returns what follows the head once it is complete.
    fn scan_head<'a>(&mut self, mut bytes: &'a [u8]) -> &'a [u8] {
        if self.head.is_empty() {
            // Empty lines before a request line are allowed (RFC 9112 §2.2).
            let start = bytes
                .iter()
                .position(|b| *b != b'\r' && *b != b'\n')
                .unwrap_or(bytes.len());
            bytes = &bytes[start..];
            if bytes.is_empty() {
                return bytes;
            }
        }
        let searched_from = self.head.len().saturating_sub(3);
        let before = self.head.len();
        self.head.extend_from_slice(bytes);
        let Some(end) = find(&self.head[searched_from..], b"\r\n\r\n") else {
            if self.head.len() > self.max_head {
                self.refuse_too_large();
            }
            return &[];
        };
        let head_end = searched_from + end + 4;
        if head_end > self.max_head {
            self.refuse_too_large();
            return &[];
        }
        let rest = &bytes[head_end - before..];
        self.head.truncate(head_end);
        self.judge_head();
        rest
    }

    /// Parses the complete head in `self.head`, queues its verdict and sets the phase.
    fn judge_head(&mut self) {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(&self.head);
        let (is_connect, framing) = match parsed {
            Ok(httparse::Status::Complete(_)) => (
                request.method == Some("CONNECT"),
                body_framing(request.headers.iter().map(|h| (h.name, h.value))),
            ),
            // hyper refuses what httparse cannot parse; nothing to follow after it.
            _ => {
                self.blind();
                return;
            }
        };
        self.head.clear();
        let body = BodyCheck::default();
        self.verdicts.push(Judged {
            head: framing.map(|_| ()).map_err(HeadRefusal::Framing),
            body: body.clone(),
        });
        self.body = Some(body);
        self.phase = match framing {
            _ if is_connect => Phase::Blind,
            Err(_) => Phase::Blind,
            Ok(BodyFraming::Empty) | Ok(BodyFraming::Length(0)) => Phase::Head,
            Ok(BodyFraming::Length(length)) => Phase::Body(length),
            Ok(BodyFraming::Chunked) => Phase::Chunked(Chunk::Size { size: 0, digits: 0 }),
        };
        if matches!(self.phase, Phase::Blind) {
            self.head = Vec::new();
        }
    }
}

/// Advances a chunked-body parser over `bytes`. Returns the new state (`Some(None)` when
/// the body is complete, `None` when the stream is malformed) and the unconsumed bytes.
fn step_chunk(mut state: Chunk, mut bytes: &[u8]) -> (Option<Option<Chunk>>, &[u8]) {
    while let Some((&byte, rest)) = bytes.split_first() {
        if let Chunk::Data(left) = state {
            let taken = left.min(bytes.len() as u64);
            bytes = &bytes[taken as usize..];
            state = if taken == left {
                Chunk::DataCr
            } else {
                Chunk::Data(left - taken)
            };
            continue;
        }
        bytes = rest;
        state = match (state, byte) {
            (Chunk::Size { size, digits }, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                if digits >= 15 {
                    return (None, bytes);
                }
                let value = u64::from((byte as char).to_digit(16).unwrap_or(0));
                Chunk::Size {
                    size: size * 16 + value,
                    digits: digits + 1,
                }
            }
            (Chunk::Size { size, digits }, b';') if digits > 0 => Chunk::Extension { size },
            (Chunk::Size { size, digits }, b' ' | b'\t') if digits > 0 => Chunk::SizeSpace { size },
            (Chunk::Size { size, digits }, b'\r') if digits > 0 => Chunk::SizeLf { size },
            (Chunk::SizeSpace { size }, b' ' | b'\t') => Chunk::SizeSpace { size },
            (Chunk::SizeSpace { size }, b';') => Chunk::Extension { size },
            (Chunk::SizeSpace { size }, b'\r') => Chunk::SizeLf { size },
            (Chunk::Extension { size }, b'\r') => Chunk::SizeLf { size },
            (Chunk::Extension { size }, _) => Chunk::Extension { size },
            (Chunk::SizeLf { size: 0 }, b'\n') => Chunk::TrailerStart,
            (Chunk::SizeLf { size }, b'\n') => Chunk::Data(size),
            (Chunk::DataCr, b'\r') => Chunk::DataLf,
            (Chunk::DataLf, b'\n') => Chunk::Size { size: 0, digits: 0 },
            (Chunk::TrailerStart, b'\r') => Chunk::TrailerLf { empty: true },
            (Chunk::TrailerLine, b'\r') => Chunk::TrailerLf { empty: false },
            (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
            (Chunk::TrailerLf { empty: true }, b'\n') => return (Some(None), bytes),
            (Chunk::TrailerLf { empty: false }, b'\n') => Chunk::TrailerStart,
            _ => return (None, bytes),
        };
    }
    (Some(Some(state)), bytes)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniffed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if !matches!(this.phase, Phase::Blind) {
            this.scan(&buf.filled()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniffed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged_of(chunks: &[&[u8]]) -> Vec<Judged> {
        let verdicts = Verdicts::default();
        let mut sniffed = Sniffed::new((), 65536, verdicts.clone());
        for chunk in chunks {
            sniffed.scan(chunk);
        }
        let mut all = Vec::new();
        while let Ok(mut queue) = verdicts.0.lock() {
            match queue.pop_front() {
                Some(judged) => all.push(judged),
                None => break,
            }
        }
        all
    }

    fn verdicts_of(chunks: &[&[u8]]) -> Vec<Verdict> {
        judged_of(chunks)
            .into_iter()
            .map(|judged| judged.head)
            .collect()
    }

    #[test]
    fn a_malformed_chunk_size_marks_the_body_after_an_accepted_head() {
        let head = "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for size in ["0x5", "-5", "12345678901234567890", "5 5", "5\t;x\r\r"] {
            let stream = format!("{head}5\r\nhello\r\n{size}\r\nhello\r\n0\r\n\r\n");
            let judged = judged_of(&[stream.as_bytes()]);
            assert_eq!(judged.len(), 1, "{size}");
            assert_eq!(judged[0].head, Ok(()), "{size}");
            assert!(judged[0].body.malformed(), "{size}");
        }
        for size in ["5", "5 ", "5 ;ext=1", "5;ext", "05"] {
            let stream = format!("{head}{size}\r\nhello\r\n0\r\n\r\n");
            let judged = judged_of(&[stream.as_bytes()]);
            assert!(!judged[0].body.malformed(), "{size}");
        }
    }

    #[test]
    fn follows_pipelined_requests_across_bodies_and_split_reads() {
        let stream: &[u8] = b"\r\nPOST http://a/ HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n\
            GET http://a/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let whole = verdicts_of(&[stream]);
        let both = HeadRefusal::Framing("both Transfer-Encoding and Content-Length");
        assert_eq!(whole, [Ok(()), Ok(()), Err(both)]);
        let bytes: Vec<&[u8]> = stream.chunks(3).collect();
        assert_eq!(verdicts_of(&bytes), whole);
    }

    #[test]
    fn stops_after_connect_and_after_a_refused_head() {
        let after_connect = verdicts_of(&[
            b"CONNECT a:443 HTTP/1.1\r\n\r\nGET http://a/ HTTP/1.1\r\nContent-Length: 1\r\n\r\n",
        ]);
        assert_eq!(after_connect, [Ok(())]);
        let after_bad = verdicts_of(&[
            b"GET http://a/ HTTP/1.1\r\nContent-Length: +1\r\n\r\nxGET / HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(
            after_bad,
            [Err(HeadRefusal::Framing("malformed Content-Length"))]
        );
        let mut long = b"GET http://a/ HTTP/1.1\r\nX: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', 70_000));
        assert_eq!(verdicts_of(&[&long]), [Err(HeadRefusal::TooLarge)]);
    }

    #[test]
    fn an_unverified_request_is_refused() {
        assert!(Verdicts::default().next().head.is_err());
    }
}
