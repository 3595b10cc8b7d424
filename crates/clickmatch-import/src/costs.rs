//! Costs that are not per click (CPM buys, daily budgets, CPA deals), as a CSV an operator
//! exports from the ad network or writes by hand:
//!
//! ```text
//! date,campaign,source,amount,currency
//! 2026-12-04,winter-sale,google,1250.50,EUR
//! ```
//!
//! Columns, in any order, names case-insensitive with surrounding spaces trimmed:
//! `date` (`YYYY-MM-DD`) *or* `hour` (UTC, see [`parse_costs`]), `campaign`, `amount`
//! (decimal ≥ 0, `.` separator, at most 6 places, below 10^12), `currency` (ISO 4217), and
//! optionally `source` and `sub1` … `sub10`. An unknown column refuses the file: a typo such as
//! `ammount` must not silently import nothing.

use std::collections::HashMap;
use std::fmt;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use clickmatch_core::money::Currency;
use rust_decimal::Decimal;

use crate::text::{
    clamp, csv_error, decode, parse_iso_date, parse_plain_decimal, record_line, show,
};
use crate::{ErrorKind, ImportError};

/// How many `subN` columns a cost row can break down by (`sub1` … `sub10`), as clicks have.
pub use clickmatch_core::records::SUB_COUNT as SUBS;

/// The time a cost row covers, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// A whole UTC day.
    Day(NaiveDate),
    /// One UTC hour; minutes and seconds are always 0.
    Hour(NaiveDateTime),
}

impl Period {
    /// When the period starts.
    pub fn start(&self) -> NaiveDateTime {
        match *self {
            Period::Day(day) => day.and_time(NaiveTime::MIN),
            Period::Hour(hour) => hour,
        }
    }

    /// When the period starts, as Unix seconds (UTC), the form ClickHouse `DateTime` takes.
    pub fn start_unix(&self) -> i64 {
        self.start().and_utc().timestamp()
    }

    /// How long the period is: 24 for a day, 1 for an hour (UTC has no DST changes).
    pub fn length_hours(&self) -> u32 {
        match self {
            Period::Day(_) => 24,
            Period::Hour(_) => 1,
        }
    }
}

impl fmt::Display for Period {
    /// `2026-12-04` or `2026-12-04 13:00`, the forms the file uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Day(day) => write!(f, "{}", day.format("%Y-%m-%d")),
            Period::Hour(hour) => write!(f, "{}", hour.format("%Y-%m-%d %H:00")),
        }
    }
}

/// One line of a cost file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostRow {
    pub period: Period,
    /// Trimmed, never empty.
    pub campaign: String,
    /// At least 0, at most 6 decimal places, below 10^12.
    pub amount: Decimal,
    pub currency: Currency,
    /// Trimmed; empty when the file has no `source` column or the cell is empty.
    pub source: String,
    /// `sub1` … `sub10`, trimmed; empty where the file has no such column or cell.
    pub subs: [String; SUBS],
    /// The 1-based line the row is on, for messages after parsing (e.g. from the database).
    pub line: u32,
}

/// Reads a cost CSV (see the module docs for the columns).
///
/// `hour` takes `2026-12-04 13:00`, `2026-12-04T13:00:00Z`, and `2026-12-04 13:00:00`, that
/// is a date, a space or `T`, the hour, `:00`, optionally `:00`, optionally `Z`: always UTC,
/// on the hour (an offset or non-zero minutes refuse the file, since costs are per whole hour).
///
/// The same campaign and period may come on several lines with different `source` or `sub`
/// values (a breakdown). The same campaign, period, source and subs twice refuses the file,
/// naming both lines: whether the operator meant the sum or a correction cannot be told.
/// Re-importing a campaign and period replaces the earlier import; that is the caller's job.
pub fn parse_costs(bytes: &[u8], file: &str) -> Result<Vec<CostRow>, ImportError> {
    let text = decode(bytes, file)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let Some(header) = records.next() else {
        return Err(ImportError::new(
            file,
            (0, 0),
            ErrorKind::Empty,
            format!("empty file (expected a header line such as \"{EXAMPLE_HEADER}\")"),
        ));
    };
    let header = header.map_err(|e| csv_error(file, &e))?;
    let columns = Columns::read(&header, file)?;

    let mut rows = Vec::new();
    let mut lines: HashMap<Key, u32> = HashMap::new();
    for record in records {
        let record = record.map_err(|e| csv_error(file, &e))?;
        let row = columns.row(&record, file)?;
        let key = (
            row.campaign.clone(),
            row.period,
            row.source.clone(),
            row.subs.clone(),
        );
        if let Some(first) = lines.insert(key, row.line) {
            return Err(ImportError::new(
                file,
                (row.line, columns.campaign_column()),
                ErrorKind::Duplicate,
                format!(
                    "same campaign, {}, source and subs as line {first} (expected each \
                     breakdown once per file; add the amounts up or keep the right line)",
                    if columns.hourly { "hour" } else { "date" }
                ),
            ));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(ImportError::new(
            file,
            (0, 0),
            ErrorKind::Empty,
            "no cost rows after the header (expected at least one line of costs)",
        ));
    }
    Ok(rows)
}

type Key = (String, Period, String, [String; SUBS]);

const EXAMPLE_HEADER: &str = "date,campaign,amount,currency";
const KNOWN: &str = "date or hour, campaign, amount, currency, and optionally source, sub1 … sub10";

/// What a header cell names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Date,
    Hour,
    Campaign,
    Amount,
    Currency,
    Source,
    Sub(usize),
    /// No name (a trailing comma): its cells must be empty.
    Blank,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "" => Field::Blank,
            "date" => Field::Date,
            "hour" => Field::Hour,
            "campaign" => Field::Campaign,
            "amount" => Field::Amount,
            "currency" => Field::Currency,
            "source" => Field::Source,
            other => {
                let n: usize = other.strip_prefix("sub")?.parse().ok()?;
                // `sub01` would parse as 1; only the canonical spelling is a sub column.
                if !(1..=SUBS).contains(&n) || other != format!("sub{n}") {
                    return None;
                }
                Field::Sub(n - 1)
            }
        })
    }
}

/// The header, checked: which field each column is.
struct Columns {
    fields: Vec<(Field, String)>,
    hourly: bool,
}

impl Columns {
    fn read(header: &csv::StringRecord, file: &str) -> Result<Columns, ImportError> {
        let line = record_line(header);
        let mut fields = Vec::with_capacity(header.len());
        let mut unknown = Vec::new();
        for (i, name) in header.iter().enumerate() {
            match Field::parse(name) {
                Some(field) => {
                    let earlier = fields
                        .iter()
                        .position(|(f, _)| *f == field && field != Field::Blank);
                    if let Some(earlier) = earlier {
                        return Err(ImportError::new(
                            file,
                            (line, clamp(i + 1)),
                            ErrorKind::Format,
                            format!(
                                "column {} is also column {} (expected each column once)",
                                show(name),
                                earlier + 1
                            ),
                        ));
                    }
                    fields.push((field, name.to_string()));
                }
                None => unknown.push((i, name)),
            }
        }
        if let Some(&(first, _)) = unknown.first() {
            let names: Vec<String> = unknown
                .iter()
                .map(|&(i, name)| format!("{} (column {})", show(name), i + 1))
                .collect();
            let s = if unknown.len() == 1 { "" } else { "s" };
            return Err(ImportError::new(
                file,
                (line, clamp(first + 1)),
                ErrorKind::Format,
                format!("unknown column{s} {} (expected {KNOWN})", names.join(", ")),
            ));
        }
        let has = |field: Field| fields.iter().any(|(f, _)| *f == field);
        let hourly = match (has(Field::Date), has(Field::Hour)) {
            (true, false) => false,
            (false, true) => true,
            (true, true) => {
                let at = fields
                    .iter()
                    .position(|(f, _)| *f == Field::Hour)
                    .unwrap_or(0);
                return Err(ImportError::new(
                    file,
                    (line, clamp(at + 1)),
                    ErrorKind::Format,
                    "both a date and an hour column (expected one: a file is either daily or hourly)",
                ));
            }
            (false, false) => {
                return Err(ImportError::new(
                    file,
                    (line, 0),
                    ErrorKind::Format,
                    format!(
                        "no date or hour column (expected a header such as \"{EXAMPLE_HEADER}\")"
                    ),
                ));
            }
        };
        let missing: Vec<&str> = [
            (Field::Campaign, "campaign"),
            (Field::Amount, "amount"),
            (Field::Currency, "currency"),
        ]
        .into_iter()
        .filter(|&(field, _)| !has(field))
        .map(|(_, name)| name)
        .collect();
        if !missing.is_empty() {
            return Err(ImportError::new(
                file,
                (line, 0),
                ErrorKind::Format,
                format!(
                    "missing column{} {} (expected {KNOWN})",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                ),
            ));
        }
        Ok(Columns { fields, hourly })
    }

    fn campaign_column(&self) -> u32 {
        let i = self
            .fields
            .iter()
            .position(|(f, _)| *f == Field::Campaign)
            .unwrap_or(0);
        clamp(i + 1)
    }

    fn row(&self, record: &csv::StringRecord, file: &str) -> Result<CostRow, ImportError> {
        let line = record_line(record);
        let error = |i: usize, kind: ErrorKind, message: String| {
            ImportError::new(file, (line, clamp(i + 1)), kind, message)
        };
        if let Some((i, value)) = record
            .iter()
            .enumerate()
            .skip(self.fields.len())
            .find(|(_, v)| !v.is_empty())
        {
            return Err(error(
                i,
                ErrorKind::Format,
                format!(
                    "{} is in a column without a name in the header",
                    show(value)
                ),
            ));
        }
        let mut period = None;
        let mut campaign = String::new();
        let mut amount = Decimal::ZERO;
        let mut currency = Currency::EUR;
        let mut source = String::new();
        let mut subs: [String; SUBS] = Default::default();
        for (i, (field, name)) in self.fields.iter().enumerate() {
            let Some(value) = record.get(i) else {
                if *field == Field::Blank {
                    continue;
                }
                return Err(error(
                    i,
                    ErrorKind::Format,
                    format!("the line ends before the {} column (expected a value for every column in the header)", show(name)),
                ));
            };
            match field {
                Field::Date => {
                    let day = parse_iso_date(value).ok_or_else(|| {
                        error(
                            i,
                            ErrorKind::Value,
                            format!(
                                "{} is not a date (expected YYYY-MM-DD such as 2026-12-04)",
                                show(value)
                            ),
                        )
                    })?;
                    period = Some(Period::Day(day));
                }
                Field::Hour => {
                    let hour = parse_hour(value).map_err(|m| error(i, ErrorKind::Value, m))?;
                    period = Some(Period::Hour(hour));
                }
                Field::Campaign if value.is_empty() => {
                    return Err(error(
                        i,
                        ErrorKind::Value,
                        "empty campaign (expected the campaign's name)".to_string(),
                    ));
                }
                Field::Campaign => campaign = value.to_string(),
                Field::Amount => {
                    amount = parse_amount(value).map_err(|m| error(i, ErrorKind::Value, m))?
                }
                Field::Currency => {
                    currency = Currency::parse(value).map_err(|_| {
                        error(
                            i,
                            ErrorKind::Value,
                            format!(
                                "{} is not a currency (expected an ISO 4217 code such as EUR)",
                                show(value)
                            ),
                        )
                    })?;
                }
                Field::Source => source = value.to_string(),
                Field::Sub(n) => subs[*n] = value.to_string(),
                Field::Blank if value.is_empty() => {}
                Field::Blank => {
                    return Err(error(
                        i,
                        ErrorKind::Format,
                        format!(
                            "{} is in a column without a name in the header",
                            show(value)
                        ),
                    ));
                }
            }
        }
        // Columns::read made sure a date or an hour column exists, and every field was read.
        let period =
            period.ok_or_else(|| error(0, ErrorKind::Format, "no date or hour".to_string()))?;
        Ok(CostRow {
            period,
            campaign,
            amount,
            currency,
            source,
            subs,
            line,
        })
    }
}

const HOUR_EXPECTED: &str = "expected a UTC hour such as 2026-12-04 13:00 or 2026-12-04T13:00:00Z";

/// `YYYY-MM-DD`, ` ` or `T`, `HH:00`, then optionally `:00`, then optionally `Z`.
fn parse_hour(value: &str) -> Result<NaiveDateTime, String> {
    let bad = || format!("{} is not an hour ({HOUR_EXPECTED})", show(value));
    if !value.is_ascii() || value.len() < 16 {
        return Err(bad());
    }
    let (date, rest) = value.split_at(10);
    let day = parse_iso_date(date).ok_or_else(bad)?;
    let rest = rest.strip_prefix([' ', 'T']).ok_or_else(bad)?;
    let rest = rest.strip_suffix('Z').unwrap_or(rest);
    let b = rest.as_bytes();
    let shape = match b.len() {
        5 => b[2] == b':',
        8 => b[2] == b':' && b[5] == b':',
        _ => false,
    } && b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit());
    if !shape {
        return Err(bad());
    }
    let hour: u32 = rest[0..2].parse().map_err(|_| bad())?;
    if hour > 23 {
        return Err(bad());
    }
    if rest[3..].bytes().any(|c| c != b'0' && c != b':') {
        return Err(format!(
            "{} is not on the hour (costs are per whole hour: minutes and seconds must be 00)",
            show(value)
        ));
    }
    day.and_hms_opt(hour, 0, 0).ok_or_else(bad)
}

/// Largest amount plus one: 10^12, far above any day's spend, below what `Decimal` and
/// ClickHouse `Decimal(18, 6)` hold.
const AMOUNT_LIMIT: i64 = 1_000_000_000_000;
const AMOUNT_PLACES: u32 = 6;
const AMOUNT_EXPECTED: &str =
    "expected a decimal of at least 0 with a \".\" separator, such as 1250.50";

fn parse_amount(value: &str) -> Result<Decimal, String> {
    let Some(amount) = parse_plain_decimal(value) else {
        if value.starts_with('-') {
            return Err(format!("{} is negative ({AMOUNT_EXPECTED})", show(value)));
        }
        return Err(format!(
            "{} is not an amount ({AMOUNT_EXPECTED})",
            show(value)
        ));
    };
    // Trailing zeros (`12.50000000`) are places without value; only real precision counts.
    let amount = if amount.scale() > AMOUNT_PLACES {
        amount.normalize()
    } else {
        amount
    };
    if amount.scale() > AMOUNT_PLACES {
        return Err(format!(
            "{} has more than {AMOUNT_PLACES} decimal places (expected an amount such as 1250.50)",
            show(value)
        ));
    }
    if amount >= Decimal::from(AMOUNT_LIMIT) {
        return Err(format!(
            "{} is too large (expected an amount below 10^12)",
            show(value)
        ));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_forms() {
        let at13 = NaiveDate::from_ymd_opt(2026, 12, 4)
            .unwrap()
            .and_hms_opt(13, 0, 0)
            .unwrap();
        for ok in [
            "2026-12-04 13:00",
            "2026-12-04T13:00:00Z",
            "2026-12-04 13:00:00",
            "2026-12-04T13:00",
            "2026-12-04T13:00Z",
        ] {
            assert_eq!(parse_hour(ok), Ok(at13), "{ok}");
        }
        for bad in [
            "2026-12-04",
            "2026-12-04 24:00",
            "2026-12-04 13",
            "2026-12-04 13:00+01:00",
            "2026-12-04 1:00",
            "2026-12-04  13:00",
            "2026-12-04 13:00:00ZZ",
            "2026-12-04 13:0:00",
        ] {
            assert!(
                parse_hour(bad).unwrap_err().contains("is not an hour"),
                "{bad}"
            );
        }
        for off in ["2026-12-04 13:30", "2026-12-04T13:00:01Z"] {
            assert!(
                parse_hour(off).unwrap_err().contains("not on the hour"),
                "{off}"
            );
        }
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("0"), Ok(Decimal::ZERO));
        assert_eq!(parse_amount("12.500000000").unwrap().to_string(), "12.5");
        assert_eq!(parse_amount("0.000001").unwrap().to_string(), "0.000001");
        assert!(parse_amount("0.0000001")
            .unwrap_err()
            .contains("more than 6"));
        assert!(parse_amount("-1").unwrap_err().contains("negative"));
        assert!(parse_amount("1,5").unwrap_err().contains("not an amount"));
        assert!(parse_amount("1000000000000")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_amount("999999999999.999999").is_ok());
    }

    #[test]
    fn periods() {
        let day = Period::Day(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap());
        assert_eq!((day.start_unix(), day.length_hours()), (1_796_342_400, 24));
        let hour = Period::Hour(
            NaiveDate::from_ymd_opt(2026, 12, 4)
                .unwrap()
                .and_hms_opt(13, 0, 0)
                .unwrap(),
        );
        assert_eq!(
            (hour.start_unix(), hour.length_hours()),
            (1_796_342_400 + 13 * 3600, 1)
        );
        assert_eq!(
            (day.to_string(), hour.to_string()),
            ("2026-12-04".into(), "2026-12-04 13:00".into())
        );
    }

    #[test]
    fn sub_names() {
        assert_eq!(Field::parse("SUB10"), Some(Field::Sub(9)));
        assert_eq!(Field::parse("sub1"), Some(Field::Sub(0)));
        for bad in ["sub0", "sub11", "sub01", "sub", "sub+1", "ammount"] {
            assert_eq!(Field::parse(bad), None, "{bad}");
        }
    }
}
