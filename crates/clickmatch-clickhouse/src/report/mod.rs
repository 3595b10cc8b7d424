//! Reports: the figures of docs/money.md grouped by any dimensions, in any IANA time zone,
//! filtered and sorted (docs/reports.md). [`ReportParams`] → [`ReportRequest`] is pure and
//! names the parameter it refuses; [`run`] reads the base tables in one statement (`sql.rs`) and
//! sorts, totals and cuts the rows here.

pub mod request;
pub(crate) mod sql;

pub use sql::Grouping;

use std::cmp::Ordering;

use clickhouse::Row;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::ClickHouseError;
use crate::money::Figures;
use crate::rollups::decimal;
use crate::settings::ClickHouseSettings;

pub use request::{
    Column, Dimension, Figure, Filter, ReportError, ReportParams, ReportRequest, Sort, PARAMS,
};

/// A report could not be made: the request (a 400) or ClickHouse (a 5xx).
#[derive(Debug, thiserror::Error)]
pub enum ReportFailure {
    #[error(transparent)]
    Request(#[from] ReportError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

/// One group: its dimension values in `group_by` order (`""`: the rows have no such value), and
/// its figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub keys: Vec<String>,
    pub figures: Figures,
}

/// A report: at most `limit` rows in the requested order, and the totals of every group.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub request: ReportRequest,
    pub currency: String,
    pub rows: Vec<ReportRow>,
    /// Groups before the limit.
    pub rows_total: usize,
    pub totals: Figures,
}

/// A value in a report's table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Text(&'a str),
    Count(u64),
    /// Revenue, cost, profit: in the account currency.
    Amount(Decimal),
    /// ROI, CR, EPC: `None` without a denominator.
    Ratio(Option<Decimal>),
}

impl Cell<'_> {
    /// The cell as text: amounts without trailing zeros, an empty ratio as `""`.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => (*s).to_string(),
            Cell::Count(n) => n.to_string(),
            Cell::Amount(d) | Cell::Ratio(Some(d)) => d.normalize().to_string(),
            Cell::Ratio(None) => String::new(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => json!(s),
            Cell::Count(n) => json!(n),
            Cell::Ratio(None) => Value::Null,
            // Decimals as strings: JSON numbers would lose digits in most readers.
            _ => json!(self.text()),
        }
    }
}

/// One figure of `figures`.
pub fn figure(figures: &Figures, figure: Figure) -> Cell<'static> {
    match figure {
        Figure::Clicks => Cell::Count(figures.clicks),
        Figure::Conversions => Cell::Count(figures.conversions),
        Figure::Revenue => Cell::Amount(figures.revenue),
        Figure::Cost => Cell::Amount(figures.cost),
        Figure::Profit => Cell::Amount(figures.profit()),
        Figure::Roi => Cell::Ratio(figures.roi()),
        Figure::Cr => Cell::Ratio(figures.cr()),
        Figure::Epc => Cell::Ratio(figures.epc()),
        Figure::Unattributed => Cell::Count(figures.unattributed),
        Figure::Unvalued => Cell::Count(figures.unvalued),
    }
}

impl ReportRow {
    pub fn cell(&self, group_by: &[Dimension], column: Column) -> Cell<'_> {
        match column {
            Column::Figure(f) => figure(&self.figures, f),
            Column::Dimension(d) => Cell::Text(
                group_by
                    .iter()
                    .position(|&g| g == d)
                    .and_then(|i| self.keys.get(i))
                    .map_or("", String::as_str),
            ),
        }
    }
}

/// Orders two cells; a missing ratio comes last whichever the direction.
fn compare(a: &Cell<'_>, b: &Cell<'_>, descending: bool) -> Ordering {
    let directed = |o: Ordering| if descending { o.reverse() } else { o };
    match (a, b) {
        (Cell::Ratio(None), Cell::Ratio(None)) => Ordering::Equal,
        (Cell::Ratio(None), _) => Ordering::Greater,
        (_, Cell::Ratio(None)) => Ordering::Less,
        (Cell::Ratio(Some(a)), Cell::Ratio(Some(b))) => directed(a.cmp(b)),
        (Cell::Amount(a), Cell::Amount(b)) => directed(a.cmp(b)),
        (Cell::Count(a), Cell::Count(b)) => directed(a.cmp(b)),
        (Cell::Text(a), Cell::Text(b)) => directed(a.cmp(b)),
        _ => Ordering::Equal,
    }
}

impl Report {
    /// Sorts `rows` (ties by the keys, ascending), keeps the first `limit`, and totals all.
    pub fn assemble(request: ReportRequest, currency: String, mut rows: Vec<ReportRow>) -> Report {
        let mut totals = Figures {
            account_currency: currency.clone(),
            ..Figures::default()
        };
        for row in &rows {
            totals.add(&row.figures);
        }
        let (group_by, sort) = (&request.group_by, request.sort);
        rows.sort_by(|a, b| {
            compare(
                &a.cell(group_by, sort.column),
                &b.cell(group_by, sort.column),
                sort.descending,
            )
            .then_with(|| a.keys.cmp(&b.keys))
        });
        let rows_total = rows.len();
        rows.truncate(request.limit);
        Report {
            request,
            currency,
            rows,
            rows_total,
            totals,
        }
    }

    /// The column names: the grouped dimensions, then every figure.
    pub fn columns(&self) -> Vec<Column> {
        self.request
            .group_by
            .iter()
            .map(|&d| Column::Dimension(d))
            .chain(Figure::ALL.into_iter().map(Column::Figure))
            .collect()
    }

    /// `{"rows": [{<dimension>: value, …, "clicks": …}], "totals": {…}, …}`: counts as numbers,
    /// amounts and ratios as decimal strings (ratios `null` without a denominator).
    pub fn to_json(&self) -> Value {
        let figures = |f: &Figures| -> Map<String, Value> {
            Figure::ALL
                .into_iter()
                .map(|fig| (fig.name().to_string(), figure(f, fig).json()))
                .collect()
        };
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let mut object = figures(&row.figures);
                for (d, key) in self.request.group_by.iter().zip(&row.keys) {
                    object.insert(d.name().to_string(), json!(key));
                }
                Value::Object(object)
            })
            .collect();
        json!({
            "group_by": self.request.group_by.iter().map(|d| d.name()).collect::<Vec<_>>(),
            "from": self.request.from.to_rfc3339(),
            "to": self.request.to.to_rfc3339(),
            "tz": self.request.tz.name(),
            "sort": self.request.sort.param(),
            "currency": self.currency,
            "rows_total": self.rows_total,
            "rows": rows,
            "totals": Value::Object(figures(&self.totals)),
        })
    }
}

#[derive(Debug, Row, Deserialize)]
struct GroupRow {
    keys: Vec<String>,
    clicks: u64,
    conversions: u64,
    revenue: String,
    cost: String,
    unattributed: u64,
    unvalued: u64,
    /// Two different keys fell in one hashed group (see `sql::Grouping`).
    collided: u8,
}

/// The offer → network map of the configuration: offers with a `network`.
pub fn networks(account: &clickmatch_core::model::Account) -> Vec<(String, String)> {
    account
        .offers
        .values()
        .filter_map(|o| Some((o.id.clone(), o.network.clone()?)))
        .collect()
}

/// Runs `request` against the database of `settings`. `networks` maps offers to their network
/// ([`networks`]).
pub async fn run(
    settings: &ClickHouseSettings,
    request: ReportRequest,
    networks: &[(String, String)],
) -> Result<Report, ReportFailure> {
    let grouping = Grouping::for_request(&request);
    run_grouping(settings, request, networks, grouping).await
}

/// [`run`] with the grouping given (the tests compare them). A hashed grouping that collides
/// runs again grouped by the values.
#[doc(hidden)]
pub async fn run_grouping(
    settings: &ClickHouseSettings,
    request: ReportRequest,
    networks: &[(String, String)],
    grouping: Grouping,
) -> Result<Report, ReportFailure> {
    match run_grouped(settings, request, networks, grouping).await? {
        Grouped::Done(report) => Ok(report),
        // Astronomically rare (two keys of one report alike under two 64-bit hashes), and
        // then exact all the same.
        Grouped::Collided(request) => {
            tracing::warn!("a report's hashed groups collided: grouping by the values");
            match run_grouped(settings, request, networks, Grouping::Values).await? {
                Grouped::Done(report) => Ok(report),
                Grouped::Collided(_) => unreachable!("grouping by values never collides"),
            }
        }
    }
}

enum Grouped {
    Done(Report),
    /// A hashed group held two different keys.
    Collided(ReportRequest),
}

async fn run_grouped(
    settings: &ClickHouseSettings,
    request: ReportRequest,
    networks: &[(String, String)],
    grouping: sql::Grouping,
) -> Result<Grouped, ReportFailure> {
    let client = settings.client();
    // `max_threads` reads `2` on 18.16 and `auto(2)` on current releases. A server with
    // `max_final_threads` merges a `FINAL` read on several threads itself: there one read
    // is faster than slices (10 M clicks on 26.9: 0.42-0.44 s against 0.49-0.60 s in two).
    let (currency, threads, parallel_final): (String, String, u64) = client
        .query(
            "SELECT assumeNotNull((SELECT currency FROM account)), \
             assumeNotNull((SELECT value FROM system.settings WHERE name = 'max_threads')), \
             assumeNotNull(toUInt64((SELECT count() FROM system.settings \
             WHERE name = 'max_final_threads')))",
        )
        .fetch_one()
        .await
        .map_err(|e| ClickHouseError::from_client("reading the account currency", e))?;
    let threads: u32 = threads
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(1);
    let target = sql::Target {
        slices: if parallel_final > 0 { 1 } else { threads },
        distributed: settings.cluster.is_some(),
    };
    let subs = conversion_subs(&client, &request).await?;
    let statement = sql::report_sql(&request, networks, &currency, grouping, target, subs);
    tracing::debug!(sql = %statement.text, args = ?statement.args, "report");
    let groups = statement
        .bound(&client)
        // A report is read by a person waiting for it; a runaway one must not hold the server.
        .with_setting("max_execution_time", "60")
        .fetch_all::<GroupRow>()
        .await
        .map_err(|e| {
            let error = ClickHouseError::from_client("reading a report", e);
            // A zone chrono-tz knows but this server's tz database does not (an old server).
            if error.to_string().contains("time zone") {
                ReportFailure::Request(ReportError::new(
                    "tz",
                    format!(
                        "ClickHouse does not know the time zone {}",
                        request.tz.name()
                    ),
                ))
            } else {
                ReportFailure::ClickHouse(error)
            }
        })?;
    if groups.iter().any(|g| g.collided != 0) {
        return Ok(Grouped::Collided(request));
    }
    let rows = groups
        .into_iter()
        // Aggregating an empty part by constant keys (a fact without the dimension) yields one
        // row of zeros on some releases: a group with nothing in it is no row.
        .filter(|g| {
            g.clicks + g.conversions + g.unattributed + g.unvalued > 0
                || !decimal(&g.cost).map_or(true, |c| c.is_zero())
        })
        .map(|g| {
            Ok(ReportRow {
                keys: g.keys,
                figures: Figures {
                    account_currency: currency.clone(),
                    clicks: g.clicks,
                    conversions: g.conversions,
                    revenue: decimal(&g.revenue)?,
                    cost: decimal(&g.cost)?,
                    unattributed: g.unattributed,
                    unvalued: g.unvalued,
                },
            })
        })
        .collect::<Result<Vec<_>, ClickHouseError>>()?;
    Ok(Grouped::Done(Report::assemble(request, currency, rows)))
}

/// Where the report's conversions take the subs it uses ([`sql::conversion_subs_sql`]): from
/// their rows when every one in range carries them (so also when there is none), else from
/// their clicks, read from the span of the conversions' click times.
async fn conversion_subs(
    client: &clickhouse::Client,
    request: &ReportRequest,
) -> Result<sql::ConversionSubs, ClickHouseError> {
    let used = sql::subs_used(request);
    if used.is_empty() {
        return Ok(sql::ConversionSubs::OnRows);
    }
    let failed = |e| ClickHouseError::from_client("reading which subs the conversions carry", e);
    let (first, last, lacking): (u32, u32, u64) = sql::conversion_subs_sql(request, used)
        .bound(client)
        .fetch_one()
        .await
        .map_err(failed)?;
    if lacking == 0 {
        return Ok(sql::ConversionSubs::OnRows);
    }
    let latest_lacking: u64 = sql::latest_lacking_subs_sql(request, used)
        .bound(client)
        .fetch_one()
        .await
        .map_err(failed)?;
    Ok(if latest_lacking == 0 {
        sql::ConversionSubs::OnRows
    } else {
        sql::ConversionSubs::FromClicks(Some(sql::ClickSpan { first, last }))
    })
}

/// Whether `request`'s conversions take the subs it uses from their own rows (the tests check
/// which way a report went).
#[doc(hidden)]
pub async fn subs_on_rows(
    settings: &ClickHouseSettings,
    request: &ReportRequest,
) -> Result<bool, ClickHouseError> {
    let subs = conversion_subs(&settings.client(), request).await?;
    Ok(subs == sql::ConversionSubs::OnRows)
}

#[cfg(test)]
mod tests;
