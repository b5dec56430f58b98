//! The secrets granted at start: a JSON array of [`SecretGrant`]s the launcher writes to
//! stdin (`--secrets-stdin`), read to its end before the proxy binds, and validated.
//!
//! Values stay in this process's memory: no error message, log line or `Debug` output
//! contains one (a JSON error names its line and column, never the text around it).

use std::fmt;
use std::io::Read;

use sandbox_policy::Host;
use sandbox_policy::protocol::{self, SecretGrant, SecretsReport};

use super::ledger::Ledger;

/// Shortest random part of a placeholder: anything shorter could be guessed or occur
/// by chance.
const MIN_PLACEHOLDER_RANDOM: usize = 16;

/// Why the grants on stdin were refused. No variant carries a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretsError {
    /// Stdin could not be read.
    #[error("--secrets-stdin: cannot read stdin")]
    Read(#[source] std::io::Error),
    /// Stdin is not a JSON array of grants.
    #[error(
        "--secrets-stdin: invalid input at line {line}, column {column} ({category}): expected \
         a JSON array of {{\"name\", \"placeholder\", \"value\", \"hosts\"}}"
    )]
    Json {
        line: usize,
        column: usize,
        category: &'static str,
    },
    /// A grant is well-formed JSON but does not make sense.
    #[error("--secrets-stdin: secret #{number} {name}: {reason}")]
    Invalid {
        /// Its position in the array, from 1.
        number: usize,
        /// Its name, when it is a valid one (else a description).
        name: String,
        reason: String,
    },
}

/// One granted secret, validated.
pub(crate) struct Grant {
    /// The environment variable's name.
    pub(crate) name: String,
    /// What the agent holds instead of the value.
    pub(crate) placeholder: String,
    /// The value; only [`super::substitute`] reads it.
    pub(super) value: String,
    /// The hosts the value may be sent to.
    pub(crate) hosts: Vec<Host>,
}

impl Grant {
    /// Whether `host` may receive this secret.
    pub(crate) fn is_bound_to(&self, host: &Host) -> bool {
        self.hosts.contains(host)
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("name", &self.name)
            .field("placeholder", &self.placeholder)
            .field("value", &"<redacted>")
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// Every granted secret, and the ledger of their use. Empty when the proxy was started
/// without `--secrets-stdin` (or given an empty array): nothing is then decrypted.
#[derive(Debug, Default)]
pub(crate) struct Secrets {
    pub(super) grants: Vec<Grant>,
    pub(super) ledger: Ledger,
}

impl Secrets {
    /// Reads and validates the grants from `input`, to its end.
    pub(crate) fn read(mut input: impl Read) -> Result<Secrets, SecretsError> {
        let mut text = Vec::new();
        input.read_to_end(&mut text).map_err(SecretsError::Read)?;
        let parsed = serde_json::from_slice::<Vec<SecretGrant>>(&text);
        // The input holds values: gone from memory as soon as it is parsed.
        text.fill(0);
        let grants = parsed.map_err(|err| SecretsError::Json {
            line: err.line(),
            column: err.column(),
            category: match err.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "not a list of secret grants",
                serde_json::error::Category::Eof => "it ends too early",
            },
        })?;
        Secrets::new(grants)
    }

    /// Validates `grants`: names of environment variables, each once; placeholders as
    /// [`protocol::placeholder`] makes them, each once; values of printable ASCII;
    /// at least one host, each a host name.
    pub(crate) fn new(grants: Vec<SecretGrant>) -> Result<Secrets, SecretsError> {
        let mut valid: Vec<Grant> = Vec::with_capacity(grants.len());
        for (index, grant) in grants.into_iter().enumerate() {
            let invalid = |reason: &str| SecretsError::Invalid {
                number: index + 1,
                name: if is_variable_name(&grant.name) {
                    format!("({})", grant.name)
                } else {
                    "(its name is not an environment variable name)".to_owned()
                },
                reason: reason.to_owned(),
            };
            if !is_variable_name(&grant.name) {
                return Err(invalid("names must be letters, digits and _"));
            }
            if valid.iter().any(|other| other.name == grant.name) {
                return Err(invalid("the name is given twice"));
            }
            if !is_placeholder_of(&grant.placeholder, &grant.name) {
                return Err(invalid(&format!(
                    "the placeholder must be {}<at least {MIN_PLACEHOLDER_RANDOM} hex digits>",
                    protocol::placeholder(&grant.name, "")
                )));
            }
            if grant.value.is_empty() || !grant.value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "the value must be printable ASCII without spaces (it is not shown)",
                ));
            }
            if grant.hosts.is_empty() {
                return Err(invalid("no host may receive it"));
            }
            let mut hosts = Vec::with_capacity(grant.hosts.len());
            for text in &grant.hosts {
                match Host::parse(text) {
                    Ok(host @ Host::Name(_)) => hosts.push(host),
                    _ => return Err(invalid(&format!("{text:?} is not a host name"))),
                }
            }
            valid.push(Grant {
                name: grant.name,
                placeholder: grant.placeholder,
                value: grant.value,
                hosts,
            });
        }
        Ok(Secrets {
            ledger: Ledger::new(valid.len()),
            grants: valid,
        })
    }

    /// Whether no secret was granted.
    pub(crate) fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// Whether some secret is bound to `host`: tunnels to it are decrypted.
    pub(crate) fn any_bound_to(&self, host: &Host) -> bool {
        self.grants.iter().any(|grant| grant.is_bound_to(host))
    }

    /// The secrets' names, in the order they were granted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.grants.iter().map(|grant| grant.name.as_str())
    }

    /// Every host some secret is bound to.
    pub(crate) fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.grants.iter().flat_map(|grant| &grant.hosts)
    }

    /// The report `/secrets` serves.
    pub(crate) fn report(&self) -> SecretsReport {
        self.ledger.report(&self.grants)
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `placeholder` is `protocol::placeholder(name, HEX)` with enough hex digits.
fn is_placeholder_of(placeholder: &str, name: &str) -> bool {
    placeholder
        .strip_prefix(&protocol::placeholder(name, ""))
        .is_some_and(|random| {
            random.len() >= MIN_PLACEHOLDER_RANDOM
                && random
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef";
    const VALUE: &str = "sk-test-VALUE-never-shown";

    fn grant(name: &str, value: &str, hosts: &[&str]) -> SecretGrant {
        SecretGrant {
            name: name.to_owned(),
            placeholder: protocol::placeholder(name, HEX),
            value: value.to_owned(),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    fn error(grants: Vec<SecretGrant>) -> String {
        Secrets::new(grants).unwrap_err().to_string()
    }

    #[test]
    fn valid_grants_are_kept_with_normalised_hosts() {
        let secrets = Secrets::new(vec![grant("API_KEY", VALUE, &["API.Example.com."])]).unwrap();
        assert!(secrets.any_bound_to(&Host::parse("api.example.com").unwrap()));
        assert!(!secrets.any_bound_to(&Host::parse("example.com").unwrap()));
        assert!(!format!("{secrets:?}").contains(VALUE));
        assert!(Secrets::read(&b"[]"[..]).unwrap().is_empty());
    }

    #[test]
    fn invalid_grants_are_refused_without_showing_the_value() {
        let mut short = grant("A", VALUE, &["a.test"]);
        short.placeholder = protocol::placeholder("A", "abc");
        let mut other_name = grant("A", VALUE, &["a.test"]);
        other_name.placeholder = protocol::placeholder("B", HEX);
        let table: Vec<(Vec<SecretGrant>, &str)> = vec![
            (
                vec![grant("1A", VALUE, &["a.test"])],
                "environment variable",
            ),
            (
                vec![grant("A-B", VALUE, &["a.test"])],
                "environment variable",
            ),
            (
                vec![
                    grant("A", VALUE, &["a.test"]),
                    grant("A", VALUE, &["b.test"]),
                ],
                "twice",
            ),
            (vec![short], "placeholder"),
            (vec![other_name], "placeholder"),
            (vec![grant("A", "", &["a.test"])], "printable"),
            (vec![grant("A", "sk line\nbreak", &["a.test"])], "printable"),
            (vec![grant("A", VALUE, &[])], "no host"),
            (vec![grant("A", VALUE, &["*.a.test"])], "not a host name"),
            (vec![grant("A", VALUE, &["10.0.0.1"])], "not a host name"),
        ];
        for (grants, expected) in table {
            let message = error(grants);
            assert!(message.contains(expected), "{message}");
            assert!(
                message.starts_with("--secrets-stdin: secret #"),
                "{message}"
            );
            assert!(
                !message.contains("VALUE") && !message.contains("line\n"),
                "{message}"
            );
        }
    }

    #[test]
    fn malformed_input_names_the_place_never_the_text() {
        let table: &[(&str, &str)] = &[
            ("not json sk-test-VALUE", "not JSON"),
            (r#"{"name":"A"}"#, "not a list"),
            (r#"[{"name":"A","value":"sk-test-VALUE"}]"#, "not a list"),
            (r#"[{"name":"A","hosts":"sk-test-VALUE"}]"#, "not a list"),
            (r#"[{"name":"A","value":"sk-test-VALUE""#, "ends too early"),
        ];
        for (input, expected) in table {
            let message = Secrets::read(input.as_bytes()).unwrap_err().to_string();
            assert!(message.contains(expected), "{input}: {message}");
            assert!(message.contains("line 1, column "), "{message}");
            assert!(!message.contains("VALUE"), "{message}");
        }
    }
}
