//! Outbound postbacks end to end: click and postback over HTTP, the joiner publishes the
//! attributed conversion to the outbound topic, the dispatcher fires the campaign's
//! traffic-source postback at a local HTTP server that fails the first attempts, and every
//! attempt lands in ClickHouse's `outbound_deliveries`.

use std::time::{Duration, Instant};

use clickmatch_cli::demo;
use clickmatch_cli::pipeline::Roles;
use clickmatch_clickhouse::{ConversionRow, OutboundRow};
use clickmatch_core::records::{Conversion, OutboundRecord};
use clickmatch_core::subs::{CarriedSubs, SubSet};
use clickmatch_e2e::traffic_source::TrafficSource;
use clickmatch_e2e::TestPipeline;
use reqwest::StatusCode;

const ALL_ROLES: Roles = Roles {
    ingest: true,
    join: true,
    outbound: true,
};

/// Campaigns of offer 1 whose traffic-source postbacks go to `base` + `path`.
fn campaigns(base: &str, paths: &[(&str, &str)]) -> String {
    paths
        .iter()
        .map(|(id, path)| {
            format!(
                "\n[[campaigns]]\nid = \"{id}\"\noffer = \"1\"\nsource = \"ts-push\"\n\
                 url = \"https://net.example/aff_c?offer_id=1&aff_sub={{click_id}}\"\n\
                 postback_url = \"{base}{path}?clickid={{sub1}}&payout={{payout}}&cur={{currency}}\
                 &tx={{txid}}&st={{status}}&cv={{conversion_id}}&src={{source}}\"\n"
            )
        })
        .collect()
}

async fn convert(t: &TestPipeline, campaign: &str, sub1: &str, txid: &str) -> String {
    let client = demo::http_client();
    let click_id = demo::click(&client, &t.base, campaign, sub1).await.unwrap();
    let status = demo::postback_get(
        &client,
        &t.base,
        "/postback",
        &[
            ("cid", click_id.as_str()),
            ("payout", "2.50"),
            ("offer", "1"),
            ("txid", txid),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);
    click_id
}

async fn attempts(t: &TestPipeline) -> Vec<OutboundRow> {
    t.client()
        .query("SELECT ?fields FROM outbound_deliveries FINAL ORDER BY click_id, attempt")
        .fetch_all()
        .await
        .unwrap()
}

/// Waits until `n` deliveries are final (delivered or failed for good).
async fn wait_final(t: &TestPipeline, n: u64) {
    let sql = "SELECT count() FROM outbound_deliveries FINAL WHERE is_final = 1";
    assert_eq!(t.wait_count(sql, n).await.unwrap(), n);
}

async fn wait_counter(t: &TestPipeline, result: &str, expected: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let value = t
            .pipeline()
            .counter("clickmatch_outbound_records_total", &[("result", result)]);
        if value >= expected || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn conversion_of(row: ConversionRow) -> Conversion {
    Conversion {
        origin: Default::default(),
        subs: row.carried_subs(),
        conversion_id: row.conversion_id,
        click_id: row.click_id,
        click_time_ms: u64::from(row.click_time) * 1000,
        conversion_time_ms: row.conversion_time_ms,
        postback_id: row.postback_id,
        campaign_id: row.campaign_id,
        offer_id: row.offer_id,
        route: row.route,
        event: row.event,
        status: row.status,
        payout: row.payout,
        currency: row.currency,
        payout_raw: row.payout_raw,
        payout_issue: row.payout_issue,
        source: row.source,
        country: row.country,
        device_type: row.device_type,
        os: row.os,
        browser: row.browser,
        txid: row.txid,
        offer_mismatch: row.offer_mismatch,
        click_id_repaired: row.click_id_repaired,
        repair: row.repair_hint,
        is_test: row.is_test,
        version: row.version,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_traffic_source_is_retried_with_backoff_until_delivered_once() {
    // Two 503s, then 200.
    let ts = TrafficSource::start(|_, nth| if nth < 2 { 503 } else { 200 }).await;
    let t = TestPipeline::start_custom(
        &campaigns(&ts.base(), &[("ts", "/cb")]),
        &[
            ("CLICKMATCH_OUTBOUND_RETRY_INITIAL_MS", "100"),
            ("CLICKMATCH_OUTBOUND_RETRY_MAX_MS", "400"),
            ("CLICKMATCH_OUTBOUND_MAX_ATTEMPTS", "5"),
        ],
        4,
        ALL_ROLES,
    )
    .await
    .unwrap();
    let click_id = convert(&t, "ts", "ts-click-42", "T-9").await;
    assert_eq!(
        t.wait_count(
            "SELECT count() FROM outbound_deliveries FINAL WHERE state = 'delivered'",
            1
        )
        .await
        .unwrap(),
        1
    );

    let rows = attempts(&t).await;
    let summary: Vec<(u32, &str, u16, bool)> = rows
        .iter()
        .map(|r| (r.attempt, r.state.as_str(), r.http_status, r.is_final))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "retrying", 503, false),
            (2, "retrying", 503, false),
            (3, "delivered", 200, true)
        ]
    );
    let conversion: ConversionRow = t
        .client()
        .query("SELECT ?fields FROM conversions FINAL")
        .fetch_one()
        .await
        .unwrap();
    let key = format!("{}:{}", conversion.conversion_id, conversion.version);
    assert!(rows
        .iter()
        .all(|r| r.idempotency_key == key && r.click_id == click_id && r.campaign_id == "ts"));
    // Backoff between attempts: at least ~80 ms (100 ms less jitter), then ~160 ms.
    assert!(rows[1].attempt_time_ms >= rows[0].attempt_time_ms + 80);
    assert!(rows[2].attempt_time_ms >= rows[1].attempt_time_ms + 160);

    let seen = ts.seen_on("/cb");
    assert_eq!(seen.len(), 3, "{seen:#?}");
    for request in &seen {
        assert_eq!(request.idempotency_key, key);
        assert_eq!(
            request.query,
            format!(
                "clickid=ts-click-42&payout=2.5&cur=USD&tx=T-9&st=approved&cv={}&src=ts-push",
                conversion.conversion_id
            )
        );
    }
    assert_eq!(rows[2].url, format!("{}/cb?{}", ts.base(), seen[2].query));

    // The joiner's at-least-once publishing can repeat a record: it is not fired again.
    let record = OutboundRecord::new(conversion_of(conversion));
    t.publisher()
        .publish(&t.config.kafka.outbound_topic, &click_id, &record.encode())
        .await
        .unwrap();
    assert_eq!(wait_counter(&t, "already_done", 1.0).await, 1.0);
    assert_eq!(ts.seen_on("/cb").len(), 3);
    assert_eq!(attempts(&t).await.len(), 3);
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_fail_at_once_and_outages_fail_after_the_last_attempt() {
    let ts = TrafficSource::start(|path, _| if path == "/bad" { 400 } else { 503 }).await;
    let t = TestPipeline::start_custom(
        &campaigns(&ts.base(), &[("ts-bad", "/bad"), ("ts-down", "/down")]),
        &[
            ("CLICKMATCH_OUTBOUND_RETRY_INITIAL_MS", "50"),
            ("CLICKMATCH_OUTBOUND_RETRY_MAX_MS", "100"),
            ("CLICKMATCH_OUTBOUND_MAX_ATTEMPTS", "3"),
        ],
        4,
        ALL_ROLES,
    )
    .await
    .unwrap();
    let bad = convert(&t, "ts-bad", "b-1", "T-1").await;
    let down = convert(&t, "ts-down", "d-1", "T-2").await;
    wait_final(&t, 2).await;
    let rows = attempts(&t).await;
    let of = |click: &str| -> Vec<(u32, String, u16)> {
        rows.iter()
            .filter(|r| r.click_id == click)
            .map(|r| (r.attempt, r.state.clone(), r.http_status))
            .collect()
    };
    assert_eq!(of(&bad), vec![(1, "failed".to_string(), 400)]);
    assert_eq!(
        of(&down),
        vec![
            (1, "retrying".to_string(), 503),
            (2, "retrying".to_string(), 503),
            (3, "failed".to_string(), 503)
        ]
    );
    assert!(rows
        .iter()
        .all(|r| r.error.starts_with("HTTP ") && r.error.contains("traffic source says no")));
    assert_eq!(ts.seen_on("/bad").len(), 1);
    assert_eq!(ts.seen_on("/down").len(), 3);
    assert_eq!(wait_counter(&t, "failed", 2.0).await, 2.0);
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversion_carrying_its_clicks_sub1_fires_without_the_clicks_row() {
    let ts = TrafficSource::start(|_, _| 200).await;
    let campaign = format!(
        "\n[[campaigns]]\nid = \"ts-carry\"\noffer = \"1\"\nsource = \"ts-push\"\n\
         url = \"https://net.example/aff_c?offer_id=1&aff_sub={{click_id}}\"\n\
         postback_url = \"{}/carry?clickid={{sub1}}&cv={{conversion_id}}\"\n",
        ts.base()
    );
    let t = TestPipeline::start_custom(&campaign, &[], 4, ALL_ROLES)
        .await
        .unwrap();
    // Neither click is in ClickHouse (as when the clicks' rows are late, or expired).
    let carrying = Conversion {
        conversion_id: "cv-carry".into(),
        click_id: "click-not-in-clickhouse-1".into(),
        campaign_id: "ts-carry".into(),
        subs: CarriedSubs::of(&["ts-77".into()], SubSet::one(1).unwrap()),
        ..Conversion::example()
    };
    let bare = Conversion {
        conversion_id: "cv-bare".into(),
        click_id: "click-not-in-clickhouse-2".into(),
        campaign_id: "ts-carry".into(),
        ..Conversion::example()
    };
    for conversion in [carrying, bare] {
        let record = OutboundRecord::new(conversion);
        t.publisher()
            .publish(
                &t.config.kafka.outbound_topic,
                &record.conversion.click_id,
                &record.encode(),
            )
            .await
            .unwrap();
    }
    wait_final(&t, 2).await;
    let rows = attempts(&t).await;
    let of = |click: &str| -> (String, u16, String) {
        let row = rows.iter().find(|r| r.click_id == click).unwrap();
        (row.state.clone(), row.http_status, row.error.clone())
    };
    assert_eq!(
        of("click-not-in-clickhouse-1"),
        ("delivered".to_string(), 200, String::new())
    );
    let (state, status, error) = of("click-not-in-clickhouse-2");
    assert_eq!((state.as_str(), status), ("failed", 0));
    assert!(
        error.contains("not in ClickHouse's clicks table"),
        "{error}"
    );
    let seen = ts.seen_on("/carry");
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].query, "clickid=ts-77&cv=cv-carry");
    t.cleanup().await.unwrap();
}
