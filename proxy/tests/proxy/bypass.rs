//! One test per bypass class: name tricks, encodings, resolved-address classes, DNS,
//! the proxy's own management listener.

use crate::support::http::{connect, raw, status};
use crate::support::proxy::{ProxySpec, Running};
use crate::support::upstream::Echo;
use crate::support::{Scratch, curl, eventually};

/// CONNECTs to each target and asserts the status; returns nothing reached upstream.
async fn expect_all(proxy: std::net::SocketAddr, targets: &[String], code: u16, reason: &str) {
    for target in targets {
        let (_, head) = connect(proxy, target).await;
        assert_eq!(status(&head), code, "{target}: {head}");
        assert!(head.contains(reason), "{target}: expected {reason}: {head}");
    }
}

#[tokio::test]
async fn label_boundary_and_suffix_tricks_are_not_allowlisted() {
    let echo = Echo::start().await;
    let port = echo.port();
    let tricks = [
        "evilexample.com",
        "example.com.evil.test",
        "notexample.com",
        "example.co",
        "xexample.com",
        "example.com-evil.test",
    ];
    let mut spec = ProxySpec::new(&format!("example.com:{port}\n*.example.com:{port}\n"))
        .pin("example.com", &["127.0.0.1"]);
    for name in tricks {
        spec = spec.pin(name, &["127.0.0.1"]);
    }
    let proxy = spec.start().await;
    let targets: Vec<String> = tricks.iter().map(|n| format!("{n}:{port}")).collect();
    expect_all(proxy.addr, &targets, 403, "not-allowlisted").await;
    assert_eq!(echo.contacted(), 0);
}

#[tokio::test]
async fn case_trailing_dot_and_idn_are_normalised_on_both_sides() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = ProxySpec::new(&format!("example.com:{port}\nbücher.test:{port}\n"))
        .pin("example.com", &["127.0.0.1"])
        .pin("xn--bcher-kva.test", &["127.0.0.1"])
        .start()
        .await;
    for target in [
        "EXAMPLE.Com",
        "example.com.",
        "xn--bcher-kva.test",
        "XN--BCHER-KVA.test.",
    ] {
        let (_, head) = connect(proxy.addr, &format!("{target}:{port}")).await;
        assert_eq!(status(&head), 200, "{target}: {head}");
    }
}

#[tokio::test]
async fn odd_ip_encodings_userinfo_and_invalid_hosts_are_400() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = ProxySpec::new(&format!("127.0.0.1:{port}\nexample.com:{port}\n"))
        .pin("example.com", &["127.0.0.1"])
        .start()
        .await;
    let hosts = [
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
        "127.0.1",
        "127.000.000.001",
        "user@example.com",
        "user:pw@example.com",
        "exa%6dple.com",
        "example.com%00",
        "[::1%25lo]",
        "exa mple.com",
        "example..com",
    ];
    for host in hosts {
        let response = raw(
            proxy.addr,
            format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status(&response), 400, "{host}: {response}");
    }
    assert_eq!(echo.contacted(), 0);
}

#[tokio::test]
async fn names_resolving_to_forbidden_ranges_are_refused_for_wildcards() {
    let echo = Echo::start().await;
    let port = echo.port();
    let ranges = [
        ("loopback.evil.test", "127.0.0.1"),
        ("loopback6.evil.test", "::1"),
        ("private10.evil.test", "10.0.0.1"),
        ("private172.evil.test", "172.16.5.4"),
        ("private192.evil.test", "192.168.1.1"),
        ("metadata.evil.test", "169.254.169.254"),
        ("linklocal6.evil.test", "fe80::1"),
        ("ula.evil.test", "fd00::1"),
        ("cgnat.evil.test", "100.64.0.1"),
        ("zero.evil.test", "0.0.0.0"),
        ("broadcast.evil.test", "255.255.255.255"),
        ("multicast.evil.test", "224.0.0.1"),
        ("mapped.evil.test", "::ffff:127.0.0.1"),
        ("nat64.evil.test", "64:ff9b::7f00:1"),
        ("sixtofour.evil.test", "2002:7f00:1::1"),
    ];
    let mut spec = ProxySpec::new(&format!("*.evil.test:{port}\n"));
    for (name, address) in ranges {
        spec = spec.pin(name, &[address]);
    }
    let proxy = spec.start().await;
    let targets: Vec<String> = ranges.iter().map(|(n, _)| format!("{n}:{port}")).collect();
    expect_all(proxy.addr, &targets, 403, "private-address").await;
    assert_eq!(echo.contacted(), 0);
}

#[tokio::test]
async fn a_mixed_answer_with_one_forbidden_address_is_refused_whole() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = ProxySpec::new(&format!("*.mixed.test:{port}\n"))
        .pin("a.mixed.test", &["93.184.216.34", "127.0.0.1"])
        .pin("b.mixed.test", &["127.0.0.1", "93.184.216.34"])
        .start()
        .await;
    let targets = [
        format!("a.mixed.test:{port}"),
        format!("b.mixed.test:{port}"),
    ];
    expect_all(proxy.addr, &targets, 403, "private-address").await;
    assert_eq!(echo.contacted(), 0);
}

#[tokio::test]
async fn private_addresses_are_reachable_through_exact_entries_or_allow_private() {
    let echo = Echo::start().await;
    let port = echo.port();
    let exact = ProxySpec::new(&format!("host.docker.internal:{port}\n"))
        .pin("host.docker.internal", &["127.0.0.1"])
        .start()
        .await;
    let (_, head) = connect(exact.addr, &format!("host.docker.internal:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");

    let open = ProxySpec::new(&format!("*.svc.test:{port}\n"))
        .pin("a.svc.test", &["127.0.0.1"])
        .allow_private()
        .start()
        .await;
    let (_, head) = connect(open.addr, &format!("a.svc.test:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");
}

#[tokio::test]
async fn dns_failure_is_502_never_allowed() {
    let proxy = ProxySpec::new("*.nowhere.test\n").start().await;
    let (_, head) = connect(proxy.addr, "a.nowhere.test:443").await;
    assert_eq!(status(&head), 502, "{head}");
    assert!(head.contains("x-sandbox-proxy-error: dns"), "{head}");
}

#[tokio::test]
async fn garbage_and_malformed_heads_get_400_and_the_proxy_stays_up() {
    let echo = Echo::start().await;
    let port = echo.port();
    let proxy = ProxySpec::new(&format!("echo.test:{port}\n"))
        .pin("echo.test", &["127.0.0.1"])
        .start()
        .await;
    let inputs: [&[u8]; 7] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"CONNECT\r\n\r\n",
        b"CONNECT  HTTP/1.1\r\n\r\n",
        b"GET http://echo.test\x00:1/ HTTP/1.1\r\n\r\n",
        b"GET http://echo.test/ HTTP/9.9\r\n\r\n",
        b"CONNECT echo.test:99999 HTTP/1.1\r\n\r\n",
    ];
    for input in inputs {
        let response = raw(proxy.addr, input).await;
        assert_eq!(
            status(&response),
            400,
            "{:?}: {response}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(echo.contacted(), 0);
    let (_, head) = connect(proxy.addr, &format!("echo.test:{port}")).await;
    assert_eq!(status(&head), 200, "proxy must still serve: {head}");
}

#[tokio::test]
async fn the_management_listener_is_refused_like_the_proxys_own() {
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", "placeholder.test\n");
    let proxy = Running::start(&allowlist, &["--resolve", "admin.test=127.0.0.1"]);
    let admin_port = proxy.admin.rsplit(':').next().unwrap().to_owned();
    // Exact entries may reach loopback: only the own-address check stands in the way.
    std::fs::write(
        &allowlist,
        format!("127.0.0.1:{admin_port}\nadmin.test:{admin_port}\n"),
    )
    .unwrap();
    let via = format!("http://{}", proxy.address);
    let refusal = |url: String| {
        let via = via.clone();
        async move {
            let headers = curl(&["-x", &via, "-D", "-", "-o", "/dev/null", &url]).await;
            headers
                .lines()
                .find_map(|line| line.strip_prefix("x-sandbox-proxy-deny: "))
                .map(|reason| reason.trim().to_owned())
        }
    };
    let metrics = format!("http://127.0.0.1:{admin_port}/metrics");
    let reason = eventually("the new allowlist is in force", || async {
        refusal(metrics.clone())
            .await
            .filter(|reason| reason != "not-allowlisted")
    })
    .await;
    assert_eq!(reason, "self");
    let by_name = refusal(format!("http://admin.test:{admin_port}/metrics")).await;
    assert_eq!(by_name.as_deref(), Some("self"));
    let address = proxy.address.parse().unwrap();
    let (_, head) = connect(address, &format!("admin.test:{admin_port}")).await;
    assert_eq!(status(&head), 403, "{head}");
    assert!(head.contains("x-sandbox-proxy-deny: self"), "{head}");
}
