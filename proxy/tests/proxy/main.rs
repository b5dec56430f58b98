//! Integration tests of the proxy on loopback: real upstreams, real clients; `bypass`
//! holds one test per bypass class, `sni` the TLS name check's, `http_tunnel` those of
//! tunnels served as HTTP, `secrets` those of decrypted tunnels.

// Test helpers outside #[test] functions may fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod bypass;
mod cli;
mod connect;
mod explain;
mod forward;
mod http_tunnel;
mod limits;
mod live;
mod relay;
mod secrets;
mod sni;
mod support;
mod tls;
