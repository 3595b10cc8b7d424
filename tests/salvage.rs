//! End to end: mangled postbacks over HTTP, through Kafka and the joiner, into ClickHouse. A
//! salvaged click ID lands in `conversions` with `click_id_repaired = 1` and its repair hint;
//! what cannot be salvaged lands in `unattributed` with its exact reason and hint code.

use std::collections::BTreeMap;

use clickhouse::Row;
use clickmatch_cli::{demo, dev_report};
use clickmatch_e2e::TestPipeline;
use reqwest::StatusCode;
use serde::Deserialize;

#[derive(Debug, Row, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct RepairView {
    click_id: String,
    route: String,
    click_id_repaired: u8,
    repair_hint: String,
    /// Micro-units: ClickHouse 18.16 prints Decimals with trailing zeros.
    payout_micros: i64,
}

#[derive(Debug, Row, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct UnattributedView {
    route: String,
    reason: String,
    hint: String,
    raw_click_id: String,
}

const REPAIRS: &str = "SELECT click_id, route, click_id_repaired, repair_hint, \
     toInt64(payout * 1000000) AS payout_micros FROM conversions FINAL ORDER BY click_id";
const UNATTRIBUTED: &str = "SELECT route, reason, hint, raw_click_id FROM unattributed FINAL \
     ORDER BY route, reason, hint, raw_click_id";

fn repair(click_id: &str, route: &str, hint: &str, payout_micros: i64) -> RepairView {
    RepairView {
        click_id: click_id.to_string(),
        route: route.to_string(),
        click_id_repaired: u8::from(!hint.is_empty()),
        repair_hint: hint.to_string(),
        payout_micros,
    }
}

fn unattributed(route: &str, reason: &str, hint: &str, raw: &str) -> UnattributedView {
    UnattributedView {
        route: route.to_string(),
        reason: reason.to_string(),
        hint: hint.to_string(),
        raw_click_id: raw.to_string(),
    }
}

async fn get(base: &str, path_and_query: &str) -> StatusCode {
    demo::get_raw(&demo::http_client(), base, path_and_query)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mangled_postbacks_are_attributed_and_flagged_with_their_repair() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let client = demo::http_client();
    let mut ids = Vec::new();
    for n in 0..9 {
        ids.push(
            demo::click(&client, &t.base, "demo", &format!("pub-{n}"))
                .await
                .unwrap(),
        );
    }
    let lead = demo::click(&client, &t.base, "demo-lead", "pub-l")
        .await
        .unwrap();
    let upper = ids[8].to_ascii_uppercase();

    let gets = [
        format!("/postback?cid={0},{0}&payout=1.5&offer=1", ids[0]),
        format!("/postback?cid=%22%20{}%20%22&payout=1.5", ids[1]),
        format!("/postback?payout=1.5&amp;cid={}", ids[2]),
        format!("/postback?s2={}&payout=1.5", ids[3]),
        format!("/postback?cid={}?payout=1.5", ids[4]),
        format!("/postback?cid={}%26payout%3D1.5", ids[5]),
        // An upper-cased ID is a clickmatch ID as it is: nothing to repair.
        format!("/postback?cid={upper}&payout=1.5"),
        // CAKE on the lead route, the ID with a suffix glued on by `_`.
        format!("/postback/lead?token=demo-lead-token&s2={lead}_123&price=9.99"),
    ];
    for path in &gets {
        assert_eq!(get(&t.base, path).await, StatusCode::OK, "{path}");
    }
    // Bodies: JSON with the ID padded, a form with an HTML-escaped key.
    let status = client
        .post(format!("{}/postback", t.base))
        .json(&serde_json::json!({ "click_id": format!(" {} ", ids[6]), "amount": 2.5 }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    let status = client
        .post(format!("{}/postback", t.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("payout=3&amp;clickid={}", ids[7]))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);

    let total = (gets.len() + 2) as u64;
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", total)
            .await
            .unwrap(),
        total
    );
    let mut got: Vec<RepairView> = t.client().query(REPAIRS).fetch_all().await.unwrap();
    got.sort();
    let mut expected = vec![
        repair(&ids[0], "global", "click_id_duplicated", 1_500_000),
        repair(
            &ids[1],
            "global",
            "click_id_whitespace_or_quotes",
            1_500_000,
        ),
        repair(&ids[2], "global", "click_id_html_escaped_key", 1_500_000),
        repair(&ids[3], "global", "click_id_other_param", 1_500_000),
        // The payout went into the click-ID value: lost, and the hint says so; offer 1's
        // default_payout (1.50) is booked.
        repair(
            &ids[4],
            "global",
            "click_id_second_question_mark",
            1_500_000,
        ),
        repair(&ids[5], "global", "click_id_query_in_value", 1_500_000),
        repair(
            &ids[6],
            "global",
            "click_id_whitespace_or_quotes",
            2_500_000,
        ),
        repair(&ids[7], "global", "click_id_html_escaped_key", 3_000_000),
        repair(&ids[8], "global", "", 1_500_000),
        // The lead route books its fixed payout.
        repair(&lead, "lead", "click_id_trailing_junk", 4_500_000),
    ];
    expected.sort();
    assert_eq!(got, expected);
    let none: u64 = t
        .client()
        .query("SELECT count() FROM unattributed FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(none, 0);

    // Repairs are counted by route and hint, once the joiner has the ClickHouse ack (which
    // can come a moment after the rows are visible).
    let pipeline = t.pipeline();
    let repairs = "clickmatch_joiner_click_id_repairs_total";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pipeline.counter(repairs, &[]) < 9.0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        pipeline.counter(
            repairs,
            &[("route", "global"), ("hint", "click_id_html_escaped_key")]
        ),
        2.0
    );
    assert_eq!(
        pipeline.counter(
            repairs,
            &[("route", "lead"), ("hint", "click_id_trailing_junk")]
        ),
        1.0
    );
    assert_eq!(pipeline.counter(repairs, &[]), 9.0);
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsalvageable_postbacks_land_with_their_reason_and_hint() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let client = demo::http_client();
    let id = demo::click(&client, &t.base, "demo", "pub-1")
        .await
        .unwrap();
    let truncated = id[..20].to_ascii_uppercase();
    let forged = demo::forge(&id);
    let glued = format!("{id}7");
    let cases: [(&str, StatusCode); 13] = [
        ("/postback/lead?token=demo-lead-token&s2=", StatusCode::OK),
        ("/postback/lead?s2=", StatusCode::FORBIDDEN),
        ("/postback/lead?s2=1&token=nope", StatusCode::FORBIDDEN),
        ("/postback/LEAD?s2=1", StatusCode::NOT_FOUND),
        ("/postback?cid={Sub5}&payout=2", StatusCode::OK),
        ("/postback?cid=%257Bsubid%257D", StatusCode::OK),
        (
            "/postback?cid=a1b2c3d4e5f60718293a4b5c6d7e8f90",
            StatusCode::OK,
        ),
        ("/postback?cid=null", StatusCode::OK),
        ("/postback?payout=1&amp;cid=%7Baff_sub%7D", StatusCode::OK),
        ("/postback?cid=REPLACE", StatusCode::OK),
        (&format!("/postback?cid={truncated}"), StatusCode::OK),
        (&format!("/postback?cid={forged}"), StatusCode::OK),
        (&format!("/postback?cid={glued}"), StatusCode::OK),
    ];
    for (path, status) in &cases {
        assert_eq!(get(&t.base, path).await, *status, "{path}");
    }
    // A JSON body sent as text/plain is kept raw; without a click ID in it, the hint says so.
    let status = client
        .post(format!("{}/postback", t.base))
        .header("content-type", "application/octet-stream")
        .body("clickid 12")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);

    let total = cases.len() as u64 + 1;
    assert_eq!(
        t.wait_count("SELECT count() FROM unattributed FINAL", total)
            .await
            .unwrap(),
        total
    );
    let mut got: Vec<UnattributedView> = t.client().query(UNATTRIBUTED).fetch_all().await.unwrap();
    got.sort();
    let mut expected = vec![
        unattributed("lead", "missing_click_id", "cake_hash_fragment", ""),
        unattributed("lead", "unauthorized", "cake_hash_fragment", ""),
        unattributed("lead", "unauthorized", "route_token_wrong", "1"),
        unattributed("LEAD", "unknown_route", "route_name_mismatch", ""),
        unattributed(
            "global",
            "unsubstituted_macro",
            "macro_wrong_case",
            "{Sub5}",
        ),
        unattributed(
            "global",
            "unsubstituted_macro",
            "macro_url_encoded",
            "%7Bsubid%7D",
        ),
        unattributed(
            "global",
            "malformed_click_id",
            "foreign_tracker_id",
            "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        ),
        unattributed("global", "missing_click_id", "placeholder_sent", "null"),
        unattributed("global", "missing_click_id", "html_escaped_key", ""),
        unattributed(
            "global",
            "unsubstituted_macro",
            "template_placeholder_word",
            "REPLACE",
        ),
        unattributed(
            "global",
            "malformed_click_id",
            "click_id_truncated",
            &truncated,
        ),
        unattributed(
            "global",
            "invalid_signature",
            "forged_or_corrupted_id",
            &forged,
        ),
        unattributed(
            "global",
            "malformed_click_id",
            "click_id_glued_chars",
            &glued,
        ),
        unattributed("global", "missing_click_id", "unreadable_body", ""),
    ];
    expected.sort();
    assert_eq!(got, expected);
    let attributed: u64 = t
        .client()
        .query("SELECT count() FROM conversions FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(attributed, 0, "nothing that does not verify is attributed");
    t.cleanup().await.unwrap();
}

/// The `dev` demo: its salvageable postbacks come back repaired with the expected hints, its
/// broken ones with the expected reason and hint, as the report reads them from ClickHouse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_report_shows_each_repair_and_hint() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let traffic = demo::run(&t.base, &t.config.account).await.unwrap();
    let total = traffic.postbacks as u64;
    // Scalar subqueries are Nullable on current ClickHouse: a u64 needs assumeNotNull.
    let query = "SELECT assumeNotNull((SELECT count() FROM conversions FINAL) \
                 + (SELECT count() FROM unattributed FINAL))";
    assert_eq!(t.wait_count(query, total).await.unwrap(), total);

    let report = dev_report::read(&t.settings, 0).await.unwrap();
    let expected: BTreeMap<(String, String), u64> = traffic
        .expected_hints
        .iter()
        .map(|(k, v)| (k.clone(), *v as u64))
        .collect();
    assert_eq!(report.outcome_hints(), expected);
    let repairs: BTreeMap<String, u64> = traffic
        .expected_repairs()
        .into_iter()
        .map(|(k, v)| (k, v as u64))
        .collect();
    assert_eq!(report.repairs, repairs);
    assert_eq!(report.repaired, 6);

    let printed = dev_report::render(&report, Some(&traffic.expected));
    assert!(printed.contains("every outcome matches"), "{printed}");
    assert!(
        printed.contains("repaired click_id_other_param"),
        "{printed}"
    );
    assert!(
        printed.contains(clickmatch_core::reason::hint_text("cake_hash_fragment")),
        "{printed}"
    );
    t.cleanup().await.unwrap();
}
