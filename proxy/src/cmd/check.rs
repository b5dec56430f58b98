//! `sandbox-proxy check`: validate an allowlist and decide targets, with the server's code.

use std::io::Write;

use sandbox_policy::{Authority, Host, HostError, Policy};

use crate::cmd::cli::{CheckArgs, PolicyArgs};
use crate::cmd::config::PolicyConfig;
use crate::cmd::exit::Exit;

/// Port assumed for a target written without one.
const DEFAULT_TARGET_PORT: u16 = 443;

/// Runs `check`: one line per target on stdout; errors on stderr.
pub(crate) fn run(args: &CheckArgs) -> Exit {
    let policy = match load_policy(&args.policy) {
        Ok(policy) => policy,
        Err(exit) => return exit,
    };
    let mut stdout = std::io::stdout().lock();
    let mut all_allowed = true;
    for target in &args.targets {
        let (allowed, line) = decide(&policy, target);
        all_allowed &= allowed;
        let _ = writeln!(stdout, "{line}");
    }
    if all_allowed {
        Exit::Success
    } else {
        Exit::Denied
    }
}

/// Validates the command line's policy options and compiles the allowlist, printing
/// errors and lint warnings on stderr; on failure, the exit code to end with. Shared by
/// `check` and `explain`.
pub(crate) fn load_policy(args: &PolicyArgs) -> Result<Policy, Exit> {
    let mut stderr = std::io::stderr().lock();
    let config = PolicyConfig::try_from(args).map_err(|err| {
        let _ = writeln!(stderr, "sandbox-proxy: {err}");
        Exit::Usage
    })?;
    let policy = Policy::load(&config.allowlist, &config.options, 1).map_err(|err| {
        let _ = writeln!(
            stderr,
            "sandbox-proxy: {}",
            sandbox_policy::report::chain(&err)
        );
        Exit::InvalidAllowlist
    })?;
    crate::ops::lint::print_findings(&mut stderr, &config.allowlist, policy.allowlist());
    Ok(policy)
}

/// A command-line target, `host` or `host:port` (port 443 when omitted).
pub(crate) fn parse_target(target: &str) -> Result<(Host, u16), HostError> {
    let authority = Authority::parse(target)?;
    Ok((
        authority.host,
        authority.port.unwrap_or(DEFAULT_TARGET_PORT),
    ))
}

/// The verdict and the line printed for one target.
fn decide(policy: &Policy, target: &str) -> (bool, String) {
    let (host, port) = match parse_target(target) {
        Ok(parsed) => parsed,
        Err(err) => return (false, format!("denied   {target}  invalid target: {err}")),
    };
    let host = &host;
    match policy.check_target(host, port) {
        Ok(permit) => (
            true,
            format!(
                "allowed  {host}:{port}  by \"{}\" (line {})",
                permit.entry.text, permit.entry.line
            ),
        ),
        Err(denial) => (
            false,
            format!("denied   {host}:{port}  {}", denial.explanation()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use sandbox_policy::PolicyOptions;

    use super::*;

    #[test]
    fn lines_name_the_deciding_entry_or_the_reason() {
        let options = PolicyOptions {
            default_ports: vec![80, 443],
            allow_private: false,
        };
        let policy = Policy::from_text("t", "# c\n*.github.com\n", &options, 1).unwrap();
        let (ok, line) = decide(&policy, "api.github.com");
        assert!(ok);
        assert_eq!(
            line,
            "allowed  api.github.com:443  by \"*.github.com\" (line 2)"
        );
        let (ok, line) = decide(&policy, "github.com:22");
        assert!(!ok);
        assert!(line.contains("port 22 is not allowed"), "{line}");
        let (ok, line) = decide(&policy, "evil.com");
        assert!(!ok);
        assert!(line.contains("not in the allowlist"), "{line}");
        assert!(!decide(&policy, "user@github.com").0);
    }
}
