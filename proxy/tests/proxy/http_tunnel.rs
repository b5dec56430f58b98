//! CONNECT tunnels to HTTP ports are served as HTTP: every request inside goes to the
//! CONNECT host with its `Host`, another host is refused (no fronting through an allowed
//! name on a shared CDN), bytes that are not HTTP close the tunnel. Real clients: raw
//! HTTP/1.1, curl's `--proxytunnel`, Node's http module.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::http::{Kind, closes_within, connect, read_message, status};
use crate::support::proxy::{ProxySpec, Running, TestProxy};
use crate::support::upstream::HttpUpstream;
use crate::support::{Scratch, curl, eventually};

/// A proxy allowing `web.test` and `other.test` on `port`, serving tunnels to `port` as
/// HTTP.
async fn http_port_proxy(port: u16) -> TestProxy {
    let mut spec = ProxySpec::new(&format!("web.test:{port}\nother.test:{port}\n"))
        .pin("web.test", &["127.0.0.1"])
        .pin("other.test", &["127.0.0.1"]);
    spec.limits.http_ports = vec![port];
    spec.start().await
}

/// Opens a tunnel to `web.test:port`, which must be accepted.
async fn tunnel(proxy: &TestProxy, port: u16) -> TcpStream {
    let (stream, head) = connect(proxy.addr, &format!("web.test:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");
    stream
}

/// Writes `requests` into the tunnel and reads `answers` responses (stopping early if
/// the proxy closes); returns them as text.
async fn exchange(stream: &mut TcpStream, requests: &str, answers: usize) -> Vec<String> {
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let mut texts = Vec::new();
    for _ in 0..answers {
        let reading = read_message(stream, &mut buffer, Kind::Response);
        match tokio::time::timeout(Duration::from_secs(10), reading).await {
            Ok(Some(message)) => texts.push(message.text()),
            Ok(None) => break,
            Err(_) => panic!("no answer inside the tunnel"),
        }
    }
    texts
}

fn get(path: &str, host: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n")
}

#[tokio::test]
async fn requests_reach_the_connect_host_with_its_host_and_without_hop_by_hop_headers() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let mut stream = tunnel(&proxy, port).await;
    let extra = "Connection: keep-alive, X-Private\r\nX-Private: 1\r\nProxy-Authorization: Basic eA==\r\n\
                 TE: trailers\r\nX-Kept: yes\r\n";
    let answers = exchange(
        &mut stream,
        &get("/path?q=1", &format!("WEB.test.:{port}"), extra),
        1,
    )
    .await;
    assert_eq!(status(&answers[0]), 200, "{answers:?}");
    assert!(answers[0].ends_with("hello from upstream"), "{answers:?}");
    let lower = answers[0].to_ascii_lowercase();
    assert!(!lower.contains("x-upstream-secret"), "{lower}");

    let heads = upstream.heads().await;
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("get /path?q=1 http/1.1\r\n"), "{head}");
    assert!(
        head.contains(&format!("\r\nhost: web.test:{port}\r\n")),
        "{head}"
    );
    assert!(head.contains("x-kept: yes"), "{head}");
    for absent in ["x-private", "proxy-authorization", "\r\nte:"] {
        assert!(!head.contains(absent), "{absent} leaked: {head}");
    }
}

#[tokio::test]
async fn a_request_naming_another_host_is_refused_and_the_upstream_sees_nothing_of_it() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let hosts = [
        "evil.example".to_owned(),
        // Another name the allowlist allows is still not this tunnel's host.
        format!("other.test:{port}"),
        // Same name, another port.
        "web.test:1".to_owned(),
    ];
    for host in hosts {
        let mut stream = tunnel(&proxy, port).await;
        let answers = exchange(&mut stream, &get("/", &host, ""), 1).await;
        assert_eq!(status(&answers[0]), 403, "{host}: {answers:?}");
        assert!(
            answers[0].contains("x-sandbox-proxy-deny: host-mismatch"),
            "{answers:?}"
        );
        assert!(
            closes_within(&mut stream, Duration::from_secs(5)).await,
            "{host}: the tunnel stays open"
        );
    }
    // An absolute URL for another host inside the tunnel is the same trick.
    let mut stream = tunnel(&proxy, port).await;
    let answers = exchange(
        &mut stream,
        &get("http://evil.example/", &format!("web.test:{port}"), ""),
        1,
    )
    .await;
    assert_eq!(status(&answers[0]), 403, "{answers:?}");
    assert!(upstream.heads().await.is_empty());
}

#[tokio::test]
async fn pipelined_requests_share_one_upstream_connection_until_one_names_another_host() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let mut stream = tunnel(&proxy, port).await;
    let host = format!("web.test:{port}");
    let body = "POST /upload HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n0\r\n\r\n"
        .replace("HOST", &host);
    let pipelined = [
        get("/1", &host, ""),
        body,
        get("/3", &host, ""),
        get("/4", "evil.example", ""),
        get("/5", &host, ""),
    ]
    .concat();
    let answers = exchange(&mut stream, &pipelined, 5).await;
    let statuses: Vec<u16> = answers.iter().map(|a| status(a)).collect();
    assert_eq!(statuses, [200, 200, 200, 403], "{answers:?}");
    let heads = upstream.heads().await;
    let paths: Vec<&str> = heads
        .iter()
        .map(|head| head.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(paths, ["/1", "/upload", "/3"]);
    assert_eq!(upstream.contacted(), 1, "one upstream connection for all");
}

#[tokio::test]
async fn bytes_that_are_not_http_and_ambiguous_framing_close_the_tunnel() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let host = format!("web.test:{port}");
    let inputs = [
        "SSH-2.0-OpenSSH_9.6\r\n\r\n".to_owned(),
        "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\r\n\r\n".to_owned(),
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\
             Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
             0x5\r\nhello\r\n0\r\n\r\n"
        ),
        format!("CONNECT evil.example:80 HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n"),
    ];
    for input in inputs {
        let mut stream = tunnel(&proxy, port).await;
        let answers = exchange(&mut stream, &input, 1).await;
        assert!(
            answers.is_empty() || status(&answers[0]) == 400,
            "{input:?}: {answers:?}"
        );
        assert!(
            closes_within(&mut stream, Duration::from_secs(5)).await,
            "{input:?}: the tunnel stays open"
        );
    }
    assert!(upstream.heads().await.is_empty());
}

#[tokio::test]
async fn an_upgrade_switches_protocols_with_the_connect_host_only() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    let mut stream = tunnel(&proxy, port).await;
    let answers = exchange(&mut stream, &get("/ws", "evil.example", upgrade), 1).await;
    assert_eq!(status(&answers[0]), 403, "{answers:?}");
    assert!(upstream.heads().await.is_empty());

    let mut stream = tunnel(&proxy, port).await;
    let answers = exchange(
        &mut stream,
        &get("/ws", &format!("web.test:{port}"), upgrade),
        1,
    )
    .await;
    assert_eq!(status(&answers[0]), 101, "{answers:?}");
    assert!(
        answers[0]
            .to_ascii_lowercase()
            .contains("upgrade: websocket"),
        "{answers:?}"
    );
    let head = upstream.heads().await[0].to_ascii_lowercase();
    assert!(
        head.contains("upgrade: websocket") && head.contains("sec-websocket-key"),
        "{head}"
    );
    // Switched: bytes now go to the origin and back (the upstream echoes).
    assert!(crate::support::http::echo_roundtrip(&mut stream).await);
}

#[tokio::test]
async fn a_reload_that_removes_the_host_closes_a_served_tunnel() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let mut stream = tunnel(&proxy, port).await;
    let answers = exchange(&mut stream, &get("/", &format!("web.test:{port}"), ""), 1).await;
    assert_eq!(status(&answers[0]), 200);
    proxy.replace(&format!("other.test:{port}\n"));
    assert!(closes_within(&mut stream, Duration::from_secs(5)).await);
    eventually("the upstream connection is closed", || async {
        (upstream.open() == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn curl_through_a_tunnel_gets_the_page_and_is_refused_for_another_host() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let via = format!("http://{}", proxy.addr);
    let url = format!("http://web.test:{port}/page");
    let page = curl(&["-p", "-x", &via, &url]).await;
    assert_eq!(page, "hello from upstream");
    let code = curl(&[
        "-p",
        "-x",
        &via,
        "-H",
        "Host: evil.example",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ])
    .await;
    assert_eq!(code, "403");
    assert_eq!(upstream.heads().await.len(), 1);
}

/// What Node (and so pi, through an agent that tunnels every origin) does for a
/// plain-http URL behind a proxy: CONNECT host:port, then keep-alive HTTP/1.1 requests
/// over the tunnel with Node's own client.
const NODE_CLIENT: &str = r#"
const http = require('http');
const [proxyHost, proxyPort, target] = process.argv.slice(1);
const connect = http.request({ host: proxyHost, port: proxyPort, method: 'CONNECT', path: target, headers: { host: target } });
connect.on('connect', async (res, socket) => {
  if (res.statusCode !== 200) { console.log('CONNECT ' + res.statusCode); process.exit(1); }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agent.createConnection = () => socket;
  const get = (path, host) => new Promise((resolve, reject) => {
    const headers = host ? { host } : {};
    http.get({ host: target.split(':')[0], port: target.split(':')[1], path, agent, headers }, (r) => {
      let body = ''; r.on('data', (d) => body += d); r.on('end', () => resolve(r.statusCode + ' ' + body));
    }).on('error', reject);
  });
  const out = [];
  out.push(await get('/a'));
  out.push(await get('/b'));
  out.push(await get('/c', 'evil.example'));
  console.log(JSON.stringify(out));
  process.exit(0);
});
connect.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
connect.end();
"#;

#[tokio::test]
async fn node_tunnels_plain_http_with_keep_alive_and_cannot_front() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port();
    let proxy = http_port_proxy(port).await;
    let output = tokio::process::Command::new("node")
        .arg("-e")
        .arg(NODE_CLIENT)
        .arg(proxy.addr.ip().to_string())
        .arg(proxy.addr.port().to_string())
        .arg(format!("web.test:{port}"))
        .output()
        .await
        .expect("node is installed (.ci/run installs nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: Vec<String> = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("{stdout} {}", String::from_utf8_lossy(&output.stderr)));
    assert_eq!(results[0], "200 hello from upstream");
    assert_eq!(results[1], "200 hello from upstream");
    assert!(results[2].starts_with("403 "), "{results:?}");
    assert_eq!(upstream.heads().await.len(), 2);
    assert_eq!(upstream.contacted(), 1, "keep-alive inside the tunnel");
}

#[tokio::test]
async fn the_binary_logs_one_decision_line_per_request_inside_the_tunnel() {
    let upstream = HttpUpstream::start().await;
    let port = upstream.port().to_string();
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", &format!("web.test:{port}\n"));
    let proxy = Running::start(
        &allowlist,
        &["--http-ports", &port, "--resolve", "web.test=127.0.0.1"],
    );
    let address = proxy.address.parse().unwrap();
    let target = format!("web.test:{port}");
    let (mut stream, head) = connect(address, &target).await;
    assert_eq!(status(&head), 200, "{head}");
    let requests = [
        get("/1", &target, ""),
        get("/2", &target, ""),
        get("/3", "evil.example", ""),
    ]
    .concat();
    let answers = exchange(&mut stream, &requests, 3).await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    drop(stream);

    let decisions = proxy.decisions_once(|all| all.len() >= 4);
    let lines: Vec<(&str, &str, &str, u64)> = decisions
        .iter()
        .map(|event| {
            (
                event["method"].as_str().unwrap(),
                event["decision"].as_str().unwrap(),
                event["reason"].as_str().unwrap(),
                event["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("GET", "allow", "", 200),
            ("GET", "allow", "", 200),
            ("GET", "deny", "host-mismatch", 403),
            ("CONNECT", "allow", "", 200),
        ],
        "{decisions:?}"
    );
    assert!(decisions.iter().all(|event| event["host"] == "web.test"));
    assert_eq!(decisions[2]["detail"], "requested evil.example");

    // A tunnel carrying something else than HTTP is logged as refused.
    let (mut stream, head) = connect(address, &target).await;
    assert_eq!(status(&head), 200, "{head}");
    stream
        .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        .await
        .unwrap();
    assert!(closes_within(&mut stream, Duration::from_secs(5)).await);
    let decisions = proxy.decisions_once(|all| all.len() >= 5);
    assert_eq!(decisions[4]["method"], "CONNECT", "{decisions:?}");
    assert_eq!(decisions[4]["decision"], "deny");
    assert_eq!(decisions[4]["reason"], "not-http");
}
