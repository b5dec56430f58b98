//! Name resolution: pinned names first (`--resolve`, tests), then the system's DNS.
//!
//! The system resolver is hickory's pure-Rust stub resolver reading `/etc/resolv.conf`
//! and `/etc/hosts`, so a static binary in a `FROM scratch` image resolves names without
//! libc's NSS. Names are always queried as absolute names (no search-domain expansion),
//! so `github.com` can never turn into `github.com.corp.internal`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use sandbox_policy::DomainName;

/// Why a name could not be resolved. Never treated as "public": the request fails.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// The name exists nowhere we can see (NXDOMAIN, no records, or not pinned).
    #[error("{name} did not resolve to any address")]
    NoAddresses { name: String },
    /// The DNS lookup itself failed (timeout, server failure, ...).
    #[error("DNS lookup of {name} failed")]
    Lookup {
        name: String,
        #[source]
        source: hickory_resolver::net::NetError,
    },
    /// The system DNS configuration could not be read at start-up.
    #[error("cannot read the system DNS configuration (/etc/resolv.conf)")]
    SystemConfig(#[source] hickory_resolver::net::NetError),
}

/// Resolves host names to addresses; cheap to clone and share between tasks.
#[derive(Clone)]
pub struct Resolver {
    pinned: Arc<HashMap<DomainName, Vec<IpAddr>>>,
    system: Option<TokioResolver>,
}

impl Resolver {
    /// The system resolver, with `pinned` names answered locally first.
    pub(crate) fn system(
        pinned: HashMap<DomainName, Vec<IpAddr>>,
    ) -> Result<Resolver, ResolveError> {
        let system = TokioResolver::builder_tokio()
            .and_then(|mut builder| {
                // IPv6 only when a name has no IPv4 address: most sandboxes have no IPv6
                // route, and the extra AAAA query per lookup cost more than the rest of
                // a CONNECT's user-space work.
                builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
                builder.build()
            })
            .map_err(ResolveError::SystemConfig)?;
        Ok(Resolver {
            pinned: Arc::new(pinned),
            system: Some(system),
        })
    }

    /// A resolver that knows only `pinned` names and never sends a DNS query (tests, benches).
    pub fn pinned_only(pinned: HashMap<DomainName, Vec<IpAddr>>) -> Resolver {
        Resolver {
            pinned: Arc::new(pinned),
            system: None,
        }
    }

    /// All addresses of `name`, in the order the resolver returned them.
    pub(crate) async fn resolve(&self, name: &DomainName) -> Result<Vec<IpAddr>, ResolveError> {
        if let Some(addresses) = self.pinned.get(name) {
            return Ok(addresses.clone());
        }
        let no_addresses = || ResolveError::NoAddresses {
            name: name.as_str().to_owned(),
        };
        let Some(system) = &self.system else {
            return Err(no_addresses());
        };
        let absolute = format!("{}.", name.as_str());
        match system.lookup_ip(absolute).await {
            Ok(found) => {
                let addresses: Vec<IpAddr> = found.iter().collect();
                if addresses.is_empty() {
                    Err(no_addresses())
                } else {
                    Ok(addresses)
                }
            }
            Err(err) if err.is_no_records_found() => Err(no_addresses()),
            Err(source) => Err(ResolveError::Lookup {
                name: name.as_str().to_owned(),
                source,
            }),
        }
    }
}
