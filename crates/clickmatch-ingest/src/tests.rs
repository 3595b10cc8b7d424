//! The router's composition: pages handed to ingest are served as its own (front door, request
//! deadline, metrics by endpoint), next to the ops pages. No broker is needed: nothing here
//! publishes.

use std::collections::BTreeMap;

use axum::body::{to_bytes, Body};
use axum::http::{header, Request};
use clickmatch_config::{Config, HttpLimits, RateLimits};
use tower::ServiceExt;

use super::*;

/// Ingest with a 200 ms request deadline and 64-byte request targets, its publishers pointed at
/// a broker that is not there.
fn ingest() -> Arc<Ingest> {
    let registry = Registry::new();
    let metrics = IngestMetrics::new(&registry).unwrap();
    let publisher = Publisher::new("127.0.0.1:9", &BTreeMap::new()).unwrap();
    let protection = limits::Protection::new(
        HttpLimits {
            max_uri_bytes: 64,
            max_header_bytes: 4096,
            max_params: 16,
            header_read_timeout_ms: 1000,
            request_timeout_ms: 200,
        },
        RateLimits::default(),
        Vec::new(),
        &registry,
    )
    .unwrap();
    Arc::new(Ingest {
        account: Arc::new(ArcSwap::from_pointee(
            Config::demo(&BTreeMap::new()).unwrap().account,
        )),
        clicks: click_buffer::ClickBuffer::new(publisher.clone(), "clicks".into()),
        publisher,
        topics: Topics {
            clicks: "clicks".into(),
            postbacks: "postbacks".into(),
        },
        metrics,
        registry,
        limits: ParamLimits::default(),
        max_body_bytes: 1024,
        protection,
        enrich: Arc::new(clickmatch_enrich::Enricher::off()),
        spool: None,
    })
}

async fn get_page(router: &Router, path: &str) -> (StatusCode, String) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn pages_are_served_behind_the_front_door_and_the_deadline() {
    let ingest = ingest();
    let pages = Router::new()
        .route("/page", get(|| async { "page\n" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late\n"
            }),
        );
    let router = router(ingest.clone(), pages);

    assert_eq!(
        get_page(&router, "/page").await,
        (StatusCode::OK, "page\n".to_string())
    );
    // The limits of the front door.
    let long = format!("/page?{}", "x".repeat(64));
    assert_eq!(get_page(&router, &long).await.0, StatusCode::URI_TOO_LONG);
    // The request deadline of handlers that wait.
    assert_eq!(
        get_page(&router, "/slow").await.0,
        StatusCode::REQUEST_TIMEOUT
    );
    // Ingest's own pages, from `clickmatch-ops`.
    assert_eq!(
        get_page(&router, "/healthz").await,
        (StatusCode::OK, "ok\n".to_string())
    );
    let response = router
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4"
    );
    let text = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&text);
    for series in [
        "endpoint=\"/page\",status=\"200\"",
        "endpoint=\"/page\",status=\"414\"",
        "endpoint=\"/slow\",status=\"408\"",
        "clickmatch_ingest_requests_refused_total{reason=\"uri_too_long\"} 1",
    ] {
        assert!(text.contains(series), "{series}:\n{text}");
    }
    assert_eq!(get_page(&router, "/debug").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_pages_no_admin_routes() {
    let router = router(ingest(), Router::new());
    for path in ["/debug", "/admin/spool"] {
        assert_eq!(
            get_page(&router, path).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(get_page(&router, "/healthz").await.0, StatusCode::OK);
}
