//! Secrets added on the way out (`--secrets-stdin`), against the real binary with real
//! TLS on loopback: the proxy decrypts tunnels to the secrets' hosts only, with its
//! run's CA, and verifies the upstream against `--upstream-ca` (a test CA).

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use sandbox_policy::protocol::{self, SecretsReport};

use crate::support::http::{connect, raw, status};
use crate::support::https::{FIRST_EVENT, HttpsUpstream, LAST_EVENT, https_client, send};
use crate::support::proxy::Running;
use crate::support::tls::{TestCa, der_of, tls_client};
use crate::support::upstream::HttpUpstream;
use crate::support::{BIN, Scratch, run};

const HEX: &str = "0123456789abcdef0123456789abcdef";
const KEY_VALUE: &str = "sk-test-KEY-value-0001";
const OTHER_VALUE: &str = "sk-test-OTHER-value-0002";

fn placeholder(name: &str) -> String {
    protocol::placeholder(name, HEX)
}

/// The proxy with two secrets: `KEY` for `api.test` (an HTTPS upstream whose
/// certificate the test CA signed), `OTHER` for `elsewhere.test`; it also allows
/// `web.test` (plain HTTP) and `raw.test` (HTTPS, no secret).
struct Fixture {
    ca: TestCa,
    api: HttpsUpstream,
    raw: HttpsUpstream,
    web: HttpUpstream,
    proxy: Running,
    _scratch: Scratch,
}

impl Fixture {
    /// `api` serves with a certificate `api_signer` signed (the test CA unless given).
    async fn start(api_signer: Option<&TestCa>) -> Fixture {
        let ca = TestCa::new();
        let api = HttpsUpstream::start(api_signer.unwrap_or(&ca).server_config("api.test")).await;
        let raw = HttpsUpstream::start(ca.server_config("raw.test")).await;
        let web = HttpUpstream::start().await;
        let scratch = Scratch::new();
        let allowlist = scratch.file(
            "allow.txt",
            &format!(
                "api.test:{}\nraw.test:{}\nweb.test:{}\n",
                api.port(),
                raw.port(),
                web.port()
            ),
        );
        let upstream_ca = scratch.file("upstream-ca.pem", &ca.pem());
        let grants = serde_json::json!([
            {"name": "KEY", "placeholder": placeholder("KEY"), "value": KEY_VALUE,
             "hosts": ["api.test"]},
            {"name": "OTHER", "placeholder": placeholder("OTHER"), "value": OTHER_VALUE,
             "hosts": ["elsewhere.test"]},
        ]);
        let sni_ports = format!("{},{}", api.port(), raw.port());
        let proxy = Running::start_with_stdin(
            &allowlist,
            &[
                "--secrets-stdin",
                "--upstream-ca",
                upstream_ca.to_str().unwrap(),
                "--sni-ports",
                &sni_ports,
                "--resolve",
                "api.test=127.0.0.1",
                "--resolve",
                "raw.test=127.0.0.1",
                "--resolve",
                "web.test=127.0.0.1",
            ],
            &grants.to_string(),
        );
        Fixture {
            ca,
            api,
            raw,
            web,
            proxy,
            _scratch: scratch,
        }
    }

    fn proxy_addr(&self) -> std::net::SocketAddr {
        self.proxy.address.parse().unwrap()
    }

    /// A client of `api.test` through the proxy, trusting the run's CA only.
    async fn api_client(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let run_ca = der_of(&self.proxy.ca_pem());
        https_client(self.proxy_addr(), "api.test", self.api.port(), run_ca)
            .await
            .unwrap()
    }

    /// What `sandbox-proxy secrets` prints.
    fn report(&self) -> SecretsReport {
        let (code, stdout, stderr) = run(&["secrets", "--admin", &self.proxy.admin]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str(&stdout).unwrap()
    }

    /// No value ever appears in what the proxy printed.
    fn assert_no_value_printed(&self) {
        let output = self.proxy.output();
        assert!(!output.contains(KEY_VALUE) && !output.contains(OTHER_VALUE));
    }

    /// A POST to `api.test`.
    fn post(&self, uri: &str, headers: &[(&str, &str)], body: &str) -> Request<Full<Bytes>> {
        let host = format!("api.test:{}", self.api.port());
        let mut request = Request::post(uri).header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap()
    }
}

#[tokio::test]
async fn the_value_replaces_the_placeholder_in_headers_and_query_for_its_host_only() {
    let fixture = Fixture::start(None).await;
    let (key, other) = (placeholder("KEY"), placeholder("OTHER"));
    let mut client = fixture.api_client().await;
    let bearer = format!("Bearer {key}");
    let request = fixture.post(
        &format!("/v1/{key}?key={key}&n=1"),
        &[
            ("authorization", &bearer),
            ("x-api-key", &key),
            ("x-goog-api-key", &key),
            ("x-other", &other),
        ],
        &format!("{{\"key\":\"{key}\"}}"),
    );
    let (head, body) = send(&mut client, request).await;
    assert_eq!((head.status.as_u16(), body.as_str()), (200, "ok"));
    // The upstream echoed the real value: the client sees the placeholder again.
    assert_eq!(head.headers["x-echo-authorization"], bearer.as_str());
    // Keep-alive: a second request on the same connection, to the same upstream one.
    let (again, _) = send(
        &mut client,
        fixture.post("/again", &[("x-api-key", &key)], ""),
    )
    .await;
    assert_eq!(again.status.as_u16(), 200);
    assert_eq!(fixture.api.handshakes(), 1);

    let seen = fixture.api.seen();
    let first = &seen[0];
    assert_eq!(
        first.headers["authorization"],
        format!("Bearer {KEY_VALUE}").as_str()
    );
    assert_eq!(first.headers["x-api-key"], KEY_VALUE);
    assert_eq!(first.headers["x-goog-api-key"], KEY_VALUE);
    // Another secret's placeholder, the path and the body are left alone.
    assert_eq!(first.headers["x-other"], other.as_str());
    assert_eq!(first.uri, format!("/v1/{key}?key={KEY_VALUE}&n=1"));
    assert_eq!(first.body, format!("{{\"key\":\"{key}\"}}"));
    assert_eq!(seen[1].headers["x-api-key"], KEY_VALUE);

    let decisions = fixture.proxy.decisions_once(|d| {
        d.iter()
            .filter(|line| line["secrets"] == "KEY" && line["host"] == "api.test")
            .count()
            == 2
    });
    assert!(
        decisions
            .iter()
            .any(|line| line["stray_placeholders"] == "OTHER"),
        "{decisions:?}"
    );
    let report = fixture.report();
    assert_eq!(report.secrets[0].name, "KEY");
    assert_eq!(report.secrets[0].added, 2);
    assert_eq!(report.secrets[1].added, 0);
    assert_eq!(
        (
            report.strays[0].name.as_str(),
            report.strays[0].host.as_str()
        ),
        ("OTHER", "api.test")
    );
    fixture.assert_no_value_printed();
}

#[tokio::test]
async fn a_placeholder_sent_to_another_host_goes_unchanged_and_is_reported() {
    let fixture = Fixture::start(None).await;
    let key = placeholder("KEY");
    let request = format!(
        "GET http://web.test:{port}/gist?token={key} HTTP/1.1\r\nHost: web.test:{port}\r\n\
         authorization: token {key}\r\nconnection: close\r\n\r\n",
        port = fixture.web.port()
    );
    let response = raw(fixture.proxy_addr(), request.as_bytes()).await;
    assert_eq!(status(&response), 200, "{response}");
    let heads = fixture.web.heads().await;
    assert!(
        heads[0].contains(&format!("/gist?token={key} ")),
        "{heads:?}"
    );
    assert!(heads[0].contains(&format!("authorization: token {key}\r\n")));
    let report = fixture.report();
    assert_eq!(report.secrets[0].added, 0);
    assert_eq!(report.strays.len(), 1);
    let stray = &report.strays[0];
    assert_eq!(
        (stray.name.as_str(), stray.host.as_str(), stray.count),
        ("KEY", "web.test", 1)
    );
    fixture.assert_no_value_printed();
}

#[tokio::test]
async fn an_upstream_that_fails_verification_is_answered_502_and_gets_no_key() {
    let stranger = TestCa::new();
    let fixture = Fixture::start(Some(&stranger)).await;
    let mut client = fixture.api_client().await;
    let key = placeholder("KEY");
    let (head, body) = send(&mut client, fixture.post("/", &[("x-api-key", &key)], "")).await;
    assert_eq!(head.status.as_u16(), 502, "{body}");
    assert_eq!(head.headers["x-sandbox-proxy-error"], "upstream-tls");
    assert!(body.contains("nothing was sent"), "{body}");
    // The proxy refused the certificate: no request (no key) followed the handshake.
    assert!(fixture.api.seen().is_empty());
    assert_eq!(fixture.report().secrets[0].added, 0);
    fixture.assert_no_value_printed();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_run_ca_fails_and_nothing_reaches_the_upstream() {
    let fixture = Fixture::start(None).await;
    // It trusts the upstream's real issuer: only the run's CA could serve api.test here.
    let refused = https_client(
        fixture.proxy_addr(),
        "api.test",
        fixture.api.port(),
        fixture.ca.der(),
    )
    .await;
    assert!(refused.is_err());
    let decisions = fixture
        .proxy
        .decisions_once(|d| d.iter().any(|line| line["reason"] == "client-tls"));
    assert!(decisions.iter().all(|line| line["secrets"] == ""));
    assert_eq!(fixture.api.handshakes(), 0);
    assert!(fixture.api.seen().is_empty());
}

#[tokio::test]
async fn server_sent_events_arrive_as_the_upstream_sends_them() {
    let fixture = Fixture::start(None).await;
    let mut client = fixture.api_client().await;
    client.ready().await.unwrap();
    let response = client
        .send_request(fixture.post("/sse", &[], ""))
        .await
        .unwrap();
    let mut body = response.into_body();
    // The upstream holds its last event until the first one reached the client: a
    // proxy that buffered the stream would never deliver it.
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, FIRST_EVENT);
    fixture.api.release();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, LAST_EVENT);
}

#[tokio::test]
async fn tunnels_to_hosts_without_secrets_are_never_decrypted() {
    let fixture = Fixture::start(None).await;
    let proxy = fixture.proxy_addr();
    let port = fixture.raw.port();
    // The client verifies raw.test's own certificate end to end.
    let (stream, head) = connect(proxy, &format!("raw.test:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");
    let tls = tls_client(stream, "raw.test", fixture.ca.der())
        .await
        .unwrap();
    drop(tls);
    // The run's CA does not certify it: the proxy is not in the middle.
    let (stream, _) = connect(proxy, &format!("raw.test:{port}")).await;
    let run_ca = der_of(&fixture.proxy.ca_pem());
    assert!(tls_client(stream, "raw.test", run_ca).await.is_err());
    // The TLS name check still applies to it.
    let (stream, _) = connect(proxy, &format!("raw.test:{port}")).await;
    assert!(
        tls_client(stream, "api.test", fixture.ca.der())
            .await
            .is_err()
    );
    fixture
        .proxy
        .decisions_once(|d| d.iter().any(|line| line["reason"] == "sni-mismatch"));
}

#[test]
fn invalid_secrets_on_stdin_stop_the_proxy_without_showing_the_value() {
    let scratch = Scratch::new();
    let allowlist = scratch.file("allow.txt", "api.test\n");
    let inputs = [
        format!("[{{\"name\": \"KEY\", \"value\": \"{KEY_VALUE}\""),
        format!("[{{\"name\": \"KEY\", \"hosts\": \"{KEY_VALUE}\"}}]"),
        serde_json::json!([{"name": "KEY", "placeholder": placeholder("KEY"),
            "value": format!("{KEY_VALUE}\nX"), "hosts": ["api.test"]}])
        .to_string(),
    ];
    for input in inputs {
        let mut child = Command::new(BIN)
            .args([
                "--allowlist",
                allowlist.to_str().unwrap(),
                "--secrets-stdin",
            ])
            .args(["--listen", "127.0.0.1:0", "--admin", "off"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(5), "{stderr}");
        assert!(stderr.contains("--secrets-stdin: "), "{stderr}");
        assert!(!stderr.contains(KEY_VALUE), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}
