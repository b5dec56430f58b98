//! The management listener and the subcommands that read it, against the real binary.

use rustix::process::Signal;
use sandbox_policy::protocol::DeniedReport;

use crate::support::proxy::Running;
use crate::support::upstream::HttpUpstream;
use crate::support::{Scratch, curl, eventually, free_port, run, send_signal};

async fn admin_get(proxy: &Running, path: &str) -> (String, String) {
    let url = format!("http://{}{path}", proxy.admin);
    let code = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]).await;
    (code, curl(&[&url]).await)
}

#[tokio::test]
async fn health_readiness_metrics_and_denied_report_the_truth() {
    let upstream = HttpUpstream::start().await;
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", &format!("web.test:{}\n", upstream.port()));
    let proxy = Running::start(&allowlist, &["--resolve", "web.test=127.0.0.1"]);
    let via = format!("http://{}", proxy.address);
    curl(&[
        "-o",
        "/dev/null",
        "-x",
        &via,
        &format!("http://web.test:{}/", upstream.port()),
    ])
    .await;
    for _ in 0..2 {
        curl(&["-o", "/dev/null", "-x", &via, "http://blocked.test:8080/"]).await;
    }

    assert_eq!(admin_get(&proxy, "/healthz").await.0, "200");
    let (code, ready) = admin_get(&proxy, "/readyz").await;
    assert_eq!(code, "200");
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["policy"]["generation"], 1);
    assert_eq!(ready["policy"]["entries"], 1);
    assert_eq!(ready["policy"]["sha256"].as_str().map(str::len), Some(64));

    let (_, metrics) = admin_get(&proxy, "/metrics").await;
    for needle in [
        "sandbox_proxy_requests_total{method=\"GET\",decision=\"allow\",reason=\"\"} 1",
        "sandbox_proxy_requests_total{method=\"GET\",decision=\"deny\",reason=\"not-allowlisted\"} 2",
        "sandbox_proxy_upstream_connect_seconds_count 1",
        "sandbox_proxy_active_tunnels 0",
        "sandbox_proxy_policy_generation 1",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }

    let (_, denied) = admin_get(&proxy, "/denied").await;
    let denied: DeniedReport = serde_json::from_str(&denied).unwrap();
    let first = &denied.destinations[0];
    assert_eq!(
        (first.host.as_str(), first.port, first.count),
        ("blocked.test", 8080, 2)
    );
    assert_eq!(first.reason, "not-allowlisted");
    assert_eq!(denied.overflow, 0);

    let (code, stdout, _) = run(&["denied", "--admin", &proxy.admin]);
    assert_eq!(code, 0);
    assert!(stdout.contains("\"blocked.test\""), "{stdout}");
    let (code, _, _) = run(&["healthcheck", "--admin", &proxy.admin]);
    assert_eq!(code, 0);
}

#[test]
fn healthcheck_fails_when_nothing_answers() {
    let admin = format!("127.0.0.1:{}", free_port());
    let (code, _, stderr) = run(&["healthcheck", "--admin", &admin]);
    assert_eq!(code, 1, "{stderr}");
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_file_is_reported_by_readyz() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", "other.test\n");
    let proxy = Running::start(&allowlist, &["--resolve", "web.test=127.0.0.1"]);
    let via = format!("http://{}", proxy.address);
    let url = format!("http://web.test:{port}/");
    let status =
        || async { curl(&["-o", "/dev/null", "-w", "%{http_code}", "-x", &via, &url]).await };
    assert_eq!(status().await, "403");

    std::fs::write(&allowlist, format!("web.test:{port}\n")).unwrap();
    send_signal(&proxy.child, Signal::HUP);
    eventually("reload takes effect", || async {
        (status().await == "200").then_some(())
    })
    .await;

    std::fs::write(&allowlist, "web.test:0\n").unwrap();
    send_signal(&proxy.child, Signal::HUP);
    let ready = eventually("the failed reload is reported", || async {
        let (_, ready) = admin_get(&proxy, "/readyz").await;
        let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
        (ready["last_reload"]["result"] == "error").then_some(ready)
    })
    .await;
    assert_eq!(ready["policy"]["generation"], 2);
    assert!(
        ready["last_reload"]["error"]
            .as_str()
            .unwrap()
            .contains(":1:")
    );
    assert_eq!(
        status().await,
        "200",
        "the last good policy must stay in force"
    );
    assert!(proxy.events().iter().any(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("reload rejected"))
    }));
}
