//! The hourly rollups of migrations 0003 (`migrations/0003_rollups.sql`) and 0004
//! (`figures_hourly`, `migrations/0004_money.sql`), read through their views, next to the same
//! figures computed from the base tables. The two must agree whatever
//! replays and status updates happened; [`RollupCheck::read`] gives both for a test or an
//! operator's check.

use std::collections::BTreeMap;

use clickhouse::{Client, Row};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::ClickHouseError;

/// Unattributed postbacks per (hour, route, reason, offer, is_test).
pub type UnattributedTotals = BTreeMap<UnattributedKey, u64>;
/// Conversions and payout per (hour, offer, route, event, currency, is_test, status).
pub type ConversionTotals = BTreeMap<ConversionKey, ConversionFigures>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Deserialize)]
pub struct UnattributedKey {
    /// `toString(hour)`, e.g. `2026-11-26 06:00:00` (server time zone).
    pub hour: String,
    pub route: String,
    pub reason: String,
    pub offer_id: String,
    pub is_test: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Deserialize)]
pub struct ConversionKey {
    pub hour: String,
    pub offer_id: String,
    pub route: String,
    pub event: String,
    pub currency: String,
    pub is_test: u8,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConversionFigures {
    /// Distinct conversions.
    pub conversions: u64,
    /// Versions (the latest state has one per conversion).
    pub versions: u64,
    /// `toString` of the payout sum: `12.500000` on 18.16, `12.5` on current releases (both
    /// sides of a comparison come from the same server).
    pub payout: String,
}

#[derive(Debug, Row, Deserialize)]
struct UnattributedRow {
    hour: String,
    route: String,
    reason: String,
    offer_id: String,
    is_test: u8,
    postbacks: u64,
}

#[derive(Debug, Row, Deserialize)]
struct ConversionRow {
    hour: String,
    offer_id: String,
    route: String,
    event: String,
    currency: String,
    is_test: u8,
    status: String,
    conversions: u64,
    versions: u64,
    payout: String,
}

/// `figures_hourly` per (hour, campaign, offer, source, is_test).
pub type FigureTotals = BTreeMap<FigureKey, FigureCells>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Row, Deserialize)]
pub struct FigureKey {
    pub hour: String,
    pub campaign_id: String,
    pub offer_id: String,
    pub source: String,
    pub is_test: u8,
}

/// The summable figures of one cell (ratios follow from them); amounts in the account currency.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FigureCells {
    pub clicks: u64,
    pub conversions: u64,
    pub revenue: Decimal,
    pub cost: Decimal,
    pub unattributed: u64,
    pub unvalued: u64,
}

#[derive(Debug, Row, Deserialize)]
struct FigureRow {
    hour: String,
    campaign_id: String,
    offer_id: String,
    source: String,
    is_test: u8,
    clicks: u64,
    conversions: u64,
    revenue: String,
    cost: String,
    unattributed: u64,
    unvalued: u64,
}

/// Rollup figures and base-table figures side by side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupCheck {
    /// `unattributed_hourly_totals`.
    pub unattributed: UnattributedTotals,
    /// `unattributed_current` (`unattributed FINAL` less what reprocessing superseded),
    /// counted the same way.
    pub unattributed_base: UnattributedTotals,
    /// `conversions_hourly_latest`.
    pub latest: ConversionTotals,
    /// `conversions FINAL`: each conversion's latest version.
    pub latest_base: ConversionTotals,
    /// `conversions_hourly_versions`.
    pub ledger: ConversionTotals,
    /// Every distinct version in `conversions` (no FINAL). Only as long as the replaced
    /// versions are still there: a merge keeps the latest version of each conversion and the
    /// base table forgets the rest, while the ledger keeps it. Compare it with `SYSTEM STOP
    /// MERGES` on `conversions` (tests do).
    pub ledger_base: ConversionTotals,
    /// `figures_hourly`, cells with nothing in them left out.
    pub figures: FigureTotals,
    /// The same from `clicks`, `conversions_valued` (`conversions FINAL`), `costs_current` and
    /// `unattributed_current`, valued row by row.
    pub figures_base: FigureTotals,
}

const UNATTRIBUTED_ROLLUP: &str =
    "SELECT toString(hour) AS hour, route, reason, offer_id, is_test, \
     toUInt64(postbacks) AS postbacks FROM unattributed_hourly_totals";
const UNATTRIBUTED_BASE: &str =
    "SELECT toString(toStartOfHour(received_time)) AS hour, route, reason, \
     offer_id, is_test, count() AS postbacks FROM unattributed_current \
     GROUP BY hour, route, reason, offer_id, is_test";
const LATEST_ROLLUP: &str =
    "SELECT toString(hour) AS hour, offer_id, route, event, currency, is_test, \
     status, toUInt64(conversions) AS conversions, toUInt64(conversions) AS versions, \
     toString(payout) AS payout FROM conversions_hourly_latest";
const LATEST_BASE: &str =
    "SELECT toString(toStartOfHour(conversion_time)) AS hour, offer_id, route, \
     event, currency, is_test, status, count() AS conversions, count() AS versions, \
     toString(sum(payout)) AS payout FROM conversions FINAL \
     GROUP BY hour, offer_id, route, event, currency, is_test, status";
const LEDGER_ROLLUP: &str =
    "SELECT toString(hour) AS hour, offer_id, route, event, currency, is_test, \
     status, toUInt64(conversions) AS conversions, toUInt64(versions) AS versions, \
     toString(payout) AS payout FROM conversions_hourly_versions";
const LEDGER_BASE: &str = "SELECT toString(toStartOfHour(conversion_time)) AS hour, offer_id, route, \
     event, currency, is_test, status, uniqExact(conversion_id) AS conversions, count() AS versions, \
     toString(sum(payout)) AS payout FROM \
     (SELECT DISTINCT conversion_id, version, conversion_time, offer_id, route, event, currency, \
      is_test, status, payout FROM conversions) \
     GROUP BY hour, offer_id, route, event, currency, is_test, status";

const FIGURES_ROLLUP: &str = "SELECT toString(hour) AS hour, campaign_id, offer_id, source, \
     is_test, toUInt64(clicks) AS clicks, toUInt64(conversions) AS conversions, \
     toString(revenue) AS revenue, toString(cost) AS cost, toUInt64(unattributed) AS unattributed, \
     toUInt64(unvalued) AS unvalued FROM figures_hourly";
/// By hand: each part from its base table, valued with `currency_factors` as a reader would.
/// Click costs are valued per hour and currency, as the rollup keeps them.
const FIGURES_BASE: &str = "SELECT toString(hour) AS hour, campaign_id, offer_id, source, \
     is_test, toUInt64(sum(n_clicks)) AS clicks, toUInt64(sum(n_conversions)) AS conversions, \
     toString(toDecimal64(sum(revenue), 6)) AS revenue, toString(toDecimal64(sum(cost), 6)) AS cost, \
     toUInt64(sum(n_unattributed)) AS unattributed, toUInt64(sum(n_unvalued)) AS unvalued FROM ( \
       SELECT hour, campaign_id, offer_id, source, is_test, n_clicks, toUInt64(0) AS n_conversions, \
         toDecimal64(0, 6) AS revenue, \
         toDecimal64(toString(round(toFloat64(cost_sum) * multiIf(currency = (SELECT currency FROM account), 1, factor), 6)), 6) AS cost, \
         toUInt64(0) AS n_unattributed, \
         toUInt64(cost_sum != 0 AND currency != assumeNotNull((SELECT currency FROM account)) AND factor = 0) AS n_unvalued \
       FROM ( \
         SELECT toStartOfHour(click_time) AS hour, campaign_id, offer_id, source, is_test, \
           cost_currency AS currency, toDate(hour) AS day, count() AS n_clicks, sum(cost) AS cost_sum \
         FROM clicks FINAL GROUP BY hour, campaign_id, offer_id, source, is_test, currency \
       ) AS cells ANY LEFT JOIN (SELECT day, currency, factor FROM currency_factors) AS factors \
       USING (day, currency) \
       UNION ALL \
       SELECT toStartOfHour(conversion_time) AS hour, campaign_id, offer_id, source, is_test, \
         toUInt64(0) AS n_clicks, toUInt64(1) AS n_conversions, payout_account AS revenue, \
         toDecimal64(0, 6) AS cost, toUInt64(0) AS n_unattributed, toUInt64(rate_missing) AS n_unvalued \
       FROM conversions_valued WHERE status IN ('approved', 'pending', 'hold') \
       UNION ALL \
       SELECT period_start AS hour, campaign_id, offer_id, source, toUInt8(0) AS is_test, \
         toUInt64(0) AS n_clicks, toUInt64(0) AS n_conversions, toDecimal64(0, 6) AS revenue, \
         toDecimal64(toString(round(toFloat64(amount) * multiIf(currency = (SELECT currency FROM account), 1, factor), 6)), 6) AS cost, \
         toUInt64(0) AS n_unattributed, \
         toUInt64(amount != 0 AND currency != assumeNotNull((SELECT currency FROM account)) AND factor = 0) AS n_unvalued \
       FROM (SELECT period_start, campaign_id, offer_id, source, amount, currency, \
               toDate(period_start) AS day FROM costs_current) AS lines \
       ANY LEFT JOIN (SELECT day, currency, factor FROM currency_factors) AS factors \
       USING (day, currency) \
       UNION ALL \
       SELECT toStartOfHour(received_time) AS hour, '' AS campaign_id, offer_id, '' AS source, \
         is_test, toUInt64(0) AS n_clicks, toUInt64(0) AS n_conversions, toDecimal64(0, 6) AS revenue, \
         toDecimal64(0, 6) AS cost, toUInt64(1) AS n_unattributed, toUInt64(0) AS n_unvalued \
       FROM unattributed_current WHERE reason != 'duplicate' \
     ) GROUP BY hour, campaign_id, offer_id, source, is_test";

impl RollupCheck {
    /// Reads both sides with `client` (its database selected).
    pub async fn read(client: &Client) -> Result<RollupCheck, ClickHouseError> {
        Ok(RollupCheck {
            unattributed: unattributed(client, UNATTRIBUTED_ROLLUP).await?,
            unattributed_base: unattributed(client, UNATTRIBUTED_BASE).await?,
            latest: conversions(client, LATEST_ROLLUP).await?,
            latest_base: conversions(client, LATEST_BASE).await?,
            ledger: conversions(client, LEDGER_ROLLUP).await?,
            ledger_base: conversions(client, LEDGER_BASE).await?,
            figures: figures(client, FIGURES_ROLLUP).await?,
            figures_base: figures(client, FIGURES_BASE).await?,
        })
    }

    /// Whether every rollup equals its base-table figures.
    pub fn agrees(&self) -> bool {
        self.unattributed == self.unattributed_base
            && self.latest == self.latest_base
            && self.ledger == self.ledger_base
            && self.figures == self.figures_base
    }

    /// Total unattributed postbacks in the rollup.
    pub fn unattributed_total(&self) -> u64 {
        self.unattributed.values().sum()
    }

    /// Total conversions (latest state) in the rollup.
    pub fn conversions_total(&self) -> u64 {
        self.latest.values().map(|f| f.conversions).sum()
    }
}

async fn unattributed(client: &Client, sql: &str) -> Result<UnattributedTotals, ClickHouseError> {
    let rows: Vec<UnattributedRow> = client
        .query(sql)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::from_client(sql.to_owned(), e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                UnattributedKey {
                    hour: r.hour,
                    route: r.route,
                    reason: r.reason,
                    offer_id: r.offer_id,
                    is_test: r.is_test,
                },
                r.postbacks,
            )
        })
        .collect())
}

async fn conversions(client: &Client, sql: &str) -> Result<ConversionTotals, ClickHouseError> {
    let rows: Vec<ConversionRow> = client
        .query(sql)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::from_client(sql.to_owned(), e))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                ConversionKey {
                    hour: r.hour,
                    offer_id: r.offer_id,
                    route: r.route,
                    event: r.event,
                    currency: r.currency,
                    is_test: r.is_test,
                    status: r.status,
                },
                ConversionFigures {
                    conversions: r.conversions,
                    versions: r.versions,
                    payout: r.payout,
                },
            )
        })
        .collect())
}

async fn figures(client: &Client, sql: &str) -> Result<FigureTotals, ClickHouseError> {
    let rows: Vec<FigureRow> = client
        .query(sql)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::from_client(sql.to_owned(), e))?;
    rows.into_iter()
        .map(|r| {
            Ok((
                FigureKey {
                    hour: r.hour,
                    campaign_id: r.campaign_id,
                    offer_id: r.offer_id,
                    source: r.source,
                    is_test: r.is_test,
                },
                FigureCells {
                    clicks: r.clicks,
                    conversions: r.conversions,
                    revenue: decimal(&r.revenue)?,
                    cost: decimal(&r.cost)?,
                    unattributed: r.unattributed,
                    unvalued: r.unvalued,
                },
            ))
        })
        // A cell that only held conversions no longer counted (declined, reversed).
        .filter(|row| !matches!(row, Ok((_, cells)) if *cells == FigureCells::default()))
        .collect()
}

pub(crate) fn decimal(text: &str) -> Result<Decimal, ClickHouseError> {
    text.parse()
        .map_err(|_| ClickHouseError::Schema(format!("{text:?} is not a decimal")))
}
