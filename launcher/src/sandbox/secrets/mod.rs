//! Secrets kept out of the agent container: which declared secrets a run has (the
//! profile's when set on the host, the user's always), checked against the allowlist
//! ([`resolve`]); in proxy mode the random per-run placeholders the agent gets instead
//! and the grants the sidecar gets on its stdin ([`Grants`]); the trust the agent needs
//! for the sidecar's per-run CA ([`trust`]); the exit summary of their use ([`summary`]).

pub(crate) mod summary;
pub(crate) mod trust;

use std::fmt;
use std::path::{Path, PathBuf};

use sandbox_policy::protocol::{self, SecretGrant};
use sandbox_policy::{DenyReason, Host, Policy};

use crate::options::secrets::SecretTable;

/// The port a secret host is checked on: HTTPS, where the sidecar adds secrets. A host
/// the allowlist names for other ports only is allowed too.
const TLS_PORT: u16 = 443;

/// A secret of this run: the host variable's value and the hosts that may receive it.
/// `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) name: String,
    pub(crate) value: String,
    /// Exact host names, normalised.
    pub(crate) hosts: Vec<String>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("hosts", &self.hosts)
            .finish()
    }
}

impl Secret {
    /// `NAME=value`, for the agent's environment when the value is passed in.
    pub(crate) fn variable(&self) -> String {
        format!("{}={}", self.name, self.value)
    }
}

/// Why the declared secrets do not make a run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretsError {
    /// A secret the user declared is not set on the host.
    #[error(
        "secret {name} is declared (--secret or the settings' [secrets]) but not set in the \
         environment: set it, or remove the declaration"
    )]
    Unset { name: String },
    /// A secret may go to a host the allowlist does not allow.
    #[error(
        "secret {name} may be sent to {host}, which the allowlist {allowlist} does not allow: \
         add {host} to the allowlist or remove it from the secret"
    )]
    HostNotAllowed {
        name: String,
        host: String,
        allowlist: PathBuf,
    },
}

/// The secrets of a run, and what became of the profile's that cannot be used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) secrets: Vec<Secret>,
    /// One line per profile secret left out because the allowlist allows none of its
    /// hosts.
    pub(crate) warnings: Vec<String>,
}

/// The allowlist secret hosts are checked against (proxy mode with the secret proxy).
#[derive(Clone, Copy)]
pub(crate) struct Allowed<'a> {
    pub(crate) policy: &'a Policy,
    /// The file, for messages.
    pub(crate) path: &'a Path,
}

impl Allowed<'_> {
    fn allows(&self, host: &str) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        match self.policy.check_target(&host, TLS_PORT) {
            Ok(_) => true,
            Err(denial) => denial.reason != DenyReason::NotAllowlisted,
        }
    }
}

/// The secrets of a run: the `profile`'s that are set on the host (`host_var`; unset
/// or empty ones are skipped) and every one the user `declared` (which win for a name).
/// With `allowed`, every host must be allowed: a profile secret keeps its allowed hosts
/// (left out, with a warning, when none is), a declared one is refused.
///
/// # Errors
///
/// A declared secret is not set, or may go to a host the allowlist does not allow.
pub(crate) fn resolve(
    profile: &SecretTable,
    declared: &SecretTable,
    host_var: impl Fn(&str) -> Option<String>,
    allowed: Option<Allowed<'_>>,
) -> Result<Resolved, SecretsError> {
    let mut resolved = Resolved::default();
    let value_of = |name: &str| host_var(name).filter(|value| !value.is_empty());
    for (name, hosts) in profile.iter().filter(|(n, _)| !declared.contains_key(*n)) {
        let Some(value) = value_of(name.as_str()) else {
            continue;
        };
        let hosts: Vec<String> = hosts
            .names()
            .iter()
            .filter(|host| allowed.is_none_or(|a| a.allows(host)))
            .cloned()
            .collect();
        match (hosts.is_empty(), allowed) {
            (true, Some(allowed)) => resolved.warnings.push(format!(
                "{name} is not passed to the agent: the allowlist {} allows none of its hosts ({})",
                allowed.path.display(),
                profile[name].names().join(", ")
            )),
            _ => resolved.secrets.push(Secret {
                name: name.to_string(),
                value,
                hosts,
            }),
        }
    }
    for (name, hosts) in declared {
        let value = value_of(name.as_str()).ok_or_else(|| SecretsError::Unset {
            name: name.to_string(),
        })?;
        if let Some(allowed) = allowed
            && let Some(host) = hosts.names().iter().find(|host| !allowed.allows(host))
        {
            return Err(SecretsError::HostNotAllowed {
                name: name.to_string(),
                host: host.clone(),
                allowlist: allowed.path.to_owned(),
            });
        }
        resolved.secrets.push(Secret {
            name: name.to_string(),
            value,
            hosts: hosts.names().to_vec(),
        });
    }
    Ok(resolved)
}

/// The secrets handed to the sidecar, each with its random per-run placeholder.
#[derive(Debug, Default)]
pub(crate) struct Grants(Vec<SecretGrant>);

impl Grants {
    /// A fresh placeholder for each secret: its name and 128 random bits, never derived
    /// from its value.
    ///
    /// # Errors
    ///
    /// The system's random source fails.
    pub(crate) fn generate(secrets: &[Secret]) -> Result<Self, getrandom::Error> {
        let mut grants = Vec::with_capacity(secrets.len());
        for secret in secrets {
            let mut random = [0_u8; 16];
            getrandom::fill(&mut random)?;
            let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
            grants.push(SecretGrant {
                name: secret.name.clone(),
                placeholder: protocol::placeholder(&secret.name, &hex),
                value: secret.value.clone(),
                hosts: secret.hosts.clone(),
            });
        }
        Ok(Self(grants))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `NAME=placeholder` for each secret: the agent's environment in place of the values.
    pub(crate) fn agent_env(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|grant| format!("{}={}", grant.name, grant.placeholder))
            .collect()
    }

    /// The JSON document the sidecar reads from its stdin. It holds the values: it goes
    /// to the sidecar's stdin and nowhere else.
    pub(crate) fn document(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::secrets::SecretSpec;

    fn table(specs: &[&str]) -> SecretTable {
        specs
            .iter()
            .map(|text| {
                let spec: SecretSpec = text.parse().unwrap();
                (spec.name, spec.hosts)
            })
            .collect()
    }

    fn host(name: &str) -> Option<String> {
        match name {
            "A_KEY" => Some("value-a".to_owned()),
            "B_KEY" => Some("value-b".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn names(resolved: &Resolved) -> Vec<(&str, Vec<&str>)> {
        resolved
            .secrets
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.hosts.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn profile_secrets_need_a_value_and_declared_ones_win() {
        let profile = table(&["A_KEY=a.example", "B_KEY=b.example", "UNSET=u.example"]);
        let declared = table(&["B_KEY=gateway.example"]);
        let resolved = resolve(&profile, &declared, host, None).unwrap();
        assert_eq!(
            names(&resolved),
            [
                ("A_KEY", vec!["a.example"]),
                ("B_KEY", vec!["gateway.example"])
            ]
        );
        assert_eq!(resolved.secrets[1].variable(), "B_KEY=value-b");
        assert!(resolved.warnings.is_empty());
    }

    #[test]
    fn a_declared_secret_that_is_unset_or_empty_is_an_error() {
        for name in ["UNSET", "EMPTY"] {
            let declared = table(&[&format!("{name}=x.example")]);
            let error = resolve(&SecretTable::new(), &declared, host, None).unwrap_err();
            assert!(
                matches!(&error, SecretsError::Unset { name: n } if n == name),
                "{error}"
            );
        }
    }

    #[test]
    fn hosts_are_checked_against_the_allowlist() {
        let policy = Policy::from_text(
            "allow.txt",
            "a.example\n*.b.example\nalt.example:8443\n",
            &Default::default(),
            1,
        )
        .unwrap();
        let allowed = Some(Allowed {
            policy: &policy,
            path: Path::new("/cfg/allow.txt"),
        });
        let profile = table(&["A_KEY=a.example,gone.example", "B_KEY=c.example"]);
        let resolved = resolve(&profile, &SecretTable::new(), host, allowed).unwrap();
        assert_eq!(names(&resolved), [("A_KEY", vec!["a.example"])]);
        let [warning] = &resolved.warnings[..] else {
            panic!("{:?}", resolved.warnings);
        };
        assert!(
            warning.starts_with("B_KEY is not passed")
                && warning.contains("/cfg/allow.txt")
                && warning.contains("c.example"),
            "{warning}"
        );
        let declared = table(&["A_KEY=api.b.example,alt.example"]);
        assert!(resolve(&SecretTable::new(), &declared, host, allowed).is_ok());
        let declared = table(&["A_KEY=a.example,evil.example"]);
        let error = resolve(&SecretTable::new(), &declared, host, allowed)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("A_KEY")
                && error.contains("evil.example")
                && error.contains("/cfg/allow.txt"),
            "{error}"
        );
    }

    #[test]
    fn placeholders_are_random_recognisable_and_never_the_value() {
        let secrets = [Secret {
            name: "A_KEY".into(),
            value: "value-a".into(),
            hosts: vec!["a.example".into()],
        }];
        let (first, second) = (
            Grants::generate(&secrets).unwrap(),
            Grants::generate(&secrets).unwrap(),
        );
        let [env] = &first.agent_env()[..] else {
            panic!()
        };
        let placeholder = env.strip_prefix("A_KEY=").unwrap();
        let random = placeholder
            .strip_prefix(&protocol::placeholder("A_KEY", ""))
            .unwrap();
        assert!(random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(first.agent_env(), second.agent_env());
        assert!(!format!("{first:?}{secrets:?}").contains("value-a"));
        let document: Vec<SecretGrant> = serde_json::from_slice(&first.document()).unwrap();
        assert_eq!(document[0].value, "value-a");
        assert_eq!(document[0].placeholder, placeholder);
        assert_eq!(document[0].hosts, ["a.example"]);
    }
}
