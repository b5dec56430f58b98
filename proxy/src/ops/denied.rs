//! The record of denied destinations, for `GET /denied` and the launcher's exit summary.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use sandbox_policy::protocol::{DeniedDestination, DeniedReport};

/// Distinct host:port pairs remembered; later new pairs are only counted as overflow.
const MAX_DESTINATIONS: usize = 4096;

#[derive(Default)]
struct Tally {
    destinations: HashMap<(String, u16), (u64, SystemTime, &'static str)>,
    overflow: u64,
}

/// Counts denials per destination.
#[derive(Default)]
pub(crate) struct DeniedLog(Mutex<Tally>);

impl DeniedLog {
    /// Records one denied request.
    pub(crate) fn record(&self, host: &str, port: u16, reason: &'static str) {
        let Ok(mut tally) = self.0.lock() else { return };
        let now = SystemTime::now();
        let full = tally.destinations.len() >= MAX_DESTINATIONS;
        match tally.destinations.get_mut(&(host.to_owned(), port)) {
            Some(entry) => *entry = (entry.0 + 1, now, reason),
            None if full => tally.overflow += 1,
            None => {
                tally
                    .destinations
                    .insert((host.to_owned(), port), (1, now, reason));
            }
        }
    }

    /// Every denied destination, most denied first, and the count of those not listed.
    pub(crate) fn report(&self) -> DeniedReport {
        let Ok(tally) = self.0.lock() else {
            return DeniedReport::default();
        };
        let mut destinations: Vec<DeniedDestination> = tally
            .destinations
            .iter()
            .map(|((host, port), (count, last, reason))| DeniedDestination {
                host: host.clone(),
                port: *port,
                reason: (*reason).to_owned(),
                count: *count,
                last_seen: humantime::format_rfc3339_seconds(*last).to_string(),
            })
            .collect();
        destinations.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.host, a.port).cmp(&(&b.host, b.port)))
        });
        DeniedReport {
            destinations,
            overflow: tally.overflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_destination_most_denied_first() {
        let log = DeniedLog::default();
        log.record("a.test", 443, "not-allowlisted");
        log.record("b.test", 22, "port");
        log.record("b.test", 22, "port");
        let report = log.report();
        let all = &report.destinations;
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].host.as_str(), all[0].port, all[0].count),
            ("b.test", 22, 2)
        );
        assert_eq!((all[1].host.as_str(), all[1].count), ("a.test", 1));
        assert!(all[0].last_seen.ends_with('Z'));
        assert_eq!(report.overflow, 0);
    }

    #[test]
    fn destinations_beyond_the_limit_are_counted_as_overflow() {
        let log = DeniedLog::default();
        for i in 0..MAX_DESTINATIONS + 2 {
            log.record(&format!("h{i}.test"), 443, "not-allowlisted");
        }
        // Listed destinations still count their repeats.
        log.record("h0.test", 443, "not-allowlisted");
        let report = log.report();
        assert_eq!(report.destinations.len(), MAX_DESTINATIONS);
        assert_eq!(report.overflow, 2);
        assert_eq!(
            (
                report.destinations[0].host.as_str(),
                report.destinations[0].count
            ),
            ("h0.test", 2)
        );
    }
}
