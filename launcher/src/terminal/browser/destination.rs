//! Which URLs from the sandbox may open in the user's browser.
//!
//! A line is parsed the way browsers parse URLs (WHATWG, the `url` crate: `\` as `/`,
//! decimal and hex IPv4 forms, IDNA), and the browser is given the parsed URL's own
//! serialisation, so what was checked is what opens. Then, by [`Rules`]:
//! - with the proxy, the policy in force decides host and port, and every address the
//!   name resolves to on the host goes through the policy's address guard, as the
//!   sidecar does for the agent's own requests;
//! - without it, every address the name resolves to on the host must be public (no
//!   loopback, private, link-local, CGNAT or other special address);
//! - in both, the host's loopback (and `0.0.0.0`, which browsers send to it) is never
//!   opened, except a login callback the launcher carries into the sandbox
//!   ([`super::callback`]): that loopback port is the sandbox's, not the host's.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use sandbox_policy::{AddressClass, Host, Policy};
use tokio::sync::watch;
use url::Url;

/// The longest URL accepted (OAuth URLs with PKCE parameters stay well below this).
pub(crate) const MAX_URL: usize = 4096;
/// How long resolving a name on the host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a line from the sandbox was not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Longer than [`MAX_URL`].
    #[error("longer than {MAX_URL} bytes")]
    TooLong,
    /// Spaces, control characters or non-ASCII (which a URL never needs, percent-encoded).
    #[error("contains spaces, control or non-ASCII characters")]
    Characters,
    /// Not an `http://` or `https://` URL.
    #[error("not an http or https URL")]
    Scheme,
    /// Not a URL with a host.
    #[error("not a valid URL with a host")]
    Invalid,
    /// The policy in force does not allow it (the policy's explanation).
    #[error("{0}")]
    Policy(String),
    /// The host is or resolves to an address of the host's own networks.
    #[error("{class} address {address} ({host}): your machine or its networks")]
    Address {
        host: String,
        address: IpAddr,
        class: AddressClass,
    },
    /// The name does not resolve on the host (in doubt, not opened).
    #[error("{0} does not resolve")]
    Unresolved(String),
}

/// A URL from the sandbox that passed the syntactic checks.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// The parsed URL; its serialisation is what the browser gets.
    pub(crate) url: Url,
    host: Host,
    port: u16,
}

impl Destination {
    /// Parses a line written by the sandbox: printable ASCII without spaces, at most
    /// [`MAX_URL`] bytes, an absolute `http`/`https` URL with a host.
    ///
    /// # Errors
    ///
    /// The reason it is refused.
    pub(crate) fn parse(line: &str) -> Result<Self, Refusal> {
        if line.len() > MAX_URL {
            return Err(Refusal::TooLong);
        }
        if !line.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Refusal::Characters);
        }
        let url = Url::parse(line).map_err(|_| {
            // `Url` parses `javascript:` and `file:` too: only the scheme matters then.
            match line.split_once(':') {
                Some((scheme, _)) if !is_web(&scheme.to_ascii_lowercase()) => Refusal::Scheme,
                _ => Refusal::Invalid,
            }
        })?;
        if !is_web(url.scheme()) {
            return Err(Refusal::Scheme);
        }
        let host = match url.host() {
            Some(url::Host::Domain(name)) => Host::parse(name),
            Some(url::Host::Ipv4(ip)) => Ok(Host::Ip(ip.into())),
            Some(url::Host::Ipv6(ip)) => Ok(Host::Ip(ip.into())),
            None => return Err(Refusal::Invalid),
        }
        .map_err(|_| Refusal::Invalid)?;
        let port = url.port_or_known_default().ok_or(Refusal::Invalid)?;
        Ok(Self { url, host, port })
    }

    /// Whether it names the host's loopback (`localhost`, `*.localhost`, `127.0.0.0/8`,
    /// `[::1]`) or `0.0.0.0`, which browsers also send there.
    fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Name(name) => {
                let name = name.as_str();
                name == "localhost" || name.ends_with(".localhost")
            }
            Host::Ip(ip) => ip.is_loopback() || ip.is_unspecified(),
        }
    }

    /// The port of a plain-HTTP loopback URL, the shape of a login callback.
    pub(crate) fn loopback_http_port(&self) -> Option<u16> {
        (self.url.scheme() == "http" && self.is_loopback()).then_some(self.port)
    }
}

fn is_web(scheme: &str) -> bool {
    scheme == "http" || scheme == "https"
}

/// What decides whether a destination opens.
#[derive(Clone)]
pub(crate) enum Rules {
    /// Proxy mode: the policy in force, as the sidecar enforces it.
    Policy(watch::Receiver<Arc<Policy>>),
    /// No proxy: public addresses only.
    PublicOnly,
}

impl Rules {
    /// Decides on `destination`; `callbacks` are the loopback ports carried into the
    /// sandbox, which may open whatever the rules.
    ///
    /// # Errors
    ///
    /// Why it may not open.
    pub(crate) async fn check(
        &self,
        destination: &Destination,
        callbacks: &HashSet<u16>,
    ) -> Result<(), Refusal> {
        if destination
            .loopback_http_port()
            .is_some_and(|port| callbacks.contains(&port))
        {
            return Ok(());
        }
        let Destination { host, port, .. } = destination;
        let shown = host.to_string();
        let policy = match self {
            Rules::Policy(policy) => Some(Arc::clone(&policy.borrow())),
            Rules::PublicOnly => None,
        };
        let permit = match &policy {
            Some(policy) => Some(
                policy
                    .check_target(host, *port)
                    .map_err(|denial| Refusal::Policy(denial.explanation()))?,
            ),
            None => None,
        };
        for address in addresses(destination).await? {
            let class = AddressClass::of(address);
            let refused = Refusal::Address {
                host: shown.clone(),
                address,
                class,
            };
            // The host's own loopback is never the sandbox's business (also written as
            // an IPv4-mapped IPv6 address, which browsers connect to the same way).
            if matches!(
                AddressClass::of(address.to_canonical()),
                AddressClass::Loopback | AddressClass::Unspecified
            ) {
                return Err(refused);
            }
            match (&policy, &permit) {
                (Some(policy), Some(permit)) => {
                    policy
                        .check_address(permit, host, *port, address)
                        .map_err(|denial| Refusal::Policy(denial.explanation()))?;
                }
                _ if !class.is_public() => return Err(refused),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The addresses `destination`'s host stands for on this machine: an IP literal itself,
/// `localhost` names the loopback (as browsers do, without asking DNS), other names as
/// the host resolves them.
async fn addresses(destination: &Destination) -> Result<Vec<IpAddr>, Refusal> {
    let name = match &destination.host {
        Host::Ip(ip) => return Ok(vec![*ip]),
        _ if destination.is_loopback() => return Ok(vec![Ipv4Addr::LOCALHOST.into()]),
        Host::Name(name) => name.as_str().to_owned(),
    };
    let unresolved = || Refusal::Unresolved(name.clone());
    let lookup = tokio::net::lookup_host((name.as_str(), destination.port));
    let found: Vec<IpAddr> = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .map_err(|_| unresolved())?
        .map_err(|_| unresolved())?
        .map(|address| address.ip())
        .collect();
    if found.is_empty() {
        return Err(unresolved());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandbox_policy::PolicyOptions;

    fn parse(line: &str) -> Result<String, Refusal> {
        Destination::parse(line).map(|d| d.url.to_string())
    }

    #[test]
    fn only_bounded_http_urls_with_a_host_pass_and_open_as_parsed() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        let cases: &[(&str, Result<&str, Refusal>)] = &[
            (
                "https://github.com/login/oauth/authorize?client_id=x&state=y",
                Ok("https://github.com/login/oauth/authorize?client_id=x&state=y"),
            ),
            ("HTTPS://EXAMPLE.COM", Ok("https://example.com/")),
            // Browsers read `\` as `/`: the host is the part before it.
            (
                "https://allowed.example\\@evil.example/",
                Ok("https://allowed.example/@evil.example/"),
            ),
            ("http://2130706433/", Ok("http://127.0.0.1/")),
            ("http://0x7f.1/", Ok("http://127.0.0.1/")),
            ("file:///etc/passwd", Err(Refusal::Scheme)),
            ("/etc/passwd", Err(Refusal::Invalid)),
            ("javascript:alert(1)", Err(Refusal::Scheme)),
            ("ftp://example.com/", Err(Refusal::Scheme)),
            ("data:text/html,x", Err(Refusal::Scheme)),
            ("https://", Err(Refusal::Invalid)),
            ("https:///path", Ok("https://path/")),
            ("https://:443/", Err(Refusal::Invalid)),
            (
                "https://example.com/ --new-window",
                Err(Refusal::Characters),
            ),
            ("https://example.com/\u{7}", Err(Refusal::Characters)),
            ("https://exämple.com/", Err(Refusal::Characters)),
            (&long, Err(Refusal::TooLong)),
        ];
        for (line, expected) in cases {
            let expected = expected.clone().map(str::to_owned);
            assert_eq!(parse(line), expected, "{line:?}");
        }
    }

    fn check(rules: &Rules, line: &str, callbacks: &[u16]) -> Result<(), Refusal> {
        let destination = Destination::parse(line).unwrap();
        let callbacks = callbacks.iter().copied().collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(rules.check(&destination, &callbacks))
    }

    fn class_of(result: Result<(), Refusal>) -> Option<AddressClass> {
        match result {
            Err(Refusal::Address { class, .. }) => Some(class),
            other => panic!("not an address refusal: {other:?}"),
        }
    }

    #[test]
    fn without_the_proxy_only_public_addresses_open() {
        let rules = Rules::PublicOnly;
        assert_eq!(check(&rules, "https://93.184.215.14/login", &[]), Ok(()));
        assert_eq!(check(&rules, "https://[2606:4700::1111]/", &[]), Ok(()));
        for (line, class) in [
            ("http://127.0.0.1:8080/", AddressClass::Loopback),
            ("http://localhost:8080/", AddressClass::Loopback),
            ("http://app.localhost/", AddressClass::Loopback),
            ("http://[::1]:3000/", AddressClass::Loopback),
            ("http://0.0.0.0:3000/", AddressClass::Unspecified),
            ("http://2130706433/", AddressClass::Loopback),
            ("http://192.168.1.1/admin", AddressClass::Private),
            ("http://10.0.0.1/", AddressClass::Private),
            (
                "http://169.254.169.254/latest/meta-data",
                AddressClass::LinkLocal,
            ),
            ("http://100.100.100.100/", AddressClass::SharedCgnat),
            ("http://[fd00::1]/", AddressClass::Private),
            ("http://[::ffff:127.0.0.1]/", AddressClass::Ipv4Embedded),
            ("http://[::ffff:10.0.0.1]/", AddressClass::Ipv4Embedded),
        ] {
            assert_eq!(class_of(check(&rules, line, &[])), Some(class), "{line}");
        }
        assert_eq!(
            check(&rules, "https://name.invalid/", &[]),
            Err(Refusal::Unresolved("name.invalid".into()))
        );
    }

    #[test]
    fn with_the_proxy_the_policy_in_force_decides_host_and_port() {
        let text = "93.184.215.14\n*.corp.test\n10.1.2.3\n127.0.0.1\n";
        let policy = Policy::from_text("allow.txt", text, &PolicyOptions::default(), 1).unwrap();
        let (sender, receiver) = watch::channel(Arc::new(policy));
        let rules = Rules::Policy(receiver);
        assert_eq!(check(&rules, "https://93.184.215.14/login", &[]), Ok(()));
        let not_listed = check(&rules, "https://8.8.8.8/", &[]);
        assert!(
            matches!(&not_listed, Err(Refusal::Policy(why)) if why.contains("not in the allowlist")),
            "{not_listed:?}"
        );
        let port = check(&rules, "https://93.184.215.14:8443/", &[]);
        assert!(
            matches!(&port, Err(Refusal::Policy(why)) if why.contains("port 8443")),
            "{port:?}"
        );
        // An exact entry may reach a private address, as through the proxy.
        assert_eq!(check(&rules, "http://10.1.2.3/", &[]), Ok(()));
        // Never the host's loopback, even when listed.
        assert_eq!(
            class_of(check(&rules, "http://127.0.0.1/", &[])),
            Some(AddressClass::Loopback)
        );
        // A new policy takes effect for the next URL.
        let narrower = Policy::from_text("allow.txt", "8.8.8.8\n", &PolicyOptions::default(), 2);
        sender.send_replace(Arc::new(narrower.unwrap()));
        assert!(check(&rules, "https://93.184.215.14/login", &[]).is_err());
        assert_eq!(check(&rules, "https://8.8.8.8/", &[]), Ok(()));
    }

    #[test]
    fn a_login_callback_carried_into_the_sandbox_opens_in_every_mode() {
        let policy = Policy::from_text("a", "8.8.8.8\n", &PolicyOptions::default(), 1).unwrap();
        let proxy = Rules::Policy(watch::channel(Arc::new(policy)).1);
        for rules in [Rules::PublicOnly, proxy] {
            for line in [
                "http://localhost:1455/auth/callback",
                "http://127.0.0.1:1455/x",
            ] {
                assert_eq!(check(&rules, line, &[1455]), Ok(()), "{line}");
            }
            // Another port, or https on that port, is the host's loopback.
            assert!(check(&rules, "http://localhost:1456/", &[1455]).is_err());
            assert!(check(&rules, "https://localhost:1455/", &[1455]).is_err());
        }
    }
}
