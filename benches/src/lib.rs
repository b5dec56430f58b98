//! Benchmarks and peer comparisons for sandbox-proxy.
