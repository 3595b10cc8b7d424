//! The accounting check of the fault tests: every postback that ingest accepted with 200 (its
//! `postback_id` taken from ingest's JSON answer) is in exactly one of `conversions` and
//! `unattributed`.
//!
//! The raw tables are read (distinct postback IDs), not `FINAL`: a replay that writes the same
//! row twice is one postback ID; a postback ID in both tables, or in neither, is an accounting
//! error. Status updates are the exception to check another way: they are new versions of one
//! conversion (same `conversion_id`), and ReplacingMergeTree merges keep only the newest
//! version even in the raw table, so the earlier postback's ID can vanish. Pass only postbacks
//! that are not status updates of one another, and check updates by the final status.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Where the accepted postbacks ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounting {
    pub accepted: usize,
    pub in_conversions: usize,
    pub in_unattributed: usize,
    /// Accepted, in no table (yet).
    pub missing: Vec<String>,
    /// Accepted, in both tables.
    pub in_both: Vec<String>,
}

impl Accounting {
    /// Every accepted postback in exactly one table.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty() && self.in_both.is_empty()
    }
}

async fn postback_ids(
    client: &clickhouse::Client,
    table: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let ids: Vec<String> = client
        .query(&format!("SELECT DISTINCT postback_id FROM {table}"))
        .fetch_all()
        .await
        .with_context(|| format!("postback IDs of {table}"))?;
    Ok(ids.into_iter().collect())
}

/// Checks `accepted` postback IDs against the tables once.
pub async fn check(client: &clickhouse::Client, accepted: &[String]) -> anyhow::Result<Accounting> {
    let conversions = postback_ids(client, "conversions").await?;
    let unattributed = postback_ids(client, "unattributed").await?;
    let mut out = Accounting {
        accepted: accepted.len(),
        ..Accounting::default()
    };
    for id in accepted {
        match (conversions.contains(id), unattributed.contains(id)) {
            (true, true) => out.in_both.push(id.clone()),
            (true, false) => out.in_conversions += 1,
            (false, true) => out.in_unattributed += 1,
            (false, false) => out.missing.push(id.clone()),
        }
    }
    Ok(out)
}

/// Polls [`check`] until no accepted postback is missing, or `timeout` passes; returns the
/// last result.
pub async fn wait(
    client: &clickhouse::Client,
    accepted: &[String],
    timeout: Duration,
) -> anyhow::Result<Accounting> {
    let deadline = Instant::now() + timeout;
    loop {
        let result = check(client, accepted).await?;
        if result.missing.is_empty() || Instant::now() > deadline {
            return Ok(result);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
