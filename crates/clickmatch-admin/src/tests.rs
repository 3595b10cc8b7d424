//! The admin pages through their router, without a network: the guard's answers, the pages'
//! headers, and what they say without a spool or ClickHouse. (Over real HTTP, behind ingest's
//! front door, with ClickHouse: `tests/debugger.rs` and `tests/security.rs`.)

use super::*;
use axum::body::{to_bytes, Body};
use axum::http::{header, HeaderMap, Request};
use base64::Engine as _;
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_config::{SpoolConfig, SpoolFsync};
use clickmatch_core::model::Secret;
use clickmatch_ingest::spool::SpoolMetrics;
use prometheus::Registry;
use tower::ServiceExt;

const TOKEN: &str = "admin-token-0123456789abcdef";

fn admin(token: Option<&str>, spool: Option<Arc<Spool>>, debug: Option<DebugReader>) -> Router {
    let account = clickmatch_config::Config::demo(&Default::default())
        .unwrap()
        .account;
    router(Arc::new(Admin {
        account: Arc::new(ArcSwap::from_pointee(account)),
        guard: AdminGuard::new(token.map(Secret::new), &Registry::new()).unwrap(),
        spool,
        debug,
        uploads: None,
        reports: Some(ClickHouseSettings::new("http://127.0.0.1:9", "clickmatch")),
    }))
}

/// A reader of a ClickHouse that is not there.
fn unreachable_clickhouse() -> DebugReader {
    DebugReader::new(&ClickHouseSettings::new("http://127.0.0.1:9", "clickmatch")).unwrap()
}

async fn get(router: &Router, path: &str, auth: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test]
async fn without_a_token_every_page_is_off() {
    let router = admin(None, None, Some(unreachable_clickhouse()));
    for path in ["/admin/spool", "/debug", "/debug/click/x"] {
        let (status, _, body) = get(&router, path, Some(&bearer())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            body, "admin endpoints are off: set [ingest] admin_token\n",
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_spool_page_takes_the_token_as_bearer_or_header_only() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(
        &SpoolConfig {
            dir: dir.path().display().to_string(),
            max_bytes: 1 << 20,
            segment_bytes: 1 << 16,
            fsync: SpoolFsync::Always,
        },
        SpoolMetrics::new(&Registry::new()).unwrap(),
    )
    .unwrap();
    let router = admin(Some(TOKEN), Some(Arc::new(spool)), None);
    for auth in [
        None,
        Some("Bearer nope"),
        Some(basic("admin", TOKEN).as_str()),
    ] {
        let (status, headers, body) = get(&router, "/admin/spool", auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body, "admin token required\n");
    }
    let (status, headers, body) = get(&router, "/admin/spool", Some(&bearer())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["depth_records"], 0);
    assert_eq!(status["max_bytes"], 1 << 20);
    let response = router
        .clone()
        .oneshot(
            Request::get("/admin/spool")
                .header(guard::ADMIN_TOKEN_HEADER, TOKEN)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let no_spool = admin(Some(TOKEN), None, None);
    let (status, _, body) = get(&no_spool, "/admin/spool", Some(&bearer())).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "no spool configured\n")
    );
}

#[tokio::test]
async fn debugger_pages_ask_browsers_for_the_token() {
    let router = admin(Some(TOKEN), None, Some(unreachable_clickhouse()));
    for auth in [
        None,
        Some("Bearer nope".to_string()),
        Some(basic("admin", "nope")),
    ] {
        let (status, headers, _) = get(&router, "/debug", auth.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            "Basic realm=\"clickmatch debugger\", charset=\"UTF-8\""
        );
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
    // A search jumps to the click's story, its ID encoded.
    let (status, headers, _) = get(
        &router,
        "/debug?click_id=%20a%2Fb%20",
        Some(&basic("x", TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/debug/click/a%2Fb");
    let long = "x".repeat(129);
    let (status, _, body) = get(&router, &format!("/debug/click/{long}"), Some(&bearer())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("A click ID has 1 to 128 characters."),
        "{body}"
    );
}

#[tokio::test]
async fn debugger_pages_say_when_clickhouse_is_missing_or_unreadable() {
    let page_headers = |headers: &HeaderMap| {
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    };
    let without = admin(Some(TOKEN), None, None);
    for path in ["/debug", "/debug/click/01aaaaaaaaaaaaaaaaaaaaaaaa"] {
        let (status, headers, body) = get(&without, path, Some(&bearer())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        page_headers(&headers);
        assert!(body.contains("has not been given"), "{body}");
    }
    let unreadable = admin(Some(TOKEN), None, Some(unreachable_clickhouse()));
    for path in ["/debug", "/debug/click/01aaaaaaaaaaaaaaaaaaaaaaaa"] {
        let (status, headers, body) = get(&unreadable, path, Some(&basic("", TOKEN))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        page_headers(&headers);
        assert!(body.contains("ClickHouse could not be read"), "{body}");
        assert!(!body.contains("<script"), "{body}");
    }
}

const REPORT_TOKEN: &str = "report-token-0123456789abcdef";

/// The admin router with a report token as well; ClickHouse is not there.
fn with_report_token() -> Router {
    let account = clickmatch_config::Config::demo(&Default::default())
        .unwrap()
        .account;
    router(Arc::new(Admin {
        account: Arc::new(ArcSwap::from_pointee(account)),
        guard: AdminGuard::new(Some(Secret::new(TOKEN)), &Registry::new())
            .unwrap()
            .with_report_token(Some(Secret::new(REPORT_TOKEN))),
        spool: None,
        debug: Some(unreachable_clickhouse()),
        reports: Some(ClickHouseSettings::new("http://127.0.0.1:9", "clickmatch")),
        uploads: None,
    }))
}

#[tokio::test]
async fn the_report_token_opens_the_reports_and_nothing_else() {
    let router = with_report_token();
    let report = format!("Bearer {REPORT_TOKEN}");
    // Valid parameters reach ClickHouse, which is not there: 503, with either token.
    for auth in [bearer(), report.clone()] {
        let (status, _, body) = get(&router, "/api/report?group_by=country", Some(&auth)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("ClickHouse could not be read"), "{body}");
    }
    let (status, headers, body) =
        get(&router, "/report", Some(&basic("anyone", REPORT_TOKEN))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    for path in ["/debug", "/debug/click/x", "/admin/spool"] {
        let (status, _, _) = get(&router, path, Some(&report)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Nor does it upload conversions: refused before the handler looks for uploads.
    let request = Request::post("/api/conversions?apply=1")
        .header(header::AUTHORIZATION, &report)
        .body(Body::from("[]"))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for auth in [None, Some("Bearer wrong-token-0123456789".to_string())] {
        let (status, _, _) = get(&router, "/api/report", auth.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, headers, _) = get(&router, "/report", auth.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic realm=\"clickmatch reports\""));
    }
}

#[tokio::test]
async fn bad_report_parameters_get_a_400_naming_the_parameter() {
    let router = with_report_token();
    let auth = Some(format!("Bearer {REPORT_TOKEN}"));
    let cases = [
        ("group_by=planet", "group_by"),
        ("group_by=country%3BDROP%20TABLE%20x", "group_by"),
        ("group_by=%27%20OR%201%3D1%20--", "group_by"),
        ("group_by=%D1%81%D1%82%D1%80%D0%B0%D0%BD%D0%B0", "group_by"),
        ("tz=Mars%2FOlympus", "tz"),
        ("tz=%27%3B%20DROP%20TABLE%20clicks%3B%20--", "tz"),
        ("from=2026-02-30", "from"),
        ("from=2026-01-01&to=2026-12-01", "to"),
        ("sort=-revenue%3B%20DROP%20TABLE%20x", "sort"),
        ("limit=99999999", "limit"),
        ("contry=DE", "contry"),
        ("hour=10", "hour"),
    ];
    for (query, parameter) in cases {
        let (status, headers, body) =
            get(&router, &format!("/api/report?{query}"), auth.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["parameter"], parameter, "{query}: {body}");
        assert!(
            json["error"].as_str().unwrap().contains(parameter),
            "{query}: {body}"
        );
        // The page says the same, escaped, with the form to fix it.
        let (status, _, html) = get(&router, &format!("/report?{query}"), auth.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            html.contains(&format!(
                "<p class=\"bad\" id=\"error\">parameter `{parameter}`"
            )),
            "{html}"
        );
    }
    let long = "x".repeat(5_000);
    let (status, _, body) = get(
        &router,
        &format!("/api/report?group_by={long}"),
        auth.as_deref(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.len() < 2_000,
        "the answer does not echo the whole value"
    );
    // A hostile filter value is a literal: the request is valid and goes to ClickHouse.
    let (status, _, _) = get(
        &router,
        "/api/report?sub1=%27%20OR%201%3D1%20--&country=%27%29%3BDROP%20TABLE%20clicks",
        auth.as_deref(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
