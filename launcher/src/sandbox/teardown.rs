//! Removing what a run created: explicitly, asynchronously, in reverse order of creation,
//! with "already gone" counting as removed, on every path out of a run (the caller runs it
//! after normal exit, errors and signals; a panic hook covers panics). `gc` removes the
//! leftovers of runs whose launcher process is gone (killed with SIGKILL, machine crash).

use std::collections::BTreeMap;

use futures_util::future::join_all;

use crate::engine::{Engine, EngineError, Kind, Labelled};
use crate::sandbox::labels::{self, Owner, SESSION};

/// Something a run created, to be removed at its end: containers and networks by id,
/// volumes by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource {
    Container(String),
    Network(String),
    Volume(String),
}

impl From<Labelled> for Resource {
    fn from(object: Labelled) -> Self {
        match object.kind {
            Kind::Container => Resource::Container(object.id),
            Kind::Network => Resource::Network(object.id),
            Kind::Volume => Resource::Volume(object.id),
        }
    }
}

/// Removes `resources` in reverse order of creation, as far as order matters: the
/// containers first (they use the networks and volumes), concurrently, then the networks
/// and volumes, concurrently. Every removal is attempted even when one fails; the
/// failures are returned.
pub(crate) async fn remove_all(engine: &Engine, resources: Vec<Resource>) -> Vec<EngineError> {
    let (containers, others): (Vec<Resource>, Vec<Resource>) = resources
        .into_iter()
        .rev()
        .partition(|r| matches!(r, Resource::Container(_)));
    let mut failures = Vec::new();
    for stage in [containers, others] {
        let removals = stage.into_iter().map(|resource| async move {
            let result = match &resource {
                Resource::Container(id) => engine.remove_container(id).await,
                Resource::Network(id) => engine.remove_network(id).await,
                Resource::Volume(name) => engine.remove_volume(name).await,
            };
            if result.is_ok() {
                tracing::debug!(?resource, "removed");
            }
            result
        });
        failures.extend(join_all(removals).await.into_iter().filter_map(Result::err));
    }
    failures
}

/// What a session left on the engine, in the order to remove it: containers (which use
/// the rest), then networks, then volumes.
pub(crate) async fn session_resources(
    engine: &Engine,
    session: &str,
) -> Result<Vec<Resource>, EngineError> {
    let key = format!("{SESSION}={session}");
    let mut resources = Vec::new();
    // remove_all works backwards, so list them in creation order.
    for kind in [Kind::Volume, Kind::Network, Kind::Container] {
        resources.extend(
            engine
                .labelled(kind, &key)
                .await?
                .into_iter()
                .map(Resource::from),
        );
    }
    Ok(resources)
}

/// The sessions among `objects` that are stale: created by a launcher on `host` (process
/// ids mean nothing on other machines) that `running` says is gone, and not `current`.
/// Objects without complete session labels are never selected.
pub(crate) fn stale_sessions(
    objects: &[Labelled],
    host: &str,
    current: Option<&str>,
    running: impl Fn(&Owner) -> bool,
) -> Vec<String> {
    let owners: BTreeMap<String, Owner> = objects
        .iter()
        .filter_map(|object| labels::owner_of(&object.labels))
        .collect();
    owners
        .into_iter()
        .filter(|(session, owner)| {
            Some(session.as_str()) != current && owner.host == host && !running(owner)
        })
        .map(|(session, _)| session)
        .collect()
}

/// Removes everything left by stale sessions (see [`stale_sessions`]) and returns their
/// ids. Failures to remove are logged and do not stop the others.
///
/// # Errors
///
/// The engine cannot list objects.
pub(crate) async fn gc(
    engine: &Engine,
    host: &str,
    current: Option<&str>,
    running: impl Fn(&Owner) -> bool,
) -> Result<Vec<String>, EngineError> {
    let mut objects = Vec::new();
    for kind in [Kind::Container, Kind::Network, Kind::Volume] {
        objects.extend(engine.labelled(kind, labels::MANAGED_BY).await?);
    }
    let stale = stale_sessions(&objects, host, current, running);
    for session in &stale {
        let resources = session_resources(engine, session).await?;
        for failure in remove_all(engine, resources).await {
            tracing::warn!(session, error = %crate::report::chain(&failure), "cannot remove a leftover");
        }
    }
    Ok(stale)
}

/// Makes a panic remove the session's objects (and its allowlist copy) before the process
/// ends: the hook runs on the panicking thread while the async runtime may be unusable,
/// so it uses a fresh thread with its own runtime and connection, and finds the objects
/// by label.
pub(crate) fn remove_on_panic(session: String) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        super::allowlist::copy::remove_session(&session);
        let session = session.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(engine) = Engine::connect().await
                    && let Ok(resources) = session_resources(&engine, &session).await
                {
                    remove_all(&engine, resources).await;
                }
            });
        });
        let _ = cleanup.join();
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::labels::Session;

    fn object(session: &Session, role: &str) -> Labelled {
        Labelled {
            kind: Kind::Container,
            id: format!("{}-{role}", session.id),
            labels: session.labels(role),
        }
    }

    fn session(pid: u32, host: &str) -> Session {
        Session::new(
            Owner {
                pid,
                start: "1".into(),
                host: host.into(),
            },
            Vec::new(),
        )
    }

    #[test]
    fn only_dead_sessions_of_this_host_other_than_ours_are_stale() {
        let dead = session(10, "here");
        let alive = session(11, "here");
        let elsewhere = session(12, "there");
        let ours = session(13, "here");
        let objects = vec![
            object(&dead, "agent"),
            object(&dead, "proxy"),
            object(&dead, "egress"),
            object(&alive, "agent"),
            object(&elsewhere, "agent"),
            object(&ours, "agent"),
            Labelled {
                kind: Kind::Network,
                id: "unlabelled".into(),
                labels: Default::default(),
            },
        ];
        let running = |owner: &Owner| owner.pid == 11;
        let stale = stale_sessions(&objects, "here", Some(&ours.id), running);
        assert_eq!(stale, std::slice::from_ref(&dead.id));
        let without_current = stale_sessions(&objects, "here", None, running);
        assert_eq!(without_current.len(), 2);
        assert!(without_current.contains(&ours.id));
    }
}
