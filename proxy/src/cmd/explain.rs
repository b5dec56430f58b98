//! `sandbox-proxy explain`: how the proxy would decide each target, step by step.
//!
//! It walks the server's own code path: [`Policy::check_target`] for the host and port,
//! then [`Dialer::vet`], which resolves the name and checks every address with the
//! destination guard, exactly as a CONNECT would, but never connects. For each target
//! it prints the decision, the deciding entry and its line, the port verdict and the
//! resolved addresses with their class.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use sandbox_policy::{DenyReason, Permit, Policy};

use crate::cmd::check::{load_policy, parse_target};
use crate::cmd::cli::ExplainArgs;
use crate::cmd::config::parse_pin;
use crate::cmd::exit::Exit;
use crate::net::dial::{DialError, Dialer, OwnAddresses};
use crate::net::resolve::Resolver;

/// Longest wait for a name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `explain`: a block of lines per target on stdout; errors and lint warnings on
/// stderr. Exit 0 when every target is allowed, 1 when any is denied.
pub(crate) fn run(args: &ExplainArgs) -> Exit {
    let mut stderr = std::io::stderr().lock();
    let policy = match load_policy(&args.policy) {
        Ok(policy) => policy,
        Err(exit) => return exit,
    };
    let pins = match args
        .resolve
        .iter()
        .map(|pin| parse_pin(pin))
        .collect::<Result<HashMap<_, _>, _>>()
    {
        Ok(pins) => pins,
        Err(err) => {
            let _ = writeln!(stderr, "sandbox-proxy: {err}");
            return Exit::Usage;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            let _ = writeln!(stderr, "sandbox-proxy: {err}");
            return Exit::Internal;
        }
    };
    let resolver = match Resolver::system(pins) {
        Ok(resolver) => resolver,
        Err(err) => {
            let _ = writeln!(
                stderr,
                "sandbox-proxy: {}",
                sandbox_policy::report::chain(&err)
            );
            return Exit::Resolver;
        }
    };
    let dialer = Dialer::new(resolver, RESOLVE_TIMEOUT, OwnAddresses::default());
    let mut stdout = std::io::stdout().lock();
    let mut all_allowed = true;
    for target in &args.targets {
        let explanation = runtime.block_on(explain(&policy, &dialer, target));
        all_allowed &= explanation.allowed;
        for line in &explanation.lines {
            let _ = writeln!(stdout, "{line}");
        }
    }
    if all_allowed {
        Exit::Success
    } else {
        Exit::Denied
    }
}

/// The outcome for one target and the lines that show how it was reached.
#[derive(Debug)]
struct Explanation {
    allowed: bool,
    lines: Vec<String>,
}

impl Explanation {
    fn new(allowed: bool, head: String) -> Self {
        Explanation {
            allowed,
            lines: vec![head],
        }
    }

    /// Adds a `  label  text` line.
    fn field(&mut self, label: &str, text: impl AsRef<str>) {
        self.lines.push(format!("  {label:<8} {}", text.as_ref()));
    }
}

/// Decides `target` with the server's code and records each step.
async fn explain(policy: &Policy, dialer: &Dialer, target: &str) -> Explanation {
    let (host, port) = match parse_target(target) {
        Ok(parsed) => parsed,
        Err(err) => {
            let mut out = Explanation::new(false, format!("{target}  denied (invalid target)"));
            out.field("reason", err.to_string());
            return out;
        }
    };
    let permit = match policy.check_target(&host, port) {
        Ok(permit) => permit,
        Err(denial) => {
            let mut out = Explanation::new(
                false,
                format!("{host}:{port}  denied ({})", denial.reason.code()),
            );
            match &denial.reason {
                DenyReason::PortNotAllowed { allowed, line } => {
                    let entry = policy
                        .allowlist()
                        .entries()
                        .iter()
                        .find(|entry| entry.line == *line);
                    if let Some(entry) = entry {
                        out.field("entry", describe_entry(entry));
                    }
                    out.field(
                        "port",
                        format!("{port} not allowed (this host may use {})", list(allowed)),
                    );
                }
                _ => {
                    out.field("entry", "none matches the host");
                }
            }
            out.field("address", "not resolved: refused before any DNS lookup");
            out.field("reason", denial.explanation());
            return out;
        }
    };
    let vetted = tokio::time::timeout(RESOLVE_TIMEOUT, dialer.vet(policy, &permit, &host, port))
        .await
        .unwrap_or_else(|_| {
            Err(DialError::Timeout {
                host: host.clone(),
                port,
            })
        });
    let code = match &vetted {
        Ok(_) => None,
        Err(DialError::Denied(denial)) => Some(denial.reason.code()),
        Err(_) => Some("unreachable"),
    };
    let head = match code {
        None => format!("{host}:{port}  allowed"),
        Some(code) => format!("{host}:{port}  denied ({code})"),
    };
    let mut out = Explanation::new(vetted.is_ok(), head);
    out.field("entry", describe_entry(permit.entry));
    out.field("port", port_verdict(policy, &permit, port));
    match vetted {
        Ok(addresses) => {
            for (address, class) in addresses {
                let note = match (class.is_public(), permit.entry.is_exact()) {
                    (true, _) => "",
                    (false, true) => " (allowed: exact entries may reach it)",
                    (false, false) => " (allowed: --allow-private)",
                };
                out.field("address", format!("{} {class}{note}", address.ip()));
            }
        }
        Err(DialError::Denied(denial)) => {
            if let DenyReason::PrivateAddress { address, class } = denial.reason {
                out.field("address", format!("{address} {class} (refused)"));
            }
            out.field("reason", denial.explanation());
        }
        Err(err) => {
            out.field("address", sandbox_policy::report::chain(&err));
            out.field(
                "reason",
                "the proxy would answer 502 or 504: the name cannot be reached",
            );
        }
    }
    out
}

/// `"*.github.com" (line 2, wildcard)`.
fn describe_entry(entry: &sandbox_policy::Entry) -> String {
    let kind = if entry.is_exact() {
        "exact"
    } else {
        "wildcard"
    };
    format!("\"{}\" (line {}, {kind})", entry.text, entry.line)
}

/// The port verdict of an allowed target: which rule of the entry allowed it.
fn port_verdict(policy: &Policy, permit: &Permit<'_>, port: u16) -> String {
    match permit.entry.port {
        Some(_) => format!("{port} allowed (the entry names it)"),
        None => format!(
            "{port} allowed (entries without a port allow {})",
            list(policy.allowlist().default_ports())
        ),
    }
}

fn list(ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    ports.join(", ")
}

#[cfg(test)]
mod tests {
    use sandbox_policy::Host;
    use sandbox_policy::PolicyOptions;

    use super::*;

    fn setup(text: &str, pins: &[(&str, &[&str])]) -> (Policy, Dialer) {
        let options = PolicyOptions {
            default_ports: vec![80, 443],
            allow_private: false,
        };
        let policy = Policy::from_text("t", text, &options, 1).unwrap();
        let pins = pins
            .iter()
            .map(|(name, addresses)| {
                let Ok(Host::Name(name)) = Host::parse(name) else {
                    panic!("{name}")
                };
                (name, addresses.iter().map(|a| a.parse().unwrap()).collect())
            })
            .collect();
        let dialer = Dialer::new(
            Resolver::pinned_only(pins),
            RESOLVE_TIMEOUT,
            OwnAddresses::default(),
        );
        (policy, dialer)
    }

    async fn lines(policy: &Policy, dialer: &Dialer, target: &str) -> (bool, String) {
        let out = explain(policy, dialer, target).await;
        (out.allowed, out.lines.join("\n"))
    }

    #[tokio::test]
    async fn an_allowed_target_shows_entry_port_and_every_address() {
        let (policy, dialer) = setup(
            "# c\n*.github.com\n",
            &[("api.github.com", &["140.82.112.5", "2606:50c0:8000::64"])],
        );
        let (allowed, text) = lines(&policy, &dialer, "API.github.com").await;
        assert!(allowed);
        assert_eq!(
            text,
            "api.github.com:443  allowed\n\
             \x20 entry    \"*.github.com\" (line 2, wildcard)\n\
             \x20 port     443 allowed (entries without a port allow 80, 443)\n\
             \x20 address  140.82.112.5 public\n\
             \x20 address  2606:50c0:8000::64 public"
        );
    }

    #[tokio::test]
    async fn a_wildcard_name_on_a_private_address_is_denied_with_the_address() {
        let (policy, dialer) = setup(
            "*.corp.test\nhost.docker.internal:8080\n",
            &[
                ("db.corp.test", &["93.184.216.34", "10.0.0.3"]),
                ("host.docker.internal", &["172.17.0.1"]),
            ],
        );
        let (allowed, text) = lines(&policy, &dialer, "db.corp.test:80").await;
        assert!(!allowed);
        assert!(
            text.starts_with("db.corp.test:80  denied (private-address)"),
            "{text}"
        );
        assert!(
            text.contains("address  10.0.0.3 private (refused)"),
            "{text}"
        );

        let (allowed, text) = lines(&policy, &dialer, "host.docker.internal:8080").await;
        assert!(allowed, "{text}");
        assert!(text.contains("port     8080 allowed (the entry names it)"));
        assert!(
            text.contains("address  172.17.0.1 private (allowed: exact entries may reach it)"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn denials_before_dns_name_the_reason_and_resolve_nothing() {
        let (policy, dialer) = setup("github.com\n", &[]);
        let (allowed, text) = lines(&policy, &dialer, "github.com:22").await;
        assert!(!allowed);
        assert!(text.starts_with("github.com:22  denied (port)"), "{text}");
        assert!(
            text.contains("entry    \"github.com\" (line 1, exact)"),
            "{text}"
        );
        assert!(text.contains("port     22 not allowed (this host may use 80, 443)"));
        assert!(text.contains("not resolved"), "{text}");

        let (allowed, text) = lines(&policy, &dialer, "evil.test").await;
        assert!(!allowed);
        assert!(text.contains("denied (not-allowlisted)"), "{text}");
        assert!(text.contains("entry    none matches the host"), "{text}");

        let (allowed, text) = lines(&policy, &dialer, "user@github.com").await;
        assert!(!allowed);
        assert!(text.contains("denied (invalid target)"), "{text}");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_denied_as_unreachable() {
        let (policy, dialer) = setup("gone.test\n", &[]);
        let (allowed, text) = lines(&policy, &dialer, "gone.test").await;
        assert!(!allowed);
        assert!(
            text.starts_with("gone.test:443  denied (unreachable)"),
            "{text}"
        );
        assert!(text.contains("502 or 504"), "{text}");
    }
}
