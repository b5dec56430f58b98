//! Fuzzes the ClientHello peek of the TLS name check: no panic on any bytes, bytes
//! after an accepted hello change nothing, and every prefix of an accepted hello asks for
//! more (so a hello arriving in pieces is never refused part-way).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sandbox_proxy::server::sni::hello::peek;

/// Offsets where TLS records start, following the length fields.
fn record_starts(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    std::iter::successors(Some(0), |&start: &usize| {
        let length = data.get(start + 3..start + 5)?;
        Some(start + 5 + usize::from(u16::from_be_bytes([length[0], length[1]])))
    })
    .take_while(|&start| start < data.len())
}

fuzz_target!(|data: &[u8]| {
    let verdict = peek(data);
    if let Ok(Some(hello)) = &verdict {
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"\x16\x03\x01trailing");
        assert_eq!(peek(&longer).as_ref(), Ok(&Some(hello.clone())));
        // Every prefix ending in or just after a record header (where the framing is
        // decided), then about 64 more spread over the rest.
        let stride = (data.len() / 64).max(1);
        let ends = record_starts(data)
            .flat_map(|start| start..start + 10)
            .chain((0..data.len()).step_by(stride));
        for end in ends.filter(|&end| end < data.len()) {
            // A prefix may only be "need more" or the hello itself (when the bytes
            // after the hello's records were cut).
            match peek(&data[..end]) {
                Ok(None) => {}
                Ok(Some(early)) => assert_eq!(&early, hello),
                Err(err) => panic!("prefix of {end} bytes refused: {err}"),
            }
        }
    }
});
