//! Real TLS through a CONNECT tunnel: the proxy never terminates it, the client verifies
//! the upstream's certificate end to end.

use crate::support::http::{connect, status};
use crate::support::proxy::ProxySpec;
use crate::support::tls::{get_over_tls, tls_client, tls_upstream};

#[tokio::test]
async fn tls_through_a_tunnel_verifies_end_to_end() {
    let (upstream, _, cert) = tls_upstream("tls.test").await;
    let port = upstream.port();
    let proxy = ProxySpec::new(&format!("tls.test:{port}\n"))
        .pin("tls.test", &["127.0.0.1"])
        .start()
        .await;
    let (stream, head) = connect(proxy.addr, &format!("tls.test:{port}")).await;
    assert_eq!(status(&head), 200, "{head}");
    let tls = tls_client(stream, "tls.test", cert).await.unwrap();
    let response = get_over_tls(tls).await;
    assert!(response.ends_with("hello over tls"), "{response}");
}
