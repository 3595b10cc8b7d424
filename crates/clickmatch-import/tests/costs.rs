//! The cost samples in `tests/data/costs/` (workspace root) and their broken variants.

use std::str::FromStr;

use chrono::NaiveDate;
use clickmatch_core::money::Currency;
use clickmatch_import::{parse_costs, CostRow, ErrorKind, ImportError, Period};
use rust_decimal::Decimal;

fn read(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/data/costs/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> Vec<CostRow> {
    parse_costs(&read(name), name).unwrap_or_else(|e| panic!("{e}"))
}

fn refuse(name: &str) -> ImportError {
    match parse_costs(&read(name), name) {
        Ok(rows) => panic!("{name} was accepted: {rows:?}"),
        Err(e) => e,
    }
}

fn assert_at(e: &ImportError, file: &str, line: u32, column: u32, kind: ErrorKind, needle: &str) {
    assert_eq!(
        (e.file.as_str(), e.line, e.column, e.kind),
        (file, line, column, kind),
        "{e}"
    );
    assert!(e.message.contains(needle), "{e:?} lacks {needle:?}");
    assert!(e
        .to_string()
        .starts_with(&format!("{file}:{line}:{column}: ")));
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn day(s: &str) -> Period {
    Period::Day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

fn hour(s: &str) -> Period {
    Period::Hour(chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

#[test]
fn daily() {
    let rows = parse("daily.csv");
    assert_eq!(rows.len(), 6);
    let first = &rows[0];
    assert_eq!(first.period, day("2026-12-01"));
    assert_eq!(first.campaign, "winter-sale");
    assert_eq!(first.amount, dec("1250.50"));
    assert_eq!(first.currency, Currency::EUR);
    assert_eq!(first.source, "google");
    assert_eq!(first.subs[0], "brand");
    assert!(first.subs[1..].iter().all(String::is_empty));
    assert_eq!(first.line, 2);
    assert_eq!(first.period.start_unix(), 1_796_083_200);
    assert_eq!(first.period.length_hours(), 24);
    // Same campaign and day on several lines: a breakdown, fine.
    assert_eq!(
        rows.iter()
            .filter(|r| r.campaign == "winter-sale" && r.period == day("2026-12-01"))
            .count(),
        3
    );
    assert_eq!(rows[2].subs[0], "");
    // Quoted names keep their comma.
    assert_eq!(rows[5].campaign, "cpa deal, partner 7");
    assert_eq!(rows[5].currency, Currency::GBP);
    assert_eq!(rows[5].line, 7);
}

#[test]
fn hourly() {
    let rows = parse("hourly.csv");
    let periods: Vec<Period> = rows.iter().map(|r| r.period).collect();
    assert_eq!(
        periods,
        [
            hour("2026-12-04 13:00"),
            hour("2026-12-04 14:00"),
            hour("2026-12-04 15:00"),
            hour("2026-12-04 13:00"),
            hour("2026-12-04 23:00"),
        ]
    );
    // Header names any case with spaces; `usd` is USD; sub2 lands in subs[1].
    assert_eq!(rows[0].currency, Currency::USD);
    assert_eq!(rows[0].subs[1], "300x250");
    assert_eq!(rows[0].amount, dec("45.12"));
    assert_eq!(rows[3].source, "video");
    assert_eq!(rows[4].amount, Decimal::ZERO);
    assert_eq!(rows[1].period.start_unix(), 1_796_342_400 + 14 * 3600);
    assert_eq!(rows[1].period.length_hours(), 1);
}

#[test]
fn typo_column() {
    let name = "broken/typo-column.csv";
    assert_at(
        &refuse(name),
        name,
        1,
        3,
        ErrorKind::Format,
        "unknown column \"ammount\" (column 3)",
    );
}

#[test]
fn duplicate_row_names_both_lines() {
    let name = "broken/duplicate-row.csv";
    let e = refuse(name);
    assert_at(&e, name, 4, 2, ErrorKind::Duplicate, "as line 2");
}

#[test]
fn comma_amount() {
    let name = "broken/comma-amount.csv";
    assert_at(
        &refuse(name),
        name,
        3,
        4,
        ErrorKind::Value,
        "\"980,00\" is not an amount",
    );
}

#[test]
fn half_hour() {
    let name = "broken/half-hour.csv";
    assert_at(
        &refuse(name),
        name,
        3,
        1,
        ErrorKind::Value,
        "not on the hour",
    );
}

#[test]
fn bad_currency() {
    let name = "broken/bad-currency.csv";
    assert_at(
        &refuse(name),
        name,
        2,
        4,
        ErrorKind::Value,
        "\"EURO\" is not a currency",
    );
}

#[test]
fn date_and_hour() {
    let name = "broken/date-and-hour.csv";
    assert_at(
        &refuse(name),
        name,
        1,
        2,
        ErrorKind::Format,
        "both a date and an hour column",
    );
}

#[test]
fn missing_amount() {
    let name = "broken/missing-amount.csv";
    assert_at(
        &refuse(name),
        name,
        1,
        0,
        ErrorKind::Format,
        "missing column amount",
    );
}

#[test]
fn negative_amount() {
    let name = "broken/negative-amount.csv";
    assert_at(
        &refuse(name),
        name,
        3,
        2,
        ErrorKind::Value,
        "\"-40.00\" is negative",
    );
}

#[test]
fn inline_variants() {
    let err = |s: &str| parse_costs(s.as_bytes(), "c.csv").unwrap_err();
    let ok = |s: &str| parse_costs(s.as_bytes(), "c.csv").unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(err("").kind, ErrorKind::Empty);
    assert_eq!(
        err("date,campaign,amount,currency\n").kind,
        ErrorKind::Empty
    );
    let e = err("campaign,amount,currency\nx,1,EUR\n");
    assert_eq!((e.line, e.column), (1, 0), "{e}");
    assert!(e.message.contains("no date or hour column"), "{e}");
    let e = err("date,campaign,amount,currency,Amount\n");
    assert_eq!((e.line, e.column), (1, 5), "{e}");
    let e = err("date,campaign,amount,currency,ammount,sub11\n");
    assert!(
        e.message
            .contains("unknown columns \"ammount\" (column 5), \"sub11\" (column 6)"),
        "{e}"
    );
    let e = err("date,campaign,amount,currency\n2026-12-01, ,1,EUR\n");
    assert_eq!((e.line, e.column), (2, 2), "{e}");
    assert!(e.message.contains("empty campaign"), "{e}");
    let e = err("date,campaign,amount,currency\n2026-12-01,x,1\n");
    assert_eq!((e.line, e.column), (2, 4), "{e}");
    let e = err("date,campaign,amount,currency\n2026-12-01,x,1,EUR,9\n");
    assert_eq!((e.line, e.column), (2, 5), "{e}");
    let e = err("date,campaign,amount,currency\n2026/12/01,x,1,EUR\n");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    let e = err("date,campaign,amount,currency\n2026-12-01,x,1.0000001,EUR\n");
    assert!(e.message.contains("more than 6 decimal places"), "{e}");
    let e = err("date,campaign,amount,currency\n2026-12-01,x,1000000000000,EUR\n");
    assert!(e.message.contains("too large"), "{e}");
    let e = err("hour,campaign,amount,currency\n2026-12-04 13:00+01:00,x,1,EUR\n");
    assert!(e.message.contains("is not an hour"), "{e}");

    // A trailing comma (an empty header cell) is fine while its cells stay empty; a BOM too.
    let rows = ok("\u{feff}date,campaign,amount,currency,\r\n2026-12-01,x,1,EUR,\r\n");
    assert_eq!(rows.len(), 1);
    let e = err("date,campaign,amount,currency,\n2026-12-01,x,1,EUR,9\n");
    assert_eq!((e.line, e.column), (2, 5), "{e}");
    // Different periods or subs: different keys.
    let rows = ok("date,campaign,amount,currency,sub10\n2026-12-01,x,1,EUR,a\n2026-12-02,x,1,EUR,a\n2026-12-01,x,1,EUR,b\n");
    assert_eq!(rows[2].subs[9], "b");
    // Not UTF-8: the position of the bad byte.
    let e = parse_costs(
        b"date,campaign,amount,currency\n2026-12-01,caf\xE9,1,EUR\n",
        "c.csv",
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, 15, ErrorKind::Encoding),
        "{e}"
    );
}
