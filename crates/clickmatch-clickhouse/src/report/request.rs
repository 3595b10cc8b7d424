//! A report request: what to group by, over which range, in which time zone, filtered and sorted
//! how. Parsed and checked here without I/O; every refusal names the parameter it is about, and
//! nothing a user typed ever reaches SQL except as a bound value (see `sql.rs`).

use std::fmt;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// At most this many days between `from` and `to`: a report scans the base tables, so its cost
/// grows with the range (BENCHMARKS.md, "Reports").
pub const MAX_RANGE_DAYS: i64 = 93;
/// Days covered when `from` is not given: today and the six days before, in the report's zone.
pub const DEFAULT_RANGE_DAYS: i64 = 7;
/// At most this many dimensions in one report.
pub const MAX_GROUP_BY: usize = 6;
/// A filter value longer than this cannot match: sub-parameters are cut to 500 characters.
pub const MAX_FILTER_VALUE_CHARS: usize = 500;
/// At most this many values per filter.
pub const MAX_FILTER_VALUES: usize = 100;
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 10_000;

/// A report was refused: which parameter, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{parameter}`: {message}")]
pub struct ReportError {
    pub parameter: String,
    pub message: String,
}

impl ReportError {
    pub fn new(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        ReportError {
            parameter: parameter.into(),
            message: message.into(),
        }
    }
}

/// What a report can group and filter by. docs/reports.md says what each means for each figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Campaign,
    Source,
    Offer,
    /// The offer's `network` (a preset name) in the current configuration.
    Network,
    Route,
    Event,
    Status,
    /// `sub1`…`sub10`: the index, 1 to 10.
    Sub(u8),
    Country,
    DeviceType,
    Os,
    Browser,
    /// The hour in the report's time zone (`YYYY-MM-DD HH:00`).
    Hour,
    /// The day in the report's time zone (`YYYY-MM-DD`).
    Day,
}

const SUB_NAMES: [&str; 10] = [
    "sub1", "sub2", "sub3", "sub4", "sub5", "sub6", "sub7", "sub8", "sub9", "sub10",
];

impl Dimension {
    /// Every dimension, in the order the help texts list them.
    pub const ALL: [Dimension; 23] = [
        Dimension::Campaign,
        Dimension::Source,
        Dimension::Offer,
        Dimension::Network,
        Dimension::Route,
        Dimension::Event,
        Dimension::Status,
        Dimension::Sub(1),
        Dimension::Sub(2),
        Dimension::Sub(3),
        Dimension::Sub(4),
        Dimension::Sub(5),
        Dimension::Sub(6),
        Dimension::Sub(7),
        Dimension::Sub(8),
        Dimension::Sub(9),
        Dimension::Sub(10),
        Dimension::Country,
        Dimension::DeviceType,
        Dimension::Os,
        Dimension::Browser,
        Dimension::Hour,
        Dimension::Day,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Campaign => "campaign",
            Dimension::Source => "source",
            Dimension::Offer => "offer",
            Dimension::Network => "network",
            Dimension::Route => "route",
            Dimension::Event => "event",
            Dimension::Status => "status",
            Dimension::Sub(i) => SUB_NAMES[usize::from(i.clamp(1, 10)) - 1],
            Dimension::Country => "country",
            Dimension::DeviceType => "device_type",
            Dimension::Os => "os",
            Dimension::Browser => "browser",
            Dimension::Hour => "hour",
            Dimension::Day => "day",
        }
    }

    /// The dimension of that exact (lower-case) name.
    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Hour and day are buckets of time: the range selects them, not a filter.
    pub fn is_time(self) -> bool {
        matches!(self, Dimension::Hour | Dimension::Day)
    }

    /// Every name, comma-separated, for error messages and help.
    pub fn names() -> String {
        Dimension::ALL.map(Dimension::name).join(", ")
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The columns of a report besides its dimensions (docs/money.md, "The figures").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Figure {
    Clicks,
    Conversions,
    Revenue,
    Cost,
    Profit,
    Roi,
    Cr,
    Epc,
    Unattributed,
    Unvalued,
}

impl Figure {
    pub const ALL: [Figure; 10] = [
        Figure::Clicks,
        Figure::Conversions,
        Figure::Revenue,
        Figure::Cost,
        Figure::Profit,
        Figure::Roi,
        Figure::Cr,
        Figure::Epc,
        Figure::Unattributed,
        Figure::Unvalued,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Figure::Clicks => "clicks",
            Figure::Conversions => "conversions",
            Figure::Revenue => "revenue",
            Figure::Cost => "cost",
            Figure::Profit => "profit",
            Figure::Roi => "roi",
            Figure::Cr => "cr",
            Figure::Epc => "epc",
            Figure::Unattributed => "unattributed",
            Figure::Unvalued => "unvalued",
        }
    }

    pub fn parse(name: &str) -> Option<Figure> {
        Figure::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A column a report can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Dimension(Dimension),
    Figure(Figure),
}

impl Column {
    pub fn name(self) -> &'static str {
        match self {
            Column::Dimension(d) => d.name(),
            Column::Figure(f) => f.name(),
        }
    }
}

/// `sort=-revenue`: a column, descending with a leading `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Sort {
    /// The `sort` parameter's text for this order.
    pub fn param(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.column.name()
        )
    }
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            column: Column::Figure(Figure::Revenue),
            descending: true,
        }
    }
}

/// Rows whose `dimension` is one of `values` (exact match; `""` matches rows without a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub dimension: Dimension,
    pub values: Vec<String>,
}

/// A checked report request. `from` is inclusive, `to` exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub group_by: Vec<Dimension>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tz: Tz,
    /// One entry per filtered dimension, in the order first given.
    pub filters: Vec<Filter>,
    pub sort: Sort,
    pub limit: usize,
}

/// A request's parameters as text, before checking: the API's query string, the CLI's options
/// and the page's form all fill this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportParams {
    pub group_by: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub tz: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    /// `(dimension name, value)`, as given; a dimension given several times matches any of its
    /// values.
    pub filters: Vec<(String, String)>,
}

/// The parameter names that are not filters.
pub const PARAMS: [&str; 6] = ["group_by", "from", "to", "tz", "sort", "limit"];

impl ReportParams {
    /// From query-string pairs: the named parameters, and every other name as a filter (checked
    /// to be a dimension by [`ReportParams::check`]). An empty `from`, `to`, `tz`, `sort` or
    /// `limit` is the same as none (an HTML form sends empty fields).
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<ReportParams, ReportError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut params = ReportParams::default();
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            let slot = match name {
                "group_by" => &mut params.group_by,
                "from" => &mut params.from,
                "to" => &mut params.to,
                "tz" => &mut params.tz,
                "sort" => &mut params.sort,
                "limit" => &mut params.limit,
                _ => {
                    params.filters.push((name.to_string(), value.to_string()));
                    continue;
                }
            };
            if slot.is_some() {
                return Err(ReportError::new(name, "given more than once"));
            }
            if !value.trim().is_empty() {
                *slot = Some(value.to_string());
            }
        }
        Ok(params)
    }

    /// The checked request; `now` decides the default range.
    pub fn check(&self, now: DateTime<Utc>) -> Result<ReportRequest, ReportError> {
        let tz = match self.tz.as_deref() {
            None => Tz::UTC,
            Some(name) => parse_tz(name)?,
        };
        let group_by = parse_group_by(self.group_by.as_deref().unwrap_or("campaign"))?;
        let to = match self.to.as_deref() {
            None => now,
            Some(text) => parse_time("to", text, tz, Bound::End)?,
        };
        let from = match self.from.as_deref() {
            Some(text) => parse_time("from", text, tz, Bound::Start)?,
            None if self.to.is_some() => to - Duration::days(DEFAULT_RANGE_DAYS),
            None => {
                let today = now.with_timezone(&tz).date_naive();
                local_midnight(today - Duration::days(DEFAULT_RANGE_DAYS - 1), tz)
            }
        };
        if from >= to {
            return Err(ReportError::new(
                "from",
                format!("{from} is not before `to` ({to})"),
            ));
        }
        if to - from > Duration::days(MAX_RANGE_DAYS) {
            return Err(ReportError::new(
                "to",
                format!(
                    "the range from {from} to {to} is {:.1} days; a report covers at most \
                     {MAX_RANGE_DAYS} days",
                    (to - from).num_seconds() as f64 / 86_400.0
                ),
            ));
        }
        let mut filters: Vec<Filter> = Vec::new();
        for (name, value) in &self.filters {
            let dimension = parse_filter_name(name)?;
            if value.chars().count() > MAX_FILTER_VALUE_CHARS {
                return Err(ReportError::new(
                    name.as_str(),
                    format!("the value is longer than {MAX_FILTER_VALUE_CHARS} characters"),
                ));
            }
            match filters.iter_mut().find(|f| f.dimension == dimension) {
                Some(filter) if filter.values.len() >= MAX_FILTER_VALUES => {
                    return Err(ReportError::new(
                        name.as_str(),
                        format!("more than {MAX_FILTER_VALUES} values"),
                    ));
                }
                Some(filter) => filter.values.push(value.clone()),
                None => filters.push(Filter {
                    dimension,
                    values: vec![value.clone()],
                }),
            }
        }
        let sort = match self.sort.as_deref() {
            None => Sort::default(),
            Some(text) => parse_sort(text, &group_by)?,
        };
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ReportError::new(
                        "limit",
                        format!("{:?} is not a number from 1 to {MAX_LIMIT}", shorten(text)),
                    )
                })?,
        };
        Ok(ReportRequest {
            group_by,
            from,
            to,
            tz,
            filters,
            sort,
            limit,
        })
    }
}

impl ReportRequest {
    /// The parameters that ask for this request again (the page's links), filters included.
    pub fn params(&self) -> ReportParams {
        ReportParams {
            group_by: Some(
                self.group_by
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            from: Some(self.from.to_rfc3339()),
            to: Some(self.to.to_rfc3339()),
            tz: Some(self.tz.name().to_string()),
            sort: Some(self.sort.param()),
            limit: Some(self.limit.to_string()),
            filters: self
                .filters
                .iter()
                .flat_map(|f| {
                    f.values
                        .iter()
                        .map(|v| (f.dimension.name().to_string(), v.clone()))
                })
                .collect(),
        }
    }

    /// Whether `dimension` is grouped or filtered by.
    pub fn uses(&self, dimension: Dimension) -> bool {
        self.group_by.contains(&dimension) || self.filters.iter().any(|f| f.dimension == dimension)
    }
}

/// An IANA zone name, exactly as the tz database spells it (`Asia/Kolkata`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, ReportError> {
    name.parse::<Tz>().map_err(|_| {
        ReportError::new(
            "tz",
            format!(
                "{:?} is not an IANA time zone (e.g. UTC, Europe/Berlin, Asia/Kolkata)",
                shorten(name)
            ),
        )
    })
}

fn parse_group_by(text: &str) -> Result<Vec<Dimension>, ReportError> {
    let mut dimensions = Vec::new();
    for name in text.split(',').map(str::trim) {
        let dimension = Dimension::parse(name).ok_or_else(|| {
            ReportError::new(
                "group_by",
                format!(
                    "{:?} is not a dimension; use any of {}",
                    shorten(name),
                    Dimension::names()
                ),
            )
        })?;
        if dimensions.contains(&dimension) {
            return Err(ReportError::new(
                "group_by",
                format!("{dimension} is given twice"),
            ));
        }
        dimensions.push(dimension);
    }
    if dimensions.len() > MAX_GROUP_BY {
        return Err(ReportError::new(
            "group_by",
            format!("at most {MAX_GROUP_BY} dimensions"),
        ));
    }
    Ok(dimensions)
}

fn parse_filter_name(name: &str) -> Result<Dimension, ReportError> {
    match Dimension::parse(name) {
        Some(d) if d.is_time() => Err(ReportError::new(
            name,
            "hour and day are not filters: choose the range with `from` and `to`",
        )),
        Some(d) => Ok(d),
        None => Err(ReportError::new(
            shorten(name),
            format!(
                "unknown parameter: not one of {} nor a dimension to filter by ({})",
                PARAMS.join(", "),
                Dimension::names()
            ),
        )),
    }
}

fn parse_sort(text: &str, group_by: &[Dimension]) -> Result<Sort, ReportError> {
    let text = text.trim();
    let (descending, name) = match text.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let column = if let Some(figure) = Figure::parse(name) {
        Column::Figure(figure)
    } else if let Some(dimension) = Dimension::parse(name) {
        if !group_by.contains(&dimension) {
            return Err(ReportError::new(
                "sort",
                format!("{dimension} is not in group_by"),
            ));
        }
        Column::Dimension(dimension)
    } else {
        return Err(ReportError::new(
            "sort",
            format!(
                "{:?} is not a column: use a figure ({}) or a grouped dimension, `-` first \
                 for descending",
                shorten(text),
                Figure::ALL.map(Figure::name).join(", ")
            ),
        ));
    };
    Ok(Sort { column, descending })
}

#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

/// RFC 3339 (`2026-12-01T10:00:00Z`, any offset), or a day `YYYY-MM-DD` in the report's zone: as
/// `from` its first instant, as `to` the first instant of the next day (so `to` includes it).
fn parse_time(
    parameter: &str,
    text: &str,
    tz: Tz,
    bound: Bound,
) -> Result<DateTime<Utc>, ReportError> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = match bound {
            Bound::Start => Some(day),
            Bound::End => day.succ_opt(),
        };
        if let Some(day) = day {
            return Ok(local_midnight(day, tz));
        }
    }
    Err(ReportError::new(
        parameter,
        format!(
            "{:?} is neither a day (YYYY-MM-DD, in the report's time zone) nor an RFC 3339 \
             time (2026-12-01T10:00:00Z)",
            shorten(text)
        ),
    ))
}

/// The day's first instant in `tz`. Where a zone skips midnight (a DST change at 00:00), the
/// first instant that exists that day.
fn local_midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight: NaiveDateTime = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..=24 * 4)
        .map(|quarter| midnight + Duration::minutes(15 * quarter))
        .find_map(|local| tz.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// A user value quoted back in a message, cut so that a huge one does not make a huge answer.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
