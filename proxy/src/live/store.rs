//! The current policy, shared by every connection and replaced atomically on reload.

use std::sync::Arc;

use arc_swap::ArcSwap;
use sandbox_policy::Policy;
use tokio::sync::watch;

/// A handle to the policy in force; cheap to clone. Readers never block, and a reader
/// always sees one whole policy, never a mix of two. Long-lived connections subscribe
/// to replacements to re-check themselves (revocation).
#[derive(Clone)]
pub struct PolicyStore {
    current: Arc<ArcSwap<Policy>>,
    changes: watch::Sender<Arc<Policy>>,
}

impl PolicyStore {
    /// A store holding `policy`.
    pub fn new(policy: Policy) -> PolicyStore {
        let policy = Arc::new(policy);
        PolicyStore {
            current: Arc::new(ArcSwap::new(policy.clone())),
            changes: watch::Sender::new(policy),
        }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Puts `policy` in force for every request decided from now on, and tells every
    /// subscriber.
    pub fn replace(&self, policy: Policy) {
        let policy = Arc::new(policy);
        self.current.store(policy.clone());
        self.changes.send_replace(policy);
    }

    /// A receiver that sees every later replacement.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Policy>> {
        self.changes.subscribe()
    }
}
