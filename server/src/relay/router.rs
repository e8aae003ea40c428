//! The routes, the answer shape of everything the framework itself refuses, the request log and
//! metrics, and the serving loop. The top piece: it imports the handlers and nothing imports it.

use super::config::{RelayConfig, SMALL_BODY_BYTES};
use super::errors::{json_response, ApiError, Coded, ErrorCode};
use super::handlers;
use super::openapi;
use super::state::{now_ms, App, Shared};
use super::storage::Storage;
use amanat_protocol::{OrgPublic, MAX_CLOCK_SKEW_MS};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

async fn not_found() -> ApiError {
    ErrorCode::NotFound.into()
}

async fn method_not_allowed() -> ApiError {
    ErrorCode::MethodNotAllowed.into()
}

/// Gives any answer of status ≥ 400 that is not already a relay error (a refusal by the framework
/// or the HTTP layer) the documented JSON shape, keeping its `Allow` header.
fn ensure_json_error(resp: Response) -> Response {
    let status = resp.status();
    if status.as_u16() < 400 || resp.extensions().get::<Coded>().is_some() {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut out = ApiError::new(ErrorCode::for_status(status)).into_response();
    if let Some(allow) = allow {
        out.headers_mut().insert(header::ALLOW, allow);
    }
    out
}

/// Counts and logs every response: method, path, status, error code, duration — never bodies.
async fn observe<S: Storage>(State(app): State<Shared<S>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = ensure_json_error(next.run(req).await);
    let status = resp.status().as_u16();
    let code = resp.extensions().get::<Coded>().map(|c| c.0.as_str());
    app.metrics.request(status, code);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, status, error = code.unwrap_or(""), ms, "request");
    } else {
        tracing::info!(%method, %path, status, error = code.unwrap_or(""), ms, "request");
    }
    resp
}

/// The relay's routes over shared state `app`.
pub fn router<S: Storage>(app: Shared<S>) -> Router {
    let cfg = &app.config;
    let small = DefaultBodyLimit::max(SMALL_BODY_BYTES);
    let doc = Arc::new(openapi::document(cfg));
    Router::new()
        .route("/v1/enroll", post(handlers::enroll::<S>).layer(small))
        .route(
            "/v1/revocations",
            post(handlers::revoke::<S>)
                .get(handlers::revocations::<S>)
                .layer(small),
        )
        .route(
            "/v1/envelopes",
            post(handlers::push::<S>)
                .get(handlers::pull::<S>)
                .layer(DefaultBodyLimit::max(cfg.max_batch_bytes)),
        )
        .route(
            "/v1/blobs/{sha256}",
            put(handlers::blob_upload::<S>)
                .get(handlers::blob_download::<S>)
                .layer(DefaultBodyLimit::max(cfg.max_chunk_bytes)),
        )
        .route("/v1/blobs/{sha256}/status", get(handlers::blob_status::<S>))
        .route(
            "/v1/blobs/{sha256}/complete",
            post(handlers::blob_complete::<S>).layer(small),
        )
        .route("/healthz", get(handlers::healthz::<S>))
        .route("/metrics", get(handlers::metrics_text::<S>))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { json_response(StatusCode::OK, &doc) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), observe::<S>))
        .with_state(app)
}

/// A relay running on a tokio runtime; [`RunningRelay::stop`] shuts it down gracefully.
pub struct RunningRelay {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningRelay {
    /// Stops accepting, lets in-flight requests finish (their commits complete), then returns.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|_| std::io::Error::other("relay task failed"))?
    }
}

/// Binds `listen` and serves the relay on the current tokio runtime.
pub async fn start<S: Storage>(
    listen: SocketAddr,
    org: OrgPublic,
    config: RelayConfig,
    storage: S,
) -> std::io::Result<RunningRelay> {
    let app = Arc::new(App::new(storage, org, config).map_err(std::io::Error::other)?);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    // Purge nonces that can no longer pass the clock check, once a minute.
    let purge_app = app.clone();
    let mut purge_rx = rx.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = purge_rx.changed() => break,
            }
            let before = now_ms().saturating_sub(MAX_CLOCK_SKEW_MS + 60_000);
            if let Err(e) = purge_app.storage.purge_nonces(before).await {
                tracing::warn!(error = %e, "nonce purge failed");
            }
        }
    });
    let router = router(app);
    let mut rx2 = rx;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx2.changed().await;
            })
            .await
    });
    Ok(RunningRelay {
        addr,
        shutdown: tx,
        task,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;

    #[test]
    fn framework_refusals_get_the_json_shape() {
        for (status, code) in [
            (StatusCode::BAD_REQUEST, "malformed_request"),
            (StatusCode::IM_A_TEAPOT, "malformed_request"),
            (StatusCode::NOT_FOUND, "not_found"),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            (StatusCode::BAD_GATEWAY, "internal"),
        ] {
            let mut plain = Response::new(Body::from("plain text"));
            *plain.status_mut() = status;
            plain
                .headers_mut()
                .insert(header::ALLOW, "GET".parse().unwrap());
            let out = ensure_json_error(plain);
            let c = out.extensions().get::<Coded>().unwrap().0;
            assert_eq!(c.as_str(), code);
            assert_eq!(out.status(), c.status());
            assert_eq!(out.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(out.headers()[header::ALLOW], "GET");
        }
        let ok = ensure_json_error(Response::new(Body::from("fine")));
        assert!(ok.extensions().get::<Coded>().is_none());
    }
}
