//! The TLS name check: a CONNECT tunnel to a TLS port must carry a ClientHello whose
//! server name is the host the client asked the proxy for.
//!
//! Without it, an agent allowed to reach `github.com` could `CONNECT github.com:443` and
//! then ask, inside TLS, for another site served from the same addresses (domain
//! fronting on a CDN). The proxy never decrypts; it reads the plaintext ClientHello that
//! opens every TLS connection ([`hello::peek`]) before relaying a single byte.
//!
//! Rules, for tunnels whose port is in [`SniCheck::ports`] (443 by default), checked
//! after the 200 answer and before anything is written upstream:
//! - the first bytes must be TLS handshake records carrying one complete ClientHello,
//!   read within [`hello::MAX_HELLO_BYTES`] and [`SniCheck::timeout`] (else `sni-not-tls`,
//!   `sni-malformed`, `sni-too-large`, `sni-timeout`, `sni-incomplete`);
//! - for a name target, the hello's server name must be present (else `sni-missing`) and
//!   equal to the target after the same normalisation as every host ([`Host::parse`]:
//!   case, trailing dot, IDNA), else `sni-mismatch`;
//! - for an IP-literal target (allowed only when the literal itself is listed), clients
//!   send no server name and none is required. A name that is present must be that same
//!   address, else `sni-mismatch`: a DNS name there would pick another site on the
//!   listed address, which is the fronting this check exists to stop.
//!
//! - a hello offering Encrypted Client Hello (the `encrypted_client_hello` extension,
//!   GREASE included) is refused (`sni-ech`), whatever its outer name: the name the
//!   server acts on is encrypted, and an outer name equal to an allowed host says
//!   nothing about it.
//!
//! On refusal the upstream, already connected (the proxy dials before answering 200),
//! receives no byte and is closed; a client that spoke TLS gets a fatal
//! `access_denied` alert so its error says it was refused. The bytes read are otherwise
//! written upstream first, unchanged, and relaying continues.

pub mod hello;

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hello::{HelloError, MAX_HELLO_BYTES};
use sandbox_policy::Host;

use crate::net::tunnel::{self, Socket};

/// A fatal TLS alert record, `access_denied` (RFC 8446 §6): what a client sees when the
/// check refuses its tunnel.
const ACCESS_DENIED_ALERT: [u8; 7] = [21, 3, 3, 0, 2, 2, 49];

/// Longest offered server name copied into a log line.
const MAX_LOGGED_NAME: usize = 253;

/// Whether and where the name check runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniCheck {
    /// `--sni-check on|off`.
    pub enabled: bool,
    /// Tunnel ports that must carry TLS (`--sni-ports`, default 443).
    pub ports: Vec<u16>,
    /// Time allowed for the complete ClientHello to arrive.
    pub timeout: Duration,
}

impl Default for SniCheck {
    fn default() -> Self {
        SniCheck {
            enabled: true,
            ports: vec![443],
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a tunnel was refused by the name check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SniRefusal {
    /// The first bytes are not TLS, not a well-formed ClientHello, or too large.
    #[error(transparent)]
    Hello(#[from] HelloError),
    /// The ClientHello names another host.
    #[error("the TLS server name {offered:?} is not the CONNECT host")]
    Mismatch {
        /// The name as offered (lossy UTF-8, truncated), for the log only.
        offered: String,
    },
    /// The ClientHello has no server name, and the CONNECT host is a name.
    #[error("the TLS ClientHello has no server name")]
    Missing,
    /// The ClientHello offers Encrypted Client Hello: the real server name is hidden.
    #[error("the TLS ClientHello offers Encrypted Client Hello, which hides the server name")]
    Encrypted,
    /// The ClientHello did not arrive within the timeout.
    #[error("no complete TLS ClientHello within the timeout")]
    Timeout,
    /// The client closed or failed before sending a complete ClientHello.
    #[error("the client stopped before a complete TLS ClientHello")]
    Incomplete,
}

impl SniRefusal {
    /// The reason code in the decision log line.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            SniRefusal::Hello(HelloError::NotTls) => "sni-not-tls",
            SniRefusal::Hello(HelloError::Malformed) => "sni-malformed",
            SniRefusal::Hello(HelloError::TooLarge) => "sni-too-large",
            SniRefusal::Mismatch { .. } => "sni-mismatch",
            SniRefusal::Missing => "sni-missing",
            SniRefusal::Encrypted => "sni-ech",
            SniRefusal::Timeout => "sni-timeout",
            SniRefusal::Incomplete => "sni-incomplete",
        }
    }

    /// Whether the client spoke TLS, so a TLS alert is something it can read.
    fn spoke_tls(&self) -> bool {
        matches!(
            self,
            SniRefusal::Mismatch { .. }
                | SniRefusal::Missing
                | SniRefusal::Encrypted
                | SniRefusal::Hello(HelloError::Malformed | HelloError::TooLarge)
        )
    }
}

impl SniCheck {
    /// Whether tunnels to `port` are checked.
    pub(crate) fn applies_to(&self, port: u16) -> bool {
        self.enabled && self.ports.contains(&port)
    }

    /// Screens the start of a tunnel to `host:port`: `early` holds the bytes the client
    /// already sent behind its CONNECT head. Returns the bytes to write upstream before
    /// relaying (all bytes read, unchanged), or the refusal, after telling the client and
    /// logging it. Tunnels the check does not apply to pass straight through.
    pub(crate) async fn screen<S: Socket>(
        &self,
        host: &Host,
        port: u16,
        client: &S,
        early: Bytes,
    ) -> Result<Bytes, SniRefusal> {
        if !self.applies_to(port) {
            return Ok(early);
        }
        let mut buffer = BytesMut::from(early);
        let verdict = tokio::time::timeout(self.timeout, read_hello(client, &mut buffer))
            .await
            .unwrap_or(Err(SniRefusal::Timeout))
            .and_then(|hello| judge(host, &hello));
        match verdict {
            Ok(()) => Ok(buffer.freeze()),
            Err(refusal) => {
                tracing::warn!(
                    %host,
                    port,
                    reason = refusal.code(),
                    detail = %refusal,
                    "tls name check refused a tunnel; nothing was sent upstream"
                );
                if refusal.spoke_tls() {
                    let _ = tunnel::write_all(client, &ACCESS_DENIED_ALERT).await;
                }
                let _ = socket2::SockRef::from(client).shutdown(std::net::Shutdown::Write);
                Err(refusal)
            }
        }
    }
}

/// Reads from `client` into `buffer` until it starts with a complete ClientHello.
async fn read_hello<S: Socket>(
    client: &S,
    buffer: &mut BytesMut,
) -> Result<hello::ClientHello, SniRefusal> {
    loop {
        if let Some(hello) = hello::peek(buffer)? {
            return Ok(hello);
        }
        let room = MAX_HELLO_BYTES.saturating_sub(buffer.len());
        if room == 0 {
            return Err(HelloError::TooLarge.into());
        }
        // Exactly `room` bytes of capacity: the read can never pass the bound.
        let mut chunk = Vec::with_capacity(room);
        let read = loop {
            client
                .readable()
                .await
                .map_err(|_| SniRefusal::Incomplete)?;
            match client.try_read_buf(&mut chunk) {
                Ok(read) => break read,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(SniRefusal::Incomplete),
            }
        };
        if read == 0 {
            return Err(SniRefusal::Incomplete);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Decides whether a ClientHello fits the CONNECT host (rules in the module
/// documentation).
fn judge(host: &Host, hello: &hello::ClientHello) -> Result<(), SniRefusal> {
    if hello.encrypted {
        return Err(SniRefusal::Encrypted);
    }
    judge_name(host, hello.server_name.as_deref())
}

/// Decides whether an offered server name fits the CONNECT host.
fn judge_name(host: &Host, offered: Option<&[u8]>) -> Result<(), SniRefusal> {
    let Some(offered) = offered else {
        return match host {
            Host::Ip(_) => Ok(()),
            Host::Name(_) => Err(SniRefusal::Missing),
        };
    };
    let normalised = std::str::from_utf8(offered)
        .ok()
        .and_then(|text| Host::parse(text).ok());
    if normalised.as_ref() == Some(host) {
        return Ok(());
    }
    let shown = &offered[..offered.len().min(MAX_LOGGED_NAME)];
    Err(SniRefusal::Mismatch {
        offered: String::from_utf8_lossy(shown).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Host {
        Host::parse(text).unwrap()
    }

    #[test]
    fn names_match_after_normalisation() {
        let table: &[(&str, Option<&str>, Result<(), &str>)] = &[
            ("example.com", Some("example.com"), Ok(())),
            ("example.com", Some("EXAMPLE.com."), Ok(())),
            ("xn--bcher-kva.example", Some("bücher.example"), Ok(())),
            ("example.com", Some("www.example.com"), Err("sni-mismatch")),
            ("example.com", Some("evilexample.com"), Err("sni-mismatch")),
            ("example.com", Some(""), Err("sni-mismatch")),
            ("example.com", Some("example.com:443"), Err("sni-mismatch")),
            ("example.com", None, Err("sni-missing")),
            ("127.0.0.1", None, Ok(())),
            ("[::1]", None, Ok(())),
            ("127.0.0.1", Some("127.0.0.1"), Ok(())),
            ("127.0.0.1", Some("example.com"), Err("sni-mismatch")),
            ("127.0.0.1", Some("127.0.0.2"), Err("sni-mismatch")),
        ];
        for (target, offered, expected) in table {
            let verdict = judge_name(&host(target), offered.map(str::as_bytes));
            assert_eq!(
                verdict.map_err(|refusal| refusal.code()),
                *expected,
                "{target} / {offered:?}"
            );
        }
    }

    #[test]
    fn non_utf8_names_are_mismatches_and_logged_lossily() {
        let refusal = judge_name(&host("example.com"), Some(&[0xff, b'a'])).unwrap_err();
        assert_eq!(
            refusal,
            SniRefusal::Mismatch {
                offered: "\u{fffd}a".to_owned()
            }
        );
    }

    #[test]
    fn the_check_applies_only_when_enabled_and_on_listed_ports() {
        let check = SniCheck::default();
        assert!(check.applies_to(443));
        assert!(!check.applies_to(80));
        let off = SniCheck {
            enabled: false,
            ..SniCheck::default()
        };
        assert!(!off.applies_to(443));
    }
}
