//! Money in ClickHouse (migration `0004_money.sql`): the account's currency settings, exchange
//! rates and imported costs written, and the figures of `figures_hourly` read back.

use clickhouse::Row;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ClickHouseError;
use crate::rollups::decimal;
use crate::rows::payout as payout_serde;
use crate::settings::ClickHouseSettings;
use crate::sink::insert_rows;

/// A row of `exchange_rates`: units of `currency` for 1 EUR on `day`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct RateRow {
    /// Days since 1970-01-01 (`Date`).
    pub day: u16,
    pub currency: String,
    #[serde(with = "payout_serde")]
    pub per_eur: Decimal,
    /// The file it came from.
    pub source: String,
    pub imported_ms: u64,
}

/// A row of `costs`: one line of a cost file.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct CostRow {
    /// Unix seconds (`DateTime`).
    pub period_start: u32,
    /// 24 for a day, 1 for an hour.
    pub period_hours: u8,
    pub campaign_id: String,
    pub offer_id: String,
    pub source: String,
    pub sub1: String,
    pub sub2: String,
    pub sub3: String,
    pub sub4: String,
    pub sub5: String,
    pub sub6: String,
    pub sub7: String,
    pub sub8: String,
    pub sub9: String,
    pub sub10: String,
    #[serde(with = "payout_serde")]
    pub amount: Decimal,
    pub currency: String,
    pub file: String,
    pub line: u32,
    /// Shared by every line of one import; with `imported_ms` it names the import.
    pub import_id: String,
    pub imported_ms: u64,
}

/// Which import a cost line belongs to: every line of one shares it.
#[derive(Debug, Clone, Copy)]
pub struct CostImport<'a> {
    pub file: &'a str,
    pub import_id: &'a str,
    pub imported_ms: u64,
}

impl CostRow {
    /// The row of one line of a cost file, for `campaign` (its offer, and its source unless
    /// the line names one).
    pub fn of_line(
        line: &clickmatch_import::CostRow,
        campaign: &clickmatch_core::model::Campaign,
        import: CostImport<'_>,
    ) -> CostRow {
        let sub = |i: usize| line.subs[i].clone();
        CostRow {
            period_start: u32::try_from(line.period.start_unix()).unwrap_or(0),
            period_hours: u8::try_from(line.period.length_hours()).unwrap_or(24),
            campaign_id: campaign.id.clone(),
            offer_id: campaign.offer_id.clone(),
            source: if line.source.is_empty() {
                campaign.source.clone()
            } else {
                line.source.clone()
            },
            sub1: sub(0),
            sub2: sub(1),
            sub3: sub(2),
            sub4: sub(3),
            sub5: sub(4),
            sub6: sub(5),
            sub7: sub(6),
            sub8: sub(7),
            sub9: sub(8),
            sub10: sub(9),
            amount: line.amount,
            currency: line.currency.to_string(),
            file: import.file.to_string(),
            line: line.line,
            import_id: import.import_id.to_string(),
            imported_ms: import.imported_ms,
        }
    }
}

/// Records the account's currency and rate age (read by the views through `account`).
pub async fn write_account(
    settings: &ClickHouseSettings,
    currency: &str,
    max_rate_age_days: u16,
    now_ms: u64,
) -> Result<(), ClickHouseError> {
    settings
        .client()
        .query(
            "INSERT INTO account_settings (id, currency, max_rate_age_days, updated_ms) \
             VALUES (1, ?, ?, ?)",
        )
        .bind(currency)
        .bind(max_rate_age_days)
        .bind(now_ms)
        .execute()
        .await
        .map_err(|e| ClickHouseError::from_client("writing account_settings", e))
}

/// Writes rates in one insert: a file is imported whole or not at all.
pub async fn insert_rates(
    settings: &ClickHouseSettings,
    rows: &[RateRow],
) -> Result<(), ClickHouseError> {
    insert_rows::<RateRow, _>(
        &settings.client(),
        "exchange_rates",
        rows.iter(),
        (None, None),
    )
    .await
}

/// Writes the lines of one cost import in one insert.
pub async fn insert_costs(
    settings: &ClickHouseSettings,
    rows: &[CostRow],
) -> Result<(), ClickHouseError> {
    insert_rows::<CostRow, _>(&settings.client(), "costs", rows.iter(), (None, None)).await
}

/// The figures ad ops decide on over a time range, test traffic left out, in the account
/// currency. Ratios are computed from the sums: `None` where their denominator is 0.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    pub account_currency: String,
    pub clicks: u64,
    /// Conversions whose latest status is approved, pending or hold.
    pub conversions: u64,
    pub revenue: Decimal,
    pub cost: Decimal,
    /// Unattributed postbacks, duplicates aside.
    pub unattributed: u64,
    /// Conversions, click-cost cells and cost lines whose currency had no rate (left out of
    /// revenue and cost until the rate is imported).
    pub unvalued: u64,
}

impl Figures {
    /// Adds the counts and amounts of `other` (the ratios follow from the sums).
    pub fn add(&mut self, other: &Figures) {
        self.clicks += other.clicks;
        self.conversions += other.conversions;
        self.revenue += other.revenue;
        self.cost += other.cost;
        self.unattributed += other.unattributed;
        self.unvalued += other.unvalued;
    }

    pub fn profit(&self) -> Decimal {
        self.revenue - self.cost
    }

    /// profit / cost.
    pub fn roi(&self) -> Option<Decimal> {
        (!self.cost.is_zero()).then(|| (self.profit() / self.cost).round_dp(4))
    }

    /// conversions / clicks.
    pub fn cr(&self) -> Option<Decimal> {
        (self.clicks > 0)
            .then(|| (Decimal::from(self.conversions) / Decimal::from(self.clicks)).round_dp(4))
    }

    /// revenue / clicks.
    pub fn epc(&self) -> Option<Decimal> {
        (self.clicks > 0).then(|| (self.revenue / Decimal::from(self.clicks)).round_dp(6))
    }
}

#[derive(Row, Deserialize)]
struct FiguresRow {
    account_currency: String,
    clicks: u64,
    conversions: u64,
    revenue: String,
    cost: String,
    unattributed: u64,
    unvalued: u64,
}

impl FiguresRow {
    fn figures(self) -> Result<Figures, ClickHouseError> {
        Ok(Figures {
            account_currency: self.account_currency,
            clicks: self.clicks,
            conversions: self.conversions,
            revenue: decimal(&self.revenue)?,
            cost: decimal(&self.cost)?,
            unattributed: self.unattributed,
            unvalued: self.unvalued,
        })
    }
}

/// [`Figures`] from the hourly rollups (`figures_hourly`), for the hours from `from_s` (Unix
/// seconds, rounded down to its hour) on.
pub async fn figures_since(
    settings: &ClickHouseSettings,
    from_s: u32,
) -> Result<Figures, ClickHouseError> {
    settings
        .client()
        .query(
            "SELECT assumeNotNull((SELECT currency FROM account)) AS account_currency, \
                toUInt64(sum(clicks)) AS clicks, toUInt64(sum(conversions)) AS conversions, \
                toString(sum(revenue)) AS revenue, toString(sum(cost)) AS cost, \
                toUInt64(sum(unattributed)) AS unattributed, toUInt64(sum(unvalued)) AS unvalued \
             FROM figures_hourly \
             WHERE hour >= toStartOfHour(toDateTime(?)) AND is_test = 0",
        )
        .bind(from_s)
        .fetch_one::<FiguresRow>()
        .await
        .map_err(|e| ClickHouseError::from_client("reading figures_hourly", e))?
        .figures()
}

/// [`Figures`] from the base tables for rows from `from_s` on, to the second: what `dev`
/// reports for its own run, and what the rollups are checked against. Cost is the clicks' costs,
/// valued per hour, campaign, offer, source and currency as `figures_hourly` values them, plus
/// the imported lines of `costs_current`.
pub async fn figures_from_base_tables(
    settings: &ClickHouseSettings,
    from_s: u32,
) -> Result<Figures, ClickHouseError> {
    settings
        .client()
        .query(
            "SELECT account_currency, clicks, conversions, revenue, cost, unattributed, \
                unvalued_conversions + unvalued_clicks AS unvalued \
             FROM \
             ( \
                SELECT assumeNotNull((SELECT currency FROM account)) AS account_currency, \
                    toUInt64(sum(part_clicks)) AS clicks, \
                    toString(sum(toDecimal64(toString(round(part_amount \
                        * multiIf(currency = account_currency, 1, factor), 6)), 6))) AS cost, \
                    toUInt64(sum(part_amount != 0 AND currency != account_currency \
                        AND factor = 0)) AS unvalued_clicks, \
                    1 AS one \
                FROM \
                ( \
                    SELECT toUInt64(count()) AS part_clicks, toFloat64(sum(cost)) AS part_amount, \
                        cost_currency AS currency, toDate(click_time) AS day \
                    FROM clicks FINAL WHERE click_time >= toDateTime(?) AND is_test = 0 \
                    GROUP BY toStartOfHour(click_time), day, campaign_id, offer_id, source, \
                        currency \
                    UNION ALL \
                    SELECT toUInt64(0) AS part_clicks, toFloat64(amount) AS part_amount, \
                        currency, toDate(period_start) AS day \
                    FROM costs_current WHERE period_start >= toDateTime(?) \
                ) AS cost_parts \
                ANY LEFT JOIN (SELECT day, currency, factor FROM currency_factors) AS factors \
                USING (day, currency) \
             ) AS click_figures \
             ANY LEFT JOIN \
             ( \
                SELECT toUInt64(countIf(status IN ('approved', 'pending', 'hold'))) AS conversions, \
                    toString(sumIf(payout_account, status IN ('approved', 'pending', 'hold'))) \
                        AS revenue, \
                    toUInt64(sumIf(rate_missing, status IN ('approved', 'pending', 'hold'))) \
                        AS unvalued_conversions, \
                    assumeNotNull((SELECT count() FROM unattributed FINAL \
                        WHERE received_time >= toDateTime(?) AND reason != 'duplicate' \
                            AND is_test = 0)) AS unattributed, \
                    1 AS one \
                FROM conversions_valued WHERE conversion_time >= toDateTime(?) AND is_test = 0 \
             ) AS conversion_figures USING one",
        )
        .bind(from_s)
        .bind(from_s)
        .bind(from_s)
        .bind(from_s)
        .fetch_one::<FiguresRow>()
        .await
        .map_err(|e| ClickHouseError::from_client("computing figures from the base tables", e))?
        .figures()
}

/// Conversions with a payout issue, by code, since `from_s`: what the operator must fix.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct PayoutIssueCount {
    pub payout_issue: String,
    pub conversions: u64,
}

pub async fn payout_issues_since(
    settings: &ClickHouseSettings,
    from_s: u32,
) -> Result<Vec<PayoutIssueCount>, ClickHouseError> {
    settings
        .client()
        .query(
            "SELECT payout_issue, count() AS conversions FROM conversions FINAL \
             WHERE conversion_time >= toDateTime(?) AND payout_issue != '' \
             GROUP BY payout_issue ORDER BY payout_issue",
        )
        .bind(from_s)
        .fetch_all::<PayoutIssueCount>()
        .await
        .map_err(|e| ClickHouseError::from_client("reading payout issues", e))
}

/// Revenue in the account currency by currency sent, since `from_s`: how the total was made.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct RevenueByCurrency {
    pub currency: String,
    pub conversions: u64,
    /// `toString` of the payouts as sent.
    pub payout: String,
    /// `toString` of the same in the account currency.
    pub payout_account: String,
    /// Conversions without a rate.
    pub rate_missing: u64,
}

pub async fn revenue_by_currency_since(
    settings: &ClickHouseSettings,
    from_s: u32,
) -> Result<Vec<RevenueByCurrency>, ClickHouseError> {
    settings
        .client()
        .query(
            "SELECT currency, count() AS conversions, toString(sum(payout)) AS payout, \
                toString(sum(payout_account)) AS payout_account, \
                toUInt64(sum(rate_missing)) AS rate_missing \
             FROM conversions_valued \
             WHERE conversion_time >= toDateTime(?) AND is_test = 0 \
                AND status IN ('approved', 'pending', 'hold') \
             GROUP BY currency ORDER BY currency",
        )
        .bind(from_s)
        .fetch_all::<RevenueByCurrency>()
        .await
        .map_err(|e| ClickHouseError::from_client("reading conversions_valued", e))
}
