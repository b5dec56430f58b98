//! Fuzzes the allowlist parser and compiler: any text either compiles or yields located
//! errors, and every compiled entry admits the host and port it names.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sandbox_policy::{Allowlist, Decision, Host, Pattern};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = u32::try_from(text.split('\n').count()).unwrap_or(u32::MAX);
    match Allowlist::parse("fuzz", text, &[80, 443]) {
        Ok(list) => {
            for entry in list.entries() {
                let host = match &entry.pattern {
                    Pattern::Exact(host) => host.clone(),
                    Pattern::Subtree(name) => Host::Name(name.clone()),
                };
                let port = entry.port.unwrap_or(443);
                let lookup = list.lookup(&host, port);
                assert_eq!(lookup.decision, Decision::Allowed, "{entry:?}");
                assert!((1..=lines).contains(&entry.line));
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for error in &errors {
                assert!((1..=lines).contains(&error.line), "{error}");
                assert!(error.column >= 1, "{error}");
            }
        }
    }
});
