use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use super::*;

fn request(pairs: &[(&str, &str)]) -> ReportRequest {
    let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
    ReportParams::from_pairs(pairs.iter().copied())
        .unwrap()
        .check(now)
        .unwrap()
}

fn row(key: &str, clicks: u64, conversions: u64, revenue: &str, cost: &str) -> ReportRow {
    ReportRow {
        keys: vec![key.to_string()],
        figures: Figures {
            account_currency: "USD".into(),
            clicks,
            conversions,
            revenue: revenue.parse().unwrap(),
            cost: cost.parse().unwrap(),
            unattributed: 0,
            unvalued: 0,
        },
    }
}

fn rows() -> Vec<ReportRow> {
    vec![
        row("DE", 100, 5, "50", "10"),
        row("", 0, 0, "0", "7"),
        row("AT", 10, 1, "20", "0"),
        row("US", 200, 2, "10", "20"),
    ]
}

fn keys(report: &Report) -> Vec<&str> {
    report.rows.iter().map(|r| r.keys[0].as_str()).collect()
}

#[test]
fn rows_sort_by_any_column_and_missing_ratios_come_last() {
    let sorted = |sort: &str| {
        Report::assemble(
            request(&[("group_by", "country"), ("sort", sort)]),
            "USD".into(),
            rows(),
        )
    };
    assert_eq!(keys(&sorted("-revenue")), ["DE", "AT", "US", ""]);
    assert_eq!(keys(&sorted("revenue")), ["", "US", "AT", "DE"]);
    assert_eq!(keys(&sorted("country")), ["", "AT", "DE", "US"]);
    assert_eq!(keys(&sorted("-clicks")), ["US", "DE", "AT", ""]);
    // ROI: AT has no cost (no ROI), "" has cost and no revenue (-1).
    assert_eq!(keys(&sorted("-roi")), ["DE", "US", "", "AT"]);
    assert_eq!(keys(&sorted("roi")), ["", "US", "DE", "AT"]);
    // CR: "" has no clicks.
    assert_eq!(keys(&sorted("cr")), ["US", "DE", "AT", ""]);
}

#[test]
fn totals_cover_every_group_and_the_limit_cuts_rows_only() {
    let report = Report::assemble(
        request(&[("group_by", "country"), ("limit", "2")]),
        "USD".into(),
        rows(),
    );
    assert_eq!(keys(&report), ["DE", "AT"]);
    assert_eq!(report.rows_total, 4);
    assert_eq!(report.totals.clicks, 310);
    assert_eq!(report.totals.conversions, 8);
    assert_eq!(report.totals.revenue, Decimal::from(80));
    assert_eq!(report.totals.cost, Decimal::from(37));
    assert_eq!(report.totals.profit(), Decimal::from(43));
}

#[test]
fn json_has_rows_with_their_keys_and_totals() {
    let report = Report::assemble(
        request(&[("group_by", "country"), ("tz", "Asia/Kolkata")]),
        "USD".into(),
        rows(),
    );
    let json = report.to_json();
    assert_eq!(json["tz"], "Asia/Kolkata");
    assert_eq!(json["rows"][0]["country"], "DE");
    assert_eq!(json["rows"][0]["clicks"], 100);
    assert_eq!(json["rows"][0]["revenue"], "50");
    assert_eq!(json["rows"][0]["profit"], "40");
    assert_eq!(json["rows"][0]["roi"], "4");
    assert_eq!(json["rows"][0]["cr"], "0.05");
    assert_eq!(json["rows"][0]["epc"], "0.5");
    assert_eq!(json["rows"][3]["country"], "");
    assert_eq!(json["rows"][3]["cr"], serde_json::Value::Null);
    assert_eq!(json["totals"]["clicks"], 310);
    assert_eq!(json["totals"]["cost"], "37");
    for figure in Figure::ALL {
        assert!(json["totals"].get(figure.name()).is_some(), "{figure:?}");
    }
    assert_eq!(json["rows_total"], 4);
}
