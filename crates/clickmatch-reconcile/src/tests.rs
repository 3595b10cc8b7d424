use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clickmatch_core::money::Currency;
use clickmatch_import::{parse_export, ExportField, ExportFormat, ExportRow, NetworkExport, Tz};
use rust_decimal::Decimal;

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn row(line: u32, click_id: &str, txid: &str) -> ExportRow {
    ExportRow {
        line,
        click_id: click_id.into(),
        txid: txid.into(),
        event: String::new(),
        payout: Some(dec("2.50")),
        currency: Some(Currency::USD),
        status: Some("approved".into()),
        status_raw: "Approved".into(),
        time: Some(at("2026-11-02T10:00:00Z")),
    }
}

fn ours(id: &str, click_id: &str, txid: &str) -> Ours {
    Ours {
        conversion_id: id.into(),
        click_id: click_id.into(),
        txid: txid.into(),
        offer_id: "1".into(),
        event: "sale".into(),
        status: "approved".into(),
        payout: dec("2.50"),
        currency: "USD".into(),
        payout_issue: String::new(),
        time: at("2026-11-02T10:00:05Z"),
        in_scope: true,
    }
}

fn export(rows: Vec<ExportRow>) -> NetworkExport {
    NetworkExport {
        format: ExportFormat::clickmatch(),
        columns: ExportField::ALL
            .into_iter()
            .map(|f| (f, f.name().to_string()))
            .collect(),
        rows,
    }
}

fn options() -> Options {
    Options {
        file: "x.csv".into(),
        tolerance: dec("0.01"),
        max_differences: 0,
        from: at("2026-11-02T00:00:00Z"),
        to: at("2026-11-03T00:00:00Z"),
    }
}

#[test]
fn txid_first_then_click_id() {
    let network = vec![row(2, "c1", "t1"), row(3, "c2", "t2"), row(4, "c3", "")];
    let here = vec![
        ours("a", "other-click", "t1"), // the network's txid wins over the click ID
        ours("b", "c2", ""),            // no txid here: by click ID
        ours("c", "c3", "t9"),          // the row has no txid: by click ID
    ];
    let m = match_conversions(&network, &here);
    assert_eq!(
        m.pairs,
        vec![
            Pair {
                network: 0,
                ours: 0,
                by: MatchedBy::Txid
            },
            Pair {
                network: 1,
                ours: 1,
                by: MatchedBy::ClickId
            },
            Pair {
                network: 2,
                ours: 2,
                by: MatchedBy::ClickId
            },
        ]
    );
    assert!(m.only_network.is_empty() && m.only_here.is_empty());
}

#[test]
fn different_transaction_ids_are_different_conversions() {
    // CAKE: two leads on one click; the network lists lead 2 only, we have lead 1 only.
    let network = vec![row(2, "c1", "lead-2")];
    let here = vec![ours("a", "c1", "lead-1")];
    let m = match_conversions(&network, &here);
    assert!(m.pairs.is_empty());
    assert_eq!(m.only_network, vec![0]);
    assert_eq!(m.only_here, vec![0]);
}

#[test]
fn each_conversion_pairs_once_event_then_time_decides() {
    // TUNE: one click, a lead and a sale sharing the click's transaction ID.
    let mut lead = row(2, "c1", "t1");
    lead.event = "lead".into();
    let mut sale = row(3, "c1", "t1");
    sale.event = "SALE".into();
    let mut third = row(4, "c1", "t1");
    third.time = Some(at("2026-11-02T18:00:00Z"));
    let mut ours_sale = ours("s", "c1", "t1");
    ours_sale.time = at("2026-11-02T09:00:00Z");
    let mut ours_lead = ours("l", "c1", "t1");
    ours_lead.event = "lead".into();
    let mut ours_late = ours("z", "c1", "t1");
    ours_late.event = "upsell".into();
    ours_late.time = at("2026-11-02T18:00:01Z");
    let here = vec![ours_sale, ours_lead, ours_late];
    let m = match_conversions(&[lead, sale, third], &here);
    let pairs: Vec<(usize, usize)> = m.pairs.iter().map(|p| (p.network, p.ours)).collect();
    assert_eq!(pairs, vec![(0, 1), (1, 0), (2, 2)]);
}

#[test]
fn only_here_is_limited_to_the_scope() {
    let mut outside = ours("b", "c2", "t2");
    outside.in_scope = false;
    let m = match_conversions(&[], &[ours("a", "c1", "t1"), outside]);
    assert_eq!(m.only_here, vec![0]);
}

#[test]
fn differences_in_payout_currency_and_status() {
    let mut within = row(2, "c1", "t1");
    within.payout = Some(dec("2.505"));
    let mut beyond = row(3, "c2", "t2");
    beyond.payout = Some(dec("3.00"));
    let mut euro = row(4, "c3", "t3");
    euro.currency = Some(Currency::EUR);
    let mut rejected = row(5, "c4", "t4");
    rejected.status = Some("declined".into());
    rejected.status_raw = "Rejected".into();
    // A route without a status map stored "rejected" as sent: the same status.
    let mut agree = row(6, "c5", "t5");
    agree.status = Some("declined".into());
    let mut no_currency = row(7, "c6", "t6");
    no_currency.currency = None;
    let mut ours_rejected = ours("e", "c5", "t5");
    ours_rejected.status = "rejected".into();
    let mut ours_issue = ours("b", "c2", "t2");
    ours_issue.payout_issue = "payout_macro".into();
    let here = vec![
        ours("a", "c1", "t1"),
        ours_issue,
        ours("c", "c3", "t3"),
        ours("d", "c4", "t4"),
        ours_rejected,
        ours("f", "c6", "t6"),
    ];
    let network = vec![within, beyond, euro, rejected, agree, no_currency];
    let m = match_conversions(&network, &here);
    let report = build_report(&export(network), &here, &m, &Lookups::default(), &options());
    assert_eq!(report.matched, 6);
    let found: Vec<(u32, Vec<&str>)> = report
        .differences
        .iter()
        .map(|d| (d.line, d.fields.clone()))
        .collect();
    assert_eq!(
        found,
        vec![
            (3, vec!["payout"]),
            (4, vec!["currency"]),
            (5, vec!["status"])
        ]
    );
    let payout = &report.differences[0];
    assert_eq!(payout.network.payout, Some(dec("3.00")));
    assert_eq!(payout.here.payout, dec("2.50"));
    assert_eq!(payout.here.payout_issue, "payout_macro");
    assert_eq!(report.differences[2].network.status_raw, "Rejected");
    assert_eq!(report.discrepancies, 3);
    assert!(!report.passed);
}

#[test]
fn what_became_of_conversions_only_the_network_has() {
    let network = vec![
        row(2, "c-unattributed", "t1"),
        row(3, "c-clicked", "t2"),
        row(4, "c-unknown", "t3"),
        row(5, "", "t-posted"),
        row(6, "", "t-nothing"),
    ];
    let mut lookups = Lookups::default();
    for (received, reason) in [
        ("2026-11-02T10:00:00Z", "unknown_click_id"),
        ("2026-11-02T10:05:00Z", "expired"),
    ] {
        Lookups::add_unattributed(
            &mut lookups.unattributed_by_click,
            "c-unattributed",
            reason,
            "hint",
            at(received),
        );
    }
    Lookups::add_unattributed(
        &mut lookups.unattributed_by_txid,
        "t-posted",
        "missing_click_id",
        "cake_hash_fragment",
        at("2026-11-02T10:00:00Z"),
    );
    lookups
        .clicks
        .insert("c-clicked".into(), at("2026-11-02T09:00:00Z"));
    let m = match_conversions(&network, &[]);
    let report = build_report(&export(network), &[], &m, &lookups, &options());
    let fates: Vec<&Fate> = report.only_network.iter().map(|n| &n.here).collect();
    assert_eq!(
        fates[0],
        &Fate::Unattributed {
            reason: "expired".into(),
            hint: "hint".into(),
            found_by: "click_id",
            postbacks: 2,
            last_received: "2026-11-02T10:05:00Z".into(),
        }
    );
    assert_eq!(
        fates[1],
        &Fate::NeverPostedBack {
            click_time: "2026-11-02T09:00:00Z".into()
        }
    );
    assert_eq!(fates[2], &Fate::NeverReceived);
    assert!(
        matches!(fates[3], Fate::Unattributed { found_by: "txid", reason, .. } if reason == "missing_click_id")
    );
    assert_eq!(fates[4], &Fate::NoClickId);
}

#[test]
fn json_and_table_from_a_real_export() {
    let text = "click_id,txid,payout,currency,status,time\n\
                c1,t1,2.50,USD,approved,2026-11-02 10:00:00\n\
                c2,t2,9.00,USD,approved,2026-11-02 11:00:00\n\
                c3,t3,1.00,USD,approved,2026-11-02 12:00:00\n";
    let export = parse_export(
        text.as_bytes(),
        "net.csv",
        &ExportFormat::clickmatch(),
        Tz::UTC,
    )
    .unwrap();
    let here = vec![
        ours("a", "c1", "t1"),
        ours("b", "c2", "t2"),
        ours("z", "c9", "t9"),
    ];
    let m = match_conversions(&export.rows, &here);
    let mut options = options();
    options.max_differences = 3;
    let report = build_report(&export, &here, &m, &Lookups::default(), &options);
    assert!(report.passed, "3 discrepancies, at most 3 allowed");

    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["matched"], 2);
    assert_eq!(
        json["differences"][0]["fields"],
        serde_json::json!(["payout"])
    );
    assert_eq!(json["differences"][0]["network"]["payout"], "9.00");
    assert_eq!(json["only_network"][0]["here"]["outcome"], "never_received");
    assert_eq!(json["only_here"][0]["conversion_id"], "z");
    assert_eq!(json["export"]["columns"]["click_id"], "click_id");
    let keys: BTreeMap<String, serde_json::Value> = serde_json::from_value(json).unwrap();
    for key in [
        "matched",
        "differences",
        "only_network",
        "only_here",
        "passed",
    ] {
        assert!(keys.contains_key(key), "{key}");
    }

    let table = render_table(&report);
    for expected in [
        "matched: 2",
        "differences: 1",
        "9.00 USD approved",
        "2.50 USD approved",
        "only in the network: 1",
        "never received",
        "only here: 1",
        "3 discrepancies: within --max-differences 3",
    ] {
        assert!(table.contains(expected), "{expected:?} in\n{table}");
    }
}
