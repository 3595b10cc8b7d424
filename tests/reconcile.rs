//! `clickmatch reconcile` as the operator runs it (the binary, a configuration file, a real
//! ClickHouse) against a small export of each supported format: TUNE, Everflow, CAKE (in the
//! account's time zone) and one read with `--columns`. Our side is written with the joiner's
//! ClickHouse sink: matched conversions (one by click ID only), one with another payout, one
//! with another currency, one with another status, conversions only in the export (each with
//! what clickmatch did: an unattributed reason found by click ID or by transaction ID, a click
//! never posted back, nothing at all), conversions only here, and conversions the comparison
//! must leave out (another network's offer, outside the period).

use std::path::{Path, PathBuf};
use std::process::Command;

use clickmatch_clickhouse::UnattributedRow;
use clickmatch_clickhouse::{migrate, ClickHouseSettings, ClickHouseSink, ConversionRow};
use clickmatch_core::records::{Conversion, Unattributed};
use clickmatch_core::Reason;
use clickmatch_e2e::{clickhouse_server, clickmatch_bin};
use rust_decimal::Decimal;
use serde_json::Value;

const OFFERS: &str = r#"
[[offers]]
id = "3"
network = "everflow"
payout = "postback"

[[offers]]
id = "4"
payout = "postback"
"#;

fn exports() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/clickmatch-import/tests/data/exports")
}

fn ms(time: &str) -> u64 {
    let time: chrono::DateTime<chrono::Utc> = time.parse().unwrap();
    u64::try_from(time.timestamp_millis()).unwrap()
}

/// A conversion version received at `time`, its click an hour earlier.
#[allow(clippy::too_many_arguments)]
fn conversion(
    id: &str,
    click_id: &str,
    txid: &str,
    offer: &str,
    payout: &str,
    currency: &str,
    status: &str,
    time: &str,
) -> ConversionRow {
    let at = ms(time);
    let conversion = Conversion {
        conversion_id: id.into(),
        click_id: click_id.into(),
        click_time_ms: at - 3_600_000,
        conversion_time_ms: at,
        postback_id: format!("pb-{id}-{at}"),
        offer_id: offer.into(),
        status: status.into(),
        payout: payout.parse::<Decimal>().unwrap(),
        currency: currency.into(),
        payout_raw: payout.into(),
        txid: txid.into(),
        version: at,
        ..Conversion::example()
    };
    ConversionRow::new(&conversion, at)
}

fn unattributed(
    postback_id: &str,
    raw_click_id: &str,
    reason: Reason,
    hint: &str,
    raw_params: &str,
    time: &str,
) -> UnattributedRow {
    let at = ms(time);
    let row = Unattributed {
        postback_id: postback_id.into(),
        received_time_ms: at,
        route: "global".into(),
        reason,
        raw_click_id: raw_click_id.into(),
        offer_id: String::new(),
        payout: Decimal::ZERO,
        currency: "USD".into(),
        remote_ip: "192.0.2.1".into(),
        raw_params: raw_params.into(),
        hint: hint.into(),
        is_test: false,
        origin: Default::default(),
    };
    UnattributedRow::new(&row, at)
}

/// Our conversion versions, one a line: ID, click ID, txid (`-`: none), offer, payout,
/// currency, status, received (the click an hour earlier).
///
/// TUNE, 2 November: t1 pending then approved (the latest version counts), t2 paid 2.50 where
/// TUNE says 3.00, t3 without a txid (matched by click ID) and approved where TUNE rejected it,
/// t7 only here; cake-x is another network's offer, t8 outside the period.
/// Everflow, 3 November: e2 booked in USD where Everflow pays EUR; e4 only here.
/// CAKE, 4 November (its export is in New York time, UTC-5): k2 approved here, returned there;
/// k4 only here.
/// Custom columns, 5 November, offer 4: x2 booked 2.50 EUR where the export says 2.00; x4 only
/// here; x-tune is offer 1's, left out by `--offer 4`.
const CONVERSIONS: &str = "
    t1      tune-c1    tx-t1   1  2.50  USD  pending   2026-11-02T10:00:20Z
    t1      tune-c1    tx-t1   1  2.50  USD  approved  2026-11-02T10:30:00Z
    t2      tune-c2    tx-t2   1  2.50  USD  approved  2026-11-02T11:00:20Z
    t3      tune-c3    -       1  1.00  USD  approved  2026-11-02T12:00:20Z
    t7      tune-c7    tx-t7   1  2.50  USD  approved  2026-11-02T12:45:00Z
    cake-x  cake-cx    lead-x  2  4.50  USD  approved  2026-11-02T13:00:00Z
    t8      tune-c8    tx-t8   1  2.50  USD  approved  2026-11-12T10:00:00Z
    e1      ef-c1      4c1d0d6e6c2a4bb5a2d3b8f0e9a7c611  3  4.00  USD  approved  2026-11-03T10:00:30Z
    e2      ef-c2      4c1d0d6e6c2a4bb5a2d3b8f0e9a7c622  3  4.00  USD  approved  2026-11-03T11:00:30Z
    e4      ef-c4      4c1d0d6e6c2a4bb5a2d3b8f0e9a7c644  3  4.00  USD  approved  2026-11-03T11:30:00Z
    k1      cake-c1    lead-1  2  4.50  USD  approved  2026-11-04T15:00:40Z
    k2      cake-c2    lead-2  2  4.50  USD  approved  2026-11-04T16:00:40Z
    k4      cake-c4    lead-4  2  4.50  USD  approved  2026-11-04T16:30:00Z
    x1      custom-c1  ord-1   4  1.50  EUR  approved  2026-11-05T09:00:10Z
    x2      custom-c2  ord-2   4  2.50  EUR  approved  2026-11-05T10:00:10Z
    x4      custom-c4  ord-4   4  1.00  EUR  approved  2026-11-05T10:30:00Z
    x-tune  tune-cx    tx-x    1  2.50  USD  approved  2026-11-05T10:15:00Z
";

async fn write_our_side(settings: &ClickHouseSettings) {
    let conversions: Vec<ConversionRow> = CONVERSIONS
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let txid = if f[2] == "-" { "" } else { f[2] };
            conversion(f[0], f[1], txid, f[3], f[4], f[5], f[6], f[7])
        })
        .collect();
    let unattributed = vec![
        unattributed(
            "pb-t4",
            "tune-c4",
            Reason::UnknownClickId,
            "click_never_recorded",
            r#"[["cid","tune-c4"]]"#,
            "2026-11-02T12:30:10Z",
        ),
        unattributed(
            "pb-e3",
            "ef-c3",
            Reason::InvalidSignature,
            "forged_or_corrupted_id",
            r#"[["cid","ef-c3"]]"#,
            "2026-11-03T12:00:05Z",
        ),
        // CAKE's #s2# sent unencoded: the click ID was lost, the lead ID arrived.
        unattributed(
            "pb-k3",
            "",
            Reason::MissingClickId,
            "cake_hash_fragment",
            r#"[["leadid","lead-3"],["price","4.50"],["s2",""]]"#,
            "2026-11-04T17:15:05Z",
        ),
        unattributed(
            "pb-x3",
            "custom-c3",
            Reason::Expired,
            "click_outside_window",
            r#"[["cid","custom-c3"]]"#,
            "2026-11-05T11:00:05Z",
        ),
    ];
    ClickHouseSink::new(settings)
        .unwrap()
        .write_rows(&[], &conversions, &unattributed)
        .await
        .unwrap();
    // TUNE's tune-c5: the click is here, no postback ever named it.
    settings
        .client()
        .query("INSERT INTO clicks (click_id, click_time, click_time_ms, offer_id) VALUES (?, ?, ?, '1')")
        .bind("tune-c5")
        .bind(ms("2026-11-02T13:00:00Z") / 1000)
        .bind(ms("2026-11-02T13:00:00Z"))
        .execute()
        .await
        .unwrap();
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }
}

fn reconcile(config: &Path, settings: &ClickHouseSettings, args: &[&str]) -> Run {
    let output = Command::new(clickmatch_bin())
        .arg("reconcile")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("CLICKMATCH_CLICKHOUSE_URL", &settings.url)
        .env("CLICKMATCH_CLICKHOUSE_DATABASE", &settings.database)
        .output()
        .unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_string())
        .collect()
}

/// Checks one format's report: the lines that differ and in what, the lines only the export has
/// with what became of them, the conversions only here.
fn check(
    report: &Value,
    matched: u64,
    differences: &[(u64, &str)],
    only_network: &[(u64, &str, &str)],
    only_here: &[&str],
) {
    assert_eq!(report["matched"], matched, "{report:#}");
    let found: Vec<(u64, String)> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let fields: Vec<&str> = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            (d["line"].as_u64().unwrap(), fields.join(","))
        })
        .collect();
    let expected: Vec<(u64, String)> = differences
        .iter()
        .map(|(line, fields)| (*line, fields.to_string()))
        .collect();
    assert_eq!(found, expected, "{report:#}");
    let found: Vec<(u64, String, String)> = report["only_network"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let here = &n["here"];
            (
                n["line"].as_u64().unwrap(),
                here["outcome"].as_str().unwrap().to_string(),
                here["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: Vec<(u64, String, String)> = only_network
        .iter()
        .map(|(line, outcome, reason)| (*line, outcome.to_string(), reason.to_string()))
        .collect();
    assert_eq!(found, expected, "{report:#}");
    assert_eq!(
        ids(&report["only_here"], "conversion_id"),
        only_here,
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_each_export_format_against_clickhouse() {
    let (url, _server) = tokio::task::spawn_blocking(clickhouse_server)
        .await
        .unwrap();
    let settings = ClickHouseSettings::new(url, format!("cm_e2e_{:016x}", rand::random::<u64>()));
    migrate(&settings).await.unwrap();
    write_our_side(&settings).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("clickmatch.toml");
    std::fs::write(
        &config,
        format!("{}\n{OFFERS}", clickmatch_config::DEMO_CONFIG),
    )
    .unwrap();
    let export = |name: &str| exports().join(name).display().to_string();

    // TUNE: every kind of discrepancy; 6 of them, so exit status 1.
    let tune = export("tune.csv");
    let run = reconcile(
        &config,
        &settings,
        &["--report", &tune, "--network", "tune", "--format", "json"],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = run.json();
    check(
        &report,
        3,
        &[(3, "payout"), (4, "status")],
        &[
            (5, "unattributed", "unknown_click_id"),
            (6, "never_posted_back", ""),
            (7, "never_received", ""),
        ],
        &["t7"],
    );
    let payout = &report["differences"][0];
    assert_eq!(payout["matched_by"], "txid");
    assert_eq!(payout["network"]["payout"], "3.00");
    assert_eq!(
        payout["here"]["payout"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        Decimal::new(250, 2)
    );
    let status = &report["differences"][1];
    assert_eq!(status["matched_by"], "click_id");
    assert_eq!(status["network"]["status_raw"], "rejected");
    assert_eq!(status["here"]["status"], "approved");
    assert_eq!(
        report["only_network"][0]["here"]["hint"],
        "click_never_recorded"
    );
    assert_eq!(report["discrepancies"], 6);
    // The same as a table, allowed 6 discrepancies: exit status 0.
    let run = reconcile(
        &config,
        &settings,
        &[
            "--report",
            &tune,
            "--network",
            "hasoffers",
            "--max-differences",
            "6",
        ],
    );
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    for expected in [
        "matched: 3",
        "differences: 2",
        "only in the network: 3",
        "unattributed: unknown_click_id",
        "never posted back",
        "only here: 1",
        "within --max-differences 6",
    ] {
        assert!(
            run.stdout.contains(expected),
            "{expected:?} in\n{}",
            run.stdout
        );
    }

    // Everflow: Unix timestamps, a payout in another currency.
    let run = reconcile(
        &config,
        &settings,
        &[
            "--report",
            &export("everflow.csv"),
            "--network",
            "everflow",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    check(
        &run.json(),
        1 + 1,
        &[(3, "currency")],
        &[(4, "unattributed", "invalid_signature")],
        &["e4"],
    );

    // CAKE, exported in New York time: a returned lead, and a postback that lost its click ID
    // to the #s2# fragment, found by its lead ID.
    let run = reconcile(
        &config,
        &settings,
        &[
            "--report",
            &export("cake.csv"),
            "--network",
            "cake",
            "--tz",
            "America/New_York",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = run.json();
    check(
        &report,
        2,
        &[(3, "status")],
        &[(4, "unattributed", "missing_click_id")],
        &["k4"],
    );
    assert_eq!(report["only_network"][0]["here"]["found_by"], "txid");
    assert_eq!(report["differences"][0]["network"]["status"], "reversed");

    // Any other export, by --columns, for offer 4 only.
    let columns = "click_id=ref,txid=order,payout=amount,status=state,time=when";
    let run = reconcile(
        &config,
        &settings,
        &[
            "--report",
            &export("custom.csv"),
            "--columns",
            columns,
            "--offer",
            "4",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    check(
        &run.json(),
        2,
        &[(3, "payout")],
        &[(4, "unattributed", "expired")],
        &["x4"],
    );

    // A mapped column the export does not have: exit status 2, the header listed.
    let run = reconcile(
        &config,
        &settings,
        &[
            "--report",
            &tune,
            "--network",
            "tune",
            "--columns",
            "payout=Revenue",
        ],
    );
    assert_eq!(run.status, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("no column \"Revenue\" for payout"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("\"Partner Sub ID 1\""),
        "{}",
        run.stderr
    );

    settings
        .client()
        .query(&format!("DROP DATABASE IF EXISTS {}", settings.database))
        .execute()
        .await
        .unwrap();
}
