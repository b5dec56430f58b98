//! Fuzzes the request-head framing checks: the sniffer that follows heads and bodies in
//! the raw client stream, and `body_framing` on arbitrary header lines. The sniffer must
//! not panic and must reach the same verdicts however the stream is split into reads.

#![no_main]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use sandbox_proxy::server::framing::{BodyFraming, body_framing};
use sandbox_proxy::server::sniff::{Judged, Sniffed, Verdicts};
use tokio::io::{AsyncRead, ReadBuf};

/// Largest head the sniffer accepts here: small, so the too-large path is reached.
const MAX_HEAD: usize = 4096;

/// Verdicts beyond the number of heads are the fail-closed default; a few suffice.
const VERDICTS: usize = 16;

/// Feeds `stream` through a sniffer in reads of at most `read_size` bytes and returns
/// the first verdicts it queued.
fn verdicts(stream: &[u8], read_size: usize) -> Vec<Judged> {
    let queue = Verdicts::default();
    let mut sniffed = Sniffed::new(stream, MAX_HEAD, queue.clone());
    let mut context = Context::from_waker(Waker::noop());
    let mut buffer = vec![0u8; read_size];
    loop {
        let mut read = ReadBuf::new(&mut buffer);
        match Pin::new(&mut sniffed).poll_read(&mut context, &mut read) {
            Poll::Ready(Ok(())) if !read.filled().is_empty() => {}
            _ => break,
        }
    }
    (0..VERDICTS).map(|_| queue.next()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let whole = verdicts(stream, stream.len().max(1));
    let pieces = verdicts(stream, usize::from(split % 16) + 1);
    assert_eq!(whole, pieces);

    // body_framing on the lines of the input read as `name: value` headers.
    let headers: Vec<(&str, &[u8])> = stream
        .split(|&byte| byte == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&byte| byte == b':')?;
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            Some((name, line[colon + 1..].trim_ascii()))
        })
        .collect();
    if let Ok(BodyFraming::Length(length)) = body_framing(headers.iter().copied()) {
        let declared: Vec<_> = headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .collect();
        assert_eq!(declared.len(), 1);
        assert_eq!(
            std::str::from_utf8(declared[0].1)
                .ok()
                .and_then(|v| v.parse().ok()),
            Some(length)
        );
    }
});
