//! The client's end of a tunnel the proxy terminates (served as HTTP): the bytes the
//! client sent right behind its CONNECT head are read first, and every byte is counted
//! each way for the tunnel's decision line.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::tunnel::Counters;

/// A client stream with the bytes already read from it put back in front.
pub(crate) struct ClientEnd<S> {
    early: Bytes,
    inner: S,
    counters: Arc<Counters>,
}

impl<S> ClientEnd<S> {
    /// `inner`, whose first bytes `early` were already read, counted in `counters`.
    pub(crate) fn new(inner: S, early: Bytes, counters: Arc<Counters>) -> Self {
        ClientEnd {
            early,
            inner,
            counters,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClientEnd<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if this.early.is_empty() {
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        } else {
            let taken = this.early.len().min(buf.remaining());
            buf.put_slice(&this.early[..taken]);
            this.early.advance(taken);
        }
        this.counters.add_up((buf.filled().len() - before) as u64);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClientEnd<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.counters.add_down(written as u64);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
