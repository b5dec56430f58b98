//! `sandbox-proxy check`: validate an allowlist and decide targets, with the server's code.

use std::io::Write;

use crate::cli::CheckArgs;
use crate::config::PolicyConfig;
use crate::exit::Exit;
use crate::host::Authority;
use crate::policy::Policy;

/// Port assumed for a target written without one.
const DEFAULT_TARGET_PORT: u16 = 443;

/// Runs `check`: one line per target on stdout; errors on stderr.
pub fn run(args: &CheckArgs) -> Exit {
    let mut stderr = std::io::stderr().lock();
    let config = match PolicyConfig::try_from(&args.policy) {
        Ok(config) => config,
        Err(err) => {
            let _ = writeln!(stderr, "sandbox-proxy: {err}");
            return Exit::Usage;
        }
    };
    let policy = match Policy::load(&config.allowlist, &config.options, 1) {
        Ok(policy) => policy,
        Err(err) => {
            let _ = writeln!(stderr, "sandbox-proxy: {}", crate::report::chain(&err));
            return Exit::InvalidAllowlist;
        }
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

/// The verdict and the line printed for one target.
fn decide(policy: &Policy, target: &str) -> (bool, String) {
    let authority = match Authority::parse(target) {
        Ok(authority) => authority,
        Err(err) => return (false, format!("denied   {target}  invalid target: {err}")),
    };
    let port = authority.port.unwrap_or(DEFAULT_TARGET_PORT);
    let host = &authority.host;
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
    use super::*;
    use crate::policy::PolicyOptions;

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
