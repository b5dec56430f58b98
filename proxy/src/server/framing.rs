//! Message framing of a request head, decided strictly from its raw header lines.
//!
//! hyper tolerates some ambiguous framing (it silently drops `Content-Length` when
//! `Transfer-Encoding` is present, for example). A gate must not: any head a downstream
//! parser could frame differently is refused, so request smuggling material never passes.

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Decides the framing of a request from its header lines, refusing anything ambiguous:
/// both `Content-Length` and `Transfer-Encoding`, several of either, a `Content-Length`
/// that is not plain digits, or a `Transfer-Encoding` that is not exactly `chunked`.
pub fn body_framing<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<BodyFraming, &'static str> {
    let mut length: Option<&[u8]> = None;
    let mut chunked = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            if length.replace(value).is_some() {
                return Err("more than one Content-Length header");
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked {
                return Err("more than one Transfer-Encoding header");
            }
            if value != b"chunked" {
                return Err("Transfer-Encoding other than exactly \"chunked\"");
            }
            chunked = true;
        }
    }
    match (length, chunked) {
        (Some(_), true) => Err("both Transfer-Encoding and Content-Length"),
        (None, true) => Ok(BodyFraming::Chunked),
        (None, false) => Ok(BodyFraming::Empty),
        (Some(digits), false) => {
            if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                return Err("malformed Content-Length");
            }
            let text = std::str::from_utf8(digits).map_err(|_| "malformed Content-Length")?;
            text.parse()
                .map(BodyFraming::Length)
                .map_err(|_| "malformed Content-Length")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framing(pairs: &[(&str, &str)]) -> Result<BodyFraming, &'static str> {
        body_framing(pairs.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let refused: &[&[(&str, &str)]] = &[
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            &[("Content-Length", "5"), ("transfer-encoding", "chunked")],
            &[("content-length", "5, 6")],
            &[("content-length", "+5")],
            &[("content-length", "5"), ("content-length", "6")],
            &[("content-length", "5"), ("content-length", "5")],
            &[("content-length", "")],
            &[("content-length", "-1")],
            &[("content-length", "99999999999999999999")],
            &[("transfer-encoding", "Chunked")],
            &[("transfer-encoding", "chunked ")],
            &[("transfer-encoding", "chunked, identity")],
            &[("transfer-encoding", "gzip")],
            &[("transfer-encoding", "chunked,")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        ];
        for case in refused {
            assert!(framing(case).is_err(), "{case:?}");
        }
    }

    #[test]
    fn plain_framing_is_accepted() {
        assert_eq!(framing(&[]), Ok(BodyFraming::Empty));
        assert_eq!(
            framing(&[("Content-Length", "0")]),
            Ok(BodyFraming::Length(0))
        );
        assert_eq!(
            framing(&[("content-length", "12345")]),
            Ok(BodyFraming::Length(12345))
        );
        assert_eq!(
            framing(&[("Transfer-Encoding", "chunked")]),
            Ok(BodyFraming::Chunked)
        );
        assert_eq!(
            framing(&[("x-content-length", "a")]),
            Ok(BodyFraming::Empty)
        );
    }
}
