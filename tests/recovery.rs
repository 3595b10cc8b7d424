//! The operator's loop end to end: postbacks the configuration cannot attribute, the
//! configuration fixed and hot-reloaded, `reprocess` (dry run, then `--apply`, then again), and
//! conversions uploaded (`upload` CSV and `POST /api/conversions`), through a running pipeline.
//!
//! - a postback to a per-offer route not configured yet (`unknown_route`);
//! - a partner's own click ID (its click registered through `POST /clicks`) on a route that does
//!   not accept foreign IDs yet (`malformed_click_id`).
//!
//! Both end in one conversion each after the fix, and in one each after applying again; their
//! `unattributed` rows stay (history) but leave `unattributed_current` and the hourly totals.

use std::collections::HashMap;
use std::time::Duration;

use clickmatch_cli::demo;
use clickmatch_cli::recovery::{reprocess, upload, ReprocessArgs};
use clickmatch_cli::reload::Reloader;
use clickmatch_clickhouse::RecoveryReader;
use clickmatch_config::DEMO_CONFIG;
use clickmatch_e2e::TestPipeline;
use clickmatch_recovery::{await_decisions, decision_times, plan_reprocess, publish};
use reqwest::StatusCode;

/// A partner route that takes only clickmatch IDs, for now.
const BEFORE: &str = r#"
[routes.partner]
offer = "1"
"#;

/// The fix: the partner route accepts foreign IDs, and the sale route exists.
const AFTER: &str = r#"
[routes.partner]
offer = "1"
accept_foreign_ids = true

[routes.sale2]
offer = "1"
default_event = "sale2"
"#;

const TOKEN: &str = "demo-admin-token-change-me";
const FOREIGN_ID: &str = "PARTNER-7f3a9c";

fn args(apply: bool) -> ReprocessArgs {
    ReprocessArgs {
        since: Some("1h".into()),
        apply,
        timeout: Duration::from_secs(30),
        ..ReprocessArgs::default()
    }
}

/// The records of the table row `before → after` in `out`, if there is one.
fn table_row(out: &str, before: &str, after: &str) -> Option<u64> {
    out.lines().find_map(|line| {
        let (b, rest) = line.split_once('→')?;
        let (a, n) = rest.trim().rsplit_once(' ')?;
        (b.trim() == before && a.trim() == after).then(|| n.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_loop_gets_the_money_back() {
    let t = TestPipeline::start_custom(
        BEFORE,
        &[],
        2,
        clickmatch_cli::pipeline::Roles::INGEST_AND_JOIN,
    )
    .await
    .unwrap();
    let http = demo::http_client();

    // 1. Two postbacks the configuration cannot attribute.
    let click = demo::click(&http, &t.base, "demo", "a").await.unwrap();
    let status = demo::postback_get(
        &http,
        &t.base,
        "/postback/sale2",
        &[("cid", &click), ("payout", "4")],
    )
    .await
    .unwrap();
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "recorded as an unknown route"
    );
    let registered = http
        .post(format!("{}/clicks", t.base))
        .json(&serde_json::json!({ "campaign": "demo", "click_id": FOREIGN_ID }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::OK);
    let status = demo::postback_get(
        &http,
        &t.base,
        "/postback/partner",
        &[("cid", FOREIGN_ID), ("payout", "2")],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
    // Clicks are written in their own batches: predictions look them up.
    t.wait_count("SELECT count() FROM clicks FINAL", 2)
        .await
        .unwrap();
    t.wait_count("SELECT count() FROM unattributed FINAL", 2)
        .await
        .unwrap();
    let reasons: Vec<String> = t
        .client()
        .query("SELECT reason FROM unattributed_current ORDER BY reason")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(reasons, ["malformed_click_id", "unknown_route"]);

    // A dry run under the old configuration predicts no change and sends nothing.
    let out = reprocess(&t.config, &t.settings, &args(false))
        .await
        .unwrap();
    let same = "unattributed: unknown_route (configure_route)";
    assert_eq!(
        table_row(&out, "unknown_route (configure_route)", same),
        Some(1),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was sent"), "{out}");

    // 2. Fix the configuration and hot-reload it (ingest and joiner share the account).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clickmatch.toml");
    std::fs::write(&path, format!("{DEMO_CONFIG}\n{BEFORE}")).unwrap();
    let mut reloader = Reloader::new(Some(&path), t.pipeline().account.clone(), t.config.clone());
    std::fs::write(&path, format!("{DEMO_CONFIG}\n{AFTER}")).unwrap();
    reloader.reload().unwrap();
    let mut fixed = t.config.clone();
    fixed.account = (**t.pipeline().account.load()).clone();

    let out = reprocess(&fixed, &t.settings, &args(false)).await.unwrap();
    assert!(out.contains("after (predicted)"), "{out}");
    assert_eq!(
        table_row(&out, "unknown_route (configure_route)", "attributed"),
        Some(1),
        "{out}"
    );
    let malformed = "malformed_click_id (check_sub_param_passthrough)";
    assert_eq!(table_row(&out, malformed, "attributed"), Some(1), "{out}");
    assert_eq!(
        t.count("SELECT count() FROM conversions FINAL").await,
        0,
        "a dry run sends nothing"
    );

    // 3. Apply: one conversion each, decided by the joiner.
    let reader = RecoveryReader::new(&t.settings).unwrap();
    let filter =
        clickmatch_cli::recovery::filter(&args(true), std::time::SystemTime::now()).unwrap();
    let planned = plan_reprocess(&reader, &fixed.account, &filter, None)
        .await
        .unwrap();
    let out = reprocess(&fixed, &t.settings, &args(true)).await.unwrap();
    assert!(out.contains("after (decided)"), "{out}");
    assert_eq!(table_row(&out, malformed, "attributed"), Some(1), "{out}");
    assert_eq!(table_row(&out, malformed, "attributed"), Some(1), "{out}");
    assert!(out.contains("every record decided by the joiner"), "{out}");
    let one_each = "SELECT count() FROM conversions FINAL WHERE origin = 'reprocess' AND \
                    ((route = 'sale2' AND event = 'sale2' AND click_id = ?) OR \
                     (route = 'partner' AND click_id = ?))";
    let converted = t.client().query(one_each).bind(&click).bind(FOREIGN_ID);
    assert_eq!(converted.fetch_one::<u64>().await.unwrap(), 2);
    // History stays; the current view, the hourly totals and the figures drop them.
    assert_eq!(t.count("SELECT count() FROM unattributed FINAL").await, 2);
    assert_eq!(t.count("SELECT count() FROM unattributed_current").await, 0);
    assert_eq!(
        t.count("SELECT toUInt64(count()) FROM unattributed_hourly_totals")
            .await,
        0
    );
    assert_eq!(
        t.count("SELECT toUInt64(sum(unattributed)) FROM figures_hourly")
            .await,
        0
    );

    // 4. Again: nothing left to reprocess; and the same records sent once more (as a run in
    // flight would) rewrite the same rows: still one conversion each, same IDs and versions.
    let out = reprocess(&fixed, &t.settings, &args(true)).await.unwrap();
    assert!(out.contains("nothing to reprocess"), "{out}");
    let ids: Vec<String> = planned
        .iter()
        .map(|p| p.record.postback_id.clone())
        .collect();
    let before = decision_times(&reader, &ids).await.unwrap();
    publish(&t.publisher(), &t.config.kafka.postbacks_topic, &planned)
        .await
        .unwrap();
    let decided = await_decisions(&reader, &ids, &before, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(decided.len(), 2);
    assert!(
        decided.values().all(|d| d.outcome == "attributed"),
        "{decided:?}"
    );
    let converted = t.client().query(one_each).bind(&click).bind(FOREIGN_ID);
    assert_eq!(converted.fetch_one::<u64>().await.unwrap(), 2);
    assert_eq!(
        t.count("SELECT uniqExact(conversion_id, version) FROM conversions")
            .await,
        2,
        "no second version of either conversion"
    );

    // 5. A conversion the network never posted back: dry run, then applied.
    let missed = demo::click(&http, &t.base, "demo", "b").await.unwrap();
    t.wait_count("SELECT count() FROM clicks FINAL", 3)
        .await
        .unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let csv = dir.path().join("network.csv");
    std::fs::write(
        &csv,
        format!("click_id,payout,currency,txid,event,status,time\n{missed},7.25,USD,T-9,,approved,{now_s}\n"),
    )
    .unwrap();
    let (out, ok) = upload(
        &fixed,
        &t.settings,
        &csv,
        None,
        false,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(
        ok && out.contains("line 2: attributed (predicted)"),
        "{out}"
    );
    let (out, ok) = upload(
        &fixed,
        &t.settings,
        &csv,
        None,
        true,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert!(
        ok && out.contains("line 2: attributed, conversion "),
        "{out}"
    );
    let uploaded: Vec<(String, f64)> = t
        .client()
        .query("SELECT click_id, toFloat64(payout) FROM conversions FINAL WHERE origin = 'upload'")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(uploaded, [(missed.clone(), 7.25)]);

    // A file with a bad line is refused whole, naming line and column.
    std::fs::write(
        &csv,
        format!("click_id,time\n{missed},{now_s}\n{missed},tomorrow\n"),
    )
    .unwrap();
    let error = upload(
        &fixed,
        &t.settings,
        &csv,
        None,
        true,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("network.csv:3:2: time \"tomorrow\""),
        "{error}"
    );
    assert!(error.contains("nothing uploaded"), "{error}");

    // The same through the API (admin token): uploading the line again changes nothing.
    let api = format!("{}/api/conversions?apply=1", t.base);
    let body = serde_json::json!([{ "click_id": missed, "payout": "7.25", "currency": "USD",
        "txid": "T-9", "status": "approved", "time": now_s }]);
    let refused = http.post(&api).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let answer: serde_json::Value = http
        .post(&api)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["applied"], true, "{answer}");
    assert_eq!(answer["results"][0]["result"], "attributed", "{answer}");
    assert_eq!(answer["results"][0]["decided"], true, "{answer}");
    assert_eq!(
        t.count("SELECT count() FROM conversions FINAL WHERE origin = 'upload'")
            .await,
        1
    );

    // Counted apart from live postbacks.
    let metrics = http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let recovered: HashMap<&str, &str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("clickmatch_joiner_recovered_total{")
                && l.contains("outcome=\"attributed\"")
        })
        .filter_map(|l| {
            l.split_once("origin=\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(o, _)| (o, l.rsplit(' ').next().unwrap()))
        })
        .collect();
    assert_eq!(recovered.get("reprocess"), Some(&"4"), "{metrics}");
    t.cleanup().await.unwrap();
}
