//! The byte pattern streamed through tunnels, so echoed data can be verified cheaply.

use crate::Error;

/// Period of the pattern. A prime, so that a chunk delivered at the wrong offset (lost,
/// duplicated or reordered data) does not line up with the expected bytes.
const PERIOD: usize = 251;

/// A repeating byte pattern: byte `i` of a stream is `i % 251`.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// One chunk plus one period, so every chunk-sized window is a plain slice.
    bytes: Vec<u8>,
    chunk: usize,
}

impl Pattern {
    /// A pattern that hands out and verifies slices of up to `chunk` bytes at a time.
    pub fn new(chunk: usize) -> Self {
        let bytes = (0..chunk + PERIOD).map(|i| (i % PERIOD) as u8).collect();
        Self { bytes, chunk }
    }

    /// The `len` bytes (at most one chunk) that start at `offset` in the stream.
    pub fn at(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % PERIOD as u64) as usize;
        &self.bytes[start..start + len.min(self.chunk)]
    }

    /// Checks that `data` is the stream's content starting at `offset`.
    pub fn verify(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let mut at = offset;
        for piece in data.chunks(self.chunk) {
            if piece != self.at(at, piece.len()) {
                return Err(Error::Corrupt { offset: at });
            }
            at += piece.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_slices_verify_at_their_offsets() {
        let p = Pattern::new(1000);
        let stream: Vec<u8> = (0..5u64)
            .flat_map(|i| p.at(i * 1000, 1000).to_vec())
            .collect();
        p.verify(0, &stream).unwrap();
        p.verify(1234, &stream[1234..]).unwrap();
    }

    #[test]
    fn shifted_data_is_detected() {
        let p = Pattern::new(1000);
        let err = p.verify(1, p.at(0, 1000)).unwrap_err();
        assert!(matches!(err, Error::Corrupt { offset: 1 }));
    }

    #[test]
    fn a_skipped_chunk_is_detected() {
        let p = Pattern::new(256);
        let mut data = p.at(0, 256).to_vec();
        data.extend_from_slice(p.at(512, 256));
        assert!(matches!(
            p.verify(0, &data),
            Err(Error::Corrupt { offset: 256 })
        ));
    }
}
