//! `clickmatch dev` as a user runs it: the binary with its embedded broker, serving on a fixed
//! address; clicks and postbacks sent from outside land in ClickHouse within 5 seconds.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clickmatch_cli::demo;
use clickmatch_clickhouse::ClickHouseSettings;
use clickmatch_e2e::{clickhouse_server, clickmatch_bin, free_port};
use reqwest::StatusCode;

struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        // SIGTERM first: dev stops its services and removes its joiner state.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_serve_takes_traffic_from_outside_and_rows_land_within_five_seconds() {
    let (clickhouse_url, _clickhouse) = tokio::task::spawn_blocking(clickhouse_server)
        .await
        .unwrap();
    let database = format!("cm_dev_{:016x}", rand::random::<u64>());
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(data_dir.path().join("dev.log")).unwrap();
    let _dev = Stopped(
        Command::new(clickmatch_bin())
            .args([
                "dev",
                "--serve",
                "--no-demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--clickhouse-url", &clickhouse_url])
            .arg("--data-dir")
            .arg(data_dir.path())
            .env("CLICKMATCH_CLICKHOUSE_DATABASE", &database)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let client = demo::http_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let serving = client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let printed = std::fs::read_to_string(data_dir.path().join("dev.log")).unwrap_or_default();
        if serving && printed.contains("serving:") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dev did not start serving:\n{printed}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let click_id = demo::click(&client, &base, "demo", "outside")
        .await
        .unwrap();
    let sent = Instant::now();
    let ok = demo::postback_get(
        &client,
        &base,
        "/postback",
        &[("cid", &click_id), ("payout", "3")],
    )
    .await
    .unwrap();
    let macro_sent = demo::postback_get(&client, &base, "/postback", &[("cid", "{click_id}")])
        .await
        .unwrap();
    assert_eq!((ok, macro_sent), (StatusCode::OK, StatusCode::OK));

    let settings = ClickHouseSettings::new(clickhouse_url, database.clone());
    let db = settings.client();
    loop {
        let conversions: u64 = db
            .query("SELECT count() FROM conversions FINAL WHERE click_id = ?")
            .bind(&click_id)
            .fetch_one()
            .await
            .unwrap_or(0);
        let reasons: Vec<String> = db
            .query("SELECT reason FROM unattributed FINAL")
            .fetch_all()
            .await
            .unwrap_or_default();
        if conversions == 1 && reasons == ["unsubstituted_macro"] {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "rows not in ClickHouse within 5 s: {conversions} conversions, reasons {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .unwrap();
}
