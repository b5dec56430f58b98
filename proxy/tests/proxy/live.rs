//! Live policy: reloads that change access, rejected reloads, and revocation of open
//! tunnels and pooled connections.

use std::sync::Arc;
use std::time::Duration;

use sandbox_policy::{Host, Policy, PolicyOptions};
use sandbox_proxy::PolicyStore;
use sandbox_proxy::live::reload::{ReloadStatus, Reloader};
use sandbox_proxy::ops::telemetry::Telemetry;

use tokio::io::AsyncReadExt;

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
    let scratch = Scratch::new();
    let file = scratch.file("allow.txt", "a.test\n");
    let policy = Policy::load(&file, &PolicyOptions::default(), 1).unwrap();
    let store = PolicyStore::new(policy);
    let status_board = Arc::new(ReloadStatus::default());
    let reloader = Reloader::new(
        file.clone(),
        PolicyOptions::default(),
        store.clone(),
        Arc::new(Telemetry::default()),
        status_board.clone(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let task = reloader.spawn(stop.clone());

    let b = Host::parse("b.test").unwrap();
    // An editor-style replace: write a temporary file, rename it over the original.
    let temporary = scratch.path().join(".allow.txt.swp");
    std::fs::write(&temporary, "a.test\nb.test\n").unwrap();
    std::fs::rename(&temporary, &file).unwrap();
    eventually("the renamed file is in force", || async {
        store.current().check_target(&b, 443).ok().map(drop)
    })
    .await;
    assert_eq!(store.current().generation(), 2);

    std::fs::write(&file, "a.test\n*\nhttps://x.test/\n").unwrap();
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

    stop.cancel();
    task.await.unwrap();
}

/// A loopback listener whose accept queue is full, so a new connection to it stays in
/// SYN-SENT (its SYNs are dropped) until [`Stalled::release`] makes room.
struct Stalled {
    listener: tokio::net::TcpListener,
    _filler: tokio::net::TcpStream,
    port: u16,
}

impl Stalled {
    async fn start() -> Stalled {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        // A backlog of 0 queues one connection; the filler takes that place.
        socket.listen(0).unwrap();
        socket.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(socket.into()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let filler = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        Stalled {
            listener,
            _filler: filler,
            port,
        }
    }

    /// Waits until some socket is connecting to the listener (state SYN-SENT).
    async fn wait_for_dial(&self) {
        let remote = format!(" 0100007F:{:04X} 02 ", self.port);
        eventually("the proxy is dialing the stalled upstream", || async {
            let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
            table.contains(&remote).then_some(())
        })
        .await;
    }

    /// Accepts the filler, making room for the stalled connection (it gets through at
    /// its next SYN), and returns that connection once it is accepted.
    async fn release(&self) -> tokio::net::TcpStream {
        let (filler, _) = self.listener.accept().await.unwrap();
        drop(filler);
        let accepting = self.listener.accept();
        tokio::time::timeout(Duration::from_secs(10), accepting)
            .await
            .expect("the stalled connection never arrived")
            .unwrap()
            .0
    }
}

/// A proxy allowing `a.test` on the stalled upstream's port, patient enough to wait
/// for a retransmitted SYN.
async fn stalled_proxy(stalled: &Stalled) -> TestProxy {
    let mut spec =
        ProxySpec::new(&format!("a.test:{}\n", stalled.port)).pin("a.test", &["127.0.0.1"]);
    spec.limits.connect_timeout = Duration::from_secs(15);
    spec.start().await
}

/// Reads what `upstream` receives until it is closed; fails if that takes long.
async fn received_until_closed(upstream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let reading = upstream.read_to_end(&mut received);
    let _ = tokio::time::timeout(Duration::from_secs(5), reading)
        .await
        .expect("the proxy kept the upstream connection open");
    received
}

#[tokio::test]
async fn a_reload_while_a_tunnel_is_being_dialed_is_not_missed() {
    let stalled = Stalled::start().await;
    let proxy = stalled_proxy(&stalled).await;
    let target = format!("a.test:{}", stalled.port);
    let address = proxy.addr;
    let client = tokio::spawn(async move { connect(address, &target).await.1 });
    stalled.wait_for_dial().await;
    // Decided under the old policy; the new one lands while the dial is in progress.
    proxy.replace(&format!("b.test:{}\n", stalled.port));
    let mut upstream = stalled.release().await;
    let head = client.await.unwrap();
    assert_eq!(status(&head), 403, "{head}");
    assert!(head.contains("not-allowlisted"), "{head}");
    assert!(received_until_closed(&mut upstream).await.is_empty());
}

#[tokio::test]
async fn a_reload_while_a_pooled_connection_is_being_dialed_is_not_missed() {
    let stalled = Stalled::start().await;
    let proxy = stalled_proxy(&stalled).await;
    let get = format!("GET http://a.test:{}/ HTTP/1.1\r\n\r\n", stalled.port);
    let address = proxy.addr;
    let client = tokio::spawn(async move { raw(address, get.as_bytes()).await });
    stalled.wait_for_dial().await;
    proxy.replace(&format!("b.test:{}\n", stalled.port));
    let mut upstream = stalled.release().await;
    let response = client.await.unwrap();
    assert_eq!(status(&response), 403, "{response}");
    assert!(received_until_closed(&mut upstream).await.is_empty());
}
