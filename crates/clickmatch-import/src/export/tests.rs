//! The export reader on one small export of each supported format
//! (`tests/data/exports/`, also what the end-to-end reconcile test runs against).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clickmatch_core::money::Currency;
use rust_decimal::Decimal;

use super::*;

const TUNE: &[u8] = include_bytes!("../../tests/data/exports/tune.csv");
const EVERFLOW: &[u8] = include_bytes!("../../tests/data/exports/everflow.csv");
const CAKE: &[u8] = include_bytes!("../../tests/data/exports/cake.csv");
const CUSTOM: &[u8] = include_bytes!("../../tests/data/exports/custom.csv");

const CUSTOM_COLUMNS: &str = "click_id=ref,txid=order,payout=amount,status=state,time=when";

fn read(bytes: &[u8], network: &str, tz: Tz) -> NetworkExport {
    parse_export(
        bytes,
        "x.csv",
        &ExportFormat::for_network(network).unwrap(),
        tz,
    )
    .unwrap()
}

fn dec(s: &str) -> Option<Decimal> {
    Some(s.parse().unwrap())
}

fn at(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().unwrap())
}

#[test]
fn tune_export() {
    let export = read(TUNE, "hasoffers", Tz::UTC);
    assert_eq!(export.rows.len(), 6);
    assert_eq!(export.columns[&ExportField::ClickId], "Partner Sub ID 1");
    assert_eq!(export.columns[&ExportField::Time], "Date / Time");
    let first = &export.rows[0];
    assert_eq!(first.line, 2);
    assert_eq!(
        (first.click_id.as_str(), first.txid.as_str()),
        ("tune-c1", "tx-t1")
    );
    assert_eq!(first.event, "1");
    assert_eq!(first.payout, dec("2.50"));
    assert_eq!(first.currency, Some(Currency::USD));
    assert_eq!(first.status.as_deref(), Some("approved"));
    assert_eq!(first.time, at("2026-11-02T10:00:00Z"));
    // `$3.00` with the currency column USD: the money parser's, and they agree.
    assert_eq!(export.rows[1].payout, dec("3.00"));
    assert_eq!(export.rows[2].status.as_deref(), Some("declined"));
    assert_eq!(export.rows[2].status_raw, "rejected");
    assert_eq!(
        export.time_range(),
        Some((
            "2026-11-02T10:00:00Z".parse().unwrap(),
            "2026-11-02T14:30:00Z".parse().unwrap()
        ))
    );
}

#[test]
fn everflow_export() {
    let export = read(EVERFLOW, "everflow", Tz::UTC);
    assert_eq!(export.rows.len(), 3);
    // `payout`, not the network's `revenue` next to it.
    assert_eq!(export.columns[&ExportField::Payout], "payout");
    let row = &export.rows[1];
    assert_eq!(row.click_id, "ef-c2");
    assert_eq!(row.txid, "4c1d0d6e6c2a4bb5a2d3b8f0e9a7c622");
    assert_eq!(row.event, "Base");
    assert_eq!(row.payout, dec("4.00"));
    assert_eq!(row.currency, Some(Currency::EUR));
    assert_eq!(row.time, at("2026-11-03T11:00:00Z"));
}

#[test]
fn cake_export_in_the_accounts_time_zone() {
    let new_york: Tz = "America/New_York".parse().unwrap();
    let export = read(CAKE, "cake", new_york);
    assert_eq!(export.rows.len(), 3);
    // s2, not Sub ID 1; Lead ID (#leadid#) as txid.
    assert_eq!(export.rows[0].click_id, "cake-c1");
    assert_eq!(export.rows[0].txid, "lead-1");
    // 10:00 in New York on 4 November 2026 (EST, UTC-5).
    assert_eq!(export.rows[0].time, at("2026-11-04T15:00:00Z"));
    assert_eq!(export.rows[1].status.as_deref(), Some("reversed"));
    assert_eq!(export.rows[2].time, at("2026-11-04T17:15:00Z"));
}

#[test]
fn custom_columns_export() {
    let format = ExportFormat::clickmatch()
        .with_columns(CUSTOM_COLUMNS)
        .unwrap();
    let export = parse_export(CUSTOM, "custom.csv", &format, Tz::UTC).unwrap();
    assert_eq!(export.rows.len(), 3);
    let row = &export.rows[0];
    assert_eq!(
        (row.click_id.as_str(), row.txid.as_str()),
        ("custom-c1", "ord-1")
    );
    // A decimal comma and a symbol: the money parser reads it, currency from the text.
    assert_eq!(row.payout, dec("1.50"));
    assert_eq!(row.currency, Some(Currency::EUR));
    assert!(!export.has(ExportField::Event));
}

#[test]
fn a_missing_mapped_column_lists_the_header() {
    let format = ExportFormat::clickmatch()
        .with_columns("click_id=ref,payout=price")
        .unwrap();
    let error = parse_export(CUSTOM, "custom.csv", &format, Tz::UTC).unwrap_err();
    assert_eq!((error.line, error.column), (1, 0));
    assert!(
        error.message.contains("no column \"price\" for payout"),
        "{error}"
    );
    assert!(
        error.message.contains("\"when\", \"order\", \"ref\""),
        "{error}"
    );

    // CAKE's mapping on Everflow's export: no key column at all.
    let error = parse_export(
        EVERFLOW,
        "everflow.csv",
        &ExportFormat::for_network("cake").unwrap(),
        Tz::UTC,
    )
    .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Format);
    assert!(error.message.contains("\"Sub ID 2\" or \"s2\""), "{error}");
    assert!(error.message.contains("\"sub1\""), "{error}");
}

#[test]
fn a_bad_value_names_line_and_column() {
    let format = ExportFormat::clickmatch();
    let cases: [(&str, (u32, u32), &str); 4] = [
        ("click_id,payout\nc1,2.50\nc2,{payout}\n", (3, 2), "payout"),
        ("click_id,payout\nc1,\"1,234\"\n", (2, 2), "ambiguous"),
        ("click_id,time\nc1,yesterday\n", (2, 2), "expected a time"),
        (
            "click_id,payout,currency\nc1,€2.50,USD\n",
            (2, 2),
            "another currency",
        ),
    ];
    for (text, position, says) in cases {
        let error = parse_export(text.as_bytes(), "x.csv", &format, Tz::UTC).unwrap_err();
        assert_eq!((error.line, error.column), position, "{text}: {error}");
        assert_eq!(error.kind, ErrorKind::Value);
        assert!(error.message.contains(says), "{text}: {error}");
    }
}

#[test]
fn keeps_rows_without_our_click_id_and_skips_blank_lines() {
    let text = "click_id,txid,payout\n,tx-9,1.00\n,,\nc2,,2.00\n";
    let export = parse_export(
        text.as_bytes(),
        "x.csv",
        &ExportFormat::clickmatch(),
        Tz::UTC,
    )
    .unwrap();
    assert_eq!(export.rows.len(), 2);
    assert_eq!(export.rows[0].click_id, "");
    assert_eq!(export.rows[0].txid, "tx-9");
    assert_eq!(export.rows[1].line, 4);
    assert_eq!(export.rows[1].status, None);
    assert_eq!(export.time_range(), None);
}

#[test]
fn empty_exports_are_refused() {
    for text in ["", "click_id,payout\n", "click_id,payout\n,\n"] {
        let error = parse_export(
            text.as_bytes(),
            "x.csv",
            &ExportFormat::clickmatch(),
            Tz::UTC,
        )
        .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Empty, "{text:?}");
    }
}
