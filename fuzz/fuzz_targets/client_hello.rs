//! Fuzzes the ClientHello peek of the TLS name check: no panic on any bytes, bytes
//! after an accepted hello change nothing, and every prefix of an accepted hello asks for
//! more (so a hello arriving in pieces is never refused part-way).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sandbox_proxy::sni::hello::peek;

fuzz_target!(|data: &[u8]| {
    let verdict = peek(data);
    if let Ok(Some(hello)) = &verdict {
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"\x16\x03\x01trailing");
        assert_eq!(peek(&longer).as_ref(), Ok(&Some(hello.clone())));
        for end in [0, 1, 5, data.len() / 2, data.len().saturating_sub(1)] {
            if end < data.len() {
                // A prefix may only be "need more" or the hello itself (when the bytes
                // after the hello's records were cut).
                match peek(&data[..end]) {
                    Ok(None) => {}
                    Ok(Some(early)) => assert_eq!(&early, hello),
                    Err(err) => panic!("prefix of {end} bytes refused: {err}"),
                }
            }
        }
    }
});
