//! Configuration hot reload: a changed file takes effect in ingest and the joiner without a
//! restart and without a dropped request; an invalid file is refused and the running
//! configuration stays.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clickmatch_cli::demo;
use clickmatch_cli::pipeline::{Pipeline, Roles};
use clickmatch_cli::reload::Reloader;
use clickmatch_config::{Config, DEMO_CONFIG};
use clickmatch_e2e::{clickmatch_bin, free_port, TestPipeline};
use clickmatch_testbed::LocalBroker;
use reqwest::StatusCode;

const FRESH: &str = r#"
[[campaigns]]
id = "fresh"
offer = "1"
source = "new-source"
url = "https://fresh.example/go?sub={click_id}"

[routes.fresh]
offer = "1"
default_event = "signup"
"#;

/// A campaign whose offer does not exist: refused at validation.
const BROKEN: &str = r#"
[[campaigns]]
id = "broken"
offer = "404"
url = "https://broken.example/?s={click_id}"
"#;

async fn status_of(client: &reqwest::Client, url: &str) -> StatusCode {
    client.get(url).send().await.unwrap().status()
}

async fn wait_status(client: &reqwest::Client, url: &str, expected: StatusCode) -> StatusCode {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = status_of(client, url).await;
        if status == expected || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_ingest_and_joiner_and_an_invalid_file_is_refused() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clickmatch.toml");
    std::fs::write(&path, DEMO_CONFIG).unwrap();
    let mut reloader = Reloader::new(Some(&path), t.pipeline().account.clone(), t.config.clone());
    let client = demo::http_client();
    assert_eq!(
        status_of(&client, &format!("{}/c/fresh", t.base)).await,
        StatusCode::NOT_FOUND
    );

    std::fs::write(&path, format!("{DEMO_CONFIG}\n{FRESH}")).unwrap();
    let reloaded = reloader.reload().unwrap();
    assert_eq!(reloaded.campaigns, 3);
    assert_eq!(reloaded.routes, 3);

    // Ingest: the new campaign redirects; the joiner: the new route attributes.
    let response = client
        .get(format!("{}/c/fresh", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://fresh.example/go?sub="),
        "{location}"
    );
    let click_id = demo::click_id_in(&location).unwrap();
    let status = demo::postback_get(
        &client,
        &t.base,
        "/postback/fresh",
        &[("cid", click_id.as_str()), ("payout", "1.5")],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        t.wait_count(
            "SELECT count() FROM conversions FINAL WHERE route = 'fresh' AND event = 'signup' \
             AND campaign_id = 'fresh'",
            1
        )
        .await
        .unwrap(),
        1
    );

    std::fs::write(&path, format!("{DEMO_CONFIG}\n{FRESH}\n{BROKEN}")).unwrap();
    let error = reloader.reload().unwrap_err().to_string();
    assert!(error.contains("campaigns[3].offer"), "{error}");
    assert!(error.contains("clickmatch.toml"), "{error}");
    assert_eq!(
        status_of(&client, &format!("{}/c/fresh", t.base)).await,
        StatusCode::FOUND,
        "the running configuration stays"
    );
    assert_eq!(
        status_of(&client, &format!("{}/c/broken", t.base)).await,
        StatusCode::NOT_FOUND
    );
    t.cleanup().await.unwrap();
}

/// A partner's route, before and after it was told to accept the partner's own click IDs.
const PARTNER: &str = r#"
[routes.partner]
offer = "1"
"#;
const PARTNER_FOREIGN: &str = r#"
[routes.partner]
offer = "1"
accept_foreign_ids = true
"#;

/// Ingest still runs the configuration before a reload that turned on `accept_foreign_ids`, the
/// joiner the one after: ingest keys the partner's postbacks by postback ID, the joiner reads
/// them as foreign click IDs whose clicks live on other partitions. Every postback still ends in
/// exactly one row: attributed when its key happened to land with its click, else at once
/// `unknown_click_id` with the hint `keyed_elsewhere` (not after a generic wait). Once ingest
/// has the new configuration too, the same postbacks attribute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postback_keyed_under_the_configuration_before_a_reload_ends_in_one_row() {
    const N: usize = 8;
    let t = TestPipeline::start_custom(PARTNER, &[], 4, Roles::INGEST)
        .await
        .unwrap();
    let after = |extra: &str| {
        Config::from_toml(
            &format!("{DEMO_CONFIG}\n{extra}"),
            clickmatch_config::BUILTIN_SOURCE,
            &Default::default(),
        )
        .unwrap()
        .account
    };
    let mut joiner_config = t.config.clone();
    joiner_config.account = after(PARTNER_FOREIGN);
    joiner_config.account.grace_ms = t.config.account.grace_ms;
    let joiner = Pipeline::start(&joiner_config, Roles::JOIN, "")
        .await
        .unwrap();
    joiner
        .wait_joiner_assigned(Duration::from_secs(30))
        .await
        .unwrap();

    let client = demo::http_client();
    for n in 0..N {
        let response = client
            .post(format!("{}/clicks", t.base))
            .json(&serde_json::json!({ "campaign": "demo", "click_id": format!("partner-{n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // The clicks are in the joiner's state before any postback comes.
    t.wait_count("SELECT count() FROM clicks", N as u64)
        .await
        .unwrap();
    let postback = |n: usize| {
        let client = client.clone();
        let base = t.base.clone();
        async move {
            let cid = format!("partner-{n}");
            demo::postback_get(
                &client,
                &base,
                "/postback/partner",
                &[("cid", cid.as_str())],
            )
            .await
            .unwrap()
        }
    };
    for n in 0..N {
        assert_eq!(postback(n).await, StatusCode::OK);
    }
    // Scalar subqueries are Nullable on current ClickHouse: a u64 needs assumeNotNull.
    let rows =
        "SELECT assumeNotNull((SELECT count() FROM conversions FINAL WHERE route = 'partner') + \
                (SELECT count() FROM unattributed WHERE route = 'partner'))";
    assert_eq!(t.wait_count(rows, N as u64).await.unwrap(), N as u64);
    let unattributed: Vec<(String, String, String)> = t
        .client()
        .query("SELECT raw_click_id, reason, hint FROM unattributed WHERE route = 'partner'")
        .fetch_all()
        .await
        .unwrap();
    // Four partitions: all eight keys landing with their clicks has odds of 4^-8.
    assert!(!unattributed.is_empty());
    for (cid, reason, hint) in &unattributed {
        assert_eq!(
            (reason.as_str(), hint.as_str()),
            ("unknown_click_id", "keyed_elsewhere"),
            "{cid}"
        );
    }

    // Ingest reloads too: the flagged postbacks, sent again, are keyed by their clicks.
    t.pipeline().account.store(Arc::new(after(PARTNER_FOREIGN)));
    for (cid, _, _) in &unattributed {
        let n: usize = cid.trim_start_matches("partner-").parse().unwrap();
        assert_eq!(postback(n).await, StatusCode::OK);
    }
    assert_eq!(
        t.wait_count(
            "SELECT count() FROM conversions FINAL WHERE route = 'partner'",
            N as u64
        )
        .await
        .unwrap(),
        N as u64
    );
    joiner.stop().await.unwrap();
    t.cleanup().await.unwrap();
}

fn stderr_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_running_ingest_process_without_dropping_requests() {
    let broker = LocalBroker::start(&["clickmatch.clicks", "clickmatch.postbacks"], 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clickmatch.toml");
    std::fs::write(&path, DEMO_CONFIG).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("ingest.log");
    let mut child = tokio::process::Command::new(clickmatch_bin())
        .args(["ingest", "--config"])
        .arg(&path)
        .env(
            "CLICKMATCH_KAFKA_BOOTSTRAP_SERVERS",
            broker.bootstrap_servers(),
        )
        .env("CLICKMATCH_INGEST_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "CLICKMATCH_INGEST_SPOOL_DIR",
            dir.path().join("spool").display().to_string(),
        )
        .env("CLICKMATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap() as libc::pid_t;
    let client = demo::http_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await {
            if response.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "ingest did not start:\n{}",
            stderr_of(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Steady traffic through every reload: each request must get its normal answer.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, sent, failed, base) = (stop.clone(), sent.clone(), failed.clone(), base.clone());
        tokio::spawn(async move {
            let client = demo::http_client();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let click = client.get(format!("{base}/c/demo?sub1=load")).send().await;
                let postback = client
                    .get(format!(
                        "{base}/postback?cid=01aaaaaaaaaaaaaaaaaaaaaaaa&payout=1"
                    ))
                    .send()
                    .await;
                sent.fetch_add(2, Ordering::Relaxed);
                for (result, expected) in [(click, StatusCode::FOUND), (postback, StatusCode::OK)] {
                    match result {
                        Ok(r) if r.status() == expected => {}
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.push(format!("{other:?}"));
                        }
                    }
                }
            }
            failures
        })
    };

    let lead = |token: &str| {
        format!("{base}/postback/lead?token={token}&s2=01aaaaaaaaaaaaaaaaaaaaaaaa&price=1")
    };
    assert_eq!(
        status_of(&client, &format!("{base}/c/fresh")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status_of(&client, &lead("demo-lead-token")).await,
        StatusCode::OK
    );

    // A new campaign and a rotated route token, then SIGHUP.
    let changed = format!("{DEMO_CONFIG}\n{FRESH}").replace(
        "token = \"demo-lead-token\"",
        "token = \"rotated-lead-token\"",
    );
    assert_ne!(changed, format!("{DEMO_CONFIG}\n{FRESH}"));
    std::fs::write(&path, &changed).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    assert_eq!(
        wait_status(&client, &format!("{base}/c/fresh"), StatusCode::FOUND).await,
        StatusCode::FOUND,
        "{}",
        stderr_of(&log)
    );
    assert_eq!(
        status_of(&client, &lead("demo-lead-token")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_of(&client, &lead("rotated-lead-token")).await,
        StatusCode::OK
    );
    assert!(stderr_of(&log).contains("configuration reloaded"));

    // An invalid file: refused, logged with file and key, the running configuration stays.
    std::fs::write(&path, format!("{changed}\n{BROKEN}")).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !stderr_of(&log).contains("configuration reload refused") {
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            stderr_of(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logged = stderr_of(&log);
    assert!(logged.contains("campaigns[3].offer"), "{logged}");
    assert!(logged.contains("clickmatch.toml"), "{logged}");
    assert_eq!(
        status_of(&client, &format!("{base}/c/fresh")).await,
        StatusCode::FOUND
    );
    assert_eq!(
        status_of(&client, &lead("rotated-lead-token")).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&client, &format!("{base}/c/broken")).await,
        StatusCode::NOT_FOUND
    );

    // Fixing the file is picked up by the watch alone, without a signal.
    std::fs::write(&path, format!("{DEMO_CONFIG}\n{FRESH}")).unwrap();
    assert_eq!(
        wait_status(&client, &lead("demo-lead-token"), StatusCode::OK).await,
        StatusCode::OK,
        "{}",
        stderr_of(&log)
    );

    stop.store(true, Ordering::Relaxed);
    let failures = load.await.unwrap();
    assert!(
        sent.load(Ordering::Relaxed) >= 20,
        "too little traffic during the reloads"
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "{failures:#?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the process"
    );
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("ingest stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}\n{}", stderr_of(&log));
}
