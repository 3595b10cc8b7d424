//! End to end: `clickmatch test-conversion`'s logic against a running pipeline (HTTP ingest,
//! the mock Kafka cluster, the joiner, a real ClickHouse). Test clicks are marked `is_test`,
//! postbacks are fired exactly as the network preset would, and every assertion reads
//! ClickHouse.

use std::time::Duration;

use clickmatch_cli::test_conversion::{run, Landed, TestConversionArgs};
use clickmatch_core::reason::hint_text;
use clickmatch_e2e::TestPipeline;

fn args(t: &TestPipeline, offer: &str, network: Option<&str>) -> TestConversionArgs {
    let mut args = TestConversionArgs::new(offer);
    args.network = network.map(str::to_string);
    args.ingest_url = Some(t.base.clone());
    args.timeout = Duration::from_secs(20);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_conversions_land_attributed_and_marked_as_tests() {
    let t = TestPipeline::start(&[]).await.unwrap();

    // Offer 1 is a TUNE offer on the global route; offer 2 a CAKE offer on the `lead` route,
    // which has a token and a fixed payout.
    for (offer, route, preset, campaign) in [
        ("1", "global", "tune", "demo"),
        ("2", "lead", "cake", "demo-lead"),
    ] {
        let test = run(&t.config, &args(&t, offer, None)).await.unwrap();
        let text = test.render();
        assert!(test.verdict.ok, "{text}");
        assert_eq!(test.verdict.outcome, "attributed", "{text}");
        assert_eq!(test.plan.preset.name, preset);
        assert_eq!(test.plan.campaign, campaign);
        assert!(text.contains("OK: the "), "{text}");
        assert!(text.contains("latency: "), "{text}");
        let Landed::Conversion(row) = &test.observation.landed else {
            panic!("{text}");
        };
        assert_eq!(row.route, route);
        assert_eq!(row.click_id, test.observation.click.click_id);

        // What ClickHouse holds for it: the conversion and its click are test data.
        let (is_test, offer_id, route_label, txid): (u8, String, String, String) = t
            .client()
            .query("SELECT is_test, offer_id, route, txid FROM conversions FINAL WHERE conversion_id = ?")
            .bind(&row.conversion_id)
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(is_test, 1, "{text}");
        assert_eq!(offer_id, offer);
        assert_eq!(route_label, route);
        assert!(txid.starts_with("test-"), "{txid}");
        let click_is_test = t
            .wait_count(
                &format!(
                    "SELECT toUInt64(sum(is_test)) FROM clicks FINAL WHERE click_id = '{}'",
                    row.click_id
                ),
                1,
            )
            .await
            .unwrap();
        assert_eq!(click_is_test, 1);
    }

    // The lead route books its fixed payout; the CAKE template put the token first.
    let lead_payout: i64 = t
        .client()
        .query("SELECT toInt64(payout * 1000000) FROM conversions FINAL WHERE route = 'lead'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(lead_payout, 4_500_000);
    t.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_that_sends_its_macro_literally_fails_with_the_reason() {
    let t = TestPipeline::start(&[]).await.unwrap();

    // Offer 1's campaign carries the click ID in TUNE's aff_sub. Fired as Everflow, which
    // echoes sub1, the network has nothing for {sub1} and sends it literally.
    let test = run(&t.config, &args(&t, "1", Some("everflow")))
        .await
        .unwrap();
    let text = test.render();
    assert!(!test.verdict.ok, "{text}");
    assert_eq!(test.verdict.outcome, "unsubstituted_macro", "{text}");
    assert!(
        text.contains(
            "the network sent `{sub1}` literally: the offer link carries the click ID in `aff_sub`, not `sub1`"
        ),
        "{text}"
    );
    let Landed::Unattributed(row) = &test.observation.landed else {
        panic!("{text}");
    };
    // The hint code and the sentence an operator reads for it.
    assert!(!row.hint.is_empty(), "{text}");
    assert!(
        text.contains(&format!("hint {}: {}", row.hint, hint_text(&row.hint))),
        "{text}"
    );
    assert_eq!(row.raw_click_id, "{sub1}");
    let stored: (String, String) = t
        .client()
        .query("SELECT reason, raw_click_id FROM unattributed FINAL WHERE reason = 'unsubstituted_macro'")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(stored, ("unsubstituted_macro".into(), "{sub1}".into()));

    // Fired as CAKE: #s2# goes out unencoded and cuts the URL at the `#`, so ingest gets an
    // empty click ID (the click ID is last; payout and transaction ID arrive).
    let test = run(&t.config, &args(&t, "1", Some("cake"))).await.unwrap();
    let text = test.render();
    assert!(!test.verdict.ok, "{text}");
    assert_eq!(test.verdict.outcome, "missing_click_id", "{text}");
    assert!(text.contains("sent it unencoded"), "{text}");
    let Landed::Unattributed(row) = &test.observation.landed else {
        panic!("{text}");
    };
    assert!(row.raw_params.contains("test-"), "{}", row.raw_params);
    assert!(row.raw_params.contains("1.23"), "{}", row.raw_params);
    t.cleanup().await.unwrap();
}
