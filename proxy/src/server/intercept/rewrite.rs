//! The [`Rewrite`] hooks that apply the secrets to tunnels served as HTTP: in a
//! decrypted tunnel ([`AddSecrets`]) the secrets bound to its host are added and echoed
//! values hidden again; in a cleartext one ([`WatchSecrets`]) placeholders going to the
//! wrong host are only recorded. The decision line of each request names both.

use std::sync::Arc;

use sandbox_policy::Host;

use crate::secrets::Secrets;
use crate::server::origin::Rewrite;
use crate::server::record::DecisionRecord;
use crate::server::respond::ProxyError;

/// Adds the secrets bound to `host` to each request; hides values echoed in responses.
pub(crate) struct AddSecrets {
    pub(crate) secrets: Arc<Secrets>,
    pub(crate) host: Host,
}

impl Rewrite for AddSecrets {
    fn request(
        &self,
        head: &mut http::request::Parts,
        record: &mut DecisionRecord,
    ) -> Result<(), ProxyError> {
        record.mark_secrets(self.secrets.add(head, &self.host));
        Ok(())
    }

    fn forwarded(&self, record: &DecisionRecord) {
        self.secrets.count_added(record.secrets_added());
    }

    fn response(&self, head: &mut http::response::Parts, _record: &mut DecisionRecord) {
        self.secrets.hide(head);
    }
}

/// Records placeholders sent to `host` that are not bound to it; changes nothing.
pub(crate) struct WatchSecrets {
    pub(crate) secrets: Arc<Secrets>,
    pub(crate) host: Host,
}

impl Rewrite for WatchSecrets {
    fn request(
        &self,
        head: &mut http::request::Parts,
        record: &mut DecisionRecord,
    ) -> Result<(), ProxyError> {
        record.mark_secrets(self.secrets.watch(&head.uri, &head.headers, &self.host));
        Ok(())
    }
}
