//! Placeholders and values in request and response heads.
//!
//! - [`Secrets::add`], in a request to a host of a decrypted tunnel: each placeholder
//!   of a secret bound to that host becomes the value, in every header value
//!   (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, any other) and in the
//!   query of the target (percent-encoded there). Never in the path, never in a body.
//! - [`Secrets::watch`], in every request the proxy reads: placeholders of secrets not
//!   bound to the request's host, in header values or anywhere in the target, are
//!   recorded as strays and go on unchanged (a placeholder is worthless).
//! - [`Secrets::hide`], in a response: a value echoed in a header value becomes its
//!   placeholder again.

use http::header::{HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use sandbox_policy::Host;
use sandbox_policy::protocol::PLACEHOLDER_PREFIX;

use super::grants::{Grant, Secrets};

/// The secrets a request carried: for its decision line.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// Names of the secrets added.
    pub(crate) added: Vec<String>,
    /// Names of the secrets whose placeholder went to a host not bound to them.
    pub(crate) strays: Vec<String>,
}

impl Secrets {
    /// Adds the values of the secrets bound to `host` in place of their placeholders in
    /// `head` (module documentation), and records the strays. The secrets added are
    /// counted once the request went out ([`Secrets::count_added`]).
    pub(crate) fn add(&self, head: &mut http::request::Parts, host: &Host) -> Marks {
        let mut marks = self.watch(&head.uri, &head.headers, host);
        for grant in &self.grants {
            if !grant.is_bound_to(host) {
                continue;
            }
            let mut added = false;
            for value in head.headers.values_mut() {
                if let Some(replaced) = replace_all(
                    value.as_bytes(),
                    grant.placeholder.as_bytes(),
                    grant.value.as_bytes(),
                ) && let Ok(mut replaced) = HeaderValue::from_bytes(&replaced)
                {
                    // Sensitive: `Debug` of the header shows no value.
                    replaced.set_sensitive(true);
                    *value = replaced;
                    added = true;
                }
            }
            if let Some(uri) = with_query_replaced(&head.uri, grant) {
                head.uri = uri;
                added = true;
            }
            if added {
                marks.added.push(grant.name.clone());
            }
        }
        marks
    }

    /// Counts one request that went out with the secrets `names` added.
    pub(crate) fn count_added(&self, names: &[String]) {
        for (index, grant) in self.grants.iter().enumerate() {
            if names.contains(&grant.name) {
                self.ledger.added(index);
            }
        }
    }

    /// Records the placeholders of secrets not bound to `host` in a request's target
    /// `uri` and `headers`.
    pub(crate) fn watch(&self, uri: &Uri, headers: &HeaderMap, host: &Host) -> Marks {
        let mut marks = Marks::default();
        if self.grants.is_empty() {
            return marks;
        }
        let target = uri
            .path_and_query()
            .map_or(&b""[..], |pq| pq.as_str().as_bytes());
        let carriers: Vec<&[u8]> = std::iter::once(target)
            .chain(headers.values().map(HeaderValue::as_bytes))
            .filter(|text| find(text, PLACEHOLDER_PREFIX.as_bytes()).is_some())
            .collect();
        if carriers.is_empty() {
            return marks;
        }
        for (index, grant) in self.grants.iter().enumerate() {
            let placeholder = grant.placeholder.as_bytes();
            if !grant.is_bound_to(host)
                && carriers
                    .iter()
                    .any(|text| find(text, placeholder).is_some())
            {
                self.ledger.stray(index, host);
                marks.strays.push(grant.name.clone());
            }
        }
        marks
    }

    /// Puts placeholders back in place of values echoed in the header values of `head`.
    pub(crate) fn hide(&self, head: &mut http::response::Parts) {
        for grant in &self.grants {
            for value in head.headers.values_mut() {
                if let Some(hidden) = replace_all(
                    value.as_bytes(),
                    grant.value.as_bytes(),
                    grant.placeholder.as_bytes(),
                ) && let Ok(hidden) = HeaderValue::from_bytes(&hidden)
                {
                    *value = hidden;
                }
            }
        }
    }
}

/// `uri` with `grant`'s placeholder replaced by its percent-encoded value in the query;
/// `None` when the query does not carry it.
fn with_query_replaced(uri: &Uri, grant: &Grant) -> Option<Uri> {
    let path_and_query = uri.path_and_query()?;
    let query = path_and_query.query()?;
    let encoded = percent_encode(grant.value.as_bytes());
    let replaced = replace_all(
        query.as_bytes(),
        grant.placeholder.as_bytes(),
        encoded.as_bytes(),
    )?;
    let text = format!(
        "{}?{}",
        path_and_query.path(),
        String::from_utf8(replaced).ok()?
    );
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(text).ok()?);
    Uri::from_parts(parts).ok()
}

/// `text` with every byte but the unreserved ones (RFC 3986) written `%XX`.
fn percent_encode(text: &[u8]) -> String {
    let mut encoded = String::with_capacity(text.len());
    for &byte in text {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `haystack` with every `needle` replaced by `with`; `None` when there is none.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let first = find(haystack, needle)?;
    let mut out = Vec::with_capacity(haystack.len() + with.len());
    out.extend_from_slice(&haystack[..first]);
    out.extend_from_slice(with);
    let mut rest = &haystack[first + needle.len()..];
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use sandbox_policy::protocol::{self, SecretGrant};

    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";

    fn secrets() -> Secrets {
        let grant = |name: &str, value: &str, host: &str| SecretGrant {
            name: name.to_owned(),
            placeholder: protocol::placeholder(name, HEX),
            value: value.to_owned(),
            hosts: vec![host.to_owned()],
        };
        Secrets::new(vec![
            grant("KEY", "sk-real+/=", "api.test"),
            grant("OTHER", "other-real", "other.test"),
        ])
        .unwrap()
    }

    fn placeholder(name: &str) -> String {
        protocol::placeholder(name, HEX)
    }

    fn request(target: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut builder = http::Request::get(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn host(name: &str) -> Host {
        Host::parse(name).unwrap()
    }

    #[test]
    fn placeholders_become_values_in_headers_and_query_for_their_host_only() {
        let secrets = secrets();
        let key = placeholder("KEY");
        let mut head = request(
            &format!("/v1/{key}/x?key={key}&n=1"),
            &[
                ("authorization", &format!("Bearer {key}")),
                ("x-api-key", &key),
                ("x-goog-api-key", &format!("{key},{key}")),
                ("x-other", &placeholder("OTHER")),
            ],
        );
        let marks = secrets.add(&mut head, &host("API.test"));
        assert_eq!(secrets.report().secrets[0].added, 0);
        secrets.count_added(&marks.added);
        assert_eq!(marks.added, ["KEY"]);
        assert_eq!(marks.strays, ["OTHER"]);
        assert_eq!(head.headers["authorization"], "Bearer sk-real+/=");
        assert!(head.headers["authorization"].is_sensitive());
        assert_eq!(head.headers["x-api-key"], "sk-real+/=");
        assert_eq!(head.headers["x-goog-api-key"], "sk-real+/=,sk-real+/=");
        assert_eq!(head.headers["x-other"], placeholder("OTHER").as_str());
        // The query only, percent-encoded; the path keeps the placeholder.
        assert_eq!(
            head.uri.to_string(),
            format!("/v1/{key}/x?key=sk-real%2B%2F%3D&n=1")
        );
        let report = secrets.report();
        assert_eq!(report.secrets[0].added, 1);
        assert_eq!(report.secrets[1].added, 0);
        assert_eq!(
            (
                report.strays[0].name.as_str(),
                report.strays[0].host.as_str()
            ),
            ("OTHER", "api.test")
        );
    }

    #[test]
    fn other_hosts_get_the_placeholder_unchanged_and_it_is_recorded() {
        let secrets = secrets();
        let key = placeholder("KEY");
        for _ in 0..2 {
            let mut head = request(&format!("/gist?k={key}"), &[("x-api-key", &key)]);
            let before = head.headers.clone();
            let marks = secrets.add(&mut head, &host("gist.test"));
            assert!(marks.added.is_empty());
            assert_eq!(marks.strays, ["KEY"]);
            assert_eq!(head.headers, before);
            assert_eq!(head.uri.to_string(), format!("/gist?k={key}"));
        }
        let in_path = request(&format!("http://x.test/{key}"), &[]);
        let marks = secrets.watch(&in_path.uri, &in_path.headers, &host("x.test"));
        assert_eq!(marks.strays, ["KEY"]);
        let report = secrets.report();
        assert_eq!(report.secrets[0].added, 0);
        let counts: Vec<_> = report
            .strays
            .iter()
            .map(|s| (s.host.as_str(), s.count))
            .collect();
        assert_eq!(counts, [("gist.test", 2), ("x.test", 1)]);
    }

    #[test]
    fn nothing_is_recorded_without_placeholders() {
        let secrets = secrets();
        let mut head = request("/?q=agent-sandbox-secret-", &[("x-api-key", "sk-own")]);
        assert_eq!(secrets.add(&mut head, &host("api.test")), Marks::default());
        assert_eq!(head.headers["x-api-key"], "sk-own");
        assert!(secrets.report().strays.is_empty());
    }

    #[test]
    fn echoed_values_go_back_as_placeholders() {
        let secrets = secrets();
        let mut head = http::Response::builder()
            .header("x-echo", "key=sk-real+/=; other=other-real")
            .header("x-plain", "fine")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        secrets.hide(&mut head);
        assert_eq!(
            head.headers["x-echo"],
            format!("key={}; other={}", placeholder("KEY"), placeholder("OTHER")).as_str()
        );
        assert_eq!(head.headers["x-plain"], "fine");
    }

    #[test]
    fn replace_all_replaces_every_occurrence() {
        assert_eq!(replace_all(b"abcab", b"ab", b"X"), Some(b"XcX".to_vec()));
        assert_eq!(replace_all(b"abc", b"zz", b"X"), None);
        assert_eq!(replace_all(b"abc", b"", b"X"), None);
        assert_eq!(percent_encode(b"a-Z_9.~ +/"), "a-Z_9.~%20%2B%2F");
    }
}
