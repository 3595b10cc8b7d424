//! The ECB's euro foreign-exchange reference rates, in the four files it publishes at
//! <https://www.ecb.europa.eu/stats/policy_and_exchange_rates/euro_reference_exchange_rates/>:
//!
//! * `eurofxref-daily.xml`: a `<gesmes:Envelope>` whose `<Cube>` holds one
//!   `<Cube time='2026-12-04'>` of `<Cube currency='USD' rate='1.0543'/>` elements;
//! * `eurofxref-hist.xml` and `eurofxref-hist-90d.xml`: the same with one `<Cube time=...>`
//!   per business day, newest first;
//! * `eurofxref.csv` (inside `eurofxref.zip`): `Date, USD, JPY, ...,` then one row
//!   `04 December 2026, 1.0543, 158.12, ...,` (spaces after the commas, a trailing comma);
//! * `eurofxref-hist.csv` (inside `eurofxref-hist.zip`): `Date,USD,JPY,BGN,CYP,...,` then one
//!   row per day, `2026-12-04,1.0543,158.12,N/A,N/A,...,`, where `N/A` (or nothing) means no
//!   rate that day, and columns of currencies since replaced by the euro stay in the header.
//!
//! The format is told from the content, not the name: XML starts with `<`, anything else is
//! read as CSV.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use clickmatch_core::money::Currency;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use rust_decimal::Decimal;

use crate::text::{
    clamp, csv_error, decode, parse_iso_date, parse_plain_decimal, record_line, show, LineIndex,
};
use crate::{ErrorKind, ImportError};

/// One reference rate: how many units of `currency` one euro bought on `day`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// The business day the ECB fixed the rate (around 16:00 CET).
    pub day: NaiveDate,
    pub currency: Currency,
    /// Units of `currency` for 1 EUR, as the ECB publishes it (USD 1.0543 means 1 EUR = 1.0543
    /// USD). Always positive.
    pub per_eur: Decimal,
}

/// Which of the ECB's encodings the file was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatesFormat {
    /// `eurofxref-daily.xml`, `eurofxref-hist.xml`, `eurofxref-hist-90d.xml`.
    Xml,
    /// `eurofxref.csv`, `eurofxref-hist.csv`.
    Csv,
}

/// What [`parse_ecb_rates`] read from one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatesFile {
    pub format: RatesFormat,
    /// Sorted by day, then currency; one rate per (day, currency).
    ///
    /// Every day that has at least one rate also has `EUR` at exactly 1, so that downstream
    /// a euro amount converts like any other currency (no special case for the base currency).
    pub rates: Vec<Rate>,
    /// Codes the file has rates for but that are not active ISO 4217 currencies, sorted:
    /// currencies the euro or a redenomination replaced (`CYP`, `SIT`, `HRK`, `TRL`, ...),
    /// which `eurofxref-hist.*` keeps for its old days. Their rates are left out, and the
    /// caller reports the codes so that an operator knows which columns were dropped.
    pub skipped_currencies: Vec<String>,
}

/// Reads one of the ECB's reference-rate files (see the module docs for the four formats).
///
/// `file` names the file in errors. The whole file is refused, with the line and column, for:
/// a value that is not a positive decimal with a `.` (`1,05`, `0`, `-1`); a date that is not
/// one; the same day and currency twice with different rates; XML that is not the ECB's
/// `<gesmes:Envelope>` or CSV without its `Date` header; a file with no rates at all.
/// `N/A` and empty cells are days without a rate, not errors.
pub fn parse_ecb_rates(bytes: &[u8], file: &str) -> Result<RatesFile, ImportError> {
    let text = decode(bytes, file)?;
    if text.trim().is_empty() {
        return Err(ImportError::new(
            file,
            (0, 0),
            ErrorKind::Empty,
            "empty file (expected an ECB reference-rate file, XML or CSV)",
        ));
    }
    let mut rates = Collector::new(file);
    let format = if text.trim_start().starts_with('<') {
        read_xml(text, &mut rates)?;
        RatesFormat::Xml
    } else {
        read_csv(text, &mut rates)?;
        RatesFormat::Csv
    };
    rates.finish(format)
}

const RATE_EXPECTED: &str = "expected a positive decimal such as 1.0543";

/// A rate value: a plain positive decimal.
fn parse_rate(value: &str) -> Result<Decimal, String> {
    match parse_plain_decimal(value) {
        Some(rate) if rate > Decimal::ZERO => Ok(rate),
        _ => Err(format!("{} is not a rate ({RATE_EXPECTED})", show(value))),
    }
}

/// How a currency code in a header or attribute is taken.
enum Code {
    Active(Currency),
    /// Looks like a code but is not an active one (a replaced currency): skipped, reported.
    Historic,
}

fn parse_code(raw: &str) -> Result<Code, String> {
    if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "{} is not a currency code (expected three letters such as USD)",
            show(raw)
        ));
    }
    Ok(Currency::parse(raw).map_or(Code::Historic, Code::Active))
}

/// A rate's place in the file: CSV line and field, or the XML element's byte offset.
#[derive(Clone, Copy)]
enum Place {
    At(u32, u32),
    Offset(usize),
}

/// Gathers the rates, refusing conflicting duplicates, then adds the EUR rows.
struct Collector<'a> {
    file: &'a str,
    /// Set for XML, whose places are byte offsets.
    index: Option<(&'a str, LineIndex)>,
    seen: HashMap<(NaiveDate, Currency), (Decimal, Place)>,
    skipped: BTreeSet<String>,
}

impl<'a> Collector<'a> {
    fn new(file: &'a str) -> Collector<'a> {
        Collector {
            file,
            index: None,
            seen: HashMap::new(),
            skipped: BTreeSet::new(),
        }
    }

    fn locate(&self, place: Place) -> (u32, u32) {
        match (place, &self.index) {
            (Place::At(line, column), _) => (line, column),
            (Place::Offset(offset), Some((text, index))) => index.locate(text, offset),
            (Place::Offset(_), None) => (0, 0),
        }
    }

    fn error(&self, place: Place, kind: ErrorKind, message: impl Into<String>) -> ImportError {
        ImportError::new(self.file, self.locate(place), kind, message)
    }

    fn add(
        &mut self,
        day: NaiveDate,
        currency: Currency,
        rate: Decimal,
        place: Place,
    ) -> Result<(), ImportError> {
        if currency == Currency::EUR && rate != Decimal::ONE {
            return Err(self.error(
                place,
                ErrorKind::Value,
                format!("EUR is given as {rate} on {day} (a euro is 1 EUR; leave EUR out)"),
            ));
        }
        match self.seen.get(&(day, currency)) {
            // Equal values (1.05 and 1.050) twice are the same fact; keep the first.
            Some(&(earlier, _)) if earlier == rate => Ok(()),
            Some(&(earlier, first)) => {
                let (line, column) = self.locate(first);
                Err(self.error(
                    place,
                    ErrorKind::Duplicate,
                    format!(
                        "{currency} on {day} is {rate} here but {earlier} at line {line}, \
                         column {column} (expected one rate per day and currency)"
                    ),
                ))
            }
            None => {
                self.seen.insert((day, currency), (rate, place));
                Ok(())
            }
        }
    }

    fn finish(self, format: RatesFormat) -> Result<RatesFile, ImportError> {
        if self.seen.is_empty() {
            let skipped = if self.skipped.is_empty() {
                String::new()
            } else {
                let codes: Vec<_> = self.skipped.into_iter().collect();
                format!(
                    "; skipped currencies that are no longer in use: {}",
                    codes.join(", ")
                )
            };
            return Err(ImportError::new(
                self.file,
                (0, 0),
                ErrorKind::Empty,
                format!("no rates in the file (expected at least one day with a rate){skipped}"),
            ));
        }
        let days: BTreeSet<NaiveDate> = self.seen.keys().map(|&(day, _)| day).collect();
        let mut rates: Vec<Rate> = self
            .seen
            .into_iter()
            .filter(|&((_, currency), _)| currency != Currency::EUR)
            .map(|((day, currency), (per_eur, _))| Rate {
                day,
                currency,
                per_eur,
            })
            .chain(days.into_iter().map(|day| Rate {
                day,
                currency: Currency::EUR,
                per_eur: Decimal::ONE,
            }))
            .collect();
        rates.sort_by_key(|r| (r.day, r.currency));
        Ok(RatesFile {
            format,
            rates,
            skipped_currencies: self.skipped.into_iter().collect(),
        })
    }
}

/// What one CSV header cell holds.
enum Column {
    Rate(Currency),
    /// A replaced currency: its values are ignored.
    Skipped,
    /// No name (the trailing comma): its cells must be empty.
    Blank,
}

fn read_csv(text: &str, rates: &mut Collector<'_>) -> Result<(), ImportError> {
    let file = rates.file;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(record) => record.map_err(|e| csv_error(file, &e))?,
        None => {
            return Err(ImportError::new(
                file,
                (0, 0),
                ErrorKind::Empty,
                "empty file",
            ))
        }
    };
    let line = record_line(&header);
    let first = header.get(0).unwrap_or_default();
    if !first.eq_ignore_ascii_case("date") {
        return Err(ImportError::new(
            file,
            (line, 1),
            ErrorKind::Format,
            format!(
                "not the ECB's reference-rate CSV: the first column is {} (expected a header \
                 such as \"Date, USD, JPY, ...\" from eurofxref.csv or eurofxref-hist.csv)",
                show(first)
            ),
        ));
    }
    let mut columns = Vec::with_capacity(header.len());
    let mut first_seen: HashMap<Currency, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate().skip(1) {
        let at = (line, clamp(i + 1));
        let column = if name.is_empty() {
            Column::Blank
        } else {
            let not_ecb = |m: String| {
                let m = format!("not the ECB's reference-rate CSV: {m} in the header");
                ImportError::new(file, at, ErrorKind::Format, m)
            };
            match parse_code(name).map_err(not_ecb)? {
                Code::Active(currency) => {
                    if let Some(earlier) = first_seen.insert(currency, i) {
                        return Err(ImportError::new(
                            file,
                            at,
                            ErrorKind::Format,
                            format!(
                                "{currency} is also column {} (expected each currency once)",
                                earlier + 1
                            ),
                        ));
                    }
                    Column::Rate(currency)
                }
                Code::Historic => {
                    rates.skipped.insert(name.to_ascii_uppercase());
                    Column::Skipped
                }
            }
        };
        columns.push(column);
    }

    for record in records {
        let record = record.map_err(|e| csv_error(file, &e))?;
        let line = record_line(&record);
        let raw_day = record.get(0).unwrap_or_default();
        let day = parse_csv_day(raw_day).ok_or_else(|| {
            ImportError::new(
                file,
                (line, 1),
                ErrorKind::Value,
                format!(
                    "{} is not a date (expected 2026-12-04 or 04 December 2026)",
                    show(raw_day)
                ),
            )
        })?;
        for i in 1..record.len().max(header.len()) {
            let at = (line, clamp(i + 1));
            let value = record.get(i);
            match (columns.get(i - 1), value) {
                (Some(Column::Skipped), _) | (Some(Column::Blank) | None, None | Some("")) => {}
                (Some(Column::Blank) | None, Some(value)) => {
                    return Err(ImportError::new(
                        file,
                        at,
                        ErrorKind::Format,
                        format!(
                            "{} is in a column without a currency in the header",
                            show(value)
                        ),
                    ));
                }
                (Some(Column::Rate(currency)), None) => {
                    return Err(ImportError::new(
                        file,
                        at,
                        ErrorKind::Format,
                        format!(
                            "the line ends before the {currency} column (expected a rate or N/A \
                             for every currency in the header)"
                        ),
                    ));
                }
                (Some(Column::Rate(_)), Some("" | "N/A")) => {}
                (Some(&Column::Rate(currency)), Some(value)) => {
                    let rate = parse_rate(value)
                        .map_err(|m| ImportError::new(file, at, ErrorKind::Value, m))?;
                    rates.add(day, currency, rate, Place::At(at.0, at.1))?;
                }
            }
        }
    }
    Ok(())
}

/// `2026-12-04` (eurofxref-hist.csv) or `04 December 2026` (eurofxref.csv).
fn parse_csv_day(raw: &str) -> Option<NaiveDate> {
    parse_iso_date(raw).or_else(|| {
        // `%B` also takes `Dec`, harmless; the shape check keeps out `4 December 2026 extra`.
        let words = raw.split(' ').count();
        (words == 3)
            .then(|| NaiveDate::parse_from_str(raw, "%d %B %Y").ok())
            .flatten()
    })
}

/// Where the XML reader is in the envelope.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Node {
    Envelope,
    Subject,
    Sender,
    SenderName,
    /// `<Cube>` directly in the envelope.
    Cubes,
    /// `<Cube time='...'>`.
    Day,
    /// `<Cube currency='...' rate='...'/>`.
    Rate,
    /// Anything else in the envelope, ignored with its content.
    Other,
}

const ECB: &str = "European Central Bank";
const SUBJECT: &str = "Reference rates";

fn read_xml<'a>(text: &'a str, rates: &mut Collector<'a>) -> Result<(), ImportError> {
    rates.index = Some((text, LineIndex::new(text)));
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut envelope_at: Option<usize> = None;
    let mut subject = String::new();
    let mut sender = String::new();
    let mut day: Option<NaiveDate> = None;
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|e| {
            let offset = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            rates.error(
                Place::Offset(offset),
                ErrorKind::Encoding,
                format!("malformed XML: {e}"),
            )
        })?;
        let place = Place::Offset(at);
        match event {
            Event::Start(ref element) | Event::Empty(ref element) => {
                let node = match stack.last() {
                    None if envelope_at.is_some() => {
                        return Err(rates.error(
                            place,
                            ErrorKind::Format,
                            "an element after the end of <gesmes:Envelope>",
                        ));
                    }
                    None => {
                        let name = element.name();
                        if element.local_name().as_ref() != "Envelope" {
                            return Err(rates.error(
                                place,
                                ErrorKind::Format,
                                format!(
                                    "not the ECB's reference-rate XML: the root element is <{}> \
                                     (expected <gesmes:Envelope> as in eurofxref-daily.xml)",
                                    name.as_ref()
                                ),
                            ));
                        }
                        envelope_at = Some(at);
                        Node::Envelope
                    }
                    Some(&parent) => child(parent, element, place, rates, &mut day)?,
                };
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                if stack.pop() == Some(Node::Day) {
                    day = None;
                }
            }
            Event::Text(ref t) => text_in(
                stack.last(),
                &t.xml10_content(),
                place,
                rates,
                &mut subject,
                &mut sender,
            )?,
            Event::CData(ref t) => text_in(
                stack.last(),
                &t.xml10_content(),
                place,
                rates,
                &mut subject,
                &mut sender,
            )?,
            Event::GeneralRef(ref r) => {
                // Only the sender and subject hold text; the ECB's have no entities in them.
                let raw = format!("&{};", r.xml10_content());
                text_in(stack.last(), &raw, place, rates, &mut subject, &mut sender)?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(rates.error(
            Place::Offset(text.len()),
            ErrorKind::Encoding,
            "malformed XML: the file ends inside an element (was it cut off?)",
        ));
    }
    let Some(envelope_at) = envelope_at else {
        return Err(rates.error(
            Place::At(0, 0),
            ErrorKind::Format,
            "no XML element in the file",
        ));
    };
    // Other banks publish gesmes envelopes too; the sender is what says these are the ECB's.
    for (found, expected, what) in [
        (&sender, ECB, "<gesmes:Sender><gesmes:name>"),
        (&subject, SUBJECT, "<gesmes:subject>"),
    ] {
        if found.trim() != expected {
            let found = if found.trim().is_empty() {
                "nothing".to_string()
            } else {
                show(found.trim())
            };
            return Err(rates.error(
                Place::Offset(envelope_at),
                ErrorKind::Format,
                format!(
                    "not the ECB's reference-rate XML: {what} is {found} (expected \"{expected}\")"
                ),
            ));
        }
    }
    Ok(())
}

/// Classifies an element inside `parent`, and reads its rate if it is one.
fn child(
    parent: Node,
    element: &BytesStart<'_>,
    place: Place,
    rates: &mut Collector<'_>,
    day: &mut Option<NaiveDate>,
) -> Result<Node, ImportError> {
    let local = element.local_name();
    let name = local.as_ref();
    let node = match (parent, name) {
        (Node::Envelope, "subject") => Node::Subject,
        (Node::Envelope, "Sender") => Node::Sender,
        (Node::Envelope, "Cube") => Node::Cubes,
        (Node::Sender, "name") => Node::SenderName,
        (Node::Cubes, "Cube") => Node::Day,
        (Node::Day, "Cube") => Node::Rate,
        (Node::Cubes | Node::Day | Node::Rate, _) => {
            return Err(rates.error(
                place,
                ErrorKind::Format,
                format!(
                    "unexpected <{}> inside <Cube> (expected <Cube time='2026-12-04'> holding \
                     <Cube currency='USD' rate='1.0543'/> elements)",
                    element.name().as_ref()
                ),
            ));
        }
        _ => Node::Other,
    };
    match node {
        Node::Day => {
            let raw = attribute(element, "time", place, rates)?;
            let parsed = raw.as_deref().and_then(parse_iso_date);
            if parsed.is_none() {
                let found = raw.map_or("no time".to_string(), |t| format!("time={}", show(&t)));
                return Err(rates.error(
                    place,
                    ErrorKind::Value,
                    format!("<Cube> with {found} (expected a day such as time='2026-12-04')"),
                ));
            }
            *day = parsed;
        }
        Node::Rate => {
            let currency = attribute(element, "currency", place, rates)?;
            let rate = attribute(element, "rate", place, rates)?;
            let (Some(currency), Some(rate), Some(day)) = (currency, rate, *day) else {
                return Err(rates.error(
                    place,
                    ErrorKind::Format,
                    "<Cube> without currency and rate (expected <Cube currency='USD' rate='1.0543'/>)",
                ));
            };
            match parse_code(currency.trim())
                .map_err(|m| rates.error(place, ErrorKind::Value, m))?
            {
                Code::Active(currency) => {
                    let rate = parse_rate(rate.trim())
                        .map_err(|m| rates.error(place, ErrorKind::Value, m))?;
                    rates.add(day, currency, rate, place)?;
                }
                // Like a skipped CSV column: its values are not read.
                Code::Historic => {
                    rates.skipped.insert(currency.trim().to_ascii_uppercase());
                }
            }
        }
        _ => {}
    }
    Ok(node)
}

/// An attribute's value, normalized as XML says (entities resolved).
fn attribute(
    element: &BytesStart<'_>,
    key: &str,
    place: Place,
    rates: &Collector<'_>,
) -> Result<Option<String>, ImportError> {
    let bad = |e: &dyn std::fmt::Display| {
        rates.error(
            place,
            ErrorKind::Encoding,
            format!("malformed XML attribute: {e}"),
        )
    };
    let Some(attr) = element.try_get_attribute(key).map_err(|e| bad(&e))? else {
        return Ok(None);
    };
    let value = attr
        .normalized_value(XmlVersion::Implicit1_0)
        .map_err(|e| bad(&e))?;
    Ok(Some(value.into_owned()))
}

/// Text inside the element on top of the stack: kept for the subject and sender, refused
/// where no text belongs.
fn text_in(
    top: Option<&Node>,
    content: &str,
    place: Place,
    rates: &Collector<'_>,
    subject: &mut String,
    sender: &mut String,
) -> Result<(), ImportError> {
    match top {
        Some(Node::Subject) => subject.push_str(content),
        Some(Node::SenderName) => sender.push_str(content),
        Some(Node::Other | Node::Envelope | Node::Sender) => {}
        _ if content.trim().is_empty() => {}
        _ => {
            return Err(rates.error(
                place,
                ErrorKind::Format,
                format!(
                    "unexpected text {} (expected only elements here)",
                    show(content.trim())
                ),
            ));
        }
    }
    Ok(())
}
