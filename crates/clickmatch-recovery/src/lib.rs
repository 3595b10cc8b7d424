//! Recovery, shared by `clickmatch reprocess`, `clickmatch upload` and `POST /api/conversions`:
//!
//! 1. **plan**: build the records ([`clickmatch_core::recovery`]) and predict each one's outcome
//!    with the current configuration, against the clicks and conversions ClickHouse holds
//!    ([`plan_reprocess`], [`plan_upload`]);
//! 2. **apply**: publish the records to the postbacks topic under the key the current
//!    configuration gives ([`publish`]); the joiner decides them like any postback;
//! 3. **read back** the joiner's decisions from `recovered` ([`await_decisions`]), waiting up
//!    to a timeout, so that the operator sees what happened, not only what was predicted.
//!
//! [`Summary`] is the before → after table, [`LineResult`] the per-line answer of an upload.

mod plan;
mod report;

pub use plan::{plan_reprocess, plan_upload, Planned};
pub use report::{LineResult, Summary, SummaryRow};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clickmatch_clickhouse::{ClickHouseError, RecoveredRow, RecoveryReader};
use clickmatch_kafka::{PublishError, Publisher};

/// Why a recovery run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryRunError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error(transparent)]
    Record(#[from] clickmatch_core::recovery::RecoveryError),
    #[error("publishing to the postbacks topic: {0} (records acknowledged before it stay published; applying again is safe)")]
    Publish(#[from] PublishError),
}

/// Records published concurrently at most: the producer queue holds far more, the broker
/// acknowledges them in a few batches.
const PUBLISH_WINDOW: usize = 500;

/// Publishes the planned records to `topic` under their keys, waiting for every
/// acknowledgement. Stops at the first refusal.
pub async fn publish(
    publisher: &Publisher,
    topic: &str,
    planned: &[Planned],
) -> Result<(), RecoveryRunError> {
    for window in planned.chunks(PUBLISH_WINDOW) {
        let sends = window.iter().map(|p| {
            let payload = p.record.encode();
            async move {
                publisher
                    .publish(topic, &p.record.key, &payload)
                    .await
                    .map(|_| ())
            }
        });
        futures::future::try_join_all(sends).await?;
    }
    tracing::info!(records = planned.len(), topic, "recovery records published");
    Ok(())
}

/// When the joiner last decided each of `postback_ids` (those decided before), to tell a new
/// decision from an earlier run's in [`await_decisions`] without comparing clocks of two hosts.
pub async fn decision_times(
    reader: &RecoveryReader,
    postback_ids: &[String],
) -> Result<HashMap<String, u64>, RecoveryRunError> {
    Ok(reader
        .decisions(postback_ids)
        .await?
        .into_iter()
        .map(|row| (row.postback_id, row.decided_time_ms))
        .collect())
}

/// The joiner's new decisions about `postback_ids` (by postback ID), read from `recovered`
/// until all are there or `timeout` has passed. `before` ([`decision_times`] read before
/// publishing): a decision counts only when it is later than the one recorded there.
pub async fn await_decisions(
    reader: &RecoveryReader,
    postback_ids: &[String],
    before: &HashMap<String, u64>,
    timeout: Duration,
) -> Result<HashMap<String, RecoveredRow>, RecoveryRunError> {
    let give_up = Instant::now() + timeout;
    loop {
        let decided: HashMap<String, RecoveredRow> = reader
            .decisions(postback_ids)
            .await?
            .into_iter()
            .filter(|row| {
                before
                    .get(&row.postback_id)
                    .is_none_or(|t| row.decided_time_ms > *t)
            })
            .map(|row| (row.postback_id.clone(), row))
            .collect();
        if decided.len() >= postback_ids.len() || Instant::now() >= give_up {
            return Ok(decided);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
