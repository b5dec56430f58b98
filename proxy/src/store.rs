//! The current policy, shared by every connection and replaced atomically on reload.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::policy::Policy;

/// A handle to the policy in force; cheap to clone. Readers never block, and a reader
/// always sees one whole policy, never a mix of two.
#[derive(Clone)]
pub struct PolicyStore(Arc<ArcSwap<Policy>>);

impl PolicyStore {
    /// A store holding `policy`.
    pub fn new(policy: Policy) -> PolicyStore {
        PolicyStore(Arc::new(ArcSwap::from_pointee(policy)))
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.0.load_full()
    }

    /// Puts `policy` in force for every request decided from now on.
    pub fn replace(&self, policy: Policy) {
        self.0.store(Arc::new(policy));
    }
}
