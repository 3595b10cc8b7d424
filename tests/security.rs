//! Hostile input at the HTTP edge: size limits (414, 431, 413, 400), slow clients, rate limits
//! (429), client IPs from `X-Forwarded-For` only through trusted proxies, admin endpoints behind
//! a token, and secrets (account secret, route token, admin token, ClickHouse password) never in
//! logs at debug level, metrics or error bodies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clickmatch_cli::demo;
use clickmatch_cli::pipeline::Roles;
use clickmatch_e2e::{clickhouse_server, clickmatch_bin, free_port, TestPipeline};
use reqwest::StatusCode;

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Sends raw bytes, then reads what comes back until the server closes or `timeout` passes.
/// Returns the answer and how long the server took to close (if it did).
fn raw_exchange(base: &str, chunks: &[&[u8]], timeout: Duration) -> (String, Option<Duration>) {
    let mut stream = TcpStream::connect(addr(base)).unwrap();
    let started = Instant::now();
    for chunk in chunks {
        stream.write_all(chunk).unwrap();
    }
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break Some(started.elapsed()),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                break Some(started.elapsed())
            }
            Err(_) => break None,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_slow_requests_are_refused() {
    let t = TestPipeline::start_with(
        &[
            ("CLICKMATCH_INGEST_MAX_URI_BYTES", "1024"),
            ("CLICKMATCH_INGEST_MAX_HEADER_BYTES", "2048"),
            ("CLICKMATCH_INGEST_MAX_BODY_BYTES", "2048"),
            ("CLICKMATCH_INGEST_MAX_PARAMS", "20"),
            ("CLICKMATCH_INGEST_HEADER_READ_TIMEOUT_MS", "1000"),
            ("CLICKMATCH_INGEST_REQUEST_TIMEOUT_MS", "2000"),
        ],
        4,
        Roles::INGEST,
    )
    .await
    .unwrap();
    let http = demo::http_client();
    let base = t.base.clone();

    // Request target: a long query is 414, on every endpoint.
    let long = "x".repeat(1100);
    let status = http
        .get(format!("{base}/c/demo?sub1={long}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    let status = http
        .get(format!("{base}/postback?cid={long}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    // Headers over the limit: 431 from the router; far over it, 431 from hyper itself.
    let status = http
        .get(format!("{base}/c/demo"))
        .header("x-filler", "y".repeat(3000))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let (answer, _) = raw_exchange(
        &base,
        &[format!(
            "GET /c/demo HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
            "z".repeat(64 * 1024)
        )
        .as_bytes()],
        Duration::from_secs(5),
    );
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "a 64 KiB header: {answer:?}"
    );
    // Body over the limit: 413.
    let status = http
        .post(format!("{base}/postback"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("cid=abc&pad={}", "p".repeat(4000)))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Too many parameters: 400, nothing recorded.
    let query: Vec<String> = (0..25).map(|i| format!("p{i}=1")).collect();
    let response = http
        .get(format!("{base}/postback?{}", query.join("&")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("too many parameters"));
    // Within the limits: fine.
    let status = http
        .get(format!("{base}/c/demo?sub1=ok"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::FOUND);

    // A client that trickles its request head is disconnected after the header read timeout.
    let (answer, closed) = raw_exchange(
        &base,
        &[b"GET /c/demo HTTP/1.1\r\nHost: x\r\n"],
        Duration::from_secs(10),
    );
    let closed = closed.expect("the server closes a slow client's connection");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(5),
        "closed after {closed:?}: {answer:?}"
    );
    // An idle connection without a single byte is closed too.
    let (_, closed) = raw_exchange(&base, &[], Duration::from_secs(10));
    assert!(closed.is_some_and(|c| c < Duration::from_secs(5)));
    // A body that never completes: 408 after the request timeout.
    let (answer, _) = raw_exchange(
        &base,
        &[b"POST /postback HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncid=abc"],
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "slow body: {answer:?}");

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("clickmatch_ingest_requests_refused_total{reason=\"uri_too_long\"} 2"));
    t.cleanup().await.unwrap();
}

/// A route that only its network's IPs may post to.
const ALLOWLISTED_ROUTE: &str = r#"
[routes.allowlisted]
offer = "1"
allow_ips = ["203.0.113.0/24"]
"#;

async fn status_with_xff(http: &reqwest::Client, url: &str, xff: Option<&str>) -> StatusCode {
    let mut request = http.get(url);
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_counts_only_through_trusted_proxies() {
    let http = demo::http_client();
    // No trusted proxies: the header is the client's claim, and ignored.
    let t = TestPipeline::start_custom(ALLOWLISTED_ROUTE, &[], 4, Roles::INGEST)
        .await
        .unwrap();
    let url = format!("{}/postback/allowlisted?cid=x", t.base);
    assert_eq!(
        status_with_xff(&http, &url, Some("203.0.113.5")).await,
        StatusCode::FORBIDDEN
    );
    t.cleanup().await.unwrap();

    // Loopback is the trusted proxy: the right-most untrusted hop is the client.
    let t = TestPipeline::start_custom(
        ALLOWLISTED_ROUTE,
        &[(
            "CLICKMATCH_INGEST_TRUSTED_PROXIES",
            "127.0.0.1/32, 10.0.0.0/8",
        )],
        4,
        Roles::INGEST,
    )
    .await
    .unwrap();
    let url = format!("{}/postback/allowlisted?cid=x", t.base);
    assert_eq!(
        status_with_xff(&http, &url, Some("203.0.113.5")).await,
        StatusCode::OK
    );
    assert_eq!(
        status_with_xff(&http, &url, Some("198.51.100.1, 203.0.113.5, 10.1.2.3")).await,
        StatusCode::OK,
        "through two trusted proxies"
    );
    // A client behind the proxy claiming an allowed address left of its own.
    assert_eq!(
        status_with_xff(&http, &url, Some("203.0.113.5, 198.51.100.7")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_with_xff(&http, &url, None).await,
        StatusCode::FORBIDDEN
    );
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_per_ip_and_per_route() {
    let t = TestPipeline::start_with(
        &[
            ("CLICKMATCH_INGEST_TRUSTED_PROXIES", "127.0.0.1"),
            ("CLICKMATCH_INGEST_RATE_LIMIT_PER_IP", "5"),
            ("CLICKMATCH_INGEST_RATE_LIMIT_PER_IP_BURST", "5"),
            ("CLICKMATCH_INGEST_RATE_LIMIT_PER_ROUTE", "20"),
            ("CLICKMATCH_INGEST_RATE_LIMIT_PER_ROUTE_BURST", "20"),
        ],
        4,
        Roles::INGEST,
    )
    .await
    .unwrap();
    let http = demo::http_client();
    let base = t.base.clone();
    let click = format!("{base}/c/demo");

    // One client: 5 at once, then 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(status_with_xff(&http, &click, Some("198.51.100.1")).await);
    }
    let found = statuses.iter().filter(|s| **s == StatusCode::FOUND).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!((5..=6).contains(&found), "{statuses:?}");
    assert_eq!(found + limited, 12);
    let response = http
        .get(&click)
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    // Another client is not affected, nor are metrics and health.
    assert_eq!(
        status_with_xff(&http, &click, Some("198.51.100.2")).await,
        StatusCode::FOUND
    );
    for _ in 0..20 {
        assert_eq!(
            status_with_xff(&http, &format!("{base}/metrics"), Some("198.51.100.1")).await,
            StatusCode::OK
        );
    }

    // One route: 20 at once from many clients, then 429; the other route keeps its own bucket.
    let mut lead = Vec::new();
    for i in 0..30 {
        let ip = format!("192.0.2.{}", i + 1);
        lead.push(
            status_with_xff(
                &http,
                &format!("{base}/postback/lead?token=demo-lead-token&s2=x"),
                Some(&ip),
            )
            .await,
        );
    }
    let ok = lead.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = lead
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!((20..=22).contains(&ok), "{lead:?}");
    assert_eq!(ok + limited, 30);
    assert_eq!(
        status_with_xff(
            &http,
            &format!("{base}/postback?cid=x"),
            Some("192.0.2.200")
        )
        .await,
        StatusCode::OK
    );
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_require_the_token() {
    // (Without a configured token the admin endpoints answer 404: see clickmatch-admin's unit
    // tests.)
    let http = demo::http_client();
    let token = "admin-token-0123456789abcdef";
    let t = TestPipeline::start_with(
        &[("CLICKMATCH_INGEST_ADMIN_TOKEN", token)],
        4,
        Roles::INGEST,
    )
    .await
    .unwrap();
    let url = format!("{}/admin/spool", t.base);
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    for wrong in ["admin-token-0123456789abcdeX", "", "admin-token"] {
        let status = http
            .get(&url)
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{wrong:?}");
    }
    // Never from the query string.
    let status = http
        .get(format!("{url}?token={token}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["depth_records"], 0);
    let status = http
        .get(&url)
        .header("x-clickmatch-admin-token", token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    t.cleanup().await.unwrap();
}

fn demo_config_text() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml"))
        .unwrap()
}

/// Secrets configured, services as processes logging at debug level, hostile and normal
/// requests, a ClickHouse that refuses the password: no secret in any log line, metric, header
/// or body.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_reach_logs_metrics_or_answers() {
    const ACCOUNT_SECRET: &str = "acct-secret-Q7v1N9zT4pLm";
    const ROUTE_TOKEN: &str = "route-token-Hx82KdPq0s";
    const ADMIN_TOKEN: &str = "admin-token-Zr5Wc3Ja8uYb";
    const CLICKHOUSE_PASSWORD: &str = "ch-password-Fm4Tg6Vn1e";
    let secrets = [
        ACCOUNT_SECRET,
        ROUTE_TOKEN,
        ADMIN_TOKEN,
        CLICKHOUSE_PASSWORD,
    ];

    let (clickhouse_url, _clickhouse) = tokio::task::spawn_blocking(clickhouse_server)
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let config_text = demo_config_text()
        .replace("demo-secret-change-me", ACCOUNT_SECRET)
        .replace("demo-lead-token", ROUTE_TOKEN)
        .replace(
            "[clickhouse]\n",
            &format!("[clickhouse]\npassword = \"{CLICKHOUSE_PASSWORD}\"\n"),
        )
        .replace("demo-admin-token-change-me", ADMIN_TOKEN);
    assert!(config_text.contains(CLICKHOUSE_PASSWORD) && config_text.contains(ADMIN_TOKEN));
    let config_path = work.path().join("clickmatch.toml");
    std::fs::write(&config_path, &config_text).unwrap();
    let broker_port = free_port();
    let bootstrap = format!("127.0.0.1:{broker_port}");
    let http_port = free_port();
    let listen = format!("127.0.0.1:{http_port}");
    let env = [
        ("CLICKMATCH_CONFIG", config_path.display().to_string()),
        ("CLICKMATCH_KAFKA_BOOTSTRAP_SERVERS", bootstrap.clone()),
        ("CLICKMATCH_CLICKHOUSE_URL", clickhouse_url.clone()),
        ("CLICKMATCH_CLICKHOUSE_DATABASE", "cm_secrets".to_string()),
        (
            "CLICKMATCH_JOINER_STATE_DIR",
            work.path().join("state").display().to_string(),
        ),
        (
            "CLICKMATCH_INGEST_SPOOL_DIR",
            work.path().join("spool").display().to_string(),
        ),
        ("CLICKMATCH_JOINER_RETRY_MAX_MS", "500".to_string()),
        ("CLICKMATCH_LOG", "debug".to_string()),
    ];
    let spawn = |args: &[&str], log: &str| {
        Command::new(clickmatch_bin())
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::fs::File::create(work.path().join(format!("{log}.out"))).unwrap())
            .stderr(std::fs::File::create(work.path().join(format!("{log}.err"))).unwrap())
            .spawn()
            .unwrap()
    };
    let mut broker = spawn(
        &["broker", "--listen", &bootstrap, "--partitions", "2"],
        "broker",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&bootstrap).is_err() {
        assert!(Instant::now() < deadline, "broker");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ClickHouse refuses the password: migrate fails and says why, without the password.
    let mut migrate = spawn(&["migrate"], "migrate");
    let migrated = migrate.wait().unwrap();
    assert!(!migrated.success(), "ClickHouse should refuse the password");
    let mut joiner = spawn(&["join"], "joiner");
    let mut ingest = spawn(&["ingest", "--listen", &listen], "ingest");
    let base = format!("http://{listen}");
    let http = demo::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        assert!(Instant::now() < deadline, "ingest ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut answers = Vec::new();
    let record = |response: reqwest::Response| async move {
        let status = response.status();
        let headers = format!("{:?}", response.headers());
        let body = response.text().await.unwrap_or_default();
        format!("{status} {headers} {body}")
    };
    let click = demo::click(&http, &base, "demo-lead", "s").await.unwrap();
    let requests = vec![
        // The right token, a wrong one, the token under another name, the token as click ID.
        http.get(format!(
            "{base}/postback/lead?token={ROUTE_TOKEN}&s2={click}&price=1"
        )),
        http.get(format!(
            "{base}/postback/lead?token=wrong-token-123&s2={click}"
        )),
        http.get(format!(
            "{base}/postback/lead?TOKEN={ROUTE_TOKEN}&s2={click}"
        )),
        http.get(format!(
            "{base}/postback?cid={ROUTE_TOKEN}&secret={ACCOUNT_SECRET}"
        )),
        http.post(format!("{base}/postback/lead"))
            .header("content-type", "application/json")
            .body(format!(
                "{{\"token\":\"{ROUTE_TOKEN}\",\"s2\":\"{click}\"}}"
            )),
        // Refused requests echo nothing back.
        http.get(format!(
            "{base}/postback/lead?token={ROUTE_TOKEN}&{}",
            (0..300)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join("&")
        )),
        http.get(format!(
            "{base}/postback/lead?token={ROUTE_TOKEN}&pad={}",
            "x".repeat(9000)
        )),
        http.post(format!("{base}/postback/lead?token={ROUTE_TOKEN}"))
            .body("y".repeat(100_000)),
        http.post(format!("{base}/clicks"))
            .header("content-type", "application/json")
            .body(format!(
                "{{\"campaign\":\"demo\",\"bad\":\"{ROUTE_TOKEN}\"}}"
            )),
        http.get(format!("{base}/c/nope?sub1={ACCOUNT_SECRET}")),
        // Admin with a wrong and the right token.
        http.get(format!("{base}/admin/spool"))
            .bearer_auth(format!("{ADMIN_TOKEN}x")),
        http.get(format!("{base}/admin/spool"))
            .bearer_auth(ADMIN_TOKEN),
        http.get(format!("{base}/debug")).bearer_auth(ADMIN_TOKEN),
        http.get(format!("{base}/metrics")),
    ];
    for request in requests {
        answers.push(match request.send().await {
            Ok(response) => record(response).await,
            Err(e) => format!("error {e}"),
        });
    }
    assert!(answers[0].starts_with("200"), "{}", answers[0]);
    assert!(answers[1].starts_with("403"), "{}", answers[1]);
    // Let the joiner fail against ClickHouse a few times (it logs every retry).
    tokio::time::sleep(Duration::from_secs(4)).await;
    answers.push(record(http.get(format!("{base}/metrics")).send().await.unwrap()).await);

    for child in [&mut ingest, &mut joiner, &mut broker] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut logs = String::new();
    for name in ["broker", "migrate", "joiner", "ingest"] {
        for ext in ["out", "err"] {
            logs.push_str(
                &std::fs::read_to_string(work.path().join(format!("{name}.{ext}")))
                    .unwrap_or_default(),
            );
        }
    }
    let joiner_log = std::fs::read_to_string(work.path().join("joiner.err")).unwrap_or_default();
    let ingest_log = std::fs::read_to_string(work.path().join("ingest.err")).unwrap_or_default();
    assert!(ingest_log.contains("DEBUG"), "ingest logged at debug level");
    assert!(
        joiner_log.to_lowercase().contains("password")
            || joiner_log.contains("193")
            || joiner_log.contains("ClickHouse"),
        "the joiner logged its ClickHouse failures"
    );
    eprintln!(
        "secrets check: {} log bytes (ingest {}, joiner {}), {} answers, {} bytes of metrics",
        logs.len(),
        ingest_log.len(),
        joiner_log.len(),
        answers.len(),
        answers.last().map_or(0, String::len)
    );
    for secret in secrets {
        for (i, answer) in answers.iter().enumerate() {
            assert!(
                !answer.contains(secret),
                "secret {secret:?} in answer {i}: {answer}"
            );
        }
        let line = logs.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "secret {secret:?} in a log line: {line:?}");
    }
}
