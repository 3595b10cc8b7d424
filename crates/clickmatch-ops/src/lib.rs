//! What every clickmatch process serves for operations, whatever else it does: `/metrics`
//! (Prometheus text of its registry), `/healthz` (the process runs) and `/readyz`.
//!
//! Processes that serve no ingest (the joiner, the outbound dispatcher) serve [`router`] with
//! [`serve`]. Ingest serves the same pages from its own router, behind its limits, with
//! [`metrics`] and [`healthz`], and a `/readyz` of its own (the broker answers).
//!
//! Deliberately small: axum and prometheus, nothing of Kafka or ClickHouse.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, Registry, TextEncoder};

/// A router served by [`serve`].
pub type OpsRouter = Router;

/// The Prometheus text form of `registry` (`GET /metrics`).
pub fn metrics(registry: &Registry) -> Response {
    let mut buffer = Vec::new();
    let families = registry.gather();
    if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buffer,
    )
        .into_response()
}

/// `GET /healthz`: `200 ok` while the process runs.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `/metrics`, `/healthz` and `/readyz` (ready as long as it runs), for processes that serve no
/// ingest.
pub fn router(registry: Registry) -> OpsRouter {
    Router::new()
        .route(
            "/metrics",
            get(|State(registry): State<Registry>| async move { metrics(&registry) }),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .with_state(registry)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: OpsRouter,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_page(router: &OpsRouter, path: &str) -> (StatusCode, Option<String>, String) {
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("clickmatch_test_total", "A test.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let router = router(registry);

        let (status, content_type, body) = get_page(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some("text/plain; version=0.0.4"));
        assert!(body.contains("clickmatch_test_total 3"), "{body}");
        for path in ["/healthz", "/readyz"] {
            let (status, _, body) = get_page(&router, path).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"), "{path}");
        }
        let (status, _, _) = get_page(&router, "/debug").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
