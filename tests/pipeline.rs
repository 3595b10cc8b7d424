//! End to end: clicks and postbacks over HTTP into ingest, through the mock Kafka cluster and the
//! joiner, into a real ClickHouse; every assertion reads ClickHouse.

use std::collections::BTreeMap;

use clickhouse::Row;
use clickmatch_cli::demo;
use clickmatch_core::records::{ClickRecord, RECORD_VERSION};
use clickmatch_e2e::TestPipeline;
use clickmatch_kafka::Publisher;
use reqwest::StatusCode;
use serde::Deserialize;

#[derive(Debug, Row, Deserialize, PartialEq)]
struct ConversionView {
    click_id: String,
    offer_id: String,
    route: String,
    event: String,
    status: String,
    /// Micro-units: the same text on ClickHouse 18.16 and current releases.
    payout_micros: i64,
    txid: String,
    offer_mismatch: u8,
}

#[derive(Debug, Row, Deserialize, PartialEq)]
struct UnattributedView {
    reason: String,
    raw_click_id: String,
    route: String,
    hint: String,
}

const CONVERSIONS: &str = "SELECT click_id, offer_id, route, event, status, toInt64(payout * 1000000) AS payout_micros, txid, offer_mismatch \
     FROM conversions FINAL ORDER BY click_id";
const UNATTRIBUTED: &str = "SELECT reason, raw_click_id, route, hint FROM unattributed FINAL ORDER BY reason, raw_click_id";

async fn conversions(t: &TestPipeline) -> Vec<ConversionView> {
    t.client().query(CONVERSIONS).fetch_all().await.unwrap()
}

async fn unattributed(t: &TestPipeline) -> Vec<UnattributedView> {
    t.client().query(UNATTRIBUTED).fetch_all().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_and_one_postback_become_one_conversion_row() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let client = demo::http_client();
    let click_id = demo::click(&client, &t.base, "demo", "pub-7")
        .await
        .unwrap();
    let status = demo::postback_get(
        &client,
        &t.base,
        "/postback",
        &[
            ("cid", &click_id),
            ("payout", "2.35"),
            ("offer", "1"),
            ("txid", "T-1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        conversions(&t).await,
        vec![ConversionView {
            click_id: click_id.clone(),
            offer_id: "1".into(),
            route: "global".into(),
            event: "sale".into(),
            status: "approved".into(),
            payout_micros: 2_350_000,
            txid: "T-1".into(),
            offer_mismatch: 0,
        }]
    );
    // The batch's inserts run side by side: the conversion can be readable before its click.
    t.wait_count("SELECT count() FROM clicks FINAL", 1)
        .await
        .unwrap();
    let sub1: String = t
        .client()
        .query("SELECT sub1 FROM clicks FINAL WHERE click_id = ?")
        .bind(&click_id)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(sub1, "pub-7");
    assert!(unattributed(&t).await.is_empty());
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_traffic_lands_with_the_exact_reason_for_each_postback() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let traffic = demo::run(&t.base, &t.config.account).await.unwrap();
    let total = traffic.postbacks as u64;
    // Scalar subqueries are Nullable on current ClickHouse: a u64 needs assumeNotNull.
    let query = "SELECT assumeNotNull((SELECT count() FROM conversions FINAL) \
                 + (SELECT count() FROM unattributed FINAL))";
    assert_eq!(t.wait_count(query, total).await.unwrap(), total);

    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    stored.insert(demo::ATTRIBUTED.into(), conversions(&t).await.len());
    for row in unattributed(&t).await {
        *stored.entry(row.reason).or_default() += 1;
    }
    assert_eq!(stored, traffic.expected);
    let clicks = t
        .wait_count("SELECT count() FROM clicks FINAL", traffic.clicks as u64)
        .await
        .unwrap();
    assert_eq!(clicks, traffic.clicks as u64);

    // The lead route books its fixed payout whatever the network sent.
    let lead_payouts: Vec<i64> = t
        .client()
        .query(
            "SELECT DISTINCT toInt64(payout * 1000000) FROM conversions FINAL WHERE route = 'lead'",
        )
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(lead_payouts, vec![4_500_000]);
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postback_that_beats_its_click_waits_and_is_attributed() {
    let t = TestPipeline::start(&[("CLICKMATCH_ACCOUNT_GRACE_SECONDS", "30")])
        .await
        .unwrap();
    let client = demo::http_client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let click_id = t.config.account.signer.mint_now(now).to_string();
    let status = demo::postback_get(
        &client,
        &t.base,
        "/postback",
        &[("cid", &click_id), ("payout", "5")],
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK);

    // The click reaches Kafka after its postback, as when ingest's click queue lags.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", 0)
            .await
            .unwrap(),
        0
    );
    let click = ClickRecord {
        v: RECORD_VERSION,
        click_id: click_id.clone(),
        time_ms: now,
        campaign_id: "demo".into(),
        offer_id: "1".into(),
        source: String::new(),
        subs: vec![],
        ip: String::new(),
        user_agent: String::new(),
        country: String::new(),
        enrichment: Default::default(),
        is_test: false,
        foreign: false,
        cost: None,
    };
    let publisher = Publisher::new(&t.config.kafka.bootstrap_servers, &Default::default()).unwrap();
    publisher
        .publish(&t.config.kafka.clicks_topic, &click_id, &click.encode())
        .await
        .unwrap();

    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(conversions(&t).await[0].click_id, click_id);
    assert!(unattributed(&t).await.is_empty());
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_records_are_skipped_and_counted() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let publisher = Publisher::new(&t.config.kafka.bootstrap_servers, &Default::default()).unwrap();
    for topic in [
        &t.config.kafka.clicks_topic,
        &t.config.kafka.postbacks_topic,
    ] {
        publisher.publish(topic, "k", b"{not json").await.unwrap();
        publisher
            .publish(topic, "k", br#"{"v":99,"future":"record"}"#)
            .await
            .unwrap();
    }
    let client = demo::http_client();
    let click_id = demo::click(&client, &t.base, "demo", "x").await.unwrap();
    demo::postback_get(&client, &t.base, "/postback", &[("cid", &click_id)])
        .await
        .unwrap();
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", 1)
            .await
            .unwrap(),
        1
    );
    let skipped = t
        .pipeline()
        .counter("clickmatch_joiner_records_skipped_total", &[]);
    assert_eq!(skipped, 4.0);
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_joiner_rebuilds_state_and_writes_nothing_twice() {
    let mut t = TestPipeline::start(&[]).await.unwrap();
    let client = demo::http_client();
    let first = demo::click(&client, &t.base, "demo", "a").await.unwrap();
    let second = demo::click(&client, &t.base, "demo", "b").await.unwrap();
    demo::postback_get(
        &client,
        &t.base,
        "/postback",
        &[("cid", &first), ("payout", "1")],
    )
    .await
    .unwrap();
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions", 1)
            .await
            .unwrap(),
        1
    );

    t.restart_services().await.unwrap();
    // The click from before the restart is still known; the old conversion is not rewritten.
    demo::postback_get(
        &client,
        &t.base,
        "/postback",
        &[("cid", &second), ("payout", "2")],
    )
    .await
    .unwrap();
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions", 2)
            .await
            .unwrap(),
        2
    );
    // Raw counts (no FINAL): nothing was written twice.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions", 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        t.wait_count("SELECT count() FROM clicks", 2).await.unwrap(),
        2
    );
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_contract_redirects_and_refusals() {
    let t = TestPipeline::start(&[]).await.unwrap();
    let client = demo::http_client();

    let response = client
        .get(format!(
            "{}/c/demo?sub1=a%20b%26c%3Dhttps://evil.example",
            t.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://net.example/aff_c?offer_id=1&aff_sub="),
        "{location}"
    );
    assert!(
        location.ends_with("&aff_sub2=a%20b%26c%3Dhttps%3A%2F%2Fevil.example"),
        "{location}"
    );

    let status = client
        .get(format!("{}/c/nope", t.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = client
        .get(format!("{}/c/..%2F..%2Fevil.example", t.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // POST /clicks: JSON, returns the click ID after the broker's ack.
    let response = client
        .post(format!("{}/clicks", t.base))
        .json(&serde_json::json!({ "campaign": "demo", "subs": { "sub1": "lander" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["click_id"].as_str().unwrap().len(), 26);
    let bad = client
        .post(format!("{}/clicks", t.base))
        .body("{oops")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // Too many parameters: a clear 400, nothing recorded.
    let query: String = (0..300).map(|i| format!("p{i}=1&")).collect();
    let status = client
        .get(format!("{}/postback?{query}", t.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A broken JSON body is kept raw, and the query's click ID still attributes it.
    let click_id = demo::click(&client, &t.base, "demo", "x").await.unwrap();
    let response = client
        .post(format!("{}/postback?cid={click_id}", t.base))
        .header("content-type", "application/json")
        .body("{\"payout\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", 1)
            .await
            .unwrap(),
        1
    );

    for path in ["/healthz", "/readyz", "/metrics"] {
        let status = client
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let metrics = client
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("clickmatch_ingest_clicks_total"));
    assert!(
        !metrics.contains(&click_id),
        "click IDs never become metric labels"
    );
    t.cleanup().await.unwrap();
}

#[derive(Debug, Row, Deserialize, PartialEq)]
struct EnrichedClick {
    ip: String,
    country: String,
    region: String,
    city: String,
    asn: u32,
    isp: String,
    device_type: String,
    os: String,
    browser: String,
    is_bot: u8,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_through_a_trusted_proxy_are_enriched_and_conversions_carry_their_enrichment() {
    let databases = tempfile::tempdir().unwrap();
    let files = clickmatch_enrich::demo::write_databases(databases.path()).unwrap();
    let t = TestPipeline::start(&[
        (
            "CLICKMATCH_ENRICHMENT_GEOIP_DB",
            files.geoip_db.to_str().unwrap(),
        ),
        (
            "CLICKMATCH_ENRICHMENT_ASN_DB",
            files.asn_db.to_str().unwrap(),
        ),
        ("CLICKMATCH_INGEST_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await
    .unwrap();
    let client = demo::http_client();
    let ipad = demo::DEMO_USER_AGENTS
        .iter()
        .find(|ua| ua.contains("iPad"))
        .unwrap();
    // Through the proxy: the right-most untrusted hop is the client; the left-most entry is
    // whatever the client claimed (here a Brazilian address) and is not believed.
    let response = client
        .get(format!("{}/c/demo?sub1=a", t.base))
        .header("x-forwarded-for", "203.0.113.5, 198.51.100.9")
        .header("user-agent", *ipad)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    let from_france = demo::click_id_in(location).unwrap();
    // No proxy header: the peer (loopback) is the client, in no database.
    let googlebot = client
        .get(format!("{}/c/demo", t.base))
        .header(
            "user-agent",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        )
        .send()
        .await
        .unwrap();
    let from_bot = demo::click_id_in(googlebot.headers()["location"].to_str().unwrap()).unwrap();
    // Registered by a server: the address and user agent it relays are looked up; the country
    // it sends wins over the database's.
    let registered: serde_json::Value = client
        .post(format!("{}/clicks", t.base))
        .json(&serde_json::json!({
            "campaign": "demo",
            "ip": "192.0.2.200",
            "user_agent": demo::DEMO_USER_AGENTS[0],
            "country": "CH",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered_id = registered["click_id"].as_str().unwrap().to_string();
    let status = demo::postback_get(&client, &t.base, "/postback", &[("cid", &from_france)])
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        t.wait_count("SELECT count() FROM conversions FINAL", 1)
            .await
            .unwrap(),
        1
    );
    // The conversion carries what its click was enriched with, through the joiner's state.
    let carried: (String, String, String, String) = t
        .client()
        .query("SELECT country, device_type, os, browser FROM conversions FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        carried,
        ("FR".into(), "tablet".into(), "iOS".into(), "Safari".into())
    );
    // And the subs of `[joiner] conversion_subs` (sub1..sub3 in the demo configuration), sub2 and sub3 empty
    // as the click had them.
    let subs: (u16, String, String, String, String) = t
        .client()
        .query("SELECT subs_carried, sub1, sub2, sub3, sub4 FROM conversions FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(subs, (0b111, "a".into(), "".into(), "".into(), "".into()));
    assert_eq!(
        t.wait_count("SELECT count() FROM clicks FINAL", 3)
            .await
            .unwrap(),
        3
    );
    let click = |id: &str| {
        let client = t.client();
        let id = id.to_string();
        async move {
            client
                .query(
                    "SELECT ip, country, region, city, asn, isp, device_type, os, browser, is_bot \
                     FROM clicks FINAL WHERE click_id = ?",
                )
                .bind(id)
                .fetch_one::<EnrichedClick>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        click(&from_france).await,
        EnrichedClick {
            ip: "198.51.100.9".into(),
            country: "FR".into(),
            region: "Île-de-France".into(),
            city: "Paris".into(),
            asn: 64_498,
            isp: "Démo Fibre".into(),
            device_type: "tablet".into(),
            os: "iOS".into(),
            browser: "Safari".into(),
            is_bot: 0,
        }
    );
    assert_eq!(
        click(&from_bot).await,
        EnrichedClick {
            ip: "127.0.0.1".into(),
            country: String::new(),
            region: String::new(),
            city: String::new(),
            asn: 0,
            isp: String::new(),
            device_type: "bot".into(),
            os: String::new(),
            browser: "Googlebot".into(),
            is_bot: 1,
        }
    );
    assert_eq!(
        click(&registered_id).await,
        EnrichedClick {
            ip: "192.0.2.200".into(),
            country: "CH".into(),
            region: "California".into(),
            city: "San Francisco".into(),
            asn: 64_497,
            isp: "Demo Cable".into(),
            device_type: "desktop".into(),
            os: "Windows 10".into(),
            browser: "Chrome".into(),
            is_bot: 0,
        }
    );
    t.cleanup().await.unwrap();
}
