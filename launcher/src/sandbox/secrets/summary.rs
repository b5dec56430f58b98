//! The exit summary of the secrets: how many requests the sidecar added each one to, and
//! the placeholders it saw going to other hosts (sent on unchanged, worthless there, but
//! a sign that something in the sandbox tried to send a key away). Read from the
//! sidecar's [`SecretsReport`] (`sandbox-proxy secrets`).

use sandbox_policy::protocol::SecretsReport;

/// What the sidecar did with the secrets; `None` when its report could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretsUse(Option<SecretsReport>);

impl SecretsUse {
    /// Parses the output of `sandbox-proxy secrets`.
    pub(crate) fn parse(json: &str) -> Self {
        Self(serde_json::from_str(json.trim()).ok())
    }

    /// The lines to show the user.
    pub(crate) fn summary(&self) -> Vec<String> {
        let Some(report) = &self.0 else {
            return vec!["could not read the proxy's record of the secrets it added".to_owned()];
        };
        let added: Vec<String> = report
            .secrets
            .iter()
            .map(|secret| format!("{} {}×", secret.name, secret.added))
            .collect();
        let mut lines = vec![format!(
            "the proxy added secrets to requests to their hosts: {}",
            added.join(", ")
        )];
        if !report.strays.is_empty() {
            lines.push(
                "warning: possible exfiltration attempt: placeholders of secrets were sent to \
                 other hosts (unchanged, without the value):"
                    .to_owned(),
            );
            lines.extend(report.strays.iter().map(|stray| {
                format!(
                    "  {} -> {}  ({} request(s))",
                    stray.name, stray.host, stray.count
                )
            }));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_each_secret_and_flags_strays() {
        let json = r#"{"secrets":[{"name":"A_KEY","added":3},{"name":"B_KEY","added":0}],
            "strays":[{"name":"A_KEY","host":"paste.example","count":2}]}"#;
        let lines = SecretsUse::parse(json).summary();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].contains("A_KEY 3×") && lines[0].contains("B_KEY 0×"));
        assert!(lines[1].contains("exfiltration"));
        assert!(lines[2].contains("A_KEY -> paste.example") && lines[2].contains("2 request"));
    }

    #[test]
    fn no_strays_is_one_line_and_garbage_says_so() {
        let json = r#"{"secrets":[{"name":"A_KEY","added":1}],"strays":[]}"#;
        assert_eq!(SecretsUse::parse(json).summary().len(), 1);
        let unreadable = SecretsUse::parse("error: no admin").summary();
        assert!(unreadable[0].contains("could not read"), "{unreadable:?}");
    }
}
