//! The join of one partition: clicks in their window, postbacks waiting for their click, and
//! conversions already seen (for dedup and status updates).
//!
//! Pure and synchronous: the joiner's I/O layer feeds records in partition order together with
//! their source positions (Kafka offsets) and the current time, and writes what comes out. State
//! lives behind [`JoinStore`]: [`MemoryStore`] here, a disk-backed store in `clickmatch-store`.
//! Only the postbacks still waiting for their click are indexed in memory (they are few: those
//! that beat their click by less than the grace period).

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::classify::{self, Candidate, Classified, ClickRef};
use crate::model::{Account, DedupMode, DAY_MS, DEFAULT_WINDOW_MS};
use crate::reason::Reason;
use crate::records::{ClickRecord, Conversion, Outcome, PostbackRecord};

/// What the join keeps of a click: just enough to attribute (the rest is in ClickHouse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinClick {
    pub click_id: String,
    pub time_ms: u64,
    pub campaign_id: String,
    pub offer_id: String,
    pub is_test: bool,
    pub foreign: bool,
}

impl From<&ClickRecord> for JoinClick {
    fn from(click: &ClickRecord) -> Self {
        JoinClick {
            click_id: click.click_id.clone(),
            time_ms: click.time_ms,
            campaign_id: click.campaign_id.clone(),
            offer_id: click.offer_id.clone(),
            is_test: click.is_test,
            foreign: click.foreign,
        }
    }
}

/// What the state keeps of the last version written under a dedup key: the postback it came
/// from and what the configuration made of that postback. With the postback's record and its
/// click, which never change, it rebuilds a replay's row exactly as first written, even after
/// a configuration change. Short names: one is stored per attributed conversion, and as a whole
/// `Conversion` (~600 bytes of JSON) it was most of the bytes the state wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    #[serde(rename = "p")]
    pub postback_id: String,
    #[serde(rename = "s")]
    pub status: String,
    #[serde(rename = "e")]
    pub event: String,
    #[serde(rename = "v")]
    pub payout: Decimal,
    #[serde(rename = "c", default, skip_serializing_if = "String::is_empty")]
    pub currency: String,
    #[serde(rename = "pr", default, skip_serializing_if = "String::is_empty")]
    pub payout_raw: String,
    #[serde(rename = "pi", default, skip_serializing_if = "String::is_empty")]
    pub payout_issue: String,
    #[serde(rename = "o", default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(rename = "t", default, skip_serializing_if = "String::is_empty")]
    pub txid: String,
    #[serde(rename = "r", default, skip_serializing_if = "String::is_empty")]
    pub repair: String,
    #[serde(rename = "m", default, skip_serializing_if = "std::ops::Not::not")]
    pub offer_mismatch: bool,
    #[serde(rename = "x", default, skip_serializing_if = "std::ops::Not::not")]
    pub click_id_repaired: bool,
}

impl Seen {
    /// The part of `conversion` a seen entry keeps.
    pub fn of(conversion: &Conversion) -> Seen {
        Seen {
            postback_id: conversion.postback_id.clone(),
            status: conversion.status.clone(),
            event: conversion.event.clone(),
            payout: conversion.payout,
            currency: conversion.currency.clone(),
            payout_raw: conversion.payout_raw.clone(),
            payout_issue: conversion.payout_issue.clone(),
            source: conversion.source.clone(),
            txid: conversion.txid.clone(),
            repair: conversion.repair.clone(),
            offer_mismatch: conversion.offer_mismatch,
            click_id_repaired: conversion.click_id_repaired,
        }
    }

    /// The conversion's row: this entry, the postback's record and its click.
    fn conversion(self, dedup_key: &str, record: &PostbackRecord, click: &JoinClick) -> Conversion {
        Conversion {
            conversion_id: conversion_id(dedup_key),
            click_id: click.click_id.clone(),
            click_time_ms: click.time_ms,
            conversion_time_ms: record.received_ms,
            postback_id: self.postback_id,
            campaign_id: click.campaign_id.clone(),
            offer_id: click.offer_id.clone(),
            route: record.route_label().to_string(),
            event: self.event,
            status: self.status,
            payout: self.payout,
            currency: self.currency,
            payout_raw: self.payout_raw,
            payout_issue: self.payout_issue,
            source: self.source,
            txid: self.txid,
            offer_mismatch: self.offer_mismatch,
            click_id_repaired: self.click_id_repaired,
            repair: self.repair,
            is_test: click.is_test,
            version: record.received_ms,
        }
    }
}

/// A postback waiting for its click, as stored (re-classified on restore: classification is a
/// pure function of the record and the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPending {
    pub record: PostbackRecord,
    pub deadline_ms: u64,
    /// Wall-clock time the joiner first saw it.
    #[serde(default)]
    pub since_ms: u64,
}

/// A failure of the state store (disk I/O, corruption).
#[derive(Debug, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub Box<dyn std::error::Error + Send + Sync>);

pub type StoreResult<T> = Result<T, StoreError>;

/// The day bucket a click time belongs to: state is grouped by it so that expiry drops whole
/// buckets.
pub fn bucket_of(time_ms: u64) -> u64 {
    time_ms / DAY_MS
}

/// Where the state of one partition lives.
pub trait JoinStore {
    /// A click by key; `time_ms` (known for signed IDs) names its bucket.
    fn click(&self, key: &str, time_ms: Option<u64>) -> StoreResult<Option<JoinClick>>;
    fn put_click(&mut self, click: JoinClick) -> StoreResult<()>;
    /// The conversion last written under `dedup_key`, stored in the bucket of `click_time_ms`.
    fn seen(&self, dedup_key: &str, click_time_ms: u64) -> StoreResult<Option<Seen>>;
    fn put_seen(&mut self, dedup_key: &str, click_time_ms: u64, seen: &Seen) -> StoreResult<()>;
    fn put_pending(&mut self, position: i64, pending: &StoredPending) -> StoreResult<()>;
    fn remove_pending(&mut self, position: i64) -> StoreResult<()>;
    /// Every stored pending postback, oldest position first (for restore).
    fn pending(&self) -> StoreResult<Vec<(i64, StoredPending)>>;
    /// Drops every bucket entirely older than `before_ms`.
    fn expire(&mut self, before_ms: u64) -> StoreResult<()>;
    /// Approximate number of clicks held.
    fn clicks_len(&self) -> u64;
}

/// State in hash maps, for tests and tools.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: BTreeMap<u64, MemoryBucket>,
    foreign: HashMap<String, JoinClick>,
    pending: BTreeMap<i64, StoredPending>,
}

#[derive(Debug, Default)]
struct MemoryBucket {
    clicks: HashMap<String, JoinClick>,
    seen: HashMap<String, Seen>,
}

impl JoinStore for MemoryStore {
    fn click(&self, key: &str, time_ms: Option<u64>) -> StoreResult<Option<JoinClick>> {
        Ok(match time_ms {
            Some(t) => self
                .buckets
                .get(&bucket_of(t))
                .and_then(|b| b.clicks.get(key))
                .cloned(),
            None => self.foreign.get(key).cloned(),
        })
    }

    fn put_click(&mut self, click: JoinClick) -> StoreResult<()> {
        if click.foreign {
            self.foreign.insert(click.click_id.clone(), click);
        } else {
            let bucket = self.buckets.entry(bucket_of(click.time_ms)).or_default();
            bucket.clicks.insert(click.click_id.clone(), click);
        }
        Ok(())
    }

    fn seen(&self, dedup_key: &str, click_time_ms: u64) -> StoreResult<Option<Seen>> {
        Ok(self
            .buckets
            .get(&bucket_of(click_time_ms))
            .and_then(|b| b.seen.get(dedup_key))
            .cloned())
    }

    fn put_seen(&mut self, dedup_key: &str, click_time_ms: u64, seen: &Seen) -> StoreResult<()> {
        let bucket = self.buckets.entry(bucket_of(click_time_ms)).or_default();
        bucket.seen.insert(dedup_key.to_string(), seen.clone());
        Ok(())
    }

    fn put_pending(&mut self, position: i64, pending: &StoredPending) -> StoreResult<()> {
        self.pending.insert(position, pending.clone());
        Ok(())
    }

    fn remove_pending(&mut self, position: i64) -> StoreResult<()> {
        self.pending.remove(&position);
        Ok(())
    }

    fn pending(&self) -> StoreResult<Vec<(i64, StoredPending)>> {
        Ok(self.pending.iter().map(|(p, s)| (*p, s.clone())).collect())
    }

    fn expire(&mut self, before_ms: u64) -> StoreResult<()> {
        let keep_from = bucket_of(before_ms);
        self.buckets = self.buckets.split_off(&keep_from);
        self.foreign.retain(|_, c| c.time_ms >= before_ms);
        Ok(())
    }

    fn clicks_len(&self) -> u64 {
        let signed: usize = self.buckets.values().map(|b| b.clicks.len()).sum();
        (signed + self.foreign.len()) as u64
    }
}

/// A postback waiting for its click, in memory.
#[derive(Debug, Clone)]
struct Pending {
    record: PostbackRecord,
    candidate: Candidate,
    /// Signed IDs: click time + grace, compared with the clicks watermark (foreign: unused).
    deadline_ms: u64,
    /// Wall-clock time the joiner first saw it: once the clicks partition is caught up (or for
    /// foreign IDs, which name no time), it waits `grace` from here.
    since_ms: u64,
}

/// An outcome with the position (postback offset) of the postback it belongs to.
pub type Positioned = (i64, Outcome);

/// Join state of one partition.
#[derive(Debug)]
pub struct PartitionJoin<S: JoinStore> {
    store: S,
    pending: BTreeMap<i64, Pending>,
    pending_by_click: HashMap<String, Vec<i64>>,
    /// At most the earliest deadline of the signed postbacks pending (`u64::MAX`: none), so
    /// that a click, which moves only the watermark, need not look at every one of them.
    earliest_deadline_ms: u64,
    /// Latest click time read from the clicks partition: event time, moved by data only.
    watermark_ms: u64,
}

impl<S: JoinStore> PartitionJoin<S> {
    /// A join over `store`, with the pending postbacks it holds (after a restart) re-indexed.
    pub fn restore(account: &Account, store: S, watermark_ms: u64) -> StoreResult<Self> {
        let mut join = PartitionJoin {
            store,
            pending: BTreeMap::new(),
            pending_by_click: HashMap::new(),
            earliest_deadline_ms: u64::MAX,
            watermark_ms,
        };
        for (position, stored) in join.store.pending()? {
            match classify::classify(account, &stored.record) {
                Classified::Joinable(candidate) => join.index_pending(
                    position,
                    Pending {
                        record: stored.record,
                        candidate,
                        deadline_ms: stored.deadline_ms,
                        since_ms: stored.since_ms,
                    },
                ),
                // The configuration changed under it: the postback is decided now, when the
                // next click or tick releases it.
                Classified::Final(_) => {
                    let candidate = Candidate {
                        click: ClickRef::Foreign(String::new()),
                        extracted: Default::default(),
                        repair: None,
                    };
                    join.index_pending(
                        position,
                        Pending {
                            record: stored.record,
                            candidate,
                            deadline_ms: 0,
                            since_ms: 0,
                        },
                    );
                }
            }
        }
        Ok(join)
    }

    pub fn new(store: S) -> Self {
        PartitionJoin {
            store,
            pending: BTreeMap::new(),
            pending_by_click: HashMap::new(),
            earliest_deadline_ms: u64::MAX,
            watermark_ms: 0,
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The position of the oldest postback still waiting, if any.
    pub fn oldest_pending_position(&self) -> Option<i64> {
        self.pending.keys().next().copied()
    }

    pub fn watermark_ms(&self) -> u64 {
        self.watermark_ms
    }

    fn index_pending(&mut self, position: i64, pending: Pending) {
        if let ClickRef::Signed(_) = pending.candidate.click {
            self.earliest_deadline_ms = self.earliest_deadline_ms.min(pending.deadline_ms);
        }
        self.pending_by_click
            .entry(pending.candidate.click.key())
            .or_default()
            .push(position);
        self.pending.insert(position, pending);
    }

    fn unindex_pending(&mut self, position: i64) -> Option<Pending> {
        let pending = self.pending.remove(&position)?;
        let key = pending.candidate.click.key();
        if let Some(list) = self.pending_by_click.get_mut(&key) {
            list.retain(|p| *p != position);
            if list.is_empty() {
                self.pending_by_click.remove(&key);
            }
        }
        Some(pending)
    }

    /// Adds a click; postbacks that were waiting for it are attributed now.
    pub fn on_click(
        &mut self,
        account: &Account,
        click: &ClickRecord,
    ) -> StoreResult<Vec<Positioned>> {
        let click = JoinClick::from(click);
        self.watermark_ms = self.watermark_ms.max(click.time_ms);
        let Some(waiting) = self.pending_by_click.get(&click.click_id).cloned() else {
            // The common case: no postback waited for this click.
            self.store.put_click(click)?;
            return self.release_due(account, None);
        };
        self.store.put_click(click.clone())?;
        let mut out = Vec::new();
        for position in waiting {
            if let Some(pending) = self.unindex_pending(position) {
                self.store.remove_pending(position)?;
                let outcome =
                    self.attribute(account, &pending.record, &pending.candidate, &click)?;
                out.push((position, outcome));
            }
        }
        out.extend(self.release_due(account, None)?);
        Ok(out)
    }

    /// Classifies and joins a postback read at `position`. Returns nothing when it waits for
    /// its click.
    pub fn on_postback(
        &mut self,
        account: &Account,
        record: PostbackRecord,
        position: i64,
        now_ms: u64,
    ) -> StoreResult<Option<Outcome>> {
        let candidate = match classify::classify(account, &record) {
            Classified::Final(row) => return Ok(Some(Outcome::Unattributed(row))),
            Classified::Joinable(candidate) => candidate,
        };

        // A signed ID names its click time: past the window it is expired without a lookup,
        // even when the click has long left the store.
        let time_hint = match &candidate.click {
            ClickRef::Signed(id) => {
                let window = window_hint(account, &candidate);
                if record.received_ms > id.time_ms().saturating_add(window) {
                    return Ok(Some(self.unattributed(
                        &record,
                        &candidate,
                        Reason::Expired,
                        None,
                    )));
                }
                Some(id.time_ms())
            }
            ClickRef::Foreign(_) => None,
        };
        if let Some(click) = self.store.click(&candidate.click.key(), time_hint)? {
            return Ok(Some(self.attribute(account, &record, &candidate, &click)?));
        }

        // Clicks read past the click's time plus grace: in partition order, the click would
        // have come before them.
        let deadline_ms = time_hint.map_or(u64::MAX, |t| t.saturating_add(account.grace_ms));
        if time_hint.is_some() && self.watermark_ms > deadline_ms {
            return Ok(Some(self.unattributed(
                &record,
                &candidate,
                Reason::UnknownClickId,
                None,
            )));
        }
        let stored = StoredPending {
            record,
            deadline_ms,
            since_ms: now_ms,
        };
        self.store.put_pending(position, &stored)?;
        self.index_pending(
            position,
            Pending {
                record: stored.record,
                candidate,
                deadline_ms,
                since_ms: now_ms,
            },
        );
        Ok(None)
    }

    /// Expires old buckets and resolves postbacks whose click can no longer come. With the
    /// clicks partition `caught_up` (read to its end), a postback that waited `grace` of wall
    /// time is decided even when no newer click moves the watermark (idle traffic).
    pub fn advance(
        &mut self,
        account: &Account,
        caught_up: bool,
        now_ms: u64,
    ) -> StoreResult<Vec<Positioned>> {
        // A day of slack past the longest window: expiry drops whole day buckets.
        let expire_before = self
            .watermark_ms
            .saturating_sub(account.max_window_ms())
            .saturating_sub(DAY_MS);
        self.store.expire(expire_before)?;
        self.release_due(account, Some((caught_up, now_ms)))
    }

    /// `wall`: whether the clicks partition is caught up, and the wall-clock time.
    fn release_due(
        &mut self,
        account: &Account,
        wall: Option<(bool, u64)>,
    ) -> StoreResult<Vec<Positioned>> {
        // Without the wall clock only the watermark releases, and nothing before it passes
        // the earliest deadline.
        if wall.is_none() && self.watermark_ms <= self.earliest_deadline_ms {
            return Ok(Vec::new());
        }
        let grace = account.grace_ms;
        let mut earliest = u64::MAX;
        let due: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, p)| {
                let waited = |now: u64| now > p.since_ms.saturating_add(grace);
                match p.candidate.click {
                    ClickRef::Signed(_) => {
                        let due = self.watermark_ms > p.deadline_ms
                            || wall.is_some_and(|(caught_up, now)| caught_up && waited(now));
                        if !due {
                            earliest = earliest.min(p.deadline_ms);
                        }
                        due
                    }
                    ClickRef::Foreign(_) => wall.is_some_and(|(_, now)| waited(now)),
                }
            })
            .map(|(position, _)| *position)
            .collect();
        self.earliest_deadline_ms = earliest;
        let mut out = Vec::with_capacity(due.len());
        for position in due {
            let Some(pending) = self.unindex_pending(position) else {
                continue;
            };
            self.store.remove_pending(position)?;
            let outcome = match classify::classify(account, &pending.record) {
                // Stored before a configuration change that now rejects it.
                Classified::Final(row) => Outcome::Unattributed(row),
                Classified::Joinable(_) => self.unattributed(
                    &pending.record,
                    &pending.candidate,
                    Reason::UnknownClickId,
                    None,
                ),
            };
            out.push((position, outcome));
        }
        Ok(out)
    }

    fn unattributed(
        &self,
        record: &PostbackRecord,
        candidate: &Candidate,
        reason: Reason,
        click: Option<&JoinClick>,
    ) -> Outcome {
        let mut row = classify::unattributed(record, reason, None, &candidate.extracted);
        row.is_test = click.is_some_and(|c| c.is_test);
        Outcome::Unattributed(row)
    }

    fn attribute(
        &mut self,
        account: &Account,
        record: &PostbackRecord,
        candidate: &Candidate,
        click: &JoinClick,
    ) -> StoreResult<Outcome> {
        let offer = account.offers.get(&click.offer_id);
        let route = account.route(record.route.as_deref());
        let window = offer.map(|o| o.window_ms).unwrap_or(DEFAULT_WINDOW_MS);
        if record.received_ms > click.time_ms.saturating_add(window) {
            return Ok(self.unattributed(record, candidate, Reason::Expired, Some(click)));
        }

        let extracted = &candidate.extracted;
        let dedup_key = match classify::dedup_mode(route, offer) {
            DedupMode::ClickEvent => format!("click:{}:{}", click.click_id, extracted.event),
            DedupMode::Transaction => match &extracted.txid {
                Some(txid) => format!("tx:{}:{}", click.offer_id, txid),
                None => format!("click:{}:{}", click.click_id, extracted.event),
            },
            DedupMode::All => format!("postback:{}", record.postback_id),
        };

        if let Some(seen) = self.store.seen(&dedup_key, click.time_ms)? {
            if seen.postback_id == record.postback_id {
                // The same record again (a replay): the same row again.
                return Ok(Outcome::Attributed(
                    seen.conversion(&dedup_key, record, click),
                ));
            }
            if seen.status == extracted.status {
                return Ok(self.unattributed(record, candidate, Reason::Duplicate, Some(click)));
            }
        }

        let booked = extracted.book_conversion_payout(route, offer);
        let seen = Seen {
            postback_id: record.postback_id.clone(),
            status: extracted.status.clone(),
            event: extracted.event.clone(),
            payout: booked.payout,
            currency: booked.currency.to_string(),
            payout_raw: booked.payout_raw,
            payout_issue: booked
                .issue
                .map(|issue| issue.code().to_string())
                .unwrap_or_default(),
            source: account
                .campaigns
                .get(&click.campaign_id)
                .map(|c| c.source.clone())
                .unwrap_or_default(),
            txid: extracted.txid.clone().unwrap_or_default(),
            repair: candidate.repair.unwrap_or_default().to_string(),
            offer_mismatch: extracted
                .offer_id
                .as_deref()
                .is_some_and(|id| id.trim() != click.offer_id),
            click_id_repaired: candidate.repair.is_some(),
        };
        self.store.put_seen(&dedup_key, click.time_ms, &seen)?;
        Ok(Outcome::Attributed(
            seen.conversion(&dedup_key, record, click),
        ))
    }
}

/// The window to check before a lookup: the postback's offer's when it names one, else the
/// longest of the account.
fn window_hint(account: &Account, candidate: &Candidate) -> u64 {
    candidate
        .extracted
        .offer_id
        .as_deref()
        .and_then(|id| account.offers.get(id))
        .map(|o| o.window_ms)
        .unwrap_or_else(|| account.max_window_ms())
}

/// A conversion ID from its dedup key: the same key always gives the same ID, so replays and
/// status updates land on the same `ReplacingMergeTree` row.
pub fn conversion_id(dedup_key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(dedup_key.as_bytes());
    // By hand, not `format!` per byte: one of these per conversion.
    let mut id = String::with_capacity(32);
    for &byte in &digest[..16] {
        id.push(HEX[usize::from(byte >> 4)] as char);
        id.push(HEX[usize::from(byte & 15)] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::tests::{account, postback};
    use crate::records::RECORD_VERSION;

    const T0: u64 = 1_764_000_000_000;

    fn click(account: &Account, time_ms: u64, offer: &str) -> ClickRecord {
        ClickRecord {
            v: RECORD_VERSION,
            click_id: account.signer.mint(time_ms, time_ms).to_string(),
            time_ms,
            campaign_id: "demo".into(),
            offer_id: offer.into(),
            source: String::new(),
            subs: vec![],
            ip: String::new(),
            user_agent: String::new(),
            country: String::new(),
            is_test: false,
            foreign: false,
            cost: None,
        }
    }

    fn at(mut record: PostbackRecord, id: &str, received_ms: u64) -> PostbackRecord {
        record.postback_id = id.into();
        record.received_ms = received_ms;
        record
    }

    fn reason(outcome: Option<Outcome>) -> Option<Reason> {
        match outcome {
            Some(Outcome::Unattributed(u)) => Some(u.reason),
            _ => None,
        }
    }

    /// The conversion `record` ends in, at position `position`.
    fn attributed(
        join: &mut PartitionJoin<MemoryStore>,
        account: &Account,
        record: PostbackRecord,
        position: i64,
    ) -> Conversion {
        match join.on_postback(account, record, position, T0).unwrap() {
            Some(Outcome::Attributed(conversion)) => conversion,
            other => panic!("not attributed: {other:?}"),
        }
    }

    fn join() -> PartitionJoin<MemoryStore> {
        PartitionJoin::new(MemoryStore::default())
    }

    #[test]
    fn attributes_a_postback_after_its_click() {
        let account = account();
        let mut join = join();
        let c = click(&account, T0, "1");
        assert!(join.on_click(&account, &c).unwrap().is_empty());
        let pb = at(
            postback(
                None,
                &[("cid", &c.click_id), ("payout", "3.2"), ("offer", "9")],
            ),
            "p1",
            T0 + 1000,
        );
        let Some(Outcome::Attributed(conv)) = join.on_postback(&account, pb, 0, T0 + 1000).unwrap()
        else {
            panic!("not attributed")
        };
        assert_eq!(conv.click_id, c.click_id);
        assert_eq!(conv.payout.to_string(), "3.2");
        assert!(conv.offer_mismatch);
        assert_eq!(conv.route, "global");
        assert_eq!(
            conv.conversion_id,
            conversion_id(&format!("click:{}:sale", c.click_id))
        );
    }

    #[test]
    fn a_postback_before_its_click_waits_then_is_attributed() {
        let account = account();
        let mut join = join();
        let c = click(&account, T0, "1");
        let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
        assert!(join
            .on_postback(&account, pb, 7, T0 + 10)
            .unwrap()
            .is_none());
        assert_eq!(join.oldest_pending_position(), Some(7));
        let out = join.on_click(&account, &c).unwrap();
        assert!(matches!(out.as_slice(), [(7, Outcome::Attributed(_))]));
        assert_eq!(join.oldest_pending_position(), None);
        assert!(join.store().pending().unwrap().is_empty());
    }

    #[test]
    fn pending_postbacks_survive_a_restore() {
        let account = account();
        let mut first = join();
        let c = click(&account, T0, "1");
        let pb = at(postback(None, &[("cid", &c.click_id)]), "p1", T0 + 10);
        assert!(first
            .on_postback(&account, pb, 3, T0 + 10)
            .unwrap()
            .is_none());
        let watermark = first.watermark_ms();
        let mut restored = PartitionJoin::restore(&account, first.into_store(), watermark).unwrap();
        assert_eq!(restored.oldest_pending_position(), Some(3));
        let out = restored.on_click(&account, &c).unwrap();
        assert!(matches!(out.as_slice(), [(3, Outcome::Attributed(_))]));
    }

    #[test]
    fn unknown_once_caught_up_and_the_grace_has_passed() {
        let account = account();
        let mut join = join();
        let missing = click(&account, T0, "1");
        let pb = at(postback(None, &[("cid", &missing.click_id)]), "p1", T0 + 10);
        assert!(join
            .on_postback(&account, pb, 3, T0 + 10)
            .unwrap()
            .is_none());
        // Not caught up: wall time alone decides nothing (the click may be in the backlog).
        assert!(join
            .advance(&account, false, T0 + 60_000)
            .unwrap()
            .is_empty());
        // Caught up, but it has not waited its grace yet.
        assert!(join
            .advance(&account, true, T0 + 10 + account.grace_ms)
            .unwrap()
            .is_empty());
        let out = join
            .advance(&account, true, T0 + 11 + account.grace_ms)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!(
            matches!(&out[0], (3, Outcome::Unattributed(u)) if u.reason == Reason::UnknownClickId)
        );
        // A later click no longer attributes it: the postback already has its row.
        assert!(join.on_click(&account, &missing).unwrap().is_empty());
    }

    #[test]
    fn newer_clicks_decide_a_missing_click_without_the_wall_clock() {
        let account = account();
        let mut join = join();
        let missing = click(&account, T0, "1");
        let pb = at(postback(None, &[("cid", &missing.click_id)]), "p1", T0 + 10);
        assert!(join.on_postback(&account, pb, 3, T0).unwrap().is_none());
        let newer = click(&account, T0 + account.grace_ms, "1");
        assert!(join.on_click(&account, &newer).unwrap().is_empty());
        let newest = click(&account, T0 + account.grace_ms + 1, "1");
        let out = join.on_click(&account, &newest).unwrap();
        assert!(
            matches!(out.as_slice(), [(3, Outcome::Unattributed(u))] if u.reason == Reason::UnknownClickId)
        );
    }

    #[test]
    fn expired_duplicate_and_status_update() {
        let mut account = account();
        account.offers.get_mut("1").unwrap().window_ms = 1_000;
        let mut join = join();
        let c = click(&account, T0, "1");
        join.on_click(&account, &c).unwrap();

        let late = at(
            postback(None, &[("cid", &c.click_id), ("offer", "1")]),
            "late",
            T0 + 5_000,
        );
        assert_eq!(
            reason(join.on_postback(&account, late, 0, T0).unwrap()),
            Some(Reason::Expired)
        );

        account.offers.get_mut("1").unwrap().window_ms = DEFAULT_WINDOW_MS;
        let first = at(
            postback(None, &[("cid", &c.click_id), ("status", "pending")]),
            "a",
            T0 + 1,
        );
        let v1 = attributed(&mut join, &account, first.clone(), 1);
        let retry = at(
            postback(None, &[("cid", &c.click_id), ("status", "pending")]),
            "b",
            T0 + 2,
        );
        assert_eq!(
            reason(join.on_postback(&account, retry, 2, T0).unwrap()),
            Some(Reason::Duplicate)
        );
        let replay = join.on_postback(&account, first, 1, T0).unwrap();
        assert_eq!(replay, Some(Outcome::Attributed(v1.clone())));

        let chargeback = at(
            postback(None, &[("cid", &c.click_id), ("status", "chargeback")]),
            "c",
            T0 + 3,
        );
        let v2 = attributed(&mut join, &account, chargeback, 3);
        assert_eq!(v2.conversion_id, v1.conversion_id);
        assert!(v2.version > v1.version);
        assert_eq!(v2.status, "chargeback");
    }

    #[test]
    fn a_replay_after_a_configuration_change_is_the_row_first_written() {
        let mut account = account();
        let mut join = join();
        let c = click(&account, T0, "1");
        join.on_click(&account, &c).unwrap();
        let first = at(
            postback(None, &[("cid", &c.click_id), ("payout", "4.20")]),
            "a",
            T0 + 1,
        );
        let v1 = attributed(&mut join, &account, first.clone(), 1);
        assert_eq!(v1.payout, "4.20".parse().unwrap());

        // The offer now pays a fixed amount; the same record again keeps its first row.
        account.offers.get_mut("1").unwrap().payout =
            crate::model::PayoutModel::Fixed("9".parse().unwrap());
        let replay = join.on_postback(&account, first, 1, T0).unwrap();
        assert_eq!(replay, Some(Outcome::Attributed(v1.clone())));

        // What the state keeps of it is small: the first row is rebuilt from it.
        let key = format!("click:{}:{}", c.click_id, v1.event);
        let seen = join.store.seen(&key, c.time_ms).unwrap().unwrap();
        assert_eq!(seen, Seen::of(&v1));
        let stored = serde_json::to_vec(&seen).unwrap();
        assert!(stored.len() < 100, "{}", String::from_utf8_lossy(&stored));
    }

    #[test]
    fn conversion_ids_are_the_first_16_bytes_of_the_sha256_in_hex() {
        // SHA-256 of "abc".
        assert_eq!(conversion_id("abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn memory_store_expires_whole_buckets() {
        let account = account();
        let mut store = MemoryStore::default();
        store
            .put_click(JoinClick::from(&click(&account, 10, "1")))
            .unwrap();
        store
            .put_click(JoinClick::from(&click(&account, 2 * DAY_MS + 5, "1")))
            .unwrap();
        store.expire(DAY_MS + 1).unwrap();
        assert_eq!(store.clicks_len(), 1);
    }
}
