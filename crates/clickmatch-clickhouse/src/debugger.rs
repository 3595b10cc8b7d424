//! Reads of the postback debugger (ingest's `/debug` pages): the latest postbacks per route and
//! offer with their outcome, and one click's whole story. Read-only; every value from the
//! request is bound, never pasted into SQL.

use serde::Deserialize;

use crate::error::ClickHouseError;
use crate::outbound::{OutboundRow, OUTBOUND_TABLE};
use crate::rows::{ClickRow, ConversionRow, RecoveredRow, UnattributedRow};
use crate::settings::ClickHouseSettings;

/// One postback as the debugger lists it: an attributed conversion version or an
/// unattributed row. Unboxed: the debugger lists a page of them, so their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostbackEntry {
    Attributed(ConversionRow),
    Unattributed(UnattributedRow),
}

impl PostbackEntry {
    pub fn route(&self) -> &str {
        match self {
            PostbackEntry::Attributed(c) => &c.route,
            PostbackEntry::Unattributed(u) => &u.route,
        }
    }

    pub fn offer_id(&self) -> &str {
        match self {
            PostbackEntry::Attributed(c) => &c.offer_id,
            PostbackEntry::Unattributed(u) => &u.offer_id,
        }
    }

    /// When the postback was received, Unix ms.
    pub fn time_ms(&self) -> u64 {
        match self {
            PostbackEntry::Attributed(c) => c.conversion_time_ms,
            PostbackEntry::Unattributed(u) => u.received_time_ms,
        }
    }

    pub fn postback_id(&self) -> &str {
        match self {
            PostbackEntry::Attributed(c) => &c.postback_id,
            PostbackEntry::Unattributed(u) => &u.postback_id,
        }
    }
}

/// Counts of one route and offer over the debugger's window.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Deserialize)]
pub struct OutcomeCount {
    pub route: String,
    pub offer_id: String,
    /// `attributed` or the unattributed reason ([`DebugReader::outcome_counts`]), or the
    /// payout issue code ([`DebugReader::payout_issue_counts`]).
    pub outcome: String,
    pub postbacks: u64,
}

/// Everything recorded about one click ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickStory {
    pub click: Option<ClickRow>,
    /// Every version of every conversion of the click that `conversions` still holds, oldest
    /// first. The newest is always there; earlier ones only until a merge (ReplacingMergeTree
    /// keeps the newest), and current ClickHouse collapses the versions written in one insert
    /// at once (`optimize_on_insert`, not in 18.16). The rollups keep every version.
    pub conversions: Vec<ConversionRow>,
    /// Unattributed postbacks that name the click (as their click ID or anywhere in their
    /// parameters, so mangled forms show up too), oldest first.
    pub unattributed: Vec<UnattributedRow>,
    /// Outbound delivery attempts of its conversions, by key and attempt.
    pub deliveries: Vec<OutboundRow>,
    /// The latest recovery decision (reprocess, upload) about the click's postbacks: those in
    /// `unattributed` and those naming the click.
    pub recovered: Vec<RecoveredRow>,
}

/// Read-only queries of the debugger. Cheap to clone.
#[derive(Clone)]
pub struct DebugReader {
    client: clickhouse::Client,
}

impl std::fmt::Debug for DebugReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugReader")
            .field("database", &self.client.database())
            .finish()
    }
}

/// Rows any one story section shows at most.
const STORY_LIMIT: u64 = 500;

fn read_error(what: &str) -> impl Fn(clickhouse::error::Error) -> ClickHouseError + '_ {
    crate::read::read_error(what, "the debugger")
}

impl DebugReader {
    /// Validates the settings (no I/O) and builds the client.
    pub fn new(settings: &ClickHouseSettings) -> Result<DebugReader, ClickHouseError> {
        settings.validate()?;
        Ok(DebugReader {
            client: settings.client(),
        })
    }

    /// The latest `per_group` postbacks of each route and offer received since `since_s`
    /// (Unix seconds), newest first. Replayed rows appear once; replaced conversion versions
    /// as long as the table holds them (see [`ClickStory::conversions`]).
    pub async fn latest_postbacks(
        &self,
        since_s: u32,
        per_group: u64,
    ) -> Result<Vec<PostbackEntry>, ClickHouseError> {
        let conversions = self
            .client
            .query(
                "SELECT ?fields FROM (SELECT * FROM conversions WHERE conversion_time >= ? \
                 ORDER BY conversion_time_ms DESC LIMIT 1 BY conversion_id, version) \
                 ORDER BY conversion_time_ms DESC LIMIT ? BY route, offer_id",
            )
            .bind(since_s)
            .bind(per_group)
            .fetch_all::<ConversionRow>()
            .await
            .map_err(read_error("conversions"))?;
        let unattributed = self
            .client
            .query(
                "SELECT ?fields FROM (SELECT * FROM unattributed WHERE received_time >= ? \
                 ORDER BY received_time_ms DESC LIMIT 1 BY postback_id) \
                 ORDER BY received_time_ms DESC LIMIT ? BY route, offer_id",
            )
            .bind(since_s)
            .bind(per_group)
            .fetch_all::<UnattributedRow>()
            .await
            .map_err(read_error("unattributed"))?;
        let mut entries: Vec<PostbackEntry> = conversions
            .into_iter()
            .map(PostbackEntry::Attributed)
            .chain(unattributed.into_iter().map(PostbackEntry::Unattributed))
            .collect();
        entries.sort_by(|a, b| {
            (a.route(), a.offer_id())
                .cmp(&(b.route(), b.offer_id()))
                .then(b.time_ms().cmp(&a.time_ms()))
        });
        // Keep `per_group` of each route and offer across both tables.
        let mut kept = Vec::with_capacity(entries.len());
        let mut group: Option<(String, String)> = None;
        let mut in_group = 0u64;
        for entry in entries {
            let key = (entry.route().to_string(), entry.offer_id().to_string());
            if group.as_ref() != Some(&key) {
                group = Some(key);
                in_group = 0;
            }
            in_group += 1;
            if in_group <= per_group {
                kept.push(entry);
            }
        }
        Ok(kept)
    }

    /// Postbacks per route, offer and outcome (`attributed` or the reason) since `since_s`.
    /// Unattributed postbacks are those unattributed now (`unattributed_current`): one that
    /// `clickmatch reprocess` attributed counts as attributed only.
    pub async fn outcome_counts(&self, since_s: u32) -> Result<Vec<OutcomeCount>, ClickHouseError> {
        let mut counts = self
            .client
            .query(
                "SELECT route, offer_id, 'attributed' AS outcome, \
                 uniqExact(conversion_id, version) AS postbacks \
                 FROM conversions WHERE conversion_time >= ? GROUP BY route, offer_id",
            )
            .bind(since_s)
            .fetch_all::<OutcomeCount>()
            .await
            .map_err(read_error("conversion counts"))?;
        counts.extend(
            self.client
                .query(
                    "SELECT route, offer_id, reason AS outcome, uniqExact(postback_id) AS postbacks \
                     FROM unattributed_current WHERE received_time >= ? \
                     GROUP BY route, offer_id, reason",
                )
                .bind(since_s)
                .fetch_all::<OutcomeCount>()
                .await
                .map_err(read_error("unattributed counts"))?,
        );
        counts.sort_by(|a, b| {
            (&a.route, &a.offer_id, b.postbacks, &a.outcome).cmp(&(
                &b.route,
                &b.offer_id,
                a.postbacks,
                &b.outcome,
            ))
        });
        Ok(counts)
    }

    /// Attributed postbacks per route, offer and payout issue (the `payout_issue` code as
    /// `outcome`) since `since_s`; conversions whose payout was booked as sent are not counted.
    pub async fn payout_issue_counts(
        &self,
        since_s: u32,
    ) -> Result<Vec<OutcomeCount>, ClickHouseError> {
        let mut counts = self
            .client
            .query(
                "SELECT route, offer_id, payout_issue AS outcome, \
                 uniqExact(conversion_id, version) AS postbacks \
                 FROM conversions WHERE conversion_time >= ? AND payout_issue != '' \
                 GROUP BY route, offer_id, payout_issue",
            )
            .bind(since_s)
            .fetch_all::<OutcomeCount>()
            .await
            .map_err(read_error("payout issue counts"))?;
        counts.sort_by(|a, b| {
            (&a.route, &a.offer_id, b.postbacks, &a.outcome).cmp(&(
                &b.route,
                &b.offer_id,
                a.postbacks,
                &b.outcome,
            ))
        });
        Ok(counts)
    }

    /// Everything recorded about `click_id`. `since_s` (Unix seconds), when known (the time
    /// inside a clickmatch click ID), bounds the scans: nothing about a click precedes it.
    pub async fn click_story(
        &self,
        click_id: &str,
        since_s: Option<u32>,
    ) -> Result<ClickStory, ClickHouseError> {
        let since = since_s.unwrap_or(0);
        let click = self
            .client
            .query("SELECT ?fields FROM clicks WHERE click_id = ? AND click_time >= ? LIMIT 1")
            .bind(click_id)
            .bind(since)
            .fetch_optional::<ClickRow>()
            .await
            .map_err(read_error("the click"))?;
        let conversions = self
            .client
            .query(
                "SELECT ?fields FROM conversions WHERE click_id = ? AND click_time >= ? \
                 ORDER BY conversion_time_ms, version LIMIT 1 BY conversion_id, version LIMIT ?",
            )
            .bind(click_id)
            .bind(since)
            .bind(STORY_LIMIT)
            .fetch_all::<ConversionRow>()
            .await
            .map_err(read_error("the click's conversions"))?;
        let unattributed = self
            .client
            .query(
                "SELECT ?fields FROM unattributed WHERE received_time >= ? \
                 AND (raw_click_id = ? OR position(raw_params, ?) > 0) \
                 ORDER BY received_time_ms LIMIT 1 BY postback_id LIMIT ?",
            )
            .bind(since)
            .bind(click_id)
            .bind(click_id)
            .bind(STORY_LIMIT)
            .fetch_all::<UnattributedRow>()
            .await
            .map_err(read_error("the click's unattributed postbacks"))?;
        let deliveries = self
            .client
            .query(&format!(
                "SELECT ?fields FROM {OUTBOUND_TABLE} WHERE click_id = ? AND click_time >= ? \
                 ORDER BY idempotency_key, attempt, attempt_time_ms DESC \
                 LIMIT 1 BY idempotency_key, attempt LIMIT ?"
            ))
            .bind(click_id)
            .bind(since)
            .bind(STORY_LIMIT)
            .fetch_all::<OutboundRow>()
            .await
            .map_err(read_error("the click's outbound deliveries"))?;
        let postback_ids: Vec<&str> = unattributed
            .iter()
            .map(|u| u.postback_id.as_str())
            .collect();
        let recovered = self
            .client
            .query(
                "SELECT ?fields FROM recovered FINAL WHERE received_time >= ? \
                 AND (click_id = ? OR postback_id IN (SELECT arrayJoin(CAST(? AS Array(String))))) \
                 ORDER BY received_time_ms, postback_id LIMIT ?",
            )
            .bind(since)
            .bind(click_id)
            .bind(postback_ids)
            .bind(STORY_LIMIT)
            .fetch_all::<RecoveredRow>()
            .await
            .map_err(read_error("the click's reprocessed and uploaded postbacks"))?;
        Ok(ClickStory {
            click,
            conversions,
            unattributed,
            deliveries,
            recovered,
        })
    }
}
