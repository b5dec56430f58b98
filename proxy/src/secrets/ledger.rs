//! How often each secret was added, and the placeholders seen going to hosts not bound
//! to them (strays: the sign of an attempt to send a key elsewhere).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sandbox_policy::Host;
use sandbox_policy::protocol::{SecretUse, SecretsReport, StrayPlaceholder};

use super::grants::Grant;

/// Most distinct (secret, host) strays recorded; further hosts are counted under
/// [`OTHER_HOSTS`].
const MAX_STRAYS: usize = 1024;

/// The host a stray is counted under once [`MAX_STRAYS`] are recorded.
const OTHER_HOSTS: &str = "(other hosts)";

/// Counters, indexed like the grants.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    added: Vec<AtomicU64>,
    /// (grant index, host) -> requests.
    strays: Mutex<HashMap<(usize, String), u64>>,
}

impl Ledger {
    /// A ledger for `grants` secrets.
    pub(super) fn new(grants: usize) -> Ledger {
        Ledger {
            added: (0..grants).map(|_| AtomicU64::new(0)).collect(),
            strays: Mutex::default(),
        }
    }

    /// Secret `index` was added to one request.
    pub(super) fn added(&self, index: usize) {
        if let Some(count) = self.added.get(index) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Secret `index`'s placeholder was seen in one request to `host`.
    pub(super) fn stray(&self, index: usize, host: &Host) {
        let Ok(mut strays) = self.strays.lock() else {
            return;
        };
        let mut key = (index, host.to_string());
        if strays.len() >= MAX_STRAYS && !strays.contains_key(&key) {
            key.1 = OTHER_HOSTS.to_owned();
        }
        *strays.entry(key).or_default() += 1;
    }

    /// The report for `grants`: uses in their order, strays most frequent first.
    pub(super) fn report(&self, grants: &[Grant]) -> SecretsReport {
        let secrets = grants
            .iter()
            .zip(&self.added)
            .map(|(grant, added)| SecretUse {
                name: grant.name.clone(),
                added: added.load(Ordering::Relaxed),
            })
            .collect();
        let mut strays: Vec<StrayPlaceholder> = self
            .strays
            .lock()
            .map(|strays| {
                strays
                    .iter()
                    .filter_map(|((index, host), count)| {
                        Some(StrayPlaceholder {
                            name: grants.get(*index)?.name.clone(),
                            host: host.clone(),
                            count: *count,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        strays.sort_by(|a, b| (b.count, &a.name, &a.host).cmp(&(a.count, &b.name, &b.host)));
        SecretsReport { secrets, strays }
    }
}
