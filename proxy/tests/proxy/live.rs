//! Live policy: reloads that change access, rejected reloads, and revocation of open
//! tunnels and pooled connections.

use std::sync::Arc;
use std::time::Duration;

use sandbox_policy::{DomainName, Host, Policy, PolicyOptions, protocol::ListenAddr};
use sandbox_proxy::live::reload::{ReloadStatus, Reloader};
use sandbox_proxy::net::dial::{Dialer, OwnAddresses};
use sandbox_proxy::net::listen::Listener;
use sandbox_proxy::net::resolve::Resolver;
use sandbox_proxy::ops::telemetry::Telemetry;
use sandbox_proxy::{Limits, PolicyStore, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::support::{Echo, HttpUpstream, connect, eventually, raw, status};

fn options() -> PolicyOptions {
    PolicyOptions {
        default_ports: vec![80, 443],
        allow_private: false,
    }
}

/// A proxy whose policy the test can replace, with names a.test and b.test on loopback.
struct LiveProxy {
    addr: std::net::SocketAddr,
    store: PolicyStore,
    _stop: oneshot::Sender<()>,
}

impl LiveProxy {
    async fn start(allowlist: &str) -> LiveProxy {
        let policy = Policy::from_text("live", allowlist, &options(), 1).unwrap();
        let store = PolicyStore::new(policy);
        let pins = ["a.test", "b.test"]
            .into_iter()
            .map(|name| match Host::parse(name).unwrap() {
                Host::Name(name) => (name, vec!["127.0.0.1".parse().unwrap()]),
                Host::Ip(_) => unreachable!(),
            })
            .collect::<std::collections::HashMap<DomainName, _>>();
        let listener = Listener::bind(&ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let addr = listener.local_tcp_addr().unwrap();
        let dialer = Dialer::new(
            Resolver::pinned_only(pins),
            Duration::from_secs(2),
            OwnAddresses::new(vec![addr]),
        );
        let server = Server::new(store.clone(), dialer, Limits::default(), Default::default());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(vec![listener], async move {
            let _ = stopped.await;
        }));
        LiveProxy {
            addr,
            store,
            _stop: stop,
        }
    }

    fn replace(&self, allowlist: &str) {
        let generation = self.store.current().generation() + 1;
        self.store
            .replace(Policy::from_text("live", allowlist, &options(), generation).unwrap());
    }
}

async fn echo_roundtrip(stream: &mut tokio::net::TcpStream) -> bool {
    if stream.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut back = [0u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut back)).await,
        Ok(Ok(_))
    ) && &back == b"ping"
}

#[tokio::test]
async fn a_reload_that_removes_access_closes_those_tunnels_only() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = LiveProxy::start(&format!("a.test:{port}\nb.test:{port}\n")).await;
    let (mut a, head) = connect(proxy.addr, &format!("a.test:{port}")).await;
    assert_eq!(status(&head), 200);
    let (mut b, head) = connect(proxy.addr, &format!("b.test:{port}")).await;
    assert_eq!(status(&head), 200);
    assert!(echo_roundtrip(&mut a).await && echo_roundtrip(&mut b).await);

    proxy.replace(&format!("b.test:{port}\n"));

    let mut buf = [0u8; 8];
    let closed = tokio::time::timeout(Duration::from_secs(3), a.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "revoked tunnel still open: {closed:?}"
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
    let proxy = LiveProxy::start(&format!("a.test:{port}\n")).await;
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while upstream.open() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "pooled connection not closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(&raw(proxy.addr, get.as_bytes()).await), 403);
}

#[tokio::test]
async fn file_changes_reload_and_invalid_files_keep_the_last_good_policy() {
    let dir = std::env::temp_dir().join(format!("sandbox-proxy-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("allow.txt");
    std::fs::write(&file, "a.test\n").unwrap();
    let policy = Policy::load(&file, &options(), 1).unwrap();
    let store = PolicyStore::new(policy);
    let status_board = Arc::new(ReloadStatus::default());
    let reloader = Reloader::new(
        file.clone(),
        options(),
        store.clone(),
        Arc::new(Telemetry::default()),
        status_board.clone(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let task = reloader.spawn(stop.clone());

    let b = Host::parse("b.test").unwrap();
    // An editor-style replace: write a temporary file, rename it over the original.
    let temporary = dir.join(".allow.txt.swp");
    std::fs::write(&temporary, "a.test\nb.test\n").unwrap();
    std::fs::rename(&temporary, &file).unwrap();
    wait_for(|| store.current().check_target(&b, 443).is_ok()).await;
    assert_eq!(store.current().generation(), 2);

    std::fs::write(&file, "a.test\n*\nhttps://x.test/\n").unwrap();
    wait_for(|| status_board.latest().is_some_and(|r| r.result == "error")).await;
    let report = status_board.latest().unwrap();
    let error = report.error.unwrap();
    assert!(error.contains(":2:") && error.contains(":3:"), "{error}");
    assert!(
        store.current().check_target(&b, 443).is_ok(),
        "last good policy dropped"
    );
    assert_eq!(store.current().generation(), 2);

    stop.cancel();
    task.await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn wait_for(condition: impl Fn() -> bool) {
    eventually("condition", || async { condition().then_some(()) }).await;
}
