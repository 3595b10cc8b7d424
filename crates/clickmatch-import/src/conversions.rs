//! Conversions a network reported but never posted back: the CSV of `clickmatch upload` and
//! the JSON array of `POST /api/conversions`, read into [`UploadedConversion`]s.
//!
//! Columns (any order, names case-insensitive): `click_id` and `time` required, `payout`,
//! `currency`, `txid`, `event`, `status` optional (a missing column or an empty cell is an
//! absent value: the route's default event and status, the payout rules of money.md). Values
//! are kept as the network wrote them, as a postback would carry them; only `time` is read here.
//!
//! `time`: `2026-12-04 13:05:00` or `2026-12-04T13:05:00` (UTC), RFC 3339 with an offset
//! (`2026-12-04T13:05:00+01:00`, `…Z`), or Unix seconds. A conversion's time is its version and
//! is measured against the window, so it is never guessed: a line without one is refused.
//!
//! One bad line refuses the whole file (line and column named), like the other imports: the
//! upload is all or nothing, so a corrected file can be uploaded again as it is.

use chrono::{DateTime, NaiveDateTime};
use clickmatch_core::recovery::UploadedConversion;

use crate::text::{clamp, csv_error, decode, record_line, show};
use crate::{ErrorKind, ImportError};

/// The columns, in the order the documentation lists them.
pub const CONVERSION_COLUMNS: [&str; 7] = [
    "click_id", "payout", "currency", "txid", "event", "status", "time",
];

/// One line of an upload, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLine {
    /// 1-based line of the CSV file, or 1-based element of the JSON array.
    pub line: u32,
    pub conversion: UploadedConversion,
}

/// Longest value kept, as ingest's parameter limit would.
const MAX_VALUE: usize = 1024;

/// Reads an upload CSV (see the module docs).
pub fn parse_conversions(bytes: &[u8], file: &str) -> Result<Vec<UploadLine>, ImportError> {
    let text = decode(bytes, file)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let Some(header) = records.next() else {
        return Err(empty(
            file,
            "empty file (expected a header line: click_id,payout,currency,txid,event,status,time)",
        ));
    };
    let header = header.map_err(|e| csv_error(file, &e))?;
    let line = record_line(&header);
    let mut columns: Vec<Option<usize>> = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let field = CONVERSION_COLUMNS
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name));
        let at = (line, clamp(i + 1));
        match field {
            None => {
                return Err(ImportError::new(
                    file,
                    at,
                    ErrorKind::Format,
                    format!(
                        "unknown column {} (expected {})",
                        show(name),
                        CONVERSION_COLUMNS.join(", ")
                    ),
                ))
            }
            Some(f) if columns.contains(&Some(f)) => {
                return Err(ImportError::new(
                    file,
                    at,
                    ErrorKind::Format,
                    format!("column {} twice (expected each column once)", show(name)),
                ))
            }
            Some(f) => columns.push(Some(f)),
        }
    }
    for required in ["click_id", "time"] {
        let f = CONVERSION_COLUMNS.iter().position(|c| *c == required);
        if !columns.contains(&f) {
            return Err(ImportError::new(
                file,
                (line, 0),
                ErrorKind::Format,
                format!("no {required} column (expected a header such as click_id,payout,currency,txid,event,status,time)"),
            ));
        }
    }

    let mut lines = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(file, &e))?;
        let line = record_line(&record);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let mut values: [&str; 7] = [""; 7];
        for (i, value) in record.iter().enumerate() {
            match columns.get(i).copied().flatten() {
                Some(f) => values[f] = value,
                None if value.is_empty() => {}
                None => {
                    return Err(ImportError::new(
                        file,
                        (line, clamp(i + 1)),
                        ErrorKind::Format,
                        format!("{} is past the last column of the header", show(value)),
                    ))
                }
            }
        }
        let conversion = conversion(&values).map_err(|(f, message)| {
            let column = columns.iter().position(|c| *c == Some(f)).unwrap_or(0);
            ImportError::new(file, (line, clamp(column + 1)), ErrorKind::Value, message)
        })?;
        lines.push(UploadLine { line, conversion });
    }
    if lines.is_empty() {
        return Err(empty(
            file,
            "no conversions after the header (expected at least one line)",
        ));
    }
    Ok(lines)
}

/// Reads the body of `POST /api/conversions`: a JSON array of objects with the CSV's columns
/// as keys (values strings; `payout` and `time` may be numbers). An error names the element
/// (1-based, as `line`) and the key's column number in [`CONVERSION_COLUMNS`] order (as
/// `column`), with the key in the message.
pub fn parse_conversions_json(bytes: &[u8], file: &str) -> Result<Vec<UploadLine>, ImportError> {
    let elements: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(bytes)
        .map_err(|e| {
        ImportError::new(
            file,
            (0, 0),
            ErrorKind::Encoding,
            format!("not a JSON array of objects: {e}"),
        )
    })?;
    if elements.is_empty() {
        return Err(empty(
            file,
            "an empty array (expected at least one conversion)",
        ));
    }
    let mut lines = Vec::with_capacity(elements.len());
    for (i, element) in elements.iter().enumerate() {
        let line = clamp(i + 1);
        let mut values: [String; 7] = Default::default();
        for (key, value) in element {
            let Some(f) = CONVERSION_COLUMNS.iter().position(|c| c == key) else {
                return Err(ImportError::new(
                    file,
                    (line, 0),
                    ErrorKind::Format,
                    format!(
                        "element {line}: unknown key {} (expected {})",
                        show(key),
                        CONVERSION_COLUMNS.join(", ")
                    ),
                ));
            };
            values[f] = match value {
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                other => {
                    return Err(ImportError::new(
                        file,
                        (line, clamp(f + 1)),
                        ErrorKind::Value,
                        format!("element {line}: {key} is {other} (expected a string)"),
                    ))
                }
            };
        }
        let refs: [&str; 7] = std::array::from_fn(|f| values[f].as_str());
        let conversion = conversion(&refs).map_err(|(f, message)| {
            ImportError::new(
                file,
                (line, clamp(f + 1)),
                ErrorKind::Value,
                format!("element {line}: {message}"),
            )
        })?;
        lines.push(UploadLine { line, conversion });
    }
    Ok(lines)
}

fn empty(file: &str, message: &str) -> ImportError {
    ImportError::new(file, (0, 0), ErrorKind::Empty, message)
}

/// The conversion of `values` (in [`CONVERSION_COLUMNS`] order), or the field that is wrong.
fn conversion(values: &[&str; 7]) -> Result<UploadedConversion, (usize, String)> {
    for (f, value) in values.iter().enumerate() {
        if value.chars().count() > MAX_VALUE {
            let name = CONVERSION_COLUMNS[f];
            return Err((f, format!("{name} is longer than {MAX_VALUE} characters")));
        }
    }
    let [click_id, payout, currency, txid, event, status, time] = *values;
    if click_id.is_empty() {
        return Err((
            0,
            "click_id is empty (expected the click ID the network reports)".into(),
        ));
    }
    let time_ms = parse_time(time).ok_or_else(|| {
        (
            6,
            format!(
                "time {} is not a time (expected 2026-12-04 13:05:00 in UTC, RFC 3339 with an \
                 offset, or Unix seconds)",
                show(time)
            ),
        )
    })?;
    Ok(UploadedConversion {
        click_id: click_id.into(),
        payout: payout.into(),
        currency: currency.into(),
        txid: txid.into(),
        event: event.into(),
        status: status.into(),
        time_ms,
    })
}

/// Unix ms of `text` (see the module docs for the forms); `None` before 2000 or unreadable.
fn parse_time(text: &str) -> Option<u64> {
    const Y2000_S: i64 = 946_684_800;
    let seconds = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<i64>().ok()?
    } else if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        at.timestamp()
    } else {
        ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())?
            .and_utc()
            .timestamp()
    };
    // Unix seconds until 2286: a 13-digit number is milliseconds, refused rather than guessed.
    if !(Y2000_S..10_000_000_000).contains(&seconds) {
        return None;
    }
    u64::try_from(seconds).ok().map(|s| s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdefghjkmnpqrs";

    #[test]
    fn reads_lines_in_any_column_order() {
        let csv = format!(
            "time,Click_ID,payout,currency,status\n\
             2025-12-04 13:05:00,{ID},12.50,EUR,approved\n\
             ,,,,\n\
             1764853500,{ID}, 3 ,,\n"
        );
        let lines = parse_conversions(csv.as_bytes(), "net.csv").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, 2);
        let c = &lines[0].conversion;
        assert_eq!((c.click_id.as_str(), c.payout.as_str()), (ID, "12.50"));
        assert_eq!(c.time_ms, 1_764_853_500_000);
        assert_eq!(
            (lines[1].line, lines[1].conversion.payout.as_str()),
            (4, "3")
        );
        assert_eq!(lines[1].conversion.time_ms, 1_764_853_500_000);
        assert_eq!(lines[1].conversion.event, "");
    }

    #[test]
    fn a_bad_line_refuses_the_file_naming_line_and_column() {
        let csv = format!("click_id,payout,time\n{ID},1,2026-12-04 13:05:00\n{ID},1,yesterday\n");
        let e = parse_conversions(csv.as_bytes(), "net.csv").unwrap_err();
        assert_eq!((e.line, e.column, e.kind), (3, 3, ErrorKind::Value));
        assert!(
            e.to_string().starts_with("net.csv:3:3: time \"yesterday\""),
            "{e}"
        );

        let e = parse_conversions(b"click_id,amount,time\n", "f").unwrap_err();
        assert_eq!((e.line, e.column), (1, 2));
        let e = parse_conversions(b"click_id,payout\n", "f").unwrap_err();
        assert!(e.message.contains("no time column"), "{e}");
        let e = parse_conversions(b"time,click_id\n1764853500,\n", "f").unwrap_err();
        assert_eq!((e.line, e.column), (2, 2));
        let e = parse_conversions(b"click_id,time\n", "f").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Empty);
        let e = parse_conversions(
            format!("click_id,time\n{ID},1764853500000\n").as_bytes(),
            "f",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (2, 2), "milliseconds are not guessed");
    }

    #[test]
    fn json_elements_are_read_like_lines() {
        let body = format!(
            r#"[{{"click_id":"{ID}","payout":12.5,"time":"2025-12-04T14:05:00+01:00"}},
               {{"click_id":"{ID}","time":1764853500,"status":"pending"}}]"#
        );
        let lines = parse_conversions_json(body.as_bytes(), "request").unwrap();
        assert_eq!(lines[0].conversion.payout, "12.5");
        assert_eq!(lines[0].conversion.time_ms, 1_764_853_500_000);
        assert_eq!(
            (lines[1].line, lines[1].conversion.status.as_str()),
            (2, "pending")
        );

        let bad = format!(r#"[{{"click_id":"{ID}","time":"x"}},{{"clickid":"{ID}"}}]"#);
        let e = parse_conversions_json(bad.as_bytes(), "request").unwrap_err();
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.message.starts_with("element 1: time"), "{e}");
        let e = parse_conversions_json(b"{}", "request").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Encoding);
    }
}
