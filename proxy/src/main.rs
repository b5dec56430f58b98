//! The `sandbox-proxy` binary.

fn main() {}
