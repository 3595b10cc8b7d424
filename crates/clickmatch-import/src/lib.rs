//! Reads the files an operator brings into clickmatch: the ECB's euro reference rates
//! ([`parse_ecb_rates`]), costs that are not per click ([`parse_costs`]), conversions a network
//! reported but never posted back ([`parse_conversions`], [`parse_conversions_json`]) and a
//! network's conversion export for reconciliation ([`parse_export`]).
//!
//! Parsing only: the caller reads the file and passes its bytes and its name (for messages);
//! nothing here touches the disk, the network or ClickHouse, so the CLI, the tests and a future
//! upload endpoint share one strict reader.
//!
//! Strict on purpose: these files are machine-made, and a value we would have to guess at
//! (`1,05`, a typo'd column, the same breakdown twice) means the file is not what the operator
//! thinks it is. One bad value refuses the whole file, and the [`ImportError`] says where
//! (`file:line:column`) and what was expected, so the operator can fix it and import again.

mod conversions;
mod costs;
mod export;
mod rates;
mod text;

pub use chrono_tz::Tz;
pub use conversions::{parse_conversions, parse_conversions_json, UploadLine, CONVERSION_COLUMNS};
pub use costs::{parse_costs, CostRow, Period, SUBS};
pub use export::{
    canonical_status, normalize, parse_export, parse_time, ExportField, ExportFormat, ExportRow,
    FormatError, NetworkExport,
};
pub use rates::{parse_ecb_rates, Rate, RatesFile, RatesFormat};

/// Why a file was refused, and where.
///
/// Displays as `file:line:column: message`, the form editors and terminals link to.
/// `line` is 1-based; `line == 0` means the whole file (it is empty, it has no rates, ...).
/// `column` is 1-based: in a CSV file the field's number (`Date` is column 1), in an XML file
/// the character column where the element starts; `column == 0` means the whole line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ImportError {
    /// The file name the caller passed in.
    pub file: String,
    /// 1-based line, or 0 for the whole file.
    pub line: u32,
    /// 1-based column (CSV: field number; XML: character column), or 0 for the whole line.
    pub column: u32,
    /// What kind of problem, for callers that react differently (exit codes, tests).
    pub kind: ErrorKind,
    /// What was wrong and what was expected, for the operator.
    pub message: String,
}

/// The kind of an [`ImportError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not UTF-8 text, or not well-formed CSV/XML.
    Encoding,
    /// Not the expected kind of file: not the ECB's envelope or header, unknown or missing
    /// columns.
    Format,
    /// A value that is not what its column or attribute holds (a date, a rate, an amount, ...).
    Value,
    /// The same rate or cost row twice in one file, with different values or from two lines.
    Duplicate,
    /// Nothing to import.
    Empty,
}

impl ImportError {
    pub(crate) fn new(
        file: &str,
        (line, column): (u32, u32),
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> ImportError {
        ImportError {
            file: file.to_string(),
            line,
            column,
            kind,
            message: message.into(),
        }
    }
}
