//! A network's conversion export (CSV), read for `clickmatch reconcile` ([`parse_export`]).
//!
//! Which column holds what comes from an [`ExportFormat`]: a network's (TUNE, Everflow, CAKE,
//! from their documentation), clickmatch's own names, or `--columns`. Columns the mapping does
//! not name are ignored: exports carry many (offer names, IPs, devices). A bad value refuses
//! the whole file, naming `file:line:column`, like the other readers here: a comparison that
//! silently skipped a line would report its conversion as "only here".

mod formats;
mod time;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clickmatch_core::money::{parse_amount, Currency};
use rust_decimal::Decimal;

pub use formats::{canonical_status, normalize, ExportField, ExportFormat, FormatError};
pub use time::parse_time;

use crate::text::{clamp, csv_error, decode, record_line, show};
use crate::{ErrorKind, ImportError};

/// One conversion as the network reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The 1-based line it is on.
    pub line: u32,
    /// Trimmed; empty when the column is missing or the cell is empty (the network recorded
    /// the conversion without our click ID).
    pub click_id: String,
    /// Trimmed; empty when there is none.
    pub txid: String,
    pub event: String,
    /// The amount the network pays, as it reports it.
    pub payout: Option<Decimal>,
    /// The currency column's, else the one the payout text names (`$2.50`), else `None`.
    pub currency: Option<Currency>,
    /// [`canonical_status`] of the status cell; `None` without a status column or value.
    pub status: Option<String>,
    /// The status cell as written.
    pub status_raw: String,
    pub time: Option<DateTime<Utc>>,
}

/// A whole export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkExport {
    /// The mapping it was read with.
    pub format: ExportFormat,
    /// For each field found, the header name of its column.
    pub columns: BTreeMap<ExportField, String>,
    pub rows: Vec<ExportRow>,
}

impl NetworkExport {
    /// Whether the export has a column for `field`.
    pub fn has(&self, field: ExportField) -> bool {
        self.columns.contains_key(&field)
    }

    /// The earliest and latest conversion times, if any row has one.
    pub fn time_range(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let mut times = self.rows.iter().filter_map(|r| r.time);
        let first = times.next()?;
        Some(times.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
    }
}

/// Reads an export with `format`. Local times are in `tz` (the account's zone the network
/// exported in). At least a click ID or a transaction ID column must be there, and every
/// column `--columns` named; a missing mapped column is an error that lists the header found.
pub fn parse_export(
    bytes: &[u8],
    file: &str,
    format: &ExportFormat,
    tz: Tz,
) -> Result<NetworkExport, ImportError> {
    let text = decode(bytes, file)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let Some(header) = records.next() else {
        return Err(ImportError::new(
            file,
            (0, 0),
            ErrorKind::Empty,
            "empty file (expected the network's conversion export with its header line)",
        ));
    };
    let header = header.map_err(|e| csv_error(file, &e))?;
    let positions = locate(&header, format, file)?;
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(file, &e))?;
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        rows.push(read_row(&record, &positions, file, tz)?);
    }
    if rows.is_empty() {
        return Err(ImportError::new(
            file,
            (0, 0),
            ErrorKind::Empty,
            "no conversions after the header (expected at least one line)",
        ));
    }
    let columns = positions
        .iter()
        .map(|(field, &i)| (*field, header.get(i).unwrap_or_default().trim().to_string()))
        .collect();
    Ok(NetworkExport {
        format: format.clone(),
        columns,
        rows,
    })
}

/// For each field the export has, the index of its column.
fn locate(
    header: &csv::StringRecord,
    format: &ExportFormat,
    file: &str,
) -> Result<BTreeMap<ExportField, usize>, ImportError> {
    let line = record_line(header);
    let found: Vec<String> = header.iter().map(normalize).collect();
    let listing = || {
        header
            .iter()
            .map(|name| show(name.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut positions = BTreeMap::new();
    for field in ExportField::ALL {
        let at = format.names(field).iter().find_map(|name| {
            let name = normalize(name);
            found.iter().position(|f| *f == name)
        });
        match at {
            Some(i) => {
                positions.insert(field, i);
            }
            None if format.is_explicit(field) => {
                return Err(ImportError::new(
                    file,
                    (line, 0),
                    ErrorKind::Format,
                    format!(
                        "no column {} for {field} (from --columns); the header has: {}",
                        show(&format.names(field)[0]),
                        listing()
                    ),
                ));
            }
            None => {}
        }
    }
    if !positions.contains_key(&ExportField::ClickId) && !positions.contains_key(&ExportField::Txid)
    {
        let expected = |field| {
            format
                .names(field)
                .iter()
                .map(|n| show(n))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        return Err(ImportError::new(
            file,
            (line, 0),
            ErrorKind::Format,
            format!(
                "no click ID column ({}) and no transaction ID column ({}) for a {} export; \
                 the header has: {} (name them with --columns click_id=…,txid=…)",
                expected(ExportField::ClickId),
                expected(ExportField::Txid),
                format.title,
                listing()
            ),
        ));
    }
    Ok(positions)
}

fn read_row(
    record: &csv::StringRecord,
    positions: &BTreeMap<ExportField, usize>,
    file: &str,
    tz: Tz,
) -> Result<ExportRow, ImportError> {
    let line = record_line(record);
    let cell = |field| {
        positions
            .get(&field)
            .map(|&i| (i, record.get(i).unwrap_or_default().trim()))
    };
    let value = |field| cell(field).map_or("", |(_, v)| v).to_string();
    let error = |i: usize, field: ExportField, message: String| {
        ImportError::new(
            file,
            (line, clamp(i + 1)),
            ErrorKind::Value,
            format!("{field}: {message}"),
        )
    };

    let mut payout = None;
    let mut currency = None;
    if let Some((i, text)) = cell(ExportField::Currency).filter(|(_, v)| !v.is_empty()) {
        currency = Some(
            Currency::parse(text).map_err(|e| error(i, ExportField::Currency, e.to_string()))?,
        );
    }
    if let Some((i, text)) = cell(ExportField::Payout).filter(|(_, v)| !v.is_empty()) {
        let amount =
            parse_amount(text).map_err(|e| error(i, ExportField::Payout, e.to_string()))?;
        if let Some(column) = currency.filter(|c| !amount.admits(*c)) {
            return Err(error(
                i,
                ExportField::Payout,
                format!(
                    "{} names another currency than the currency column's {column}",
                    show(text)
                ),
            ));
        }
        currency = currency.or(amount.currency);
        payout = Some(amount.value);
    }
    let time = match cell(ExportField::Time).filter(|(_, v)| !v.is_empty()) {
        Some((i, text)) => Some(
            time::parse_time(text, tz)
                .map_err(|e| error(i, ExportField::Time, format!("{}: {e}", show(text))))?,
        ),
        None => None,
    };
    let status_raw = value(ExportField::Status);
    Ok(ExportRow {
        line,
        click_id: value(ExportField::ClickId),
        txid: value(ExportField::Txid),
        event: value(ExportField::Event),
        payout,
        currency,
        status: (!status_raw.is_empty()).then(|| canonical_status(&status_raw)),
        status_raw,
        time,
    })
}

#[cfg(test)]
mod tests;
