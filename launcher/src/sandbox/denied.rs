//! The summary of what the proxy refused during a run, printed at exit: read from the
//! sidecar's [`DeniedReport`] (`sandbox-proxy denied`), most refused first.

use sandbox_policy::protocol::DeniedReport;

/// What the proxy refused; `None` when its report could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denied(Option<DeniedReport>);

impl Denied {
    /// Parses the output of `sandbox-proxy denied`.
    pub(crate) fn parse(json: &str) -> Self {
        Self(
            serde_json::from_str::<DeniedReport>(json.trim())
                .ok()
                .map(|mut report| {
                    report
                        .destinations
                        .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.host.cmp(&b.host)));
                    report
                }),
        )
    }

    /// The lines to show the user, or none when nothing was refused.
    pub(crate) fn summary(&self) -> Vec<String> {
        let Some(report) = &self.0 else {
            return vec!["could not read the proxy's record of blocked requests".to_owned()];
        };
        if report.destinations.is_empty() && report.overflow == 0 {
            return Vec::new();
        }
        let mut lines = vec![format!(
            "the proxy blocked {} destination(s); to allow one, add it to the allowlist:",
            report.destinations.len()
        )];
        lines.extend(report.destinations.iter().map(|d| {
            format!(
                "  {}:{}  ({} request(s), {})",
                d.host, d.port, d.count, d.reason
            )
        }));
        if report.overflow > 0 {
            lines.push(format!(
                "  and {} request(s) to further destinations, not recorded one by one",
                report.overflow
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_list_hosts_most_refused_first() {
        let json = r#"{"destinations":[
            {"host":"a.example","port":443,"reason":"not-allowlisted","count":1,"last_seen":"2026-11-26T10:00:00Z"},
            {"host":"b.example","port":80,"reason":"port","count":7,"last_seen":"2026-11-26T10:00:01Z"}],
            "overflow":0}"#;
        let lines = Denied::parse(json).summary();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains("b.example:80") && lines[1].contains("7"));
        assert!(lines[1].contains("port"));
        assert!(lines[2].contains("a.example:443"));
    }

    #[test]
    fn requests_beyond_the_recorded_destinations_are_counted() {
        let json = r#"{"destinations":[],"overflow":12}"#;
        let lines = Denied::parse(json).summary();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("12 request(s)"), "{lines:?}");
    }

    #[test]
    fn nothing_refused_prints_nothing_and_garbage_says_so() {
        assert!(
            Denied::parse("{\"destinations\":[],\"overflow\":0}\n")
                .summary()
                .is_empty()
        );
        assert_eq!(Denied::parse("error: no admin").summary().len(), 1);
        assert_eq!(Denied::parse("[]").summary().len(), 1);
    }
}
