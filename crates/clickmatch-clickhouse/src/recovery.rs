//! Reads of `clickmatch reprocess` and conversion uploads: the unattributed postbacks to decide
//! again, the clicks and conversions a prediction needs, and the joiner's decisions once
//! applied (`recovered`). Every value is bound, never pasted into SQL.

use serde::Deserialize;

use crate::error::ClickHouseError;
use crate::read::{in_chunks, CHUNK};
use crate::rows::{ClickRow, RecoveredRow};
use crate::settings::ClickHouseSettings;

/// Which unattributed postbacks to decide again: received in `[from_s, to_s)` (Unix seconds),
/// on `route` and with the current `reason` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReprocessFilter {
    pub from_s: u32,
    pub to_s: u32,
    pub route: Option<String>,
    pub reason: Option<String>,
}

/// A row of `unattributed_current`, as reprocess reads it.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct CurrentUnattributed {
    pub postback_id: String,
    pub received_time_ms: u64,
    pub route: String,
    /// The latest decision's reason.
    pub reason: String,
    pub hint: String,
    /// What the postback first ended in (tells what ingest decided about it).
    pub first_reason: String,
    pub raw_params: String,
    pub remote_ip: String,
}

/// A stored conversion's latest version, for dedup predictions.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct ConversionState {
    pub conversion_id: String,
    pub postback_id: String,
    pub status: String,
}

/// Read-only queries of recovery. Cheap to clone.
#[derive(Clone)]
pub struct RecoveryReader {
    client: clickhouse::Client,
}

impl std::fmt::Debug for RecoveryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryReader")
            .field("database", &self.client.database())
            .finish()
    }
}

fn read_error(what: &str) -> impl Fn(clickhouse::error::Error) -> ClickHouseError + '_ {
    crate::read::read_error(what, "recovery")
}

impl RecoveryReader {
    /// Validates the settings (no I/O) and builds the client.
    pub fn new(settings: &ClickHouseSettings) -> Result<RecoveryReader, ClickHouseError> {
        settings.validate()?;
        Ok(RecoveryReader {
            client: settings.client(),
        })
    }

    /// The postbacks `filter` selects from `unattributed_current`, oldest first, at most
    /// `limit` (`None`: all).
    pub async fn unattributed(
        &self,
        filter: &ReprocessFilter,
        limit: Option<u64>,
    ) -> Result<Vec<CurrentUnattributed>, ClickHouseError> {
        let route = filter.route.as_deref().unwrap_or_default();
        let reason = filter.reason.as_deref().unwrap_or_default();
        self.client
            .query(
                "SELECT ?fields FROM unattributed_current \
                 WHERE received_time >= ? AND received_time < ? \
                 AND (? = '' OR route = ?) AND (? = '' OR reason = ?) \
                 ORDER BY received_time_ms, postback_id LIMIT ?",
            )
            .bind(filter.from_s)
            .bind(filter.to_s)
            .bind(route)
            .bind(route)
            .bind(reason)
            .bind(reason)
            .bind(limit.unwrap_or(u64::MAX))
            .fetch_all::<CurrentUnattributed>()
            .await
            .map_err(read_error("unattributed_current"))
    }

    /// The clicks with these IDs (signed or foreign), as stored.
    pub async fn clicks(&self, click_ids: &[String]) -> Result<Vec<ClickRow>, ClickHouseError> {
        self.latest("clicks", "click_id", click_ids).await
    }

    /// The latest version of the conversions with these IDs.
    pub async fn conversions(
        &self,
        conversion_ids: &[String],
    ) -> Result<Vec<ConversionState>, ClickHouseError> {
        self.latest("conversions", "conversion_id", conversion_ids)
            .await
    }

    /// The joiner's latest decisions about these reprocessed or uploaded records.
    pub async fn decisions(
        &self,
        postback_ids: &[String],
    ) -> Result<Vec<RecoveredRow>, ClickHouseError> {
        self.latest("recovered", "postback_id", postback_ids).await
    }

    /// The rows of `table` (`FINAL`) whose `column` is one of `ids`. The bound array is cast:
    /// current ClickHouse types an empty literal `Array(Nothing)` and refuses it.
    async fn latest<T>(
        &self,
        table: &'static str,
        column: &'static str,
        ids: &[String],
    ) -> Result<Vec<T>, ClickHouseError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let sql = format!(
            "SELECT ?fields FROM {table} FINAL \
             WHERE {column} IN (SELECT arrayJoin(CAST(? AS Array(String))))"
        );
        in_chunks(ids, CHUNK, |chunk| {
            let query = self.client.query(&sql).bind(chunk);
            async move { query.fetch_all::<T>().await.map_err(read_error(table)) }
        })
        .await
    }
}
