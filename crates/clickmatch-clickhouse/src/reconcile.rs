//! Reads of `clickmatch reconcile`: our side of a network's conversion export. Read-only; every
//! ID from the export is a bound parameter (an array), never pasted into SQL, and long lists go
//! in chunks so that no query passes ClickHouse's `max_query_size` (256 KiB).
//!
//! A conversion is its latest version (`LIMIT 1 BY conversion_id` after `ORDER BY version
//! DESC`: `FINAL` without relying on merges), picked before any filter on a column a later
//! version may change. Scans are bounded by the click's month partitions: a click precedes its
//! conversions by at most the longest attribution window.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::ClickHouseError;
use crate::read::{in_chunks, CHUNK};
use crate::settings::ClickHouseSettings;

/// Transaction IDs per raw-parameter search, which compares every postback with every ID.
const TXID_CHUNK: usize = 200;

/// The columns of a conversion that reconciliation compares.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct ReconcileConversion {
    pub conversion_id: String,
    pub click_id: String,
    pub txid: String,
    pub offer_id: String,
    pub event: String,
    pub status: String,
    #[serde(with = "crate::rows::payout")]
    pub payout: Decimal,
    pub currency: String,
    pub payout_issue: String,
    /// When the latest version's postback was received, Unix ms.
    pub conversion_time_ms: u64,
}

const CONVERSION_COLUMNS: &str = "conversion_id, click_id, txid, offer_id, event, status, payout, \
                                  currency, payout_issue, conversion_time_ms";

/// An unattributed postback found for an ID of the export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnattributedHit {
    /// The click ID or transaction ID it was found by.
    pub key: String,
    pub postback_id: String,
    pub reason: String,
    pub hint: String,
    pub received_time_ms: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct UnattributedFound {
    postback_id: String,
    raw_click_id: String,
    raw_params: String,
    reason: String,
    hint: String,
    received_time_ms: u64,
}

/// A click recorded here.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct KnownClick {
    pub click_id: String,
    pub click_time: u32,
}

/// Read-only queries of `clickmatch reconcile`.
#[derive(Clone)]
pub struct ReconcileReader {
    client: clickhouse::Client,
}

fn read_error(what: &str) -> impl Fn(clickhouse::error::Error) -> ClickHouseError + '_ {
    crate::read::read_error(what, "reconcile")
}

impl ReconcileReader {
    /// Validates the settings (no I/O) and builds the client.
    pub fn new(settings: &ClickHouseSettings) -> Result<ReconcileReader, ClickHouseError> {
        settings.validate()?;
        Ok(ReconcileReader {
            client: settings.client(),
        })
    }

    /// Conversions (latest versions, test conversions aside) received between `from_s` and
    /// `to_s` (Unix seconds, inclusive), of clicks since `clicks_since_s`; only `offers`' when
    /// that is not empty.
    pub async fn conversions_between(
        &self,
        clicks_since_s: u32,
        from_s: u32,
        to_s: u32,
        offers: &[String],
    ) -> Result<Vec<ReconcileConversion>, ClickHouseError> {
        let offer_filter = if offers.is_empty() {
            ""
        } else {
            " AND has(?, offer_id)"
        };
        let sql = format!(
            "SELECT {CONVERSION_COLUMNS} FROM \
             (SELECT {CONVERSION_COLUMNS}, conversion_time, is_test FROM conversions \
              WHERE click_time >= ? AND click_time <= ? \
              ORDER BY conversion_id, version DESC LIMIT 1 BY conversion_id) \
             WHERE conversion_time >= ? AND conversion_time <= ? AND is_test = 0{offer_filter} \
             ORDER BY conversion_time_ms, conversion_id"
        );
        let mut query = self
            .client
            .query(&sql)
            .bind(clicks_since_s)
            .bind(to_s)
            .bind(from_s)
            .bind(to_s);
        if !offers.is_empty() {
            query = query.bind(offers);
        }
        query
            .fetch_all()
            .await
            .map_err(read_error("conversions in the period"))
    }

    /// The conversions (latest versions) whose click ID or transaction ID is among `click_ids`
    /// or `txids`, of clicks between `clicks_since_s` and `clicks_until_s`, whenever received.
    pub async fn conversions_with_ids(
        &self,
        click_ids: &[String],
        txids: &[String],
        clicks_since_s: u32,
        clicks_until_s: u32,
    ) -> Result<Vec<ReconcileConversion>, ClickHouseError> {
        // First which conversions, by any version; then their latest versions, whose IDs may
        // differ from the version that matched.
        let mut ids: Vec<String> = Vec::new();
        for (column, values) in [("click_id", click_ids), ("txid", txids)] {
            let sql = format!(
                "SELECT DISTINCT conversion_id FROM conversions \
                 WHERE click_time >= ? AND click_time <= ? AND has(?, {column})"
            );
            ids.extend(
                in_chunks(values, CHUNK, |chunk| {
                    let query = self.client.query(&sql);
                    let query = query.bind(clicks_since_s).bind(clicks_until_s).bind(chunk);
                    async move {
                        query
                            .fetch_all::<String>()
                            .await
                            .map_err(read_error("conversions by the export's IDs"))
                    }
                })
                .await?,
            );
        }
        ids.sort();
        ids.dedup();
        let sql = format!(
            "SELECT {CONVERSION_COLUMNS} FROM conversions \
             WHERE click_time >= ? AND click_time <= ? AND has(?, conversion_id) \
             ORDER BY conversion_id, version DESC LIMIT 1 BY conversion_id"
        );
        in_chunks(&ids, CHUNK, |chunk| {
            let query = self.client.query(&sql);
            let query = query.bind(clicks_since_s).bind(clicks_until_s).bind(chunk);
            async move {
                query
                    .fetch_all::<ReconcileConversion>()
                    .await
                    .map_err(read_error("the latest versions of those conversions"))
            }
        })
        .await
    }

    /// Unattributed postbacks received since `since_s` whose click ID is one of `click_ids`
    /// (each postback once, its latest row).
    pub async fn unattributed_by_click_ids(
        &self,
        click_ids: &[String],
        since_s: u32,
    ) -> Result<Vec<UnattributedHit>, ClickHouseError> {
        let found = in_chunks(click_ids, CHUNK, |chunk| {
            self.unattributed("has(?, raw_click_id)", since_s, chunk)
        })
        .await?;
        Ok(found.iter().map(|f| hit(&f.raw_click_id, f)).collect())
    }

    /// Unattributed postbacks received since `since_s` with one of `txids` among their
    /// parameter values (found in `raw_params` as a whole JSON string): a postback that lost
    /// its click ID (a CAKE `#s2#` fragment) still names its transaction.
    pub async fn unattributed_by_txids(
        &self,
        txids: &[String],
        since_s: u32,
    ) -> Result<Vec<UnattributedHit>, ClickHouseError> {
        // Only values that need no JSON escaping can be searched as written.
        let searchable: Vec<&String> = txids
            .iter()
            .filter(|t| !t.is_empty() && !t.chars().any(|c| c == '"' || c == '\\' || c < ' '))
            .collect();
        let mut hits = Vec::new();
        for chunk in searchable.chunks(TXID_CHUNK) {
            let needles: Vec<String> = chunk.iter().map(|t| format!("\"{t}\"")).collect();
            let found = self
                .unattributed(
                    "arrayExists(t -> position(raw_params, t) > 0, ?)",
                    since_s,
                    &needles,
                )
                .await?;
            for f in found {
                for (txid, needle) in chunk.iter().zip(&needles) {
                    if f.raw_params.contains(needle.as_str()) {
                        hits.push(hit(txid, &f));
                    }
                }
            }
        }
        Ok(hits)
    }

    async fn unattributed(
        &self,
        condition: &str,
        since_s: u32,
        values: &[String],
    ) -> Result<Vec<UnattributedFound>, ClickHouseError> {
        let sql = format!(
            "SELECT postback_id, raw_click_id, raw_params, reason, hint, received_time_ms \
             FROM unattributed WHERE received_time >= ? AND {condition} \
             ORDER BY postback_id, received_time_ms DESC LIMIT 1 BY postback_id"
        );
        self.client
            .query(&sql)
            .bind(since_s)
            .bind(values)
            .fetch_all()
            .await
            .map_err(read_error("unattributed postbacks"))
    }

    /// The clicks among `click_ids` recorded since `since_s`.
    pub async fn clicks(
        &self,
        click_ids: &[String],
        since_s: u32,
    ) -> Result<Vec<KnownClick>, ClickHouseError> {
        in_chunks(click_ids, CHUNK, |chunk| {
            let query = self
                .client
                .query(
                    "SELECT click_id, click_time FROM clicks \
                     WHERE click_time >= ? AND has(?, click_id) LIMIT 1 BY click_id",
                )
                .bind(since_s)
                .bind(chunk);
            async move {
                query
                    .fetch_all::<KnownClick>()
                    .await
                    .map_err(read_error("clicks"))
            }
        })
        .await
    }
}

fn hit(key: &str, found: &UnattributedFound) -> UnattributedHit {
    UnattributedHit {
        key: key.to_string(),
        postback_id: found.postback_id.clone(),
        reason: found.reason.clone(),
        hint: found.hint.clone(),
        received_time_ms: found.received_time_ms,
    }
}
