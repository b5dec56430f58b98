//! The management listener: `/healthz`, `/readyz`, `/metrics`, `/denied`, `/secrets`.
//!
//! It listens on its own address (loopback by default), never on the proxy's, so the
//! sandboxed agent cannot read or influence it.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::live::PolicyStore;
use crate::live::reload::ReloadStatus;
use crate::net::listen::accept_retrying;
use crate::ops::telemetry::Telemetry;
use crate::secrets::Secrets;

/// What the management endpoints report on.
pub(crate) struct AdminState {
    pub(crate) secrets: Arc<Secrets>,
    pub(crate) policy: PolicyStore,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) reloads: Arc<ReloadStatus>,
    pub(crate) source: PathBuf,
}

/// Serves the management endpoints on `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = accept_retrying("management", || listener.accept()) => accepted,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&request, &state)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn route(request: &Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match request.uri().path() {
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => readiness(state),
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.telemetry.encode(),
        ),
        "/denied" => json_report(&state.telemetry.denied.report()),
        "/secrets" => json_report(&state.secrets.report()),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// A report as JSON.
fn json_report(report: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_string(report) {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(_) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "cannot encode the record\n".into(),
        ),
    }
}

/// 200 while a valid policy is in force (always, once the proxy runs: it never runs
/// without one), with the policy's identity and the latest reload attempt.
fn readiness(state: &AdminState) -> Response<Full<Bytes>> {
    let policy = state.policy.current();
    let body = json!({
        "ready": true,
        "policy": {
            "source": state.source.display().to_string(),
            "generation": policy.generation(),
            "sha256": policy.sha256(),
            "entries": policy.allowlist().len(),
        },
        "last_reload": state.reloads.latest(),
    });
    respond(StatusCode::OK, "application/json", body.to_string())
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
