//! Reading the server name out of a TLS ClientHello without taking part in the handshake.
//!
//! [`peek`] looks at the first bytes a client sent into a tunnel. They must be TLS
//! handshake records carrying one complete ClientHello, possibly split over several
//! records; the hello is reassembled (within [`MAX_HELLO_BYTES`]) and parsed with
//! `tls-parser`. Nothing is decrypted: a ClientHello is plaintext by design.
//!
//! The parser is strict because a lenient one is a bypass: a record that is not a
//! handshake, a handshake message that is not a ClientHello, lengths that do not add up,
//! bytes trailing the hello inside its records, two `server_name` extensions or two host
//! names in one are all refused rather than guessed at. Whether the hello offers
//! Encrypted Client Hello (the `encrypted_client_hello` extension, real or GREASE) is
//! reported: its server name is then only the outer, public one.

use tls_parser::{SNIType, TlsExtension};

/// Most bytes read while waiting for a complete ClientHello: one full TLS record
/// (16 KiB of payload plus its 5-byte header). Real hellos, even with post-quantum key
/// shares, are a few KiB.
pub(crate) const MAX_HELLO_BYTES: usize = 16 * 1024 + RECORD_HEADER;

/// TLS record header: content type, protocol version (2 bytes), length (2 bytes).
const RECORD_HEADER: usize = 5;
/// Largest plaintext record payload (RFC 8446 §5.1).
const MAX_RECORD_PAYLOAD: usize = 16 * 1024;
/// Record content type `handshake`.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type `client_hello`.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Handshake message header: type (1 byte), length (3 bytes).
const HANDSHAKE_HEADER: usize = 4;
/// Extension type `server_name` (RFC 6066).
const EXTENSION_SERVER_NAME: u16 = 0;
/// Extension type `encrypted_client_hello` (draft-ietf-tls-esni).
const EXTENSION_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;

/// A complete, well-formed ClientHello, as far as the name check cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The `host_name` of the `server_name` extension, as sent (not yet normalised);
    /// `None` when the hello has no `server_name` extension.
    pub(crate) server_name: Option<Vec<u8>>,
    /// Whether it carries the `encrypted_client_hello` extension.
    pub(crate) encrypted: bool,
}

/// Why the first bytes of a tunnel are not an acceptable ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    /// The bytes are not TLS handshake records (plain HTTP, SSH, SSLv2, ...).
    #[error("not a TLS handshake")]
    NotTls,
    /// TLS records, but not one well-formed ClientHello.
    #[error("not a well-formed TLS ClientHello")]
    Malformed,
    /// The ClientHello does not fit in [`MAX_HELLO_BYTES`].
    #[error("the TLS ClientHello is larger than {MAX_HELLO_BYTES} bytes")]
    TooLarge,
}

/// Parses the ClientHello at the start of `bytes`.
///
/// `Ok(None)` means the bytes so far are a valid beginning and more are needed; bytes
/// after the records that complete the hello (early data, a ChangeCipherSpec) are not
/// looked at. Never panics, whatever `bytes` holds.
pub fn peek(bytes: &[u8]) -> Result<Option<ClientHello>, HelloError> {
    let mut handshake: Vec<u8> = Vec::new();
    let mut rest = bytes;
    loop {
        let Some(fragment) = next_record(&mut rest)? else {
            return Ok(None);
        };
        handshake.extend_from_slice(fragment);
        let Some((&kind, after_kind)) = handshake.split_first() else {
            // An empty handshake record: legal only for other content types.
            return Err(HelloError::Malformed);
        };
        if kind != HANDSHAKE_CLIENT_HELLO {
            return Err(HelloError::Malformed);
        }
        let Some(length) = after_kind.get(..3) else {
            continue;
        };
        let length =
            usize::from(length[0]) << 16 | usize::from(length[1]) << 8 | usize::from(length[2]);
        if HANDSHAKE_HEADER + length > MAX_HELLO_BYTES {
            return Err(HelloError::TooLarge);
        }
        let Some(body) = handshake.get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + length) else {
            continue;
        };
        // Handshake bytes after the hello in the same records would be a second message
        // the server reads without us having looked at it.
        if handshake.len() != HANDSHAKE_HEADER + length {
            return Err(HelloError::Malformed);
        }
        return parse_client_hello(body).map(Some);
    }
}

/// Takes the payload of the next complete handshake record off the front of `rest`;
/// `Ok(None)` when the record is not complete yet.
fn next_record<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, HelloError> {
    let bytes = *rest;
    // Judge each header byte as soon as it arrives, so non-TLS clients are refused at
    // once instead of being waited for.
    match bytes.first() {
        None => return Ok(None),
        Some(&CONTENT_HANDSHAKE) => {}
        Some(_) => return Err(HelloError::NotTls),
    }
    match bytes.get(1..3) {
        Some([3, 0..=4]) => {}
        Some(_) => return Err(HelloError::NotTls),
        None if bytes.get(1).is_some_and(|&major| major != 3) => return Err(HelloError::NotTls),
        None => return Ok(None),
    }
    let Some(length) = bytes.get(3..RECORD_HEADER) else {
        return Ok(None);
    };
    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
    if length == 0 || length > MAX_RECORD_PAYLOAD {
        return Err(HelloError::Malformed);
    }
    let Some(payload) = bytes.get(RECORD_HEADER..RECORD_HEADER + length) else {
        return Ok(None);
    };
    *rest = &bytes[RECORD_HEADER + length..];
    Ok(Some(payload))
}

/// Parses a ClientHello body (after the handshake header) with `tls-parser`.
fn parse_client_hello(body: &[u8]) -> Result<ClientHello, HelloError> {
    let (rest, hello) =
        tls_parser::parse_tls_handshake_client_hello(body).map_err(|_| HelloError::Malformed)?;
    let Some(extensions) = hello.ext else {
        // No extensions block at all: legal (TLS 1.2 and older), and carries no name.
        return if rest.is_empty() {
            Ok(ClientHello {
                server_name: None,
                encrypted: false,
            })
        } else {
            Err(HelloError::Malformed)
        };
    };
    if !rest.is_empty() {
        return Err(HelloError::Malformed);
    }
    let mut server_name = None;
    let mut encrypted = false;
    for (kind, data) in raw_extensions(extensions)? {
        encrypted |= kind == EXTENSION_ENCRYPTED_CLIENT_HELLO;
        if kind != EXTENSION_SERVER_NAME {
            continue;
        }
        if server_name.is_some() {
            return Err(HelloError::Malformed);
        }
        server_name = Some(host_name(data)?);
    }
    Ok(ClientHello {
        server_name,
        encrypted,
    })
}

/// Splits an extensions block into `(type, data)` pairs, requiring exact lengths.
///
/// Only the framing is checked here: the contents of extensions other than
/// `server_name` are the server's business, and parsing them would refuse clients that
/// use extensions newer than our parser.
fn raw_extensions(mut block: &[u8]) -> Result<Vec<(u16, &[u8])>, HelloError> {
    let mut extensions = Vec::new();
    while !block.is_empty() {
        let Some(&[t0, t1, l0, l1]) = block.get(..4) else {
            return Err(HelloError::Malformed);
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        let data = block.get(4..4 + length).ok_or(HelloError::Malformed)?;
        extensions.push((u16::from_be_bytes([t0, t1]), data));
        block = &block[4 + length..];
    }
    Ok(extensions)
}

/// The single `host_name` of a `server_name` extension.
fn host_name(data: &[u8]) -> Result<Vec<u8>, HelloError> {
    let (rest, extension) =
        tls_parser::parse_tls_extension_sni_content(data).map_err(|_| HelloError::Malformed)?;
    let TlsExtension::SNI(names) = extension else {
        return Err(HelloError::Malformed);
    };
    match names.as_slice() {
        [(SNIType::HostName, name)] if rest.is_empty() => Ok(name.to_vec()),
        _ => Err(HelloError::Malformed),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    /// The first flight of a real rustls client for `name` (a DNS name or an IP).
    pub(crate) fn client_hello(name: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        connection.write_tls(&mut out).unwrap();
        out
    }

    /// Re-frames the handshake payload of a single-record hello into records of at
    /// most `size` bytes each.
    fn split_records(hello: &[u8], size: usize) -> Vec<u8> {
        let payload = &hello[RECORD_HEADER..];
        let mut out = Vec::new();
        for chunk in payload.chunks(size) {
            out.extend_from_slice(&hello[..3]);
            out.extend_from_slice(&u16::try_from(chunk.len()).unwrap().to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn reads_the_server_name_of_a_real_client_hello() {
        let hello = client_hello("api.example.com");
        let parsed = peek(&hello).unwrap().unwrap();
        assert_eq!(parsed.server_name.as_deref(), Some(&b"api.example.com"[..]));
    }

    #[test]
    fn a_hello_offering_encrypted_client_hello_is_marked() {
        use rustls::client::{EchGreaseConfig, EchMode};
        use rustls::crypto::aws_lc_rs::hpke::DH_KEM_X25519_HKDF_SHA256_AES_128 as SUITE;
        use rustls::crypto::hpke::Hpke;

        let hello = |ech: Option<EchMode>| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider);
            let builder = match ech {
                Some(mode) => builder.with_ech(mode).unwrap(),
                None => builder.with_safe_default_protocol_versions().unwrap(),
            };
            let config = builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("tls.test").unwrap();
            let mut connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
            let mut out = Vec::new();
            connection.write_tls(&mut out).unwrap();
            peek(&out).unwrap().unwrap()
        };
        let (key, _) = SUITE.generate_key_pair().unwrap();
        let grease = hello(Some(EchMode::Grease(EchGreaseConfig::new(SUITE, key))));
        assert!(grease.encrypted);
        assert_eq!(grease.server_name.as_deref(), Some(&b"tls.test"[..]));
        assert!(!hello(None).encrypted);
    }

    #[test]
    fn a_hello_to_an_ip_address_carries_no_name() {
        let hello = client_hello("127.0.0.1");
        assert_eq!(peek(&hello).unwrap().unwrap().server_name, None);
    }

    #[test]
    fn every_prefix_of_a_hello_asks_for_more() {
        let hello = client_hello("example.com");
        for end in 0..hello.len() {
            assert_eq!(peek(&hello[..end]), Ok(None), "prefix of {end} bytes");
        }
    }

    #[test]
    fn a_hello_split_over_several_records_is_reassembled() {
        let hello = client_hello("split.example.com");
        for size in [1, 7, 100, 512] {
            let split = split_records(&hello, size);
            let parsed = peek(&split).unwrap().unwrap();
            assert_eq!(
                parsed.server_name.as_deref(),
                Some(&b"split.example.com"[..])
            );
            assert_eq!(peek(&split[..split.len() - 1]), Ok(None));
        }
    }

    #[test]
    fn bytes_after_the_hello_records_are_left_alone() {
        let mut bytes = client_hello("example.com");
        // A TLS 1.3 middlebox-compatibility ChangeCipherSpec, then garbage.
        bytes.extend_from_slice(&[20, 3, 3, 0, 1, 1, 0xde, 0xad]);
        assert!(peek(&bytes).unwrap().is_some());
    }

    #[test]
    fn non_tls_bytes_are_refused_from_the_first_byte() {
        for bytes in [
            &b"G"[..],
            b"GET / HTTP/1.1\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            &[0x80, 0x2e, 0x01],  // SSLv2-compatible hello
            &[22, 2],             // record version 2.x
            &[22, 3, 9, 0, 10],   // record version 3.9
            &[23, 3, 3, 0, 1, 0], // application data first
        ] {
            assert_eq!(peek(bytes), Err(HelloError::NotTls), "{bytes:?}");
        }
    }

    #[test]
    fn malformed_handshakes_are_refused() {
        let hello = client_hello("example.com");
        // A record claiming more than 16 KiB, an empty record, a ServerHello.
        assert_eq!(peek(&[22, 3, 1, 0x40, 0x01]), Err(HelloError::Malformed));
        assert_eq!(peek(&[22, 3, 1, 0, 0]), Err(HelloError::Malformed));
        assert_eq!(
            peek(&[22, 3, 3, 0, 4, 2, 0, 0, 0]),
            Err(HelloError::Malformed)
        );
        // A handshake length beyond the bound.
        assert_eq!(
            peek(&[22, 3, 1, 0, 4, 1, 0, 0x50, 0]),
            Err(HelloError::TooLarge)
        );
        // The hello's own length one byte short of its record: a trailing byte.
        let mut trailing = hello.clone();
        let length = u16::from_be_bytes([hello[3], hello[4]]) + 1;
        trailing[3..5].copy_from_slice(&length.to_be_bytes());
        trailing.push(0);
        assert_eq!(peek(&trailing), Err(HelloError::Malformed));
    }

    #[test]
    fn two_server_names_are_refused() {
        // Two host names in one server_name extension.
        let mut two = vec![0, 0, 0, 20, 0, 18];
        for name in [b"a.test", b"b.test"] {
            two.extend_from_slice(&[0, 0, 6]);
            two.extend_from_slice(name);
        }
        assert_eq!(host_name(&two[4..]), Err(HelloError::Malformed));
        assert_eq!(raw_extensions(&two).unwrap().len(), 1);
        // A lone well-formed name passes.
        let one = [0, 9, 0, 0, 6, b'a', b'.', b't', b'e', b's', b't'];
        assert_eq!(host_name(&one), Ok(b"a.test".to_vec()));
        // Extension framing that overruns its block.
        assert_eq!(raw_extensions(&[0, 0, 0, 9, 1]), Err(HelloError::Malformed));
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic sweep; the fuzz target `client_hello` goes further.
        let hello = client_hello("example.com");
        let mut state: u32 = 0x9e37_79b9;
        for _ in 0..2000 {
            let mut bytes = hello.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let at = state as usize % bytes.len();
                bytes[at] = (state >> 8) as u8;
            }
            let _ = peek(&bytes);
        }
    }
}
