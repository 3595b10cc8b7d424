use clickhouse::Row;
use clickmatch_core::records::{ClickRecord, RECORD_VERSION};
use clickmatch_core::Reason;
use std::str::FromStr;

use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn names(columns: &[(&str, &str)]) -> Vec<String> {
    columns.iter().map(|(n, _)| n.to_string()).collect()
}

#[test]
fn column_lists_match_the_row_types() {
    let row = |c: &[&str]| c.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(row(ClickRow::COLUMN_NAMES), names(CLICK_COLUMNS));
    assert_eq!(row(ConversionRow::COLUMN_NAMES), names(CONVERSION_COLUMNS));
    assert_eq!(
        row(UnattributedRow::COLUMN_NAMES),
        names(UNATTRIBUTED_COLUMNS)
    );
    assert_eq!(row(ClickRowRef::COLUMN_NAMES), names(CLICK_COLUMNS));
    assert_eq!(
        row(ConversionRowRef::COLUMN_NAMES),
        names(CONVERSION_COLUMNS)
    );
    assert_eq!(
        row(UnattributedRowRef::COLUMN_NAMES),
        names(UNATTRIBUTED_COLUMNS)
    );
    assert_eq!(row(RecoveredRow::COLUMN_NAMES), names(RECOVERED_COLUMNS));
    let sql: String = crate::migrations::MIGRATIONS
        .iter()
        .map(|m| m.sql)
        .collect();
    for (name, ty) in CLICK_COLUMNS
        .iter()
        .chain(CONVERSION_COLUMNS)
        .chain(UNATTRIBUTED_COLUMNS)
        .chain(RECOVERED_COLUMNS)
    {
        assert!(
            sql.contains(&format!("    {name} {ty}"))
                || sql.contains(&format!("ADD COLUMN IF NOT EXISTS {name} {ty};"))
                || sql.contains(&format!("ADD COLUMN IF NOT EXISTS {name} {ty} DEFAULT ")),
            "{name} {ty}"
        );
    }
}

#[test]
fn clicks_map_with_subs_padded() {
    let click = ClickRecord {
        v: RECORD_VERSION,
        click_id: "c1".into(),
        time_ms: 1_700_000_000_123,
        campaign_id: "camp".into(),
        offer_id: "7".into(),
        source: "src".into(),
        subs: vec!["a".into(), String::new(), "c".into()],
        ip: "203.0.113.9".into(),
        user_agent: "ua".into(),
        country: "DE".into(),
        enrichment: Default::default(),
        is_test: true,
        foreign: true,
        cost: None,
    };
    let row = ClickRow::new(&click);
    assert_eq!(row.click_time, 1_700_000_000);
    assert_eq!(row.click_time_ms, 1_700_000_000_123);
    assert_eq!((row.sub1.as_str(), row.sub2.as_str()), ("a", ""));
    assert_eq!((row.sub3.as_str(), row.sub4.as_str()), ("c", ""));
    assert_eq!(row.sub10, "");
    assert!(row.is_test && row.is_foreign);
    assert_eq!(row.country, "DE");
}

#[test]
fn conversions_and_unattributed_map_with_latency() {
    let conversion = Conversion {
        click_time_ms: 1_700_000_000_999,
        conversion_time_ms: 1_700_000_100_500,
        payout: dec("12.3456785"),
        offer_mismatch: true,
        click_id_repaired: true,
        repair: "alias_s2".into(),
        version: 3,
        ..Conversion::example()
    };
    let row = ConversionRow::new(&conversion, 1_700_000_100_750);
    assert_eq!(row.click_time, 1_700_000_000);
    assert_eq!(row.conversion_time, 1_700_000_100);
    assert_eq!(row.latency_ms, 250);
    assert_eq!(row.payout, dec("12.345679"));
    assert_eq!(row.repair_hint, "alias_s2");
    assert_eq!(row.version, 3);
    assert!(row.offer_mismatch && row.click_id_repaired && !row.is_test);
    // The clock went backwards: no negative latency.
    assert_eq!(ConversionRow::new(&conversion, 0).latency_ms, 0);

    let unattributed = Unattributed {
        origin: Default::default(),
        postback_id: "pb2".into(),
        received_time_ms: 5_000,
        route: "cake".into(),
        reason: Reason::UnsubstitutedMacro,
        raw_click_id: "#s2#".into(),
        offer_id: "9".into(),
        payout: dec("-1.5"),
        currency: "EUR".into(),
        remote_ip: "198.51.100.1".into(),
        raw_params: r##"[["cid","#s2#"]]"##.into(),
        hint: "fix_network_macro".into(),
        is_test: true,
    };
    let row = UnattributedRow::new(&unattributed, u64::MAX);
    assert_eq!(row.reason, "unsubstituted_macro");
    assert_eq!(row.received_time, 5);
    assert_eq!(row.latency_ms, u32::MAX);
    assert_eq!(row.payout, dec("-1.5"));
}

#[test]
fn payouts_round_half_away_from_zero_and_clamp() {
    assert_eq!(payout_mantissa(dec("12.345678")), 12_345_678);
    assert_eq!(payout_mantissa(dec("0.0000005")), 1);
    assert_eq!(payout_mantissa(dec("-0.0000005")), -1);
    assert_eq!(payout_mantissa(dec("7")), 7_000_000);
    assert_eq!(payout_mantissa(Decimal::MAX), PAYOUT_MAX_MANTISSA);
    assert_eq!(payout_mantissa(Decimal::MIN), -PAYOUT_MAX_MANTISSA);
    assert_eq!(
        payout_decimal(dec("999999999999.9999999")),
        dec("999999999999.999999")
    );
}

#[test]
fn times_saturate() {
    assert_eq!(datetime(u64::MAX), u32::MAX);
    assert_eq!(datetime(999), 0);
    assert_eq!(latency_ms(10, 20), 0);
}

#[test]
fn recovered_rows_only_for_records_that_are_not_live_postbacks() {
    use clickmatch_core::records::Origin;
    let live = Outcome::Attributed(Conversion::example());
    assert_eq!(RecoveredRow::of(&live, 9), None);
    let reprocessed = Outcome::Attributed(Conversion {
        origin: Origin::Reprocess,
        ..Conversion::example()
    });
    let row = RecoveredRow::of(&reprocessed, 9).unwrap();
    assert_eq!(
        (row.origin.as_str(), row.outcome.as_str()),
        ("reprocess", "attributed")
    );
    assert_eq!(
        (row.conversion_id.as_str(), row.decided_time_ms),
        ("conv-1", 9)
    );
    assert_eq!(
        ConversionRow::new(&Conversion::example(), 0).origin,
        "postback"
    );
}
