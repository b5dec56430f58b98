//! Secrets as declared: an environment variable bound to the hosts that may receive it.
//! Written `NAME=HOST[,HOST...]` on the command line (`--secret`) and `NAME = ["HOST",
//! ...]` in the `[secrets]` tables of the settings file and of agent profiles. Only the
//! declaration lives here; the values are read from the host in `sandbox::secrets`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use sandbox_policy::Host;
use serde::Deserialize;

/// Declared secrets: the hosts each variable may be sent to.
pub(crate) type SecretTable = BTreeMap<SecretName, SecretHosts>;

/// The name of an environment variable holding a secret (`[A-Za-z_][A-Za-z0-9_]*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct SecretName(String);

/// The hosts a secret may be sent to: at least one, each an exact DNS name (no
/// wildcard, no IP address), normalised as the allowlist normalises names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub(crate) struct SecretHosts(Vec<String>);

/// `NAME=HOST[,HOST...]`, the value of `--secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretSpec {
    pub(crate) name: SecretName,
    pub(crate) hosts: SecretHosts,
}

/// Why a secret declaration is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SecretError {
    /// Not an environment variable's name.
    #[error(
        "invalid secret name {0:?}: expected an environment variable's name (letters, digits, `_`)"
    )]
    Name(String),
    /// `--secret` without `=`.
    #[error("invalid secret {0:?}: expected NAME=HOST[,HOST...]")]
    Form(String),
    /// No host given.
    #[error("a secret needs at least one host to be sent to")]
    NoHost,
    /// A host that is not an exact DNS name.
    #[error("invalid secret host {host:?}: {reason}")]
    Host { host: String, reason: String },
}

impl SecretName {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SecretName {
    type Error = SecretError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if valid_start && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Ok(Self(name))
        } else {
            Err(SecretError::Name(name))
        }
    }
}

impl SecretHosts {
    /// The host names, normalised.
    pub(crate) fn names(&self) -> &[String] {
        &self.0
    }
}

impl TryFrom<Vec<String>> for SecretHosts {
    type Error = SecretError;

    fn try_from(hosts: Vec<String>) -> Result<Self, Self::Error> {
        if hosts.is_empty() {
            return Err(SecretError::NoHost);
        }
        let mut names = Vec::with_capacity(hosts.len());
        for host in hosts {
            let invalid = |reason: String| SecretError::Host {
                host: host.clone(),
                reason,
            };
            match Host::parse(host.trim()) {
                Ok(Host::Name(name)) => names.push(name.as_str().to_owned()),
                Ok(Host::Ip(_)) => {
                    return Err(invalid("a secret goes to named hosts only".to_owned()));
                }
                Err(error) => return Err(invalid(error.to_string())),
            }
        }
        names.sort();
        names.dedup();
        Ok(Self(names))
    }
}

impl FromStr for SecretSpec {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, hosts) = text
            .split_once('=')
            .ok_or_else(|| SecretError::Form(text.to_owned()))?;
        let hosts: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.trim().is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            name: SecretName::try_from(name.to_owned())?,
            hosts: SecretHosts::try_from(hosts)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_normalised_hosts() {
        let spec: SecretSpec = "MY_TOKEN=API.Example.com,other.example.,api.example.com"
            .parse()
            .unwrap();
        assert_eq!(spec.name.as_str(), "MY_TOKEN");
        assert_eq!(spec.hosts.names(), ["api.example.com", "other.example"]);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (text, expected) in [
            ("MY_TOKEN", "NAME=HOST"),
            ("MY-TOKEN=example.com", "invalid secret name"),
            ("1TOKEN=example.com", "invalid secret name"),
            ("=example.com", "invalid secret name"),
            ("TOKEN=", "at least one host"),
            ("TOKEN=,", "at least one host"),
            ("TOKEN=*.example.com", "\"*.example.com\""),
            ("TOKEN=10.0.0.1", "named hosts only"),
            ("TOKEN=example.com:443", "\"example.com:443\""),
            ("TOKEN=exa mple.com", "\"exa mple.com\""),
        ] {
            let error = text.parse::<SecretSpec>().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn tables_are_checked_as_they_are_read() {
        let table: SecretTable =
            toml::from_str("GITHUB_TOKEN = [\"api.github.com\", \"uploads.github.com\"]\n")
                .unwrap();
        let (name, hosts) = table.iter().next().unwrap();
        assert_eq!(name.as_str(), "GITHUB_TOKEN");
        assert_eq!(hosts.names(), ["api.github.com", "uploads.github.com"]);
        for text in [
            "X = []\n",
            "\"A-B\" = [\"a.example\"]\n",
            "X = [\"*.a.example\"]\n",
        ] {
            assert!(toml::from_str::<SecretTable>(text).is_err(), "{text}");
        }
    }
}
