//! Records to publish, each with the outcome the current configuration predicts.

use std::collections::HashMap;

use clickmatch_clickhouse::{ClickRow, RecoveryReader, ReprocessFilter};
use clickmatch_core::classify::{classify, Classified};
use clickmatch_core::model::Account;
use clickmatch_core::records::{ClickRecord, PostbackRecord, RECORD_VERSION};
use clickmatch_core::recovery::{
    predict, reprocess_record, upload_record, Expected, StoredConversion, StoredPostback,
};
use clickmatch_core::Reason;
use clickmatch_import::UploadLine;

use crate::RecoveryRunError;

/// A record to publish and what it is expected to end in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The upload's line (CSV) or element (JSON), 1-based; `None` for a reprocessed postback.
    pub line: Option<u32>,
    pub record: PostbackRecord,
    /// A reprocessed postback's current reason and hint.
    pub before: Option<(String, String)>,
    pub expected: Expected,
}

/// The postbacks `filter` selects from `unattributed_current` (at most `limit`), rebuilt under
/// `account`, with their current reason and hint.
async fn reprocess_records(
    reader: &RecoveryReader,
    account: &Account,
    filter: &ReprocessFilter,
    limit: Option<u64>,
) -> Result<Vec<(PostbackRecord, (String, String))>, RecoveryRunError> {
    let rows = reader.unattributed(filter, limit).await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        // The first reason tells what ingest decided (unauthorized, unknown route); an
        // unreadable one (a newer writer's) is treated as admitted, the IP still checked.
        let reason = Reason::from_name(&row.first_reason).unwrap_or(Reason::UnknownClickId);
        let stored = StoredPostback {
            postback_id: row.postback_id,
            received_ms: row.received_time_ms,
            route: row.route,
            reason,
            raw_params: row.raw_params,
            remote_ip: row.remote_ip,
        };
        records.push((reprocess_record(account, &stored)?, (row.reason, row.hint)));
    }
    Ok(records)
}

/// The records of an upload's `lines` through `route` (`None`: global).
fn upload_records(
    account: &Account,
    route: Option<&str>,
    lines: &[UploadLine],
) -> Result<Vec<(u32, PostbackRecord)>, RecoveryRunError> {
    lines
        .iter()
        .map(|l| Ok((l.line, upload_record(account, route, &l.conversion)?)))
        .collect()
}

/// An upload's plan: the records of its `lines` through `route` (`None`: global), predicted.
pub async fn plan_upload(
    reader: &RecoveryReader,
    account: &Account,
    route: Option<&str>,
    lines: &[UploadLine],
) -> Result<Vec<Planned>, RecoveryRunError> {
    let records = upload_records(account, route, lines)?;
    let (lines, records): (Vec<u32>, Vec<PostbackRecord>) = records.into_iter().unzip();
    let expected = predict_all(reader, account, &records).await?;
    Ok(records
        .into_iter()
        .zip(expected)
        .zip(lines)
        .map(|((record, expected), line)| Planned {
            line: Some(line),
            record,
            before: None,
            expected,
        })
        .collect())
}

/// Reprocess's plan: the postbacks `filter` selects from `unattributed_current` (at most
/// `limit`), rebuilt under `account` and predicted.
pub async fn plan_reprocess(
    reader: &RecoveryReader,
    account: &Account,
    filter: &ReprocessFilter,
    limit: Option<u64>,
) -> Result<Vec<Planned>, RecoveryRunError> {
    let (records, before): (Vec<PostbackRecord>, Vec<(String, String)>) =
        reprocess_records(reader, account, filter, limit)
            .await?
            .into_iter()
            .unzip();
    let expected = predict_all(reader, account, &records).await?;
    Ok(records
        .into_iter()
        .zip(expected)
        .zip(before)
        .map(|((record, expected), before)| Planned {
            line: None,
            record,
            before: Some(before),
            expected,
        })
        .collect())
}

/// Each record's prediction, with the clicks and the conversions they would make looked up in
/// ClickHouse (two reads per thousand records, not one per record).
async fn predict_all(
    reader: &RecoveryReader,
    account: &Account,
    records: &[PostbackRecord],
) -> Result<Vec<Expected>, RecoveryRunError> {
    let mut keys: Vec<String> = records
        .iter()
        .filter_map(|r| match classify(account, r) {
            Classified::Joinable(candidate) => Some(candidate.click.key()),
            Classified::Final(_) => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    let clicks: HashMap<String, ClickRecord> = reader
        .clicks(&keys)
        .await?
        .iter()
        .map(|row| (row.click_id.clone(), click_record(row)))
        .collect();
    let click_of = |record: &PostbackRecord| match classify(account, record) {
        Classified::Joinable(candidate) => clicks.get(&candidate.click.key()),
        Classified::Final(_) => None,
    };
    // First without stored conversions, to learn which conversion IDs to look up.
    let mut ids: Vec<String> = records
        .iter()
        .filter_map(|r| {
            predict(account, r, click_of(r), |_| None)
                .conversion()
                .map(|c| c.conversion_id.clone())
        })
        .collect();
    ids.sort();
    ids.dedup();
    let stored: HashMap<String, StoredConversion> = reader
        .conversions(&ids)
        .await?
        .into_iter()
        .map(|s| {
            let state = StoredConversion {
                postback_id: s.postback_id,
                status: s.status,
            };
            (s.conversion_id, state)
        })
        .collect();
    Ok(records
        .iter()
        .map(|r| predict(account, r, click_of(r), |id| stored.get(id).cloned()))
        .collect())
}

/// What the join needs of a stored click.
fn click_record(row: &ClickRow) -> ClickRecord {
    ClickRecord {
        v: RECORD_VERSION,
        click_id: row.click_id.clone(),
        time_ms: row.click_time_ms,
        campaign_id: row.campaign_id.clone(),
        offer_id: row.offer_id.clone(),
        source: row.source.clone(),
        subs: Vec::new(),
        ip: String::new(),
        user_agent: String::new(),
        country: row.country.clone(),
        enrichment: Default::default(),
        is_test: row.is_test,
        foreign: row.is_foreign,
        cost: None,
    }
}
