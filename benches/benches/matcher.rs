//! Allowlist lookups against the regex approaches of the old tinyproxy setup.
//!
//! For 1, 1,000, 10,000 and 100,000 generated entries (half exact names, half
//! `*.domain` subtrees), each scenario looks up one host:
//! - `exact_hit`: an exact entry, written last in the file;
//! - `wildcard_hit`: `a.b.c.d.sub123.example.com` under `*.sub123.example.com`, last;
//! - `miss`: a deep name no entry matches (the most label walks for the matcher, a full
//!   scan for a linear list).
//!
//! Contenders: the compiled [`Allowlist`] (lookup of a parsed host, and parse plus lookup
//! of the raw string, the fair comparison with regexes that read the raw string), a
//! `regex::RegexSet` of the anchored, case-insensitive regexes tinyproxy was given
//! (`^(.*\.)?example\.com$`), and tinyproxy's own way, a `Vec<Regex>` tried in order.
//! The `RegexSet` needs raised size limits from 10,000 patterns on (it exceeds the
//! default 10 MiB); at 100,000 it takes about 9 s to build. The linear list stops at
//! 10,000 entries: its cost is plainly linear by then (about 1 ms per lookup).
#![allow(
    clippy::expect_used,
    reason = "bench setup: invalid generated input is a bug and must abort the run"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_main};
use regex::{Regex, RegexBuilder, RegexSetBuilder};
use sandbox_policy::{Allowlist, Decision, Host};

/// Entry counts to measure.
const SIZES: [usize; 4] = [1, 1_000, 10_000, 100_000];
/// Largest list the linear regex contender is built for (see the file docs).
const LINEAR_MAX: usize = 10_000;
/// Ports allowed by entries without a port.
const PORTS: [u16; 2] = [80, 443];

/// One lookup scenario: the entry written last (if any), the host looked up, the answer.
struct Scenario {
    name: &'static str,
    target: Option<&'static str>,
    host: &'static str,
    allowed: bool,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "exact_hit",
        target: Some("api.target.example.com"),
        host: "api.target.example.com",
        allowed: true,
    },
    Scenario {
        name: "wildcard_hit",
        target: Some("*.sub123.example.com"),
        host: "a.b.c.d.sub123.example.com",
        allowed: true,
    },
    Scenario {
        name: "miss",
        target: None,
        host: "a.b.c.d.nothere.example.org",
        allowed: false,
    },
];

/// `n` entries: generated filler, then the scenario's target last.
fn entries(n: usize, target: Option<&str>) -> Vec<String> {
    let filler = n - usize::from(target.is_some());
    let mut lines: Vec<String> = (0..filler)
        .map(|i| {
            if i % 2 == 0 {
                format!("api{i}.service{i}.com")
            } else {
                format!("*.tenant{i}.cloud.example.net")
            }
        })
        .collect();
    lines.extend(target.map(str::to_owned));
    lines
}

/// tinyproxy's translation of one entry into an anchored regex.
fn to_regex(entry: &str) -> String {
    match entry.strip_prefix("*.") {
        Some(domain) => format!(r"^(.*\.)?{}$", regex::escape(domain)),
        None => format!("^{}$", regex::escape(entry)),
    }
}

/// Every scenario and size, for each contender.
fn matcher(c: &mut Criterion) {
    for scenario in &SCENARIOS {
        let mut group = c.benchmark_group(format!("matcher/{}", scenario.name));
        group.warm_up_time(Duration::from_millis(300));
        let host = Host::parse(scenario.host).expect("scenario host");
        for &n in &SIZES {
            let lines = entries(n, scenario.target);
            let list =
                Allowlist::parse("bench", &lines.join("\n"), &PORTS).expect("generated list");
            assert_eq!(list.len(), n);
            let allowed = list.lookup(&host, 443).decision == Decision::Allowed;
            assert_eq!(allowed, scenario.allowed, "{} with {n}", scenario.name);

            // Nanosecond-scale lookups on a noisy 2-core VM: more samples.
            group
                .sample_size(60)
                .measurement_time(Duration::from_millis(1500));
            group.bench_with_input(BenchmarkId::new("allowlist", n), &n, |b, _| {
                b.iter(|| black_box(&list).lookup(black_box(&host), 443).decision)
            });
            // Short runs for the rest: parse-included and regex timings are only compared
            // with each other, where the differences are large.
            group
                .sample_size(20)
                .measurement_time(Duration::from_millis(800));
            group.bench_with_input(BenchmarkId::new("allowlist_parse", n), &n, |b, _| {
                b.iter(|| {
                    let host = Host::parse(black_box(scenario.host)).expect("valid host");
                    black_box(&list).lookup(&host, 443).decision == Decision::Allowed
                })
            });
            let patterns: Vec<String> = lines.iter().map(|line| to_regex(line)).collect();
            let set = RegexSetBuilder::new(&patterns)
                .case_insensitive(true)
                .size_limit(1 << 30)
                .dfa_size_limit(1 << 30)
                .build()
                .expect("regex set");
            assert_eq!(set.is_match(scenario.host), scenario.allowed);
            group.bench_with_input(BenchmarkId::new("regex_set", n), &n, |b, _| {
                b.iter(|| black_box(&set).is_match(black_box(scenario.host)))
            });
            if n > LINEAR_MAX {
                continue;
            }
            let linear: Vec<Regex> = patterns
                .iter()
                .map(|p| RegexBuilder::new(p).case_insensitive(true).build())
                .collect::<Result<_, _>>()
                .expect("regexes");
            group.bench_with_input(BenchmarkId::new("linear_regex", n), &n, |b, _| {
                b.iter(|| {
                    let host = black_box(scenario.host);
                    black_box(&linear).iter().any(|re| re.is_match(host))
                })
            });
        }
        group.finish();
    }
}

/// The group lives in a private module: `criterion_group!` makes an undocumented `pub fn`.
mod group {
    criterion::criterion_group!(benches, super::matcher);
}
criterion_main!(group::benches);
