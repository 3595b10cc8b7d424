//! The ECB sample files in `tests/data/ecb/` (workspace root): each format, their agreement,
//! and each broken variant's error position.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use clickmatch_import::{parse_ecb_rates, ErrorKind, ImportError, Rate, RatesFile, RatesFormat};
use rust_decimal::Decimal;

fn read(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/data/ecb/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> RatesFile {
    parse_ecb_rates(&read(name), name).unwrap_or_else(|e| panic!("{e}"))
}

fn refuse(name: &str) -> ImportError {
    match parse_ecb_rates(&read(name), name) {
        Ok(file) => panic!("{name} was accepted: {file:?}"),
        Err(e) => e,
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// The rates as day → currency → rate, compared by value (`0.8324` equals `0.83240`).
fn by_day(rates: &[Rate]) -> BTreeMap<NaiveDate, BTreeMap<String, Decimal>> {
    let mut map: BTreeMap<NaiveDate, BTreeMap<String, Decimal>> = BTreeMap::new();
    for r in rates {
        let old = map
            .entry(r.day)
            .or_default()
            .insert(r.currency.as_str().to_string(), r.per_eur.normalize());
        assert!(old.is_none(), "{} {} twice", r.day, r.currency);
    }
    map
}

const DEC_4: [(&str, &str); 9] = [
    ("CHF", "0.9318"),
    ("CZK", "25.214"),
    ("EUR", "1"),
    ("GBP", "0.83105"),
    ("HUF", "409.85"),
    ("JPY", "158.12"),
    ("PLN", "4.2705"),
    ("SEK", "11.4985"),
    ("USD", "1.0543"),
];

fn expected_dec_4() -> BTreeMap<String, Decimal> {
    DEC_4
        .iter()
        .map(|&(c, r)| (c.to_string(), dec(r)))
        .collect()
}

#[test]
fn daily_xml() {
    let file = parse("eurofxref-daily.xml");
    assert_eq!(file.format, RatesFormat::Xml);
    assert!(file.skipped_currencies.is_empty());
    let days = by_day(&file.rates);
    assert_eq!(
        days.keys().copied().collect::<Vec<_>>(),
        [day("2026-12-04")]
    );
    assert_eq!(days[&day("2026-12-04")], expected_dec_4());
    // Sorted by day, then currency.
    let order: Vec<&str> = file.rates.iter().map(|r| r.currency.as_str()).collect();
    assert_eq!(order, DEC_4.map(|(c, _)| c));
    assert_eq!(file.rates[0].per_eur.to_string(), "0.9318");
}

#[test]
fn daily_csv_matches_daily_xml() {
    let csv = parse("eurofxref.csv");
    assert_eq!(csv.format, RatesFormat::Csv);
    assert!(csv.skipped_currencies.is_empty());
    assert_eq!(csv.rates, parse("eurofxref-daily.xml").rates);
}

#[test]
fn hist_csv() {
    let file = parse("eurofxref-hist.csv");
    assert_eq!(file.format, RatesFormat::Csv);
    // CYP and SIT are not active ISO 4217 codes; BGN still is (N/A on the recent days).
    assert_eq!(file.skipped_currencies, ["CYP", "SIT"]);
    let days = by_day(&file.rates);
    let expected_days = [
        "2007-12-28",
        "2026-11-27",
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
    ];
    assert_eq!(
        days.keys().copied().collect::<Vec<_>>(),
        expected_days.map(day)
    );
    assert_eq!(days[&day("2026-12-04")], expected_dec_4());
    // N/A is no rate, not an error: HUF is missing on one day, BGN on the recent ones.
    assert!(!days[&day("2026-11-27")].contains_key("HUF"));
    assert!(!days[&day("2026-12-04")].contains_key("BGN"));
    assert_eq!(days[&day("2007-12-28")]["BGN"], dec("1.9558"));
    assert_eq!(days[&day("2026-12-03")]["GBP"], dec("0.8324"));
    // Every day has EUR at 1.
    assert!(days.values().all(|d| d["EUR"] == Decimal::ONE));
    assert_eq!(file.rates.len(), 9 + 9 + 9 + 9 + 9 + 8 + 10);
}

#[test]
fn hist_xml_matches_hist_csv() {
    let xml = parse("eurofxref-hist.xml");
    assert_eq!(xml.format, RatesFormat::Xml);
    // The XML names only the currencies a day has: CYP on 2007-12-28, never SIT.
    assert_eq!(xml.skipped_currencies, ["CYP"]);
    let csv = parse("eurofxref-hist.csv");
    assert_eq!(by_day(&xml.rates), by_day(&csv.rates));
}

#[test]
fn daily_is_part_of_hist() {
    let hist = by_day(&parse("eurofxref-hist.xml").rates);
    let daily = by_day(&parse("eurofxref-daily.xml").rates);
    assert_eq!(hist[&day("2026-12-04")], daily[&day("2026-12-04")]);
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

#[test]
fn comma_decimal() {
    let name = "broken/comma-decimal.csv";
    let e = refuse(name);
    assert_at(&e, name, 3, 2, ErrorKind::Value, "\"1,0521\" is not a rate");
    assert!(e
        .message
        .contains("expected a positive decimal such as 1.0543"));
}

#[test]
fn duplicate_day_with_another_rate() {
    let name = "broken/duplicate-day.csv";
    let e = refuse(name);
    assert_at(&e, name, 4, 2, ErrorKind::Duplicate, "at line 3, column 2");
    assert!(e.message.contains("USD on 2026-12-03 is 1.0530"), "{e}");
}

#[test]
fn no_rates() {
    let name = "broken/no-rates.csv";
    let e = refuse(name);
    assert_at(&e, name, 0, 0, ErrorKind::Empty, "no rates in the file");
    assert!(e.message.contains("CYP, SIT"), "{e}");
}

#[test]
fn bad_csv_date() {
    let name = "broken/bad-date.csv";
    let e = refuse(name);
    assert_at(
        &e,
        name,
        2,
        1,
        ErrorKind::Value,
        "\"04 Dezember 2026\" is not a date",
    );
}

#[test]
fn zero_rate() {
    let name = "broken/zero-rate.xml";
    // `\t\t\t<Cube currency='GBP' rate='0'/>`: the element starts in column 4.
    assert_at(
        &refuse(name),
        name,
        12,
        4,
        ErrorKind::Value,
        "\"0\" is not a rate",
    );
}

#[test]
fn bad_time() {
    let name = "broken/bad-time.xml";
    assert_at(
        &refuse(name),
        name,
        8,
        3,
        ErrorKind::Value,
        "time=\"2026-12-32\"",
    );
}

#[test]
fn truncated_xml() {
    let name = "broken/truncated.xml";
    assert_at(
        &refuse(name),
        name,
        11,
        61,
        ErrorKind::Encoding,
        "malformed XML",
    );
}

#[test]
fn not_the_ecb_envelope() {
    let name = "broken/not-ecb.xml";
    assert_at(
        &refuse(name),
        name,
        2,
        1,
        ErrorKind::Format,
        "the root element is <rss>",
    );
    let name = "broken/other-sender.xml";
    assert_at(
        &refuse(name),
        name,
        2,
        1,
        ErrorKind::Format,
        "\"Example Bank\"",
    );
}

#[test]
fn cost_csv_is_not_a_rate_file() {
    let path = format!(
        "{}/../../tests/data/costs/daily.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let e = parse_ecb_rates(&std::fs::read(path).unwrap(), "daily.csv").unwrap_err();
    assert_at(
        &e,
        "daily.csv",
        1,
        2,
        ErrorKind::Format,
        "not the ECB's reference-rate CSV",
    );
    assert!(
        e.message.contains("\"campaign\" is not a currency code"),
        "{e}"
    );
}

/// Small inline cases: each a one-line change from a good file.
#[test]
fn inline_variants() {
    let header = "<?xml version=\"1.0\"?>\n<gesmes:Envelope xmlns:gesmes=\"g\" xmlns=\"e\">\
        <gesmes:subject>Reference rates</gesmes:subject><gesmes:Sender><gesmes:name>\
        European Central Bank</gesmes:name></gesmes:Sender>\n";
    let xml = |cubes: &str| format!("{header}<Cube>{cubes}</Cube></gesmes:Envelope>");
    let ok = |s: &str| parse_ecb_rates(s.as_bytes(), "x").unwrap_or_else(|e| panic!("{e}"));
    let err = |s: &str| parse_ecb_rates(s.as_bytes(), "x").unwrap_err();

    // Same rate twice (1.05 and 1.050) is one fact; EUR given as 1 is accepted.
    let same = ok(&xml(
        "<Cube time='2026-12-04'><Cube currency='USD' rate='1.05'/>\
        <Cube currency='usd' rate='1.050'/><Cube currency='EUR' rate='1'/></Cube>",
    ));
    assert_eq!(same.rates.len(), 2);
    let e = err(&xml(
        "<Cube time='2026-12-04'><Cube currency='EUR' rate='1.1'/></Cube>",
    ));
    assert!(e.message.contains("EUR is given as 1.1"), "{e}");
    let e = err(&xml(
        "<Cube time='2026-12-04'><Cube currency='US' rate='1'/></Cube>",
    ));
    assert!(e.message.contains("\"US\" is not a currency code"), "{e}");
    let e = err(&xml(
        "<Cube time='2026-12-04'><Cube currency='USD' rate='-1'/></Cube>",
    ));
    assert_eq!((e.line, e.column, e.kind), (3, 31, ErrorKind::Value), "{e}");
    let e = err(&xml(
        "<Cube time='2026-12-04'><Rate currency='USD' rate='1'/></Cube>",
    ));
    assert!(e.message.contains("unexpected <Rate>"), "{e}");
    let e = err(&xml("<Cube time='2026-12-04'><Cube rate='1'/></Cube>"));
    assert!(e.message.contains("without currency"), "{e}");
    let e = err(&xml(""));
    assert_eq!(e.kind, ErrorKind::Empty);
    let e = err("<gesmes:Envelope><Cube><Cube time='2026-12-04'><Cube currency='USD' rate='1'/></Cube></Cube></gesmes:Envelope>");
    assert!(
        e.message
            .contains("<gesmes:Sender><gesmes:name> is nothing"),
        "{e}"
    );

    // CSV: a value past the header, a short line, a repeated column, a bad header.
    let e = err("Date,USD,\n2026-12-04,1.05,7\n");
    assert_eq!((e.line, e.column, e.kind), (2, 3, ErrorKind::Format), "{e}");
    let e = err("Date,USD,JPY\n2026-12-04,1.05\n");
    assert_eq!((e.line, e.column), (2, 3), "{e}");
    let e = err("Date,USD,JPY,usd\n2026-12-04,1.05,158,1.05\n");
    assert_eq!((e.line, e.column), (1, 4), "{e}");
    let e = err("Date,US Dollar\n2026-12-04,1.05\n");
    assert_eq!((e.line, e.column, e.kind), (1, 2, ErrorKind::Format), "{e}");
    assert_eq!(err("").kind, ErrorKind::Empty);
    assert_eq!(err(" \n").kind, ErrorKind::Empty);
    // Windows line ends and a byte-order mark are fine.
    assert_eq!(ok("\u{feff}Date,USD\r\n2026-12-04,1.05\r\n").rates.len(), 2);
}
