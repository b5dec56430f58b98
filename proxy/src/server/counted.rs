//! A body wrapper that counts the bytes streaming through it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Streams `inner` unchanged, adding the size of every data frame to `count`, and keeps
/// `guard` alive until the body is finished or dropped.
pub(crate) struct Counted<B, G> {
    inner: B,
    count: Arc<AtomicU64>,
    _guard: G,
}

impl<B, G> Counted<B, G> {
    pub(crate) fn new(inner: B, count: Arc<AtomicU64>, guard: G) -> Self {
        Counted {
            inner,
            count,
            _guard: guard,
        }
    }
}

impl<B, G> Body for Counted<B, G>
where
    B: Body<Data = Bytes> + Unpin,
    G: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
