//! Name resolution: pinned names first (`--resolve`, tests), then `/etc/hosts`, then the
//! system's DNS through the C library, with a short cache.
//!
//! - `/etc/hosts` is read once at start and answers the names it lists, whatever DNS
//!   says (as the C library does).
//! - Other names are looked up with `getaddrinfo` (musl in the sidecar, reading
//!   `/etc/resolv.conf` with its timeout and attempts) on the runtime's blocking pool,
//!   always as absolute names (`github.com.`): no search-domain expansion, so
//!   `github.com` can never turn into `github.com.corp.internal`. The trailing dot also
//!   makes both glibc and musl skip `/etc/hosts`, which is why the file is read here.
//! - A name with IPv4 addresses is answered with those only; IPv6 addresses are used
//!   only for names without IPv4 (most sandboxes have no IPv6 route).
//! - DNS answers are reused for [`CACHE_FOR`]: the C library does not tell a record's
//!   TTL, so the cache is short. A reused answer is checked against the policy and the
//!   address guard on every request like a fresh one.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandbox_policy::{DomainName, Host};

/// How long a DNS answer is reused.
const CACHE_FOR: Duration = Duration::from_secs(10);
/// Most names cached at once; a full cache drops its expired entries, then all.
const CACHE_ENTRIES: usize = 1024;
const HOSTS: &str = "/etc/hosts";
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Why a name could not be resolved. Never treated as "public": the request fails.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// The name exists nowhere we can see (no address, or not pinned).
    #[error("{name} did not resolve to any address")]
    NoAddresses { name: String },
    /// The lookup itself failed (unknown name, timeout, server failure, ...).
    #[error("DNS lookup of {name} failed")]
    Lookup {
        name: String,
        #[source]
        source: io::Error,
    },
    /// The system DNS configuration could not be read at start-up.
    #[error("cannot read the system DNS configuration ({path})")]
    SystemConfig {
        path: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Resolves host names to addresses; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Resolver {
    pinned: Arc<HashMap<DomainName, Vec<IpAddr>>>,
    hosts: Arc<HashMap<DomainName, Vec<IpAddr>>>,
    cache: Option<Arc<Mutex<Cache>>>,
}

type Cache = HashMap<DomainName, (Instant, Vec<IpAddr>)>;

impl Resolver {
    /// The system resolver, with `pinned` names answered locally first.
    pub(crate) fn system(
        pinned: HashMap<DomainName, Vec<IpAddr>>,
    ) -> Result<Resolver, ResolveError> {
        let config = |path| move |source| ResolveError::SystemConfig { path, source };
        std::fs::File::open(RESOLV_CONF).map_err(config(RESOLV_CONF))?;
        let hosts = match std::fs::read_to_string(HOSTS) {
            Ok(text) => parse_hosts(&text),
            Err(err) if err.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(err) => return Err(config(HOSTS)(err)),
        };
        Ok(Resolver {
            pinned: Arc::new(pinned),
            hosts: Arc::new(hosts),
            cache: Some(Arc::default()),
        })
    }

    /// A resolver that knows only `pinned` names and never sends a DNS query (tests, benches).
    pub fn pinned_only(pinned: HashMap<DomainName, Vec<IpAddr>>) -> Resolver {
        Resolver {
            pinned: Arc::new(pinned),
            hosts: Arc::default(),
            cache: None,
        }
    }

    /// All addresses of `name`, in the order the resolver returned them.
    pub(crate) async fn resolve(&self, name: &DomainName) -> Result<Vec<IpAddr>, ResolveError> {
        if let Some(addresses) = self.pinned.get(name).or_else(|| self.hosts.get(name)) {
            return Ok(addresses.clone());
        }
        let no_addresses = || ResolveError::NoAddresses {
            name: name.as_str().to_owned(),
        };
        let Some(cache) = &self.cache else {
            return Err(no_addresses());
        };
        if let Some(addresses) = cached(cache, name) {
            return Ok(addresses);
        }
        let absolute = format!("{}.", name.as_str());
        let found = tokio::net::lookup_host((absolute, 0))
            .await
            .map_err(|source| ResolveError::Lookup {
                name: name.as_str().to_owned(),
                source,
            })?;
        let addresses = prefer_ipv4(found.map(|address| address.ip()));
        if addresses.is_empty() {
            return Err(no_addresses());
        }
        remember(cache, name, &addresses);
        Ok(addresses)
    }
}

fn cached(cache: &Mutex<Cache>, name: &DomainName) -> Option<Vec<IpAddr>> {
    let cache = cache.lock().ok()?;
    let (at, addresses) = cache.get(name)?;
    (at.elapsed() < CACHE_FOR).then(|| addresses.clone())
}

fn remember(cache: &Mutex<Cache>, name: &DomainName, addresses: &[IpAddr]) {
    let Ok(mut cache) = cache.lock() else {
        return;
    };
    if cache.len() >= CACHE_ENTRIES {
        cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
    }
    cache.insert(name.clone(), (Instant::now(), addresses.to_vec()));
}

/// The IPv4 addresses if there are any, else the IPv6 ones; in the order given, without
/// repeats (getaddrinfo may list an address once per socket type).
fn prefer_ipv4(found: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    for ip in found {
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    if addresses.iter().any(IpAddr::is_ipv4) {
        addresses.retain(IpAddr::is_ipv4);
    }
    addresses
}

/// The names of a hosts file (`ADDRESS NAME [ALIAS...]`, `#` comments), each with its
/// IPv4 addresses if it has any, else its IPv6 ones, in file order. Lines and names
/// that do not parse are skipped, as the C library skips them.
fn parse_hosts(text: &str) -> HashMap<DomainName, Vec<IpAddr>> {
    let mut all: HashMap<DomainName, Vec<IpAddr>> = HashMap::new();
    for line in text.lines() {
        let line = line.split_once('#').map_or(line, |(before, _)| before);
        let mut fields = line.split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        for name in fields {
            if let Ok(Host::Name(name)) = Host::parse(name) {
                all.entry(name).or_default().push(ip);
            }
        }
    }
    all.into_iter()
        .map(|(name, addresses)| (name, prefer_ipv4(addresses.into_iter())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> DomainName {
        match Host::parse(text).unwrap() {
            Host::Name(name) => name,
            Host::Ip(_) => panic!("{text} is an address"),
        }
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|ip| ip.parse().unwrap()).collect()
    }

    #[test]
    fn hosts_files_are_read_as_the_c_library_reads_them() {
        let hosts = parse_hosts(
            "# comment\n\
             127.0.0.1\tlocalhost\n\
             ::1 localhost ip6-localhost # trailing comment\n\
             10.0.0.5 Db.Internal. db\n\
             10.0.0.6 db.internal\n\
             fd00::7 v6only.internal\n\
             not-an-address bad.internal\n\
             10.0.0.8 -bad- good.internal\n\
             \n",
        );
        assert_eq!(hosts[&name("localhost")], ips(&["127.0.0.1"]));
        assert_eq!(hosts[&name("ip6-localhost")], ips(&["::1"]));
        assert_eq!(hosts[&name("db.internal")], ips(&["10.0.0.5", "10.0.0.6"]));
        assert_eq!(hosts[&name("db")], ips(&["10.0.0.5"]));
        assert_eq!(hosts[&name("v6only.internal")], ips(&["fd00::7"]));
        assert_eq!(hosts[&name("good.internal")], ips(&["10.0.0.8"]));
        assert!(!hosts.contains_key(&name("bad.internal")));
        assert!(!hosts.contains_key(&name("comment")));
    }

    #[test]
    fn ipv6_only_for_names_without_ipv4() {
        let mixed = ["2001:db8::1", "192.0.2.1", "192.0.2.1", "192.0.2.2"];
        assert_eq!(
            prefer_ipv4(ips(&mixed).into_iter()),
            ips(&["192.0.2.1", "192.0.2.2"])
        );
        let v6 = ["2001:db8::1", "2001:db8::2"];
        assert_eq!(prefer_ipv4(ips(&v6).into_iter()), ips(&v6));
    }

    #[tokio::test]
    async fn pinned_names_come_first_and_unknown_names_fail() {
        let pinned = HashMap::from([(name("api.test"), ips(&["192.0.2.9"]))]);
        let resolver = Resolver::pinned_only(pinned);
        assert_eq!(
            resolver.resolve(&name("API.test.")).await.unwrap(),
            ips(&["192.0.2.9"])
        );
        assert!(matches!(
            resolver.resolve(&name("other.test")).await,
            Err(ResolveError::NoAddresses { .. })
        ));
    }

    #[tokio::test]
    async fn the_system_resolver_answers_from_the_hosts_file_and_the_cache() {
        let resolver = Resolver::system(HashMap::new()).unwrap();
        // `localhost` is in every hosts file this runs with.
        let local = resolver.resolve(&name("localhost")).await.unwrap();
        assert!(local.iter().all(IpAddr::is_loopback), "{local:?}");
        let cache = resolver.cache.as_ref().unwrap();
        remember(cache, &name("cached.invalid"), &ips(&["192.0.2.4"]));
        assert_eq!(
            resolver.resolve(&name("cached.invalid")).await.unwrap(),
            ips(&["192.0.2.4"])
        );
    }
}
