//! What became of postbacks, read back from ClickHouse: one postback's row by its ID (what
//! `clickmatch test-conversion` waits for) and the outcomes since a time (`clickmatch dev`'s
//! report).

use clickhouse::Row;
use serde::Deserialize;

use crate::error::ClickHouseError;
use crate::settings::ClickHouseSettings;

/// A postback's row in `conversions`, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct ConversionFound {
    pub conversion_id: String,
    pub click_id: String,
    pub offer_id: String,
    pub route: String,
    pub event: String,
    pub status: String,
    /// `toString` of the payout.
    pub payout: String,
    pub currency: String,
    pub txid: String,
    pub offer_mismatch: u8,
    pub click_id_repaired: u8,
    pub repair_hint: String,
    pub is_test: u8,
    pub latency_ms: u32,
    /// The payout parameter as sent (empty when none).
    pub payout_raw: String,
    /// Why `payout` is not simply `payout_raw` (a money issue code), empty when all is well.
    pub payout_issue: String,
}

/// A postback's row in `unattributed`, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct UnattributedFound {
    pub reason: String,
    pub hint: String,
    pub raw_click_id: String,
    pub route: String,
    pub offer_id: String,
    pub raw_params: String,
    pub is_test: u8,
    pub latency_ms: u32,
}

/// The row a postback ended in, if it is there yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Conversion(ConversionFound),
    Unattributed(UnattributedFound),
}

/// The row of `postback_id` in `conversions` or `unattributed`, `None` while there is none.
pub async fn find_postback(
    settings: &ClickHouseSettings,
    postback_id: &str,
) -> Result<Option<Found>, ClickHouseError> {
    let client = settings.client();
    let conversions: Vec<ConversionFound> = client
        .query(
            "SELECT conversion_id, click_id, offer_id, route, event, status, \
             toString(payout) AS payout, currency, txid, offer_mismatch, click_id_repaired, \
             repair_hint, is_test, latency_ms, payout_raw, payout_issue \
             FROM conversions FINAL WHERE postback_id = ? LIMIT 1",
        )
        .bind(postback_id)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::from_client("reading conversions", e))?;
    if let Some(row) = conversions.into_iter().next() {
        return Ok(Some(Found::Conversion(row)));
    }
    let unattributed: Vec<UnattributedFound> = client
        .query(
            "SELECT reason, hint, raw_click_id, route, offer_id, raw_params, is_test, latency_ms \
             FROM unattributed FINAL WHERE postback_id = ? LIMIT 1",
        )
        .bind(postback_id)
        .fetch_all()
        .await
        .map_err(|e| ClickHouseError::from_client("reading unattributed", e))?;
    Ok(unattributed.into_iter().next().map(Found::Unattributed))
}

/// Rows written since a time: clicks, conversions with their repairs, unattributed postbacks
/// by reason and hint, and the latency from postback to row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutcomesSince {
    pub clicks: u64,
    /// Clicks whose cost parameter could not be read.
    pub click_cost_issues: u64,
    pub attributed: u64,
    pub repaired: u64,
    /// Repaired conversions by repair hint code.
    pub repairs: Vec<(String, u64)>,
    /// Unattributed rows by (reason, hint code).
    pub unattributed: Vec<((String, String), u64)>,
    /// p50, p90, p99 of `latency_ms` over conversions and unattributed rows.
    pub latency_ms: [u32; 3],
}

#[derive(Row, Deserialize)]
struct Clicks {
    clicks: u64,
    click_cost_issues: u64,
}

#[derive(Row, Deserialize)]
struct Conversions {
    attributed: u64,
    repaired: u64,
}

#[derive(Row, Deserialize)]
struct HintCount {
    reason: String,
    hint: String,
    n: u64,
}

#[derive(Row, Deserialize)]
struct Latency {
    p50: u32,
    p90: u32,
    p99: u32,
}

/// [`OutcomesSince`] for rows since `since_s` (Unix seconds).
pub async fn outcomes_since(
    settings: &ClickHouseSettings,
    since_s: u32,
) -> Result<OutcomesSince, ClickHouseError> {
    let client = settings.client();
    let read = |what: &'static str| move |e| ClickHouseError::from_client(what, e);
    let clicks = client
        .query(
            "SELECT count() AS clicks, countIf(cost_issue != '' AND is_test = 0) \
             AS click_cost_issues FROM clicks FINAL WHERE click_time >= toDateTime(?)",
        )
        .bind(since_s)
        .fetch_one::<Clicks>()
        .await
        .map_err(read("counting clicks"))?;
    let conversions = client
        .query(
            "SELECT count() AS attributed, toUInt64(sum(click_id_repaired)) AS repaired \
             FROM conversions FINAL WHERE conversion_time >= toDateTime(?)",
        )
        .bind(since_s)
        .fetch_one::<Conversions>()
        .await
        .map_err(read("counting conversions"))?;
    let repairs = client
        .query(
            "SELECT 'attributed' AS reason, repair_hint AS hint, count() AS n \
             FROM conversions FINAL WHERE conversion_time >= toDateTime(?) \
             AND click_id_repaired = 1 GROUP BY repair_hint ORDER BY repair_hint",
        )
        .bind(since_s)
        .fetch_all::<HintCount>()
        .await
        .map_err(read("counting repairs"))?;
    let unattributed = client
        .query(
            "SELECT reason, hint, count() AS n FROM unattributed FINAL \
             WHERE received_time >= toDateTime(?) GROUP BY reason, hint ORDER BY reason, hint",
        )
        .bind(since_s)
        .fetch_all::<HintCount>()
        .await
        .map_err(read("counting unattributed postbacks"))?;
    let latency = client
        .query(
            "SELECT toUInt32(quantileExact(0.5)(latency_ms)) AS p50, \
               toUInt32(quantileExact(0.9)(latency_ms)) AS p90, \
               toUInt32(quantileExact(0.99)(latency_ms)) AS p99 FROM ( \
               SELECT latency_ms FROM conversions FINAL WHERE conversion_time >= toDateTime(?) \
               UNION ALL SELECT latency_ms FROM unattributed FINAL \
               WHERE received_time >= toDateTime(?))",
        )
        .bind(since_s)
        .bind(since_s)
        .fetch_one::<Latency>()
        .await
        .map_err(read("latency percentiles"))?;
    Ok(OutcomesSince {
        clicks: clicks.clicks,
        click_cost_issues: clicks.click_cost_issues,
        attributed: conversions.attributed,
        repaired: conversions.repaired,
        repairs: repairs.into_iter().map(|r| (r.hint, r.n)).collect(),
        unattributed: unattributed
            .into_iter()
            .map(|r| ((r.reason, r.hint), r.n))
            .collect(),
        latency_ms: [latency.p50, latency.p90, latency.p99],
    })
}
