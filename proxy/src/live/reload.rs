//! Live policy: reload on SIGHUP and when the allowlist file changes, never failing open.
//!
//! A new file is compiled completely before it replaces the policy in force; an invalid
//! file leaves the last good policy in force, logs every error (file:line: reason) and is
//! reported by `/readyz`. The directory is watched, not the file, because editors and
//! config managers replace files by rename.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
use sandbox_policy::{LoadError, Policy, PolicyOptions, report};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::live::PolicyStore;
use crate::ops::telemetry::Telemetry;

/// Quiet time after a file event before reloading, so a burst of writes reloads once.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// The result of the latest reload attempt, as `/readyz` reports it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// `ok`, `unchanged` or `error`.
    pub result: &'static str,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
    /// The policy generation in force after it.
    pub generation: u64,
    /// Every error, when the new file was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Shared record of the latest reload attempt (`None` before the first reload).
#[derive(Default)]
pub struct ReloadStatus(Mutex<Option<ReloadReport>>);

impl ReloadStatus {
    /// The latest reload attempt, if there was one.
    pub fn latest(&self) -> Option<ReloadReport> {
        self.0.lock().ok().and_then(|latest| latest.clone())
    }

    fn set(&self, report: ReloadReport) {
        if let Ok(mut latest) = self.0.lock() {
            *latest = Some(report);
        }
    }
}

/// Reloads the allowlist at `path` into `store`.
pub struct Reloader {
    path: PathBuf,
    options: PolicyOptions,
    store: PolicyStore,
    telemetry: Arc<Telemetry>,
    status: Arc<ReloadStatus>,
}

impl Reloader {
    /// A reloader for the policy compiled from `path` with `options`.
    pub fn new(
        path: PathBuf,
        options: PolicyOptions,
        store: PolicyStore,
        telemetry: Arc<Telemetry>,
        status: Arc<ReloadStatus>,
    ) -> Reloader {
        Reloader {
            path,
            options,
            store,
            telemetry,
            status,
        }
    }

    /// Re-reads the file now; replaces the policy only when it compiled and changed.
    pub(crate) fn reload(&self) -> ReloadReport {
        let current = self.store.current();
        let generation = current.generation() + 1;
        let started = std::time::Instant::now();
        let loaded = Policy::load(&self.path, &self.options, generation);
        let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (result, generation, error) = match loaded {
            Ok(policy) if policy.sha256() == current.sha256() => {
                ("unchanged", current.generation(), None)
            }
            Ok(policy) => {
                tracing::info!(
                    allowlist = %self.path.display(),
                    entries = policy.allowlist().len(),
                    policy_generation = policy.generation(),
                    policy_sha256 = policy.sha256(),
                    compile_ms,
                    "policy reloaded"
                );
                crate::ops::lint::log_findings(&self.path, policy.allowlist());
                self.telemetry
                    .policy(policy.generation(), policy.allowlist().len());
                self.store.replace(policy);
                ("ok", generation, None)
            }
            Err(err) => {
                let error = describe(&err);
                tracing::error!(
                    allowlist = %self.path.display(),
                    policy_generation = current.generation(),
                    policy_sha256 = current.sha256(),
                    error = %error,
                    "reload rejected; the previous policy stays in force"
                );
                ("error", current.generation(), Some(error))
            }
        };
        self.telemetry.reload(result != "error");
        let report = ReloadReport {
            result,
            at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            generation,
            error,
        };
        self.status.set(report.clone());
        report
    }

    /// Starts reloading on SIGHUP and on changes in the allowlist's directory until
    /// `shutdown`. The signal handler and the watch are in place when this returns.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let (events, mut changed) = mpsc::channel::<()>(1);
        let watcher = watch_directory(&self.path, events);
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => Some(hangups),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGHUP; reload on file change only");
                None
            }
        };
        tokio::spawn(async move {
            let _watcher = watcher;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    Some(()) = async { hangups.as_mut()?.recv().await } => {
                        tracing::info!("SIGHUP: reloading the policy");
                    }
                    Some(()) = changed.recv() => {
                        // Let a burst of events (write, rename, chmod) settle first.
                        tokio::time::sleep(DEBOUNCE).await;
                        while changed.try_recv().is_ok() {}
                    }
                }
                self.reload();
            }
        })
    }
}

/// Every error of a rejected file, on one line each.
fn describe(err: &LoadError) -> String {
    report::chain(err)
}

/// Watches the directory of `path`; each event sends one (coalesced) notification.
fn watch_directory(path: &Path, events: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening or reading a file changes nothing, and the reload itself opens the
        // allowlist: reacting to access events would reload forever.
        if event.is_ok_and(|event| !event.kind.is_access()) {
            // A full channel already holds a pending notification: coalesce.
            let _ = events.try_send(());
        }
    });
    match watcher.and_then(|mut watcher| {
        watcher
            .watch(directory, RecursiveMode::NonRecursive)
            .map(|()| watcher)
    }) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(
                directory = %directory.display(),
                error = %err,
                "cannot watch the allowlist's directory; reload with SIGHUP"
            );
            None
        }
    }
}
