//! The outbound table and the debugger's reads against a real ClickHouse (`scripts/test`: 18.16,
//! then 26.9).

mod common;

use std::str::FromStr;

use clickmatch_clickhouse::{
    check_schema, ClickHouseSink, DebugReader, DeliveryState, OutboundRow, OutboundStore,
    PostbackEntry, Recorded,
};
use clickmatch_core::clock::now_ms;
use clickmatch_core::records::{
    ClickRecord, Conversion, Origin, Outcome, Unattributed, RECORD_VERSION,
};
use clickmatch_core::Reason;
use common::TestDb;
use rust_decimal::Decimal;

fn click(id: &str, time_ms: u64) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: id.into(),
        time_ms,
        campaign_id: "camp-1".into(),
        offer_id: "7".into(),
        source: "push".into(),
        subs: vec!["ts-'42'".into(), "b".into()],
        ip: "203.0.113.9".into(),
        user_agent: "Mozilla/5.0".into(),
        country: String::new(),
        enrichment: Default::default(),
        is_test: false,
        foreign: false,
        cost: None,
    }
}

fn conversion(click_id: &str, version: u64, time_ms: u64) -> Conversion {
    Conversion {
        conversion_id: format!("conv-{click_id}"),
        click_id: click_id.into(),
        click_time_ms: time_ms - 1000,
        conversion_time_ms: time_ms,
        postback_id: format!("pb-{click_id}-{version}"),
        campaign_id: "camp-1".into(),
        payout: Decimal::from_str("2.5").unwrap(),
        txid: "tx".into(),
        version,
        ..Conversion::example()
    }
}

fn unattributed(id: &str, raw_click_id: &str, time_ms: u64) -> Unattributed {
    Unattributed {
        origin: Default::default(),
        postback_id: id.into(),
        received_time_ms: time_ms,
        route: "lead".into(),
        reason: Reason::MalformedClickId,
        raw_click_id: raw_click_id.into(),
        offer_id: "2".into(),
        payout: Decimal::ZERO,
        currency: "USD".into(),
        remote_ip: "198.51.100.1".into(),
        raw_params: format!(r#"[["s2","{raw_click_id}"]]"#),
        hint: "check_sub_param_passthrough".into(),
        is_test: false,
    }
}

fn attempt(key: &str, attempt: u32, state: DeliveryState, click_id: &str) -> OutboundRow {
    OutboundRow {
        idempotency_key: key.into(),
        conversion_id: key.split(':').next().unwrap().into(),
        conversion_version: 1,
        click_id: click_id.into(),
        click_time: 1_700_000_000,
        campaign_id: "camp-1".into(),
        offer_id: "7".into(),
        attempt,
        attempt_time: 1_700_000_100 + attempt,
        attempt_time_ms: 1_700_000_100_000 + attempt as u64,
        url: "https://ts.example/cb?c=1".into(),
        http_status: if state == DeliveryState::Delivered {
            200
        } else {
            503
        },
        error: String::new(),
        duration_ms: 12,
        state: state.as_str().into(),
        is_final: state.is_final(),
    }
}

#[tokio::test]
async fn outbound_rows_round_trip_and_report_what_is_recorded() {
    let db = TestDb::migrated().await;
    check_schema(&db.settings).await.unwrap();
    let store = OutboundStore::new(&db.settings).unwrap();
    store
        .write(&[
            attempt("a:1", 1, DeliveryState::Retrying, "c1"),
            attempt("a:1", 2, DeliveryState::Delivered, "c1"),
            attempt("b:1", 1, DeliveryState::Retrying, "c2"),
            attempt("f:1", 3, DeliveryState::Failed, "c3"),
        ])
        .await
        .unwrap();
    // A replay rewrites the same attempt: still one row per (key, attempt) with FINAL.
    store
        .write(&[attempt("b:1", 1, DeliveryState::Retrying, "c2")])
        .await
        .unwrap();
    let keys: Vec<String> = ["a:1", "b:1", "f:1", "none:1", "it's:1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let recorded = store.recorded(&keys).await.unwrap();
    assert_eq!(
        recorded["a:1"],
        Recorded {
            attempts: 2,
            delivered: true,
            finished: true
        }
    );
    assert_eq!(
        recorded["b:1"],
        Recorded {
            attempts: 1,
            delivered: false,
            finished: false
        }
    );
    assert_eq!(
        recorded["f:1"],
        Recorded {
            attempts: 3,
            delivered: false,
            finished: true
        }
    );
    assert_eq!(recorded.len(), 3);
    let rows: Vec<OutboundRow> = db
        .client()
        .query("SELECT ?fields FROM outbound_deliveries FINAL ORDER BY idempotency_key, attempt")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1], attempt("a:1", 2, DeliveryState::Delivered, "c1"));
    db.drop_database().await;
}

#[tokio::test]
async fn click_subs_and_the_debugger_reads() {
    let db = TestDb::migrated().await;
    let now = now_ms();
    let id = "01m8b66tw9t968z636rg9cqbnt";
    let sink = ClickHouseSink::new(&db.settings).unwrap();
    // The debugger shows the versions `conversions` still holds: a merge keeps only the newest
    // (ReplacingMergeTree), and current releases collapse the versions of one insert already
    // (`optimize_on_insert`). So each version comes in an insert of its own, as from the
    // joiner when a status update follows, and merges wait.
    db.client()
        .query("SYSTEM STOP MERGES conversions")
        .execute()
        .await
        .unwrap();
    sink.write(
        &[click(id, now - 1000), click("other", now - 1000)],
        &[
            Outcome::Attributed(conversion(id, 1, now)),
            Outcome::Unattributed(unattributed("u1", &format!("{id}_junk"), now + 2)),
            Outcome::Unattributed(unattributed("u2", "x", now + 3)),
        ],
    )
    .await
    .unwrap();
    for _ in 0..2 {
        // Version 2, then its replay: listed once.
        sink.write(&[], &[Outcome::Attributed(conversion(id, 2, now + 1))])
            .await
            .unwrap();
    }
    sink.write(
        &[],
        &[Outcome::Unattributed(unattributed("u2", "x", now + 3))],
    )
    .await
    .unwrap();
    let store = OutboundStore::new(&db.settings).unwrap();
    let mut delivered = attempt(&format!("conv-{id}:2"), 1, DeliveryState::Delivered, id);
    delivered.click_time = ((now - 1000) / 1000) as u32;
    store.write(&[delivered]).await.unwrap();

    let subs = store
        .click_subs(&[id.to_string(), "missing".to_string()])
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[id].source, "push");
    assert_eq!(subs[id].subs[0], "ts-'42'");
    assert_eq!(subs[id].subs[1], "b");
    assert_eq!(subs[id].subs[9], "");

    let reader = DebugReader::new(&db.settings).unwrap();
    let since = (now / 1000 - 60) as u32;
    let latest = reader.latest_postbacks(since, 20).await.unwrap();
    assert_eq!(latest.len(), 4, "{latest:#?}");
    // Grouped by route then offer, newest first inside a group.
    assert_eq!(latest[0].route(), "global");
    assert!(matches!(&latest[0], PostbackEntry::Attributed(c) if c.version == 2));
    assert_eq!(latest[2].route(), "lead");
    assert_eq!(latest[2].postback_id(), "u2");
    assert_eq!(reader.latest_postbacks(since, 1).await.unwrap().len(), 2);
    let counts = reader.outcome_counts(since).await.unwrap();
    let summary: Vec<(String, String, u64)> = counts
        .into_iter()
        .map(|c| (c.route, c.outcome, c.postbacks))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("global".to_string(), "attributed".to_string(), 2),
            ("lead".to_string(), "malformed_click_id".to_string(), 2),
        ]
    );
    // `clickmatch reprocess` attributes u2: it counts once, as attributed, no longer as its
    // first reason.
    let reprocessed = Conversion {
        conversion_id: "conv-u2".into(),
        postback_id: "u2".into(),
        route: "lead".into(),
        origin: Origin::Reprocess,
        ..conversion("other", 1, now + 3)
    };
    sink.write(&[], &[Outcome::Attributed(reprocessed)])
        .await
        .unwrap();
    let counts = reader.outcome_counts(since).await.unwrap();
    let summary: Vec<(String, String, u64)> = counts
        .into_iter()
        .map(|c| (c.route, c.outcome, c.postbacks))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("global".to_string(), "attributed".to_string(), 2),
            ("lead".to_string(), "malformed_click_id".to_string(), 1),
            // Another offer than u1's: the conversion's.
            ("lead".to_string(), "attributed".to_string(), 1),
        ]
    );

    let story = reader.click_story(id, Some(since)).await.unwrap();
    assert_eq!(story.click.as_ref().unwrap().sub1, "ts-'42'");
    assert_eq!(story.conversions.len(), 2);
    assert_eq!(story.unattributed.len(), 1, "the mangled postback names it");
    assert_eq!(story.unattributed[0].postback_id, "u1");
    assert_eq!(story.deliveries.len(), 1);
    let nothing = reader.click_story("no-such-click", None).await.unwrap();
    // Nothing before `since`.
    let later = reader
        .click_story(id, Some((now / 1000 + 3600) as u32))
        .await
        .unwrap();
    assert!(later.click.is_none() && later.conversions.is_empty() && later.deliveries.is_empty());
    assert!(nothing.click.is_none() && nothing.conversions.is_empty());
    db.drop_database().await;
}
