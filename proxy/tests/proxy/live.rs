//! Live policy: reloads that change access, rejected reloads, and revocation of open
//! tunnels and pooled connections.

use std::sync::Arc;
use std::time::Duration;

use sandbox_policy::{Host, Policy, PolicyOptions};
use sandbox_proxy::PolicyStore;
use sandbox_proxy::live::reload::{ReloadStatus, Reloader};
use sandbox_proxy::ops::telemetry::Telemetry;

use crate::support::http::{closes_within, connect, echo_roundtrip, raw, status};
use crate::support::proxy::{ProxySpec, TestProxy};
use crate::support::upstream::{Echo, HttpUpstream};
use crate::support::{Scratch, eventually};

/// A proxy with the names a.test and b.test on loopback, and `allowlist` in force.
async fn live_proxy(allowlist: &str) -> TestProxy {
    ProxySpec::new(allowlist)
        .pin("a.test", &["127.0.0.1"])
        .pin("b.test", &["127.0.0.1"])
        .start()
        .await
}

#[tokio::test]
async fn a_reload_that_removes_access_closes_those_tunnels_only() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = live_proxy(&format!("a.test:{port}\nb.test:{port}\n")).await;
    let (mut a, head) = connect(proxy.addr, &format!("a.test:{port}")).await;
    assert_eq!(status(&head), 200);
    let (mut b, head) = connect(proxy.addr, &format!("b.test:{port}")).await;
    assert_eq!(status(&head), 200);
    assert!(echo_roundtrip(&mut a).await && echo_roundtrip(&mut b).await);

    proxy.replace(&format!("b.test:{port}\n"));

    assert!(
        closes_within(&mut a, Duration::from_secs(3)).await,
        "revoked tunnel still open"
    );
    assert!(
        echo_roundtrip(&mut b).await,
        "a tunnel still allowed must be untouched"
    );
    let (_, head) = connect(proxy.addr, &format!("a.test:{port}")).await;
    assert_eq!(status(&head), 403, "{head}");
}

#[tokio::test]
async fn a_reload_that_removes_access_closes_pooled_upstream_connections() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = live_proxy(&format!("a.test:{port}\n")).await;
    let get = format!("GET http://a.test:{port}/ HTTP/1.1\r\n\r\n");
    assert_eq!(status(&raw(proxy.addr, get.as_bytes()).await), 200);
    assert_eq!(upstream.contacted(), 1);

    // Same policy text with another entry: the pooled connection survives.
    proxy.replace(&format!("a.test:{port}\nb.test:{port}\n"));
    assert_eq!(status(&raw(proxy.addr, get.as_bytes()).await), 200);
    assert_eq!(
        upstream.contacted(),
        1,
        "an allowed pooled connection was dropped"
    );

    proxy.replace(&format!("b.test:{port}\n"));
    eventually("the pooled connection is closed", || async {
        (upstream.open() == 0).then_some(())
    })
    .await;
    assert_eq!(status(&raw(proxy.addr, get.as_bytes()).await), 403);
}

#[tokio::test]
async fn file_changes_reload_and_invalid_files_keep_the_last_good_policy() {
    let watched = Watched::start("a.test\n");
    let (file, store, status_board) = (&watched.file, &watched.store, &watched.status);

    let b = Host::parse("b.test").unwrap();
    // An editor-style replace: write a temporary file, rename it over the original.
    let temporary = watched.scratch.path().join(".allow.txt.swp");
    std::fs::write(&temporary, "a.test\nb.test\n").unwrap();
    std::fs::rename(&temporary, file).unwrap();
    eventually("the renamed file is in force", || async {
        store.current().check_target(&b, 443).ok().map(drop)
    })
    .await;
    assert_eq!(store.current().generation(), 2);

    std::fs::write(file, "a.test\n*\nhttps://x.test/\n").unwrap();
    let report = eventually("the invalid file is rejected", || async {
        status_board.latest().filter(|r| r.result == "error")
    })
    .await;
    let error = report.error.unwrap();
    assert!(error.contains(":2:") && error.contains(":3:"), "{error}");
    assert!(
        store.current().check_target(&b, 443).is_ok(),
        "last good policy dropped"
    );
    assert_eq!(store.current().generation(), 2);

    watched.stop().await;
}

#[tokio::test]
async fn reading_the_allowlist_does_not_reload_it() {
    let watched = Watched::start("a.test\n");
    let (file, store, status_board) = (&watched.file, &watched.store, &watched.status);

    // Opening and reading the file (as every reload does) is not a change. Before,
    // each reload's own read triggered the next one, several times a second, forever.
    for _ in 0..3 {
        std::fs::read(file).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status_board.latest(), None, "reloaded without a change");

    std::fs::write(file, "a.test\nb.test\n").unwrap();
    eventually("the changed file is in force", || async {
        (store.current().generation() == 2).then_some(())
    })
    .await;

    watched.stop().await;
}

/// A reloader watching an allowlist file in a scratch directory, as the server runs one.
struct Watched {
    scratch: Scratch,
    file: std::path::PathBuf,
    store: PolicyStore,
    status: Arc<ReloadStatus>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Watched {
    fn start(allowlist: &str) -> Watched {
        let scratch = Scratch::new();
        let file = scratch.file("allow.txt", allowlist);
        let store = PolicyStore::new(Policy::load(&file, &PolicyOptions::default(), 1).unwrap());
        let status = Arc::new(ReloadStatus::default());
        let reloader = Reloader::new(
            file.clone(),
            PolicyOptions::default(),
            store.clone(),
            Arc::new(Telemetry::default()),
            status.clone(),
        );
        let stop = tokio_util::sync::CancellationToken::new();
        let task = reloader.spawn(stop.clone());
        Watched {
            scratch,
            file,
            store,
            status,
            stop,
            task,
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}
