//! The outbound dispatcher's table `outbound_deliveries` (migration 0002): one row per delivery
//! attempt of a conversion version's traffic-source postback, and the reads the dispatcher
//! needs: what is already recorded for a batch's idempotency keys, and the subs of the clicks
//! its conversions came from.

use std::collections::HashMap;
use std::time::Duration;

use clickhouse::Client;
use serde::{Deserialize, Serialize};

use crate::error::ClickHouseError;
use crate::rows::SUB_COUNT;
use crate::settings::ClickHouseSettings;
use crate::sink::{insert_rows, DEFAULT_END_TIMEOUT, DEFAULT_SEND_TIMEOUT};

/// The table's name.
pub const OUTBOUND_TABLE: &str = "outbound_deliveries";

/// Where a delivery stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// This attempt failed; another follows after a backoff.
    Retrying,
    /// The traffic source answered 2xx.
    Delivered,
    /// No attempt left, or an answer that no retry fixes.
    Failed,
    /// Nothing was fired (a test conversion).
    Skipped,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Skipped => "skipped",
        }
    }

    /// Whether no attempt follows this one.
    pub fn is_final(self) -> bool {
        self != DeliveryState::Retrying
    }
}

/// A row of `outbound_deliveries`.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct OutboundRow {
    /// `conversion_id:version`, the key sent as the `Idempotency-Key` header.
    pub idempotency_key: String,
    pub conversion_id: String,
    pub conversion_version: u64,
    pub click_id: String,
    /// Unix seconds (`DateTime`); the partition key, shared by every attempt.
    pub click_time: u32,
    pub campaign_id: String,
    pub offer_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub attempt_time: u32,
    pub attempt_time_ms: u64,
    /// The rendered URL that was requested.
    pub url: String,
    /// The traffic source's answer; 0 when there was none (timeout, refused connection).
    pub http_status: u16,
    pub error: String,
    pub duration_ms: u32,
    /// [`DeliveryState::as_str`].
    pub state: String,
    /// The last attempt of the delivery.
    pub is_final: bool,
}

/// Column names and types, as [`OutboundRow`] writes them.
pub const OUTBOUND_COLUMNS: &[(&str, &str)] = &[
    ("idempotency_key", "String"),
    ("conversion_id", "String"),
    ("conversion_version", "UInt64"),
    ("click_id", "String"),
    ("click_time", "DateTime"),
    ("campaign_id", "String"),
    ("offer_id", "String"),
    ("attempt", "UInt32"),
    ("attempt_time", "DateTime"),
    ("attempt_time_ms", "UInt64"),
    ("url", "String"),
    ("http_status", "UInt16"),
    ("error", "String"),
    ("duration_ms", "UInt32"),
    ("state", "String"),
    ("is_final", "UInt8"),
];

/// What `outbound_deliveries` already holds for one idempotency key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The highest attempt number recorded.
    pub attempts: u32,
    /// An attempt was delivered: never fire again.
    pub delivered: bool,
    /// A final state (delivered, failed or skipped) was recorded.
    pub finished: bool,
}

/// The `source` and `sub1`…`sub10` of a click, from `clicks`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickSubs {
    pub source: String,
    pub subs: Vec<String>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct RecordedRow {
    idempotency_key: String,
    attempts: u32,
    delivered: u8,
    finished: u8,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ClickSubsRow {
    click_id: String,
    source: String,
    sub1: String,
    sub2: String,
    sub3: String,
    sub4: String,
    sub5: String,
    sub6: String,
    sub7: String,
    sub8: String,
    sub9: String,
    sub10: String,
}

/// Reads and writes of the outbound dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct OutboundStore {
    client: Client,
}

impl std::fmt::Debug for OutboundStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundStore")
            .field("database", &self.client.database())
            .finish()
    }
}

/// Keys per `IN (…)` query, so that a statement stays small.
const LOOKUP_CHUNK: usize = 500;

/// `IN (?, ?, …)` for `n` values.
fn placeholders(n: usize) -> String {
    let mut out = String::with_capacity(n * 3 + 2);
    out.push('(');
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out.push(')');
    out
}

impl OutboundStore {
    /// Validates the settings (no I/O) and builds the client.
    pub fn new(settings: &ClickHouseSettings) -> Result<OutboundStore, ClickHouseError> {
        settings.validate()?;
        Ok(OutboundStore {
            client: settings.client(),
        })
    }

    /// Inserts attempt rows and returns once ClickHouse acknowledged them.
    pub async fn write(&self, rows: &[OutboundRow]) -> Result<(), ClickHouseError> {
        insert_rows::<OutboundRow, _>(
            &self.client,
            OUTBOUND_TABLE,
            rows.iter(),
            (Some(DEFAULT_SEND_TIMEOUT), Some(DEFAULT_END_TIMEOUT)),
        )
        .await
    }

    /// What is recorded for `keys` (keys with no row are absent from the map).
    pub async fn recorded(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Recorded>, ClickHouseError> {
        let mut out = HashMap::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT idempotency_key, max(attempt) AS attempts, \
                 max(state = 'delivered') AS delivered, max(is_final) AS finished \
                 FROM {OUTBOUND_TABLE} WHERE idempotency_key IN {} GROUP BY idempotency_key",
                placeholders(chunk.len())
            );
            let mut query = self.client.query(&sql);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            let rows = query
                .fetch_all::<RecordedRow>()
                .await
                .map_err(|e| ClickHouseError::from_client("reading outbound_deliveries", e))?;
            for row in rows {
                out.insert(
                    row.idempotency_key,
                    Recorded {
                        attempts: row.attempts,
                        delivered: row.delivered != 0,
                        finished: row.finished != 0,
                    },
                );
            }
        }
        Ok(out)
    }

    /// `source` and subs of `click_ids` from `clicks` (clicks not found are absent).
    pub async fn click_subs(
        &self,
        click_ids: &[String],
    ) -> Result<HashMap<String, ClickSubs>, ClickHouseError> {
        let mut out = HashMap::new();
        for chunk in click_ids.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT click_id, source, sub1, sub2, sub3, sub4, sub5, sub6, sub7, sub8, sub9, \
                 sub10 FROM clicks WHERE click_id IN {} LIMIT 1 BY click_id",
                placeholders(chunk.len())
            );
            let mut query = self.client.query(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            let rows = query
                .fetch_all::<ClickSubsRow>()
                .await
                .map_err(|e| ClickHouseError::from_client("reading clicks for subs", e))?;
            for row in rows {
                let subs = vec![
                    row.sub1, row.sub2, row.sub3, row.sub4, row.sub5, row.sub6, row.sub7, row.sub8,
                    row.sub9, row.sub10,
                ];
                debug_assert_eq!(subs.len(), SUB_COUNT);
                out.insert(
                    row.click_id,
                    ClickSubs {
                        source: row.source,
                        subs,
                    },
                );
            }
        }
        Ok(out)
    }
}

/// Milliseconds as `u32`, saturating.
pub fn duration_ms(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use clickhouse::Row;

    use super::*;

    #[test]
    fn columns_match_the_row_type_and_the_migration() {
        let names: Vec<&str> = OUTBOUND_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(OutboundRow::COLUMN_NAMES, names.as_slice());
        let sql = crate::migrations::MIGRATIONS[1].sql;
        for (name, ty) in OUTBOUND_COLUMNS {
            assert!(sql.contains(&format!("    {name} {ty}")), "{name} {ty}");
        }
    }

    #[test]
    fn states_and_placeholders() {
        assert!(!DeliveryState::Retrying.is_final());
        for state in [
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::Skipped,
        ] {
            assert!(state.is_final());
        }
        assert_eq!(placeholders(1), "(?)");
        assert_eq!(placeholders(3), "(?, ?, ?)");
        assert_eq!(duration_ms(Duration::from_secs(1)), 1000);
    }
}
