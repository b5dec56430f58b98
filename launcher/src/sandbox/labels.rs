//! The labels on everything the launcher creates, and the session identity they carry:
//! which launcher process (PID, start time, host) owns a container, network or volume,
//! so that `gc` can tell leftovers of dead runs from resources of live ones.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Marks every object the launcher creates (images included).
pub(crate) const MANAGED_BY: &str = "agent-sandbox.managed-by";
/// The value of [`MANAGED_BY`].
pub(crate) const MANAGED_BY_VALUE: &str = "agent-sandbox";
/// The run an object belongs to.
pub(crate) const SESSION: &str = "agent-sandbox.session";
/// The PID of the launcher that created the object.
pub(crate) const LAUNCHER_PID: &str = "agent-sandbox.launcher-pid";
/// The launcher's start time, as the kernel recorded it (guards against PID reuse).
pub(crate) const LAUNCHER_START: &str = "agent-sandbox.launcher-start";
/// The host name of the machine the launcher ran on (PIDs mean nothing elsewhere).
pub(crate) const LAUNCHER_HOST: &str = "agent-sandbox.launcher-host";
/// What the object is for (`agent`, `proxy`, `egress`, ...).
pub(crate) const ROLE: &str = "agent-sandbox.role";
/// On images: the hash of the build inputs.
pub(crate) const INPUTS_HASH: &str = "agent-sandbox.inputs-hash";

/// The launcher process that owns a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    /// Its start time (clock ticks since boot on Linux; empty where unknown).
    pub(crate) start: String,
    pub(crate) host: String,
}

impl Owner {
    /// An owner with process id `pid` on host `h`, for tests of what runs leave behind.
    #[cfg(test)]
    pub(crate) fn test(pid: u32) -> Self {
        Self {
            pid,
            start: "1".into(),
            host: "h".into(),
        }
    }

    /// The owner as a file's contents (`PID`, start, host, one a line), for what a run
    /// leaves outside the engine.
    pub(crate) fn record(&self) -> String {
        format!("{}\n{}\n{}\n", self.pid, self.start, self.host)
    }

    /// Parses what [`Owner::record`] wrote.
    pub(crate) fn from_record(record: &str) -> Option<Self> {
        let mut lines = record.lines();
        Some(Self {
            pid: lines.next()?.parse().ok()?,
            start: lines.next()?.to_owned(),
            host: lines.next()?.to_owned(),
        })
    }
}

/// One launcher run: its id and owner, labelled onto everything it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// A short random-looking id, unique per run.
    pub(crate) id: String,
    pub(crate) owner: Owner,
    /// Extra labels given with `--label`.
    pub(crate) extra: Vec<(String, String)>,
}

impl Session {
    /// A new session owned by `owner`, with an id derived from the owner and the clock.
    pub(crate) fn new(owner: Owner, extra: Vec<(String, String)>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let digest = Sha256::digest(format!(
            "{}/{}/{}/{now}",
            owner.host, owner.pid, owner.start
        ));
        let mut id = format!("{digest:x}");
        id.truncate(12);
        Self { id, owner, extra }
    }

    /// The name of this session's object with `role` (`agent-sandbox-1a2b3c4d5e6f-proxy`).
    pub(crate) fn name(&self, role: &str) -> String {
        format!("agent-sandbox-{}-{role}", self.id)
    }

    /// The labels of this session's object with `role`.
    pub(crate) fn labels(&self, role: &str) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = self.extra.iter().cloned().collect();
        labels.extend([
            (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (SESSION.to_owned(), self.id.clone()),
            (LAUNCHER_PID.to_owned(), self.owner.pid.to_string()),
            (LAUNCHER_START.to_owned(), self.owner.start.clone()),
            (LAUNCHER_HOST.to_owned(), self.owner.host.clone()),
            (ROLE.to_owned(), role.to_owned()),
        ]);
        labels
    }
}

/// The session and owner an object's labels name, if it is a session object.
pub(crate) fn owner_of(labels: &HashMap<String, String>) -> Option<(String, Owner)> {
    if labels.get(MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
        return None;
    }
    let session = labels.get(SESSION)?.clone();
    let owner = Owner {
        pid: labels.get(LAUNCHER_PID)?.parse().ok()?,
        start: labels.get(LAUNCHER_START).cloned().unwrap_or_default(),
        host: labels.get(LAUNCHER_HOST)?.clone(),
    };
    Some((session, owner))
}

/// Parses `--label KEY=VALUE` arguments.
///
/// # Errors
///
/// The argument that has no `=` or an empty key.
pub(crate) fn parse_extra(labels: &[String]) -> Result<Vec<(String, String)>, String> {
    labels
        .iter()
        .map(|label| match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(label.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            pid: 4242,
            start: "123456".into(),
            host: "box".into(),
        }
    }

    #[test]
    fn labels_round_trip_to_the_owner() {
        let session = Session::new(owner(), vec![("agent-sandbox.test".into(), "1".into())]);
        let labels = session.labels("proxy");
        assert_eq!(
            labels.get("agent-sandbox.test").map(String::as_str),
            Some("1")
        );
        assert_eq!(labels.get(ROLE).map(String::as_str), Some("proxy"));
        assert_eq!(owner_of(&labels), Some((session.id.clone(), owner())));
        assert_eq!(
            session.name("agent"),
            format!("agent-sandbox-{}-agent", session.id)
        );
        assert_eq!(session.id.len(), 12);
    }

    #[test]
    fn owner_records_round_trip() {
        assert_eq!(Owner::from_record(&owner().record()), Some(owner()));
        assert_eq!(Owner::from_record("x\n1\nbox\n"), None);
        assert_eq!(Owner::from_record("1\n"), None);
    }

    #[test]
    fn extra_labels_cannot_override_the_session_labels() {
        let session = Session::new(owner(), vec![(SESSION.into(), "forged".into())]);
        assert_eq!(session.labels("agent").get(SESSION), Some(&session.id));
    }

    #[test]
    fn objects_without_full_session_labels_have_no_owner() {
        let mut labels = Session::new(owner(), Vec::new()).labels("agent");
        labels.remove(LAUNCHER_HOST);
        assert_eq!(owner_of(&labels), None);
        let mut foreign = Session::new(owner(), Vec::new()).labels("agent");
        foreign.insert(MANAGED_BY.into(), "someone-else".into());
        assert_eq!(owner_of(&foreign), None);
        assert_eq!(owner_of(&HashMap::new()), None);
    }

    #[test]
    fn extra_labels_parse() {
        assert_eq!(
            parse_extra(&["a=1".into(), "b=x=y".into(), "c=".into()])
                .unwrap()
                .len(),
            3
        );
        assert_eq!(parse_extra(&["novalue".into()]), Err("novalue".into()));
        assert_eq!(parse_extra(&["=v".into()]), Err("=v".into()));
    }
}
