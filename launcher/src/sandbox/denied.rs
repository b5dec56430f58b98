//! The summary of what the proxy refused during a run, printed at exit: read from the
//! sidecar's records (`sandbox-proxy denied`, a JSON array of
//! `{"host", "port", "count", "last_seen"}`), most refused first.

use serde::Deserialize;

/// One refused destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct DeniedHost {
    /// The host name (or address) asked for.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// How many requests were refused.
    pub(crate) count: u64,
    /// Why (the proxy's reason code), when it says.
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// What the proxy refused; `None` when its records could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied(pub Option<Vec<DeniedHost>>);

impl Denied {
    /// Parses the output of `sandbox-proxy denied`.
    pub(crate) fn parse(json: &str) -> Self {
        Self(
            serde_json::from_str::<Vec<DeniedHost>>(json.trim())
                .ok()
                .map(|mut hosts| {
                    hosts.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.host.cmp(&b.host)));
                    hosts
                }),
        )
    }

    /// The lines to show the user, or none when nothing was refused.
    pub(crate) fn summary(&self) -> Vec<String> {
        match &self.0 {
            None => vec!["could not read the proxy's record of blocked requests".to_owned()],
            Some(hosts) if hosts.is_empty() => Vec::new(),
            Some(hosts) => {
                let mut lines = vec![format!(
                    "the proxy blocked {} destination(s); to allow one, add it to the allowlist:",
                    hosts.len()
                )];
                lines.extend(hosts.iter().map(|h| match &h.reason {
                    Some(reason) => format!(
                        "  {}:{}  ({} request(s), {reason})",
                        h.host, h.port, h.count
                    ),
                    None => format!("  {}:{}  ({} request(s))", h.host, h.port, h.count),
                }));
                lines
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_list_hosts_most_refused_first() {
        let json = r#"[{"host":"a.example","port":443,"count":1,"last_seen":"2026-11-26T10:00:00Z"},
                       {"host":"b.example","port":80,"count":7,"last_seen":"2026-11-26T10:00:01Z"}]"#;
        let lines = Denied::parse(json).summary();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains("b.example:80") && lines[1].contains("7"));
        assert!(lines[2].contains("a.example:443"));
    }

    #[test]
    fn nothing_refused_prints_nothing_and_garbage_says_so() {
        assert!(Denied::parse("[]\n").summary().is_empty());
        assert_eq!(Denied::parse("error: no admin").summary().len(), 1);
    }
}
