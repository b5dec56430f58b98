//! The request target, validated before any policy decision, and the request rewritten
//! for the upstream.
//!
//! hyper parses the request head; this module is stricter than hyper about the target:
//! CONNECT takes the authority form only, a forwarded request an absolute `http://` URL,
//! and the authority goes through [`Authority::parse`] (no userinfo, no odd IPv4 forms).
//! A forwarded request reaches the upstream with the normalised authority in its URL and
//! `Host`, and without hop-by-hop headers; a request served inside a tunnel
//! ([`super::origin`]) with its path only and the tunnel's `Host`. Message framing is
//! judged on the raw bytes beforehand ([`super::sniff`], [`super::framing`]).

use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, UPGRADE};
use http::{Method, Request, Uri};
use sandbox_policy::{Authority, Host};

use super::respond::ProxyError;

/// The destination of a proxy request, validated and normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) host: Host,
    /// The destination port (explicit, or 80 for `http://` URLs).
    pub(crate) port: u16,
}

fn bad(reason: impl Into<String>) -> ProxyError {
    ProxyError::BadRequest(reason.into())
}

/// The target of a `CONNECT host:port` request (authority form only).
pub(crate) fn connect_target<B>(request: &Request<B>) -> Result<Target, ProxyError> {
    let uri = request.uri();
    let authority = match (uri.scheme(), uri.authority(), uri.path_and_query()) {
        (None, Some(authority), None) => authority,
        _ => return Err(bad("CONNECT needs an authority-form target (host:port)")),
    };
    let parsed = parse_authority(authority.as_str())?;
    let port = parsed
        .port
        .ok_or_else(|| bad("CONNECT target needs a port"))?;
    Ok(Target {
        host: parsed.host,
        port,
    })
}

/// The target of an absolute-form `http://host[:port]/path` request.
pub(crate) fn forward_target<B>(request: &Request<B>) -> Result<(Target, Authority), ProxyError> {
    let uri = request.uri();
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https:// URLs must be tunnelled with CONNECT, not sent to the proxy",
            ));
        }
        Some(other) => return Err(bad(format!("unsupported URL scheme {other:?}"))),
        None => {
            return Err(bad(
                "not a proxy request: the request target must be an absolute http:// URL",
            ));
        }
    }
    let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
    let parsed = parse_authority(authority.as_str())?;
    let target = Target {
        host: parsed.host.clone(),
        port: parsed.port.unwrap_or(80),
    };
    Ok((target, parsed))
}

/// Parses an authority from a request target or `Host` header.
pub(crate) fn parse_authority(text: &str) -> Result<Authority, ProxyError> {
    if text.contains('@') {
        return Err(bad(
            "credentials (userinfo) in the request target are not allowed",
        ));
    }
    Authority::parse(text).map_err(|err| bad(format!("invalid host in request target: {err}")))
}

/// Hop-by-hop headers that never cross the proxy (RFC 9110 §7.6.1, plus the
/// non-standard ones proxies are known to honour).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// Removes hop-by-hop headers, including every header named in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Prepares a validated absolute-form request for the upstream: origin server URL
/// rebuilt from the normalised authority, Host set to that authority, hop-by-hop
/// headers removed.
pub(crate) fn rewrite_for_upstream<B>(
    request: &mut Request<B>,
    authority: &Authority,
) -> Result<(), ProxyError> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let uri: Uri = format!("http://{authority}{path}")
        .parse()
        .map_err(|_| bad("invalid request target"))?;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    let host = authority
        .to_string()
        .parse()
        .map_err(|_| bad("invalid host"))?;
    headers.insert(HOST, host);
    Ok(())
}

/// The `Upgrade` value of a request asking to switch protocols (`Connection: upgrade`
/// and an `Upgrade` header), if it does.
pub(crate) fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// Prepares a request served inside a tunnel for its origin: the target reduced to
/// the path (origin form), `Host` set to `host`, hop-by-hop headers removed, except
/// `Connection: upgrade` and `Upgrade: upgrade` when it asks to switch protocols.
pub(crate) fn rewrite_for_origin<B>(
    request: &mut Request<B>,
    host: HeaderValue,
    upgrade: Option<HeaderValue>,
) -> Result<(), ProxyError> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let uri: Uri = path.parse().map_err(|_| bad("invalid request target"))?;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    headers.insert(HOST, host);
    if let Some(protocol) = upgrade {
        headers.insert(UPGRADE, protocol);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    Ok(())
}

pub(crate) fn is_connect<B>(request: &Request<B>) -> bool {
    request.method() == Method::CONNECT
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic abc"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("upgrade", "websocket"),
            ("accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut map);
        let left: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn targets_must_have_the_right_form() {
        let connect = |uri: &str| {
            Request::connect(uri)
                .body(())
                .map_err(|_| ())
                .and_then(|r| connect_target(&r).map_err(|_| ()))
        };
        assert_eq!(
            connect("Example.COM.:443").unwrap(),
            Target {
                host: Host::parse("example.com").unwrap(),
                port: 443
            }
        );
        for bad in ["example.com", "http://example.com:443/", "/"] {
            assert!(connect(bad).is_err(), "{bad}");
        }
        let forward = |uri: &str| {
            Request::get(uri)
                .body(())
                .map_err(|_| ())
                .and_then(|r| forward_target(&r).map_err(|_| ()))
        };
        assert_eq!(forward("http://a.example/x").unwrap().0.port, 80);
        assert_eq!(forward("http://a.example:8080/x").unwrap().0.port, 8080);
        for bad in [
            "https://a.example/",
            "/relative",
            "http://user:pw@a.example/",
            "ftp://a.example/",
        ] {
            assert!(forward(bad).is_err(), "{bad}");
        }
    }
}
