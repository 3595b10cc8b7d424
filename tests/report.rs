//! Reports end to end, in their three forms over the same rows: `GET /api/report` (read-only
//! report token; a refused parameter named in a 400), `clickmatch report --format json` (the same
//! JSON), and the `/report` page in headless Chromium at phone width (390×844): a screenshot that
//! is a real PNG, and the rendered DOM holding the rows in the order asked, the totals and no
//! script. The figures themselves are checked against the base tables in
//! `crates/clickmatch-testbed/tests/clickhouse_report.rs`.
//! `CLICKMATCH_TEST_SCREENSHOT_DIR=DIR` keeps the screenshot.

use std::path::Path;
use std::str::FromStr;

use clickmatch_cli::pipeline::Roles;
use clickmatch_clickhouse::ClickHouseSink;
use clickmatch_core::records::{ClickRecord, Conversion, Enrichment, Outcome, RECORD_VERSION};
use clickmatch_core::subs::{CarriedSubs, SubSet};
use clickmatch_e2e::browser::{basic, chromium, png_size, run_chromium};
use clickmatch_e2e::process::demo_config_path;
use clickmatch_e2e::{clickmatch_bin, TestPipeline};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;

/// The demo configuration's report token.
const REPORT_TOKEN: &str = "demo-report-token-change-me";
/// 2026-12-01 12:00 UTC.
const NOON_MS: u64 = 1_796_126_400_000;

fn click(n: u64, campaign: &str, country: &str) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: format!("report-click-{n}"),
        time_ms: NOON_MS + n * 60_000,
        campaign_id: campaign.into(),
        offer_id: "1".into(),
        source: "push".into(),
        subs: vec![format!("zone-{}", n % 3)],
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0".into(),
        country: country.into(),
        enrichment: Enrichment {
            device_type: "mobile".into(),
            os: "Android".into(),
            browser: "Chrome".into(),
            ..Enrichment::default()
        },
        is_test: false,
        foreign: false,
        cost: None,
    }
}

fn conversion(click: &ClickRecord, payout: &str) -> Conversion {
    Conversion {
        conversion_id: format!("conv-of-{}", click.click_id),
        click_id: click.click_id.clone(),
        click_time_ms: click.time_ms,
        conversion_time_ms: click.time_ms + 30_000,
        postback_id: format!("pb-of-{}", click.click_id),
        campaign_id: click.campaign_id.clone(),
        offer_id: click.offer_id.clone(),
        source: click.source.clone(),
        country: click.country.clone(),
        device_type: "mobile".into(),
        os: "Android".into(),
        browser: "Chrome".into(),
        subs: CarriedSubs::of(&click.subs, SubSet::parse(["sub1"]).unwrap()),
        route: "global".into(),
        event: "sale".into(),
        status: "approved".into(),
        payout: Decimal::from_str(payout).unwrap(),
        currency: "USD".into(),
        payout_raw: payout.into(),
        payout_issue: String::new(),
        txid: String::new(),
        offer_mismatch: false,
        click_id_repaired: false,
        repair: String::new(),
        is_test: false,
        version: click.time_ms + 30_000,
        origin: Default::default(),
    }
}

const QUERY: &str =
    "group_by=campaign,country&from=2026-12-01&to=2026-12-01&tz=Asia/Kolkata&sort=-revenue";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_as_json_from_the_api_and_the_cli_and_as_a_page_in_chromium() {
    let chromium = chromium(); // fail first and clearly when it is missing
    assert!(chromium.exists());
    let t = TestPipeline::start_with(&[], 1, Roles::INGEST)
        .await
        .unwrap();
    // Three campaigns × two countries; revenue decides the order.
    let clicks: Vec<ClickRecord> = (0..12)
        .map(|n| {
            let campaign = ["alpha", "bravo", "charlie"][(n % 3) as usize];
            click(n, campaign, if n % 2 == 0 { "DE" } else { "IN" })
        })
        .collect();
    let conversions: Vec<Outcome> = clicks
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 4 != 3)
        .map(|(n, c)| Outcome::Attributed(conversion(c, &format!("{}.25", n + 1))))
        .collect();
    let sink = ClickHouseSink::new(&t.settings).unwrap();
    sink.write(&clicks, &conversions).await.unwrap();

    // The API, with the read-only token.
    let http = reqwest::Client::new();
    let api = |query: &str, token: Option<&str>| {
        let mut request = http.get(format!("{}/api/report?{query}", t.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let response = api(QUERY, Some(REPORT_TOKEN)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = response.json().await.unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "{json:#}");
    let revenues: Vec<Decimal> = rows
        .iter()
        .map(|r| Decimal::from_str(r["revenue"].as_str().unwrap()).unwrap())
        .collect();
    assert!(revenues.windows(2).all(|w| w[0] >= w[1]), "{revenues:?}");
    assert_eq!(json["totals"]["clicks"], 12);
    assert_eq!(json["totals"]["conversions"], 9);
    let total: Decimal = revenues.iter().sum();
    assert_eq!(
        json["totals"]["revenue"].as_str().unwrap(),
        total.normalize().to_string()
    );
    assert_eq!(
        (&rows[0]["campaign"], &rows[0]["country"]),
        (&Value::from("bravo"), &Value::from("DE"))
    );
    assert_eq!(json["tz"], "Asia/Kolkata");
    // Refused: named, as JSON; and no token, no report.
    let response = api(
        "group_by=country%27%3B%20DROP%20TABLE%20clicks",
        Some(REPORT_TOKEN),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["parameter"], "group_by", "{error}");
    assert_eq!(
        api(QUERY, None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The report token opens nothing else.
    let debug = http
        .get(format!("{}/debug", t.base))
        .bearer_auth(REPORT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(debug.status(), StatusCode::UNAUTHORIZED);

    // The CLI prints the same JSON.
    let output = tokio::process::Command::new(clickmatch_bin())
        .args([
            "report",
            "--group-by",
            "campaign,country",
            "--from",
            "2026-12-01",
            "--to",
            "2026-12-01",
            "--tz",
            "Asia/Kolkata",
            "--sort=-revenue",
            "--format",
            "json",
        ])
        .env("CLICKMATCH_CONFIG", demo_config_path())
        .env("CLICKMATCH_CLICKHOUSE_URL", &t.settings.url)
        .env("CLICKMATCH_CLICKHOUSE_DATABASE", &t.settings.database)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(cli["rows"], json["rows"]);
    assert_eq!(cli["totals"], json["totals"]);
    let output = tokio::process::Command::new(clickmatch_bin())
        .args(["report", "--tz", "Mars/Olympus"])
        .env("CLICKMATCH_CONFIG", demo_config_path())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tz: "));

    // The page in Chromium, at phone width, sorted by clicks ascending.
    let port = t.base.rsplit(':').next().unwrap();
    let page = format!(
        "http://viewer:{REPORT_TOKEN}@127.0.0.1:{port}/report?{}",
        QUERY.replace("sort=-revenue", "sort=clicks")
    );
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("report.png");
    run_chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=390,844".to_string(),
        ],
        &page,
    )
    .await;
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(png_size(&png), (390, 844));
    assert!(png.len() > 10_000, "a rendered page: {} bytes", png.len());
    if let Ok(keep) = std::env::var("CLICKMATCH_TEST_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&shot, Path::new(&keep).join("report.png")).unwrap();
    }

    let dom = run_chromium(&["--dump-dom".to_string()], &page).await;
    assert!(!dom.contains("<script"), "{dom}");
    let body = dom
        .split("<tbody>")
        .nth(1)
        .and_then(|rest| rest.split("</tbody>").next())
        .unwrap_or_else(|| panic!("no table body:\n{dom}"));
    let rows: Vec<Vec<String>> = body
        .split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = cell.split_once('>').unwrap().1;
                    text.split("</td>").next().unwrap().to_string()
                })
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 6, "{dom}");
    let clicks_column: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(
        clicks_column.windows(2).all(|w| w[0] <= w[1]),
        "{clicks_column:?}"
    );
    assert!(
        dom.contains("<tr id=\"totals\"><td>total</td><td></td><td class=\"n\">12</td><td class=\"n\">9</td>"),
        "{dom}"
    );
    assert!(
        dom.contains("aria-sort=\"ascending\" data-column=\"clicks\""),
        "{dom}"
    );
    // The clicks header now offers the other order; the form keeps the request.
    assert!(dom.contains("sort=-clicks"), "{dom}");
    assert!(dom.contains("value=\"Asia/Kolkata\""), "{dom}");

    // A refused parameter on the page: a 400 naming it, the form kept.
    let bad = http
        .get(format!("{}/report?tz=Mars%2FOlympus", t.base))
        .header("authorization", basic("viewer", REPORT_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("parameter `tz`"));

    drop(sink);
    t.cleanup().await.unwrap();
}

/// `clickmatch carry-subs` as an operator runs it after the upgrade: a dry run that counts, then
/// `--apply`, then nothing left; a bad option is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carry_subs_gives_conversions_written_without_subs_their_clicks() {
    let t = TestPipeline::start_with(&[], 1, Roles::INGEST)
        .await
        .unwrap();
    let clicks: Vec<ClickRecord> = (0..4).map(|n| click(n, "alpha", "DE")).collect();
    // Written by a joiner that carried no sub (as before migration 0011).
    let conversions: Vec<Outcome> = clicks
        .iter()
        .map(|c| {
            Outcome::Attributed(Conversion {
                subs: CarriedSubs::default(),
                ..conversion(c, "1.5")
            })
        })
        .collect();
    let sink = ClickHouseSink::new(&t.settings).unwrap();
    sink.write(&clicks, &conversions).await.unwrap();
    let carry = |args: &'static [&'static str]| {
        tokio::process::Command::new(clickmatch_bin())
            .arg("carry-subs")
            .args(args)
            .env("CLICKMATCH_CONFIG", demo_config_path())
            .env("CLICKMATCH_CLICKHOUSE_URL", &t.settings.url)
            .env("CLICKMATCH_CLICKHOUSE_DATABASE", &t.settings.database)
            .output()
    };
    let text = |output: &std::process::Output| {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let dry = carry(&["--subs", "sub1", "--from", "2026-12-01"])
        .await
        .unwrap();
    assert_eq!(
        text(&dry),
        "4 conversions over 1 day lacked sub1 (dry run: --apply gives them their click's)\n"
    );
    let applied = carry(&["--subs", "sub1", "--apply"]).await.unwrap();
    assert_eq!(
        text(&applied),
        "4 conversions over 1 day lacked sub1; 4 now carry their click's\n"
    );
    let rows: Vec<(String, String, u16)> = t
        .client()
        .query("SELECT click_id, sub1, subs_carried FROM conversions FINAL ORDER BY click_id")
        .fetch_all()
        .await
        .unwrap();
    let expected: Vec<(String, String, u16)> = clicks
        .iter()
        .map(|c| (c.click_id.clone(), c.subs[0].clone(), 1))
        .collect();
    assert_eq!(rows, expected);
    let again = carry(&["--subs", "sub1", "--apply"]).await.unwrap();
    assert_eq!(
        text(&again),
        "every conversion in range carries sub1: nothing to do\n"
    );
    let bad = carry(&["--subs", "zone"]).await.unwrap();
    assert!(!bad.status.success());
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(error.contains("--subs names \"zone\""), "{error}");
    let bad = carry(&["--to", "2026-12-32"]).await.unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--to \"2026-12-32\""));
    drop(sink);
    t.cleanup().await.unwrap();
}
