//! Helpers both readers share: decoding, positions, strict dates and decimals.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::{ErrorKind, ImportError};

/// The bytes as UTF-8 text, without a leading byte-order mark (spreadsheets write one).
pub(crate) fn decode<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        // The valid prefix is text, so its lines and columns can be counted.
        let good = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        let at = LineIndex::new(good).locate(good, good.len());
        ImportError::new(
            file,
            at,
            ErrorKind::Encoding,
            "not UTF-8 text (expected the file as downloaded, saved as UTF-8)",
        )
    })
}

/// Byte offsets to 1-based line and character column, for the XML reader (which reports
/// byte offsets) without rescanning the text for every element.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    pub(crate) fn locate(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        // Count characters, not bytes, so the column matches what an editor shows.
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (clamp(line), clamp(column))
    }
}

/// Line and column numbers are `u32`; files with more lines than that are not rate files.
pub(crate) fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The 1-based line a CSV record starts on.
pub(crate) fn record_line(record: &csv::StringRecord) -> u32 {
    record
        .position()
        .map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX))
}

/// A `csv` error (only malformed input reaches here: rows may have any length) at its line.
pub(crate) fn csv_error(file: &str, e: &csv::Error) -> ImportError {
    let line = e
        .position()
        .map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX));
    ImportError::new(
        file,
        (line, 0),
        ErrorKind::Encoding,
        format!("not a readable CSV line: {e}"),
    )
}

/// A value quoted for a message, shortened so one huge cell cannot flood the terminal.
pub(crate) fn show(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

/// `YYYY-MM-DD` exactly: chrono's `%Y-%m-%d` also takes `2026-1-4` and `+2026-01-04`.
pub(crate) fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year = s[0..4].parse().ok()?;
    let month = s[5..7].parse().ok()?;
    let day = s[8..10].parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Digits with at most one `.` between digits: no sign, exponent, spaces, or thousands
/// separators. `Decimal::from_str` alone would take `1_000`, and round long fractions.
pub(crate) fn parse_plain_decimal(s: &str) -> Option<Decimal> {
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|c| c.is_ascii_digit());
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    // Refuses what does not fit in 96 bits or 28 places instead of rounding it.
    Decimal::from_str_exact(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_decimals_only() {
        for ok in ["0", "1", "1.0543", "158.12", "0.000001", "007.5"] {
            assert!(parse_plain_decimal(ok).is_some(), "{ok}");
        }
        for bad in [
            "", ".", "1.", ".5", "-1", "+1", "1,05", "1 000", "1_000", "1e3", "1.2.3", " 1", "N/A",
            "١",
        ] {
            assert!(parse_plain_decimal(bad).is_none(), "{bad}");
        }
        assert!(parse_plain_decimal("99999999999999999999999999999999999").is_none());
    }

    #[test]
    fn iso_dates_only() {
        assert_eq!(
            parse_iso_date("2026-12-04"),
            NaiveDate::from_ymd_opt(2026, 12, 4)
        );
        for bad in [
            "2026-2-04",
            "+026-12-04",
            "2026-13-01",
            "2026-02-30",
            "2026/12/04",
            "２０２６-12-04",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn locate_counts_characters() {
        let text = "ab\nçé<x";
        let index = LineIndex::new(text);
        assert_eq!(index.locate(text, 0), (1, 1));
        assert_eq!(index.locate(text, 3), (2, 1));
        assert_eq!(index.locate(text, text.find('<').unwrap()), (2, 3));
        assert_eq!(index.locate(text, text.len()), (2, 5));
    }

    #[test]
    fn decode_names_the_bad_byte() {
        let e = decode(b"Date\nab\xFFc", "x.csv").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(decode(b"\xEF\xBB\xBFdate", "x").unwrap(), "date");
    }
}
