//! Fuzzes host and authority normalisation: no panic, error offsets inside the input,
//! and normalisation is idempotent (a normalised value parses back to itself), so both
//! sides of every comparison agree.

#![no_main]

use std::fmt::{Debug, Display};

use libfuzzer_sys::fuzz_target;
use sandbox_policy::{Authority, Host, HostError};

/// Parses `text` with `parse` and checks the properties above.
fn check<T: Display + Debug + PartialEq>(text: &str, parse: fn(&str) -> Result<T, HostError>) {
    match parse(text) {
        Ok(value) => {
            let again = parse(&value.to_string());
            assert_eq!(again.as_ref(), Ok(&value), "{text:?} -> {value}");
        }
        Err(err) => {
            if let Some(offset) = err.offset() {
                assert!(offset <= text.len(), "{text:?}: {err} at {offset}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text, Host::parse);
    check(text, Authority::parse);
});
